"""Rows a publish would make visible that no publish checked.

A publish replaces one range of the feature table in a commit that holds the whole table,
and consumers read the commit a version row names. So rows that other commits (``mesh
compute``, ``refresh``, a failed publish's rollback) wrote outside the range since the last
publish would become readable unchecked. The log says which files changed since then; only
their rows are compared: rows outside the range in the files added since must be the rows
outside the range in the files removed since (a rewrite that moved them, not new values).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from mesh.compute.changes import log_changes, rows_in_files
from mesh.definitions.columns import FEATURE_TS
from mesh.errors import CatalogError
from mesh.storage.base import to_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from mesh.storage import DeltaFeatureTable


def refuse_unchecked_rows(
    table: DeltaFeatureTable,
    name: str,
    published: int | None,
    latest: int,
    start: datetime,
    end: datetime,
) -> None:
    """``CatalogError`` when rows outside ``[start, end)`` changed between Delta version
    ``published`` (the last published commit of this table; ``None``: never published) and
    ``latest``, the table's version the publish writes on."""
    from pyspark.sql import functions as F

    since = -1 if published is None else published
    if latest == since:
        return
    changes = log_changes(table.path, since, latest)
    if not changes.added and not changes.removed:
        return
    inside = (F.col(FEATURE_TS) >= F.lit(start)) & (F.col(FEATURE_TS) < F.lit(end))
    outside = ~F.coalesce(inside, F.lit(False))
    added = rows_in_files(table, latest, changes.added)
    removed = rows_in_files(table, since, changes.removed) if since >= 0 else None
    new = added.where(outside) if added is not None else None
    old = removed.where(outside) if removed is not None else None
    if new is not None and old is not None:
        new = new.select(*old.columns)  # a widening adds columns: compare the ones both have
        new, old = new.exceptAll(old), old.exceptAll(new)
    wrote, new_span = _span(new)  # rows outside no publish checked
    removed_some, old_span = _span(old)  # rows its last publish held there
    if not wrote and not removed_some:
        return
    low, high = _covering(start, end, [*new_span, *old_span])
    writers = [
        f"{r.info.operation if r.info else r.operation} run "
        f"{r.info.run_id if r.info else '?'} (version {r.version})"
        for r in table.history()
        if since < r.version <= latest
    ]
    changed = [
        text
        for text, seen in (
            ("holds rows outside this range that no publish checked", wrote),
            ("no longer holds rows outside this range that its last publish held", removed_some),
        )
        if seen
    ]
    raise CatalogError(
        f"publish {name} [{start.isoformat()}, {end.isoformat()}): the feature table "
        f"{table.path} {' and '.join(changed)}, changed since "
        f"{'its last publish (version ' + str(since) + ')' if since >= 0 else 'it was created'}"
        f" by {', '.join(writers)}; consumers would read that change once this publish lands. "
        f"Publish a range that covers them, so that this publish checks them: --start "
        f"{low.isoformat()} --end {high.isoformat()}.",
        feature_set=name,
        path=table.path,
        since=since,
        writers=writers,
        unchecked_rows=wrote,
        removed_rows=removed_some,
        covering_start=low,
        covering_end=high,
    )


def _span(rows: DataFrame | None) -> tuple[bool, list[datetime]]:
    """Whether there are ``rows``, and the first and last ``feature_ts`` among them (none
    when no row has one): one Spark job."""
    from pyspark.sql import functions as F

    if rows is None:
        return False, []
    count, low, high = rows.agg(
        F.count(F.lit(1)),
        F.unix_micros(F.min(FEATURE_TS)),
        F.unix_micros(F.max(FEATURE_TS)),
    ).first() or (0, None, None)
    times = [_EPOCH + timedelta(microseconds=us) for us in (low, high) if us is not None]
    return count > 0, times


def _covering(start: datetime, end: datetime, times: list[datetime]) -> tuple[datetime, datetime]:
    """The range ``[start, end)`` widened over ``times`` (the last of them included), then
    to whole UTC days: what a user types, and it still covers them."""
    low = min([to_utc(start), *times])
    high = max([to_utc(end), *(t + timedelta(microseconds=1) for t in times)])
    day = timedelta(days=1)
    low = _EPOCH + (low - _EPOCH) // day * day
    high = _EPOCH + -((_EPOCH - high) // day) * day
    return low, high


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
