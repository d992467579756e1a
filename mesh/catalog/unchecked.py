"""Rows a publish would make visible that no publish checked.

A publish replaces one range of the feature table in a commit that holds the whole table,
and consumers read the commit a version row names. So rows that other commits (``mesh
compute``, ``refresh``, a failed publish's rollback) wrote outside the range since the last
publish would become readable unchecked. The log says which files changed since then; only
their rows are compared: rows outside the range in the files added since must be the rows
outside the range in the files removed since (a rewrite that moved them, not new values).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mesh.compute.changes import log_changes, rows_in_files
from mesh.errors import CatalogError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from mesh.storage import DeltaFeatureTable

FEATURE_TS = "feature_ts"


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
    wrote = new is not None and not _empty(new)  # rows outside no publish checked
    removed_some = old is not None and not _empty(old)  # rows its last publish held there
    if not wrote and not removed_some:
        return
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
        "Publish a range that covers them (--start/--end), or recompute those ranges first.",
        feature_set=name,
        path=table.path,
        since=since,
        writers=writers,
        unchecked_rows=wrote,
        removed_rows=removed_some,
    )


def _empty(rows: DataFrame) -> bool:
    return rows.limit(1).count() == 0
