"""Compute runs: one feature set over a time range into its feature table, as ONE Delta commit.

A run reads the data product once (pinned to its current Delta version), computes the range
in chunks, stages every chunk as Parquet under ``<warehouse>/_staging/<run id>/`` (one progress
line per chunk: rows, elapsed, ETA), then replaces exactly ``[start, end)`` of the feature table
with all staged rows in a single ``replace_range`` commit and removes the staging folder. A
failed or interrupted run commits nothing. Re-running a range gives the same table content.

A minor version that adds features writes into its major version's table: the commit adds the
new columns (``mesh.compute.widening``). A run records ``extra["synced"]``: true when its range
covers all data of the source version it read. After such a run the whole table is what a
full compute from the recorded source versions writes, so ``mesh refresh`` can start from it
(``mesh.compute.refresh``); after a partial one it cannot.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mesh.compute.build import feature_frame
from mesh.compute.failures import computing
from mesh.compute.sources import AV_US, E_US, SourceRead, on_time_line, read_source
from mesh.compute.widening import added_columns
from mesh.compute.windowed import FEATURE_TS, instant, position_unit_us, window_positions
from mesh.definitions import FeatureSet, MeshDefinition
from mesh.definitions.base import parse_semver
from mesh.errors import ComputeError
from mesh.storage import in_warehouse
from mesh.times import optional_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Progress = Callable[[str], None]
# Commit ``extra`` key: after this commit the whole table is what a full compute from the
# commit's recorded source versions writes (a run over all source data, or a refresh).
SYNCED = "synced"


@dataclass(frozen=True)
class RunResult:
    """What a run did. ``delta_version`` is None when nothing was committed (see ``note``)."""

    feature_set: str
    operation: str
    run_id: str
    path: str
    start: datetime | None
    end: datetime | None
    rows: int
    delta_version: int | None
    source_versions: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def summary(self) -> str:
        if self.delta_version is None:
            return f"{self.feature_set}: nothing committed ({self.note})"
        span = (
            "over its whole history"
            if self.start is None and self.end is None
            else f"[{_iso(self.start)}, {_iso(self.end)})"
        )
        return (
            f"{self.feature_set}: {self.operation} {span} "
            f"{self.rows} rows -> {self.path} version {self.delta_version}"
            + (f" ({self.note})" if self.note else "")
        )


def new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def feature_table_path(mesh: MeshDefinition, fs: FeatureSet) -> str:
    """``<warehouse>/features/<domain>/<name>/v<major>``."""
    major = parse_semver(fs.version)[0]
    return in_warehouse(mesh, f"features/{fs.domain}/{fs.name}/v{major}")


def feature_set(mesh: MeshDefinition, name: str | FeatureSet) -> FeatureSet:
    """A domain feature set by qualified name; ``ComputeError`` naming the known ones."""
    if isinstance(name, FeatureSet):
        return name
    fs = mesh.feature_sets.get(name)
    if fs is None:
        raise ComputeError(
            f"feature set {name!r} is not a domain feature set (defined: "
            f"{', '.join(sorted(mesh.feature_sets)) or 'none'}); check the name "
            "(domain.feature_set).",
            feature_set=name,
        )
    return fs


def check_range(start: datetime | None, end: datetime | None) -> None:
    """Refuse ``[start, end)`` when both are given and it is empty (``ComputeError``), before
    anything is read: the mistake is the range, whatever set it is run for."""
    if start is not None and end is not None and _utc(start) >= _utc(end):
        raise ComputeError(
            f"--start {_iso(start)} is not before --end {_iso(end)}; pass a start earlier than "
            "the end.",
            start=start,
            end=end,
        )


def _outside(
    start: datetime | None, end: datetime | None, bounds: tuple[datetime, datetime]
) -> str:
    """Why a range with one end given and the other the data's is empty, or "" when it is
    not: the given end lies past the data on its side, so the set has nothing to compute."""
    if start is not None and _utc(start) >= _utc(bounds[1]):
        return f"--start {_iso(start)} is after the source's data, which ends at {_iso(bounds[1])}"
    if end is not None and _utc(end) <= _utc(bounds[0]):
        return f"--end {_iso(end)} is before the source's data, which begins at {_iso(bounds[0])}"
    return ""


def feature_rows(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str | FeatureSet,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    source_version: int | None = None,
) -> DataFrame:
    """The feature rows of one set for ``[start, end)`` as a DataFrame: nothing is written.

    Reads the source at ``source_version`` (Delta sources; default: the latest); the range
    defaults as in :func:`compute_feature_set` (an empty source gives an empty frame with the
    table schema only when a range is given).
    """
    fs = feature_set(mesh, name)
    src = read_source(spark, mesh, fs, version=source_version)
    if start is None or end is None:
        bounds = data_range(spark, mesh, fs, src)
        if bounds is None:
            raise ComputeError(
                f"Feature set `{fs.qualified_name}`: source {src.product.qualified_name} has no "
                "rows, so there is no default range; pass start and end.",
                feature_set=fs.qualified_name,
                source=src.product.qualified_name,
            )
        start, end = start or bounds[0], end or bounds[1]
    return feature_frame(
        src.df, fs, src.product, dict(mesh.entity(fs.entity).keys), _utc(start), _utc(end)
    )


def compute_feature_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str | FeatureSet,
    *,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    chunk: timedelta | None = None,
    run_id: str | None = None,
    progress: Progress | None = print,
    operation: str = "compute",
    source: SourceRead | None = None,
    extra: dict[str, Any] | None = None,
    replace: tuple[datetime, datetime] | None = None,
) -> RunResult:
    """Compute ``[start, end)`` of one feature set and replace that range in its feature table.

    ``replace`` widens the range replaced (rows there that the run does not write are
    removed; the commit still records ``[start, end)``): refresh passes where deleted source
    rows reached beyond the data. A full compute (no ``start``/``end``) replaces the table's
    whole extent, so that rows of source rows since deleted do not outlive them.

    Without ``start``/``end`` the range covers all source data: from the first event to the
    last availability time (snapshot: through the grid point that covers it). ``chunk`` splits
    the range for long backfills; the run still makes exactly one commit, whose ``CommitInfo``
    records the run id, ``mesh.data_hash(fs)``, the range, the source's Delta version and, in
    ``extra``: feature set, semantic version, rows written and per-chunk row counts.

    The feature table is the one of ``fs``'s major version; columns a minor version added are
    added to it in the same commit (rows outside the range read them as null). ``ComputeError``
    before anything is computed when the table has a column ``fs`` no longer computes or
    computes with another type (that needs a new major version). ``extra["synced"]`` records
    whether the range covers all data of the source version read (see the module doc); with
    an explicit ``start`` and ``end`` that costs one small aggregate over the source.
    """
    from mesh.storage import CommitInfo, open_table

    start = optional_utc(start, "start", ComputeError)
    end = optional_utc(end, "end", ComputeError)
    check_range(start, end)
    fs = feature_set(mesh, name)
    run_id = run_id or new_run_id()
    src = source or read_source(spark, mesh, fs)
    path = feature_table_path(mesh, fs)
    versions = {src.product.qualified_name: src.version} if src.version is not None else {}
    # Only a run whose range covers all source data leaves the whole table in step with
    # ``versions``; it says so (``synced``), so that refresh never scans that version to know.
    # A caller that passes the mark itself (refresh) knows it without the scan.
    marked = extra is not None and SYNCED in extra
    full = start is None and end is None
    bounds = None
    if start is None or end is None or not marked:
        bounds = data_range(spark, mesh, fs, src)
    if start is None or end is None:
        outside = None if bounds is None else _outside(start, end, bounds)
        if bounds is None or outside:
            return RunResult(
                fs.qualified_name,
                operation,
                run_id,
                path,
                start,
                end,
                0,
                None,
                versions,
                outside or "the source has no rows",
            )
        start = start or bounds[0]
        end = end or bounds[1]
    start, end = _utc(start), _utc(end)
    marks = {} if marked else {SYNCED: covers(start, end, bounds)}
    key_types = dict(mesh.entity(fs.entity).keys)
    table = open_table(spark, path, backend=mesh.standards.storage.backend)
    table_schema = table.schema() if table.exists() else None
    low, high = start, end  # the range replaced
    if replace is not None:
        low, high = min(low, _utc(replace[0])), max(high, _utc(replace[1]))
    if full and table_schema is not None:
        from pyspark.sql import functions as F

        ts = F.unix_micros(F.col(FEATURE_TS))
        extent = table.read().agg(F.min(ts), F.max(ts)).first()
        if extent is not None and extent[0] is not None:
            low = min(low, instant(int(extent[0])))
            high = max(high, instant(int(extent[1]) + 1))
    added: list[str] = []
    staging = in_warehouse(mesh, f"_staging/{run_id}/{fs.domain}.{fs.name}")
    pieces = split_range(start, end, chunk)
    chunk_rows: list[dict[str, Any]] = []
    began = time.monotonic()
    try:
        with computing(fs):  # a failure on the data names the set
            for i, (lo, hi) in enumerate(pieces, start=1):
                frame = feature_frame(src.df, fs, src.product, key_types, lo, hi)
                if i == 1 and table_schema is not None:  # refuse before computing anything
                    added = added_columns(fs, path, table_schema, frame.schema)
                target = f"{staging}/chunk={i:05d}"
                frame.write.mode("overwrite").parquet(target)
                rows = spark.read.parquet(target).count()
                chunk_rows.append({"start": _iso(lo), "end": _iso(hi), "rows": rows})
                if progress:
                    elapsed = time.monotonic() - began
                    eta = elapsed / i * (len(pieces) - i)
                    progress(
                        f"{fs.qualified_name} chunk {i}/{len(pieces)} [{_iso(lo)}, {_iso(hi)}): "
                        f"{rows} rows, elapsed {elapsed:.1f}s, ETA {eta:.0f}s"
                    )
        staged = spark.read.parquet(
            *[f"{staging}/chunk={i:05d}" for i in range(1, len(pieces) + 1)]
        )
        total = sum(c["rows"] for c in chunk_rows)
        commit = CommitInfo(
            run_id=run_id,
            operation=operation,
            definition_hash=mesh.data_hash(fs),
            range_start=start,
            range_end=end,
            source_versions=versions,
            extra={
                "feature_set": fs.qualified_name,
                "semantic_version": fs.version,
                "accuracy": fs.accuracy,
                "rows_written": total,
                "chunks": chunk_rows,
                "source": src.product.qualified_name,
                **({"added_columns": added} if added else {}),
                **marks,
                **(extra or {}),
            },
        )
        version = table.replace_range(
            staged,
            commit,
            time_column=FEATURE_TS,
            start=low,
            end=high,
            merge_schema=bool(added),
        )
    finally:
        _remove(in_warehouse(mesh, f"_staging/{run_id}"))
    return RunResult(
        fs.qualified_name, operation, run_id, path, start, end, total, version, versions
    )


def data_range(
    spark: SparkSession, mesh: MeshDefinition, fs: FeatureSet, src: SourceRead
) -> tuple[datetime, datetime] | None:
    """``[start, end)`` covering all source data; None when the source is empty.

    Aggregations: from the first event to just after the last availability time (snapshot:
    grid-aligned, through the grid point covering it). Row-level: first to last event.
    """
    from pyspark.sql import functions as F

    keys = mesh.entity(fs.entity).key_columns
    rows = on_time_line(src.df, fs, src.product, keys)
    found = rows.agg(F.min(E_US), F.max(AV_US), F.max(E_US)).first()
    if found is None or found[0] is None:
        return None
    first, last_av, last_e = int(found[0]), int(found[1]), int(found[2])
    if not fs.is_aggregation:
        return instant(first), instant(last_e + 1)
    unit = position_unit_us(fs)
    window_positions(fs)  # validates windows against the grid before any work
    return instant(first // unit * unit), instant((-(-last_av // unit) + 1) * unit)


def covers(start: datetime, end: datetime, bounds: tuple[datetime, datetime] | None) -> bool:
    """Whether ``[start, end)`` covers ``bounds``, all data of a source version (``data_range``).

    An empty source (``bounds`` None) covers nothing: a table computed from it may still hold
    rows an earlier version gave.
    """
    return bounds is not None and _utc(start) <= bounds[0] and _utc(end) >= bounds[1]


def split_range(
    start: datetime, end: datetime, chunk: timedelta | None
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive pieces of ``chunk`` (the last may be shorter)."""
    if chunk is None:
        return [(start, end)]
    if chunk <= timedelta(0):
        raise ComputeError(
            f"--chunk must be a positive duration, found {chunk}; use e.g. 30d.",
            argument="chunk",
            found=str(chunk),
        )
    out, lo = [], start
    while lo < end:
        hi = min(lo + chunk, end)
        out.append((lo, hi))
        lo = hi
    return out


def _remove(path: str) -> None:
    if "://" in path and not path.startswith("file://"):
        from mesh.storage.commit import filesystem_for

        filesystem, inner = filesystem_for(path)
        with contextlib.suppress(FileNotFoundError, OSError):
            filesystem.delete_dir(inner)
        return
    shutil.rmtree(path.removeprefix("file://"), ignore_errors=True)


def _utc(value: datetime) -> datetime:
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else "-"
