"""Refresh runs: recompute only what changed in the sources since the baseline run.

A refresh starts from a **baseline**: the newest run after which the whole feature table was
what a full compute from the source version it recorded writes. That is a run marked
``synced`` (a compute whose range covers all data of the source version it read, or a
refresh), or, for runs without the mark (publish commits, tables written before it existed),
a compute or publish whose range covers all data of the source version it recorded: only
those are read again to know. A run over part of the history (``--start/--end``) is never
the baseline: the rest of the table may be older than the source version it read.
The refresh reads the source's log after the baseline's version (or after an older version a
later run read, if any), takes the rows of the added (and removed) files and recomputes the
affected range:

* aggregations: from the first availability time of a changed row (nothing before it can
  change: values never use rows before they are available) to its event time plus the longest
  window (a row leaves every window by then), and, for event accuracy, at least through its
  availability time (a row that arrived after leaving every window still stamps a value);
* row-level features: the changed rows' event times.

The range is clipped to what the feature table covered or the data now reaches (a refresh does
not compute decaying values into the future). When the data now reaches past the baseline's
``range_end``, the range runs from (at the latest) that end to where the data reaches: a run
writes values only up to just after its last data, so the grid points of a quiet period before
the new rows, and of older rows still in their windows, were never written, and a full
recompute has them. Rows that later runs wrote from newer source versions are recomputed where
the changes reach them, so the result equals a full recompute. One commit per feature set, as
for compute, marked ``synced``: the next refresh starts from it. Without a baseline the whole
range is computed; so it is when the definition changed together with its semantic version (a
minor version that adds a feature: every row gets the new column). Then global feature sets
that read a refreshed set are rebuilt, in ``MeshDefinition.build_order()``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from mesh.compute.changes import changed_rows, log_changes
from mesh.compute.job import (
    SYNCED,
    Progress,
    RunResult,
    compute_feature_set,
    covers,
    data_range,
    feature_set,
    feature_table_path,
    new_run_id,
)
from mesh.compute.sources import AV_US, E_US, on_time_line, read_source
from mesh.compute.windowed import (
    CREATED_TS,
    FEATURE_TS,
    instant,
    position_unit_us,
    window_positions,
)
from mesh.errors import ComputeError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.compute.sources import SourceRead
    from mesh.definitions import FeatureSet, MeshDefinition
    from mesh.storage import CommitInfo, CommitRecord

RUN_OPERATIONS = ("compute", "refresh")


def refresh_baseline(
    spark: SparkSession, mesh: MeshDefinition, fs: FeatureSet, src: SourceRead, path: str
) -> tuple[CommitRecord | None, list[CommitRecord]]:
    """The baseline run of the feature table at ``path`` and the runs committed after it.

    Runs are ``compute``/``refresh`` commits, and ``publish`` commits that wrote computed rows
    and recorded the source versions they were computed from (``publish_feature_set`` with
    a ``commit``); a publish without source versions is skipped. The later runs are newest
    first; the baseline is ``None`` when no run qualifies (see the module doc).
    """
    from mesh.storage import open_table

    table = open_table(spark, path, backend=mesh.standards.storage.backend)
    later: list[CommitRecord] = []
    if not table.exists():
        return None, later
    for record in table.history():  # newest first
        info = record.info
        if info is None:
            continue
        published_run = info.operation == "publish" and bool(info.source_versions)
        if info.operation not in RUN_OPERATIONS and not published_run:
            continue
        if _is_baseline(spark, mesh, fs, src, info):
            return record, later
        later.append(record)
    return None, later


def _is_baseline(
    spark: SparkSession, mesh: MeshDefinition, fs: FeatureSet, src: SourceRead, info: CommitInfo
) -> bool:
    if SYNCED in info.extra:
        return info.extra[SYNCED] is True
    if info.operation == "refresh":
        return False  # written before the mark: it may have started from a partial run
    version = info.source_versions.get(src.product.qualified_name)
    if version is None or info.range_start is None or info.range_end is None:
        return False
    # An unmarked run is a baseline when its range covers all data of the version it read.
    bounds = data_range(spark, mesh, fs, read_source(spark, mesh, fs, version=int(version)))
    return covers(info.range_start, info.range_end, bounds)


def refresh_feature_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str | FeatureSet,
    *,
    chunk: timedelta | None = None,
    run_id: str | None = None,
    progress: Progress | None = print,
) -> RunResult:
    """Recompute the range of ``name`` affected by source changes since its baseline run.

    The changes are those since the baseline (see the module doc). A feature table without a
    baseline is computed in full (``operation == "compute"``, said in ``note``), and so is one
    whose runs since the baseline used another definition of another semantic version (a
    minor version that adds features). Nothing is committed when the source did not change or
    its changes reach no value. ``ComputeError`` when a run since the baseline used another
    definition under the same semantic version (values would mix two definitions: bump the
    version or recompute the full range) or when the source is Parquet (no versions to
    compare). A hash an earlier engine recorded (``legacy_data_hash``) is accepted for an
    unchanged definition, and ``note`` says that the binding was taken as unchanged.
    """
    fs = feature_set(mesh, name)
    notes: list[str] = []
    result = _refresh(spark, mesh, fs, run_id or new_run_id(), chunk, progress, notes)
    for note in notes:
        result = _noted(result, f"{result.note}; {note}" if result.note else note)
    return result


def _dropped_features(
    spark: SparkSession, mesh: MeshDefinition, fs: FeatureSet, path: str
) -> list[str]:
    """Feature columns of the table at ``path`` that ``fs`` no longer computes (only a new
    major version, a new table, drops them: ``mesh.compute.widening``)."""
    from mesh.storage import open_table

    table = open_table(spark, path, backend=mesh.standards.storage.backend)
    kept = {*fs.output_names(), *mesh.standards.entities[fs.entity].keys, FEATURE_TS, CREATED_TS}
    return [name for name in table.schema().names if name not in kept]


def _refresh(
    spark: SparkSession,
    mesh: MeshDefinition,
    fs: FeatureSet,
    run_id: str,
    chunk: timedelta | None,
    progress: Progress | None,
    notes: list[str],
) -> RunResult:
    from pyspark.sql import functions as F

    from mesh.storage import open_table

    path = feature_table_path(mesh, fs)
    backend = mesh.standards.storage.backend
    src = read_source(spark, mesh, fs)
    previous, later = refresh_baseline(spark, mesh, fs, src, path)

    def full(note: str) -> RunResult:
        result = compute_feature_set(
            spark, mesh, fs, chunk=chunk, run_id=run_id, progress=progress, source=src
        )
        return _noted(result, note)

    if previous is None or previous.info is None:
        if later:
            return full("no run since covered all source data: computed the full range")
        return full("no previous run: computed the full range")
    info = previous.info
    runs = [r.info for r in (previous, *later) if r.info is not None]
    matches = [mesh.match_data_hash(fs, r.definition_hash) for r in runs]
    stale = [r for r, match in zip(runs, matches, strict=True) if match is None]
    same_version = [r for r in stale if r.extra.get("semantic_version") == fs.version]
    if same_version:
        old, current = same_version[0], mesh.data_hash(fs)
        major = int(fs.version.split(".")[0])
        new_major = f"set version to {major + 1}.0.0 (a new table, v{major + 1}) and compute it"
        renamed = old.definition_hash == fs.legacy_data_hash() and (
            fs.legacy_output_names() != fs.output_names()
        )
        if renamed:
            raise ComputeError(
                f"Feature set `{fs.qualified_name}`: its definition is unchanged, but the "
                f"engine that wrote run {old.run_id} named its 365-day windows `_1y` and this "
                f"one names them `_365d`, so its table holds other columns; {new_major}.",
                feature_set=fs.qualified_name,
                recorded_hash=old.definition_hash,
                current_hash=current,
                expected_version=f"{major + 1}.0.0",
            )
        dropped = _dropped_features(spark, mesh, fs, path)
        fix = (
            f"it no longer computes {', '.join(dropped)}, which the table holds, so {new_major}"
            if dropped
            else "bump the version (minor when it only adds features, major otherwise), or, "
            f"when no feature changed its type, run `mesh compute {fs.qualified_name}` "
            "(no --start/--end: the whole table)"
        )
        raise ComputeError(
            f"Feature set `{fs.qualified_name}`: its definition changed since a run of the same "
            f"version {fs.version} (data hash {old.definition_hash} in run {old.run_id}, now "
            f"{current}); {fix}.",
            feature_set=fs.qualified_name,
            recorded_hash=old.definition_hash,
            current_hash=current,
            removed=dropped,
        )
    if "legacy" in matches:
        # An earlier engine hashed the set's own fields only: its data product's location,
        # timestamp columns and entity keys were not recorded, so they are taken as unchanged.
        notes.append(
            "the last run recorded a data hash without the data product's location, "
            "timestamp columns and entity keys (earlier engine); they are taken as unchanged"
        )
    if stale:
        # Another version of the definition wrote the table: every row needs this one's values
        # (a minor version's new columns are null in all of them).
        before = ", ".join(sorted({str(r.extra.get("semantic_version")) for r in stale}))
        return full(f"definition changed from {before} to {fs.version}: computed the full range")
    versions_read = [r.source_versions.get(src.product.qualified_name) for r in runs]
    recorded = versions_read[0]
    if src.version is None or recorded is None:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}`: source {src.product.qualified_name} has no "
            "recorded Delta version (Parquet source, or a run that did not record it), so "
            f"changes cannot be found; run `mesh compute {fs.qualified_name}` with a range.",
            feature_set=fs.qualified_name,
            source=src.product.qualified_name,
        )
    # A run committed after the baseline may have read an older version (it started first):
    # its rows are as old as that version.
    recorded = min(int(v) for v in versions_read if v is not None)
    versions = {src.product.qualified_name: src.version}
    if src.version == recorded:
        return RunResult(
            fs.qualified_name,
            "refresh",
            run_id,
            path,
            None,
            None,
            0,
            None,
            versions,
            f"source unchanged since version {recorded}",
        )
    source_table = open_table(spark, src.path, backend=backend)
    changes = log_changes(source_table.path, int(recorded), src.version)
    rows = changed_rows(source_table, changes)
    bounds = None
    if rows is not None:
        keys = mesh.entity(fs.entity).key_columns
        timed = on_time_line(rows, fs, src.product, keys)
        first = F.min(AV_US if fs.is_aggregation else E_US)
        bounds = timed.agg(first, F.max(E_US), F.max(AV_US)).first()
    if bounds is None or bounds[0] is None:
        return RunResult(
            fs.qualified_name,
            "refresh",
            run_id,
            path,
            None,
            None,
            0,
            None,
            versions,
            f"no rows changed between versions {recorded} and {src.version}",
        )
    first_us, last_event_us = int(bounds[0]), int(bounds[1])
    if fs.is_aggregation:
        unit = position_unit_us(fs)
        reach_us = max(window_positions(fs).values()) * unit
        start_us = -(-first_us // unit) * unit  # first grid point a changed row can reach
        end_us = last_event_us + reach_us
        if fs.accuracy == "event":  # a row that arrived after leaving every window stamps one
            end_us = max(end_us, int(bounds[2]) + 1)
    else:
        start_us, end_us = first_us, last_event_us + 1
    covered = data_range(spark, mesh, fs, src)
    reach = _aware(covered[1]) if covered else None
    last_end = _aware(info.range_end) if info.range_end else None
    limit = max(x for x in (reach, last_end) if x is not None)
    start, end = instant(start_us), min(instant(end_us), limit)
    if reach is not None and last_end is not None and reach > last_end:
        # A run stops just after its last data, so nothing after ``last_end`` was written, but
        # the data now reaches further: values between (quiet days, old rows still in their
        # windows) exist in a full recompute and must be computed too.
        start, end = min(start, last_end), reach
    # Rows the changed rows reached beyond the data now (a deleted row after the last one
    # left) are in no full recompute: that range is replaced too, with nothing.
    replace = (instant(start_us), instant(end_us)) if instant(end_us) > end else None
    if start >= end and replace is not None and reach is not None:
        # Nothing left to compute, only rows to remove: recompute the last instant the data
        # reaches (its values are a full recompute's) to carry the removal.
        start, end = reach - timedelta(microseconds=1), reach
    if start >= end:
        return RunResult(
            fs.qualified_name,
            "refresh",
            run_id,
            path,
            None,
            None,
            0,
            None,
            versions,
            "the changed rows reach no value in the covered range",
        )
    result = compute_feature_set(
        spark,
        mesh,
        fs,
        start=start,
        end=end,
        chunk=chunk,
        run_id=run_id,
        progress=progress,
        operation="refresh",
        source=src,
        replace=replace,
        extra={
            "refreshed_from_source_version": int(recorded),
            "changed_files": len(changes.added) + len(changes.removed),
            SYNCED: True,
        },
    )
    return result


def downstream_globals(mesh: MeshDefinition, refreshed: set[str]) -> list[str]:
    """Global feature sets reading (directly or through another global set) a refreshed set."""
    dirty = set(refreshed)
    out = []
    for name in mesh.build_order():
        if name in mesh.global_sets and any(u in dirty for u in mesh.upstream(name)):
            dirty.add(name)
            out.append(name)
    return out


def _noted(result: RunResult, note: str) -> RunResult:
    from dataclasses import replace

    return replace(result, note=note)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
