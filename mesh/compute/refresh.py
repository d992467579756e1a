"""Refresh runs: recompute only what changed in the sources since the last run.

For each feature set, the last mesh commit of its feature table (``compute`` or ``refresh``)
records the Delta version of the source it read. A refresh reads the source's log after that
version, takes the rows of the added (and removed) files and recomputes the affected range:

* aggregations: from the first availability time of a changed row (nothing before it can
  change: values never use rows before they are available) to its event time plus the longest
  window (a row leaves every window by then);
* row-level features: the changed rows' event times.

The range is clipped to what the feature table covered or the data now reaches (a refresh does
not compute decaying values into the future). When the data now reaches past the last run's
``range_end``, the range runs from (at the latest) that end to where the data reaches: a run
writes values only up to just after its last data, so the grid points of a quiet period before
the new rows, and of older rows still in their windows, were never written, and a full
recompute has them. One commit per feature set, as for compute. Then global feature sets that
read a refreshed set are rebuilt, in ``MeshDefinition.build_order()``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from mesh.compute.changes import changed_rows, log_changes
from mesh.compute.job import (
    Progress,
    RunResult,
    _from_us,
    compute_feature_set,
    data_range,
    feature_set,
    feature_table_path,
    new_run_id,
)
from mesh.compute.sources import AV_US, E_US, on_time_line, read_source
from mesh.compute.windowed import position_unit_us, window_positions
from mesh.errors import ComputeError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.definitions import FeatureSet, MeshDefinition
    from mesh.storage import CommitRecord

RUN_OPERATIONS = ("compute", "refresh")


def last_run(path: str, spark: SparkSession, backend: str) -> CommitRecord | None:
    """The newest run commit of a feature table (None when there is none).

    Runs are ``compute``/``refresh`` commits, and ``publish`` commits that wrote computed rows
    and recorded the source versions they were computed from (``publish_feature_set`` with
    a ``commit``); a publish without source versions is skipped.
    """
    from mesh.storage import open_table

    table = open_table(spark, path, backend=backend)
    if not table.exists():
        return None
    for record in table.history():  # newest first
        info = record.info
        if info is None:
            continue
        published_run = info.operation == "publish" and bool(info.source_versions)
        if info.operation in RUN_OPERATIONS or published_run:
            return record
    return None


def refresh_feature_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str | FeatureSet,
    *,
    chunk: timedelta | None = None,
    run_id: str | None = None,
    progress: Progress | None = print,
) -> RunResult:
    """Recompute the range of ``name`` affected by source changes since its last run.

    A feature table without a previous run is computed in full (``operation == "compute"``,
    said in ``note``). Nothing is committed when the source did not change or its changes
    reach no value. ``ComputeError`` when the definition's data hash differs from the last
    run's (values would mix two definitions: bump the version or recompute the full range)
    or when the source is Parquet (no versions to compare).
    A hash an earlier engine recorded (``legacy_data_hash``) is accepted for an unchanged
    definition, and ``note`` says that the binding was taken as unchanged.
    """
    fs = feature_set(mesh, name)
    run_id = run_id or new_run_id()
    path = feature_table_path(mesh, fs)
    previous = last_run(path, spark, mesh.standards.storage.backend)
    if previous is None or previous.info is None:
        result = compute_feature_set(spark, mesh, fs, chunk=chunk, run_id=run_id, progress=progress)
        return _noted(result, "no previous run: computed the full range")
    info = previous.info
    match = mesh.match_data_hash(fs, info.definition_hash)
    if match is None:
        current = mesh.data_hash(fs)
        raise ComputeError(
            f"Feature set `{fs.qualified_name}`: its definition changed since the last run "
            f"(data hash {info.definition_hash} at table version {previous.version}, now "
            f"{current}); bump the major version for a new table, or run `mesh compute "
            f"{fs.qualified_name}` over the full range.",
            feature_set=fs.qualified_name,
            recorded_hash=info.definition_hash,
            current_hash=current,
        )
    result = _refresh_since(spark, mesh, fs, previous, run_id, path, chunk, progress)
    if match == "legacy":
        # The last run's engine hashed the set's own fields only: its data product's
        # location, timestamp columns and entity keys then were not recorded, so they are
        # taken as unchanged. Say so; the next commit records the full hash.
        note = (
            "the last run recorded a data hash without the data product's location, "
            "timestamp columns and entity keys (earlier engine); they are taken as unchanged"
        )
        return _noted(result, f"{result.note}; {note}" if result.note else note)
    return result


def _refresh_since(
    spark: SparkSession,
    mesh: MeshDefinition,
    fs: FeatureSet,
    previous: CommitRecord,
    run_id: str,
    path: str,
    chunk: timedelta | None,
    progress: Progress | None,
) -> RunResult:
    """The refresh of ``fs`` after its last run ``previous`` (whose data hash matched)."""
    from pyspark.sql import functions as F

    from mesh.storage import open_table

    info = previous.info
    assert info is not None  # last_run returns mesh commits only
    backend = mesh.standards.storage.backend
    src = read_source(spark, mesh, fs)
    recorded = info.source_versions.get(src.product.qualified_name)
    if src.version is None or recorded is None:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}`: source {src.product.qualified_name} has no "
            "recorded Delta version (Parquet source, or a run that did not record it), so "
            f"changes cannot be found; run `mesh compute {fs.qualified_name}` with a range.",
            feature_set=fs.qualified_name,
            source=src.product.qualified_name,
        )
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
        bounds = timed.agg(F.min(AV_US if fs.is_aggregation else E_US), F.max(E_US)).first()
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
    else:
        start_us, end_us = first_us, last_event_us + 1
    covered = data_range(spark, mesh, fs, src)
    reach = _aware(covered[1]) if covered else None
    last_end = _aware(info.range_end) if info.range_end else None
    limit = max(x for x in (reach, last_end) if x is not None)
    start, end = _from_us(start_us), min(_from_us(end_us), limit)
    if reach is not None and last_end is not None and reach > last_end:
        # A run stops just after its last data, so nothing after ``last_end`` was written, but
        # the data now reaches further: values between (quiet days, old rows still in their
        # windows) exist in a full recompute and must be computed too.
        start, end = min(start, last_end), reach
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
        extra={
            "refreshed_from_source_version": int(recorded),
            "changed_files": len(changes.added) + len(changes.removed),
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
