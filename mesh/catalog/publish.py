"""Publish a computed feature set: governance checks, feature-table commit, catalog record.

Order of a publish, and why:

1. the publisher must act for the owning domain;
2. governance runs on the definition (static), on the contract against the last published
   version (the declared version must carry the bump the changes require) and on the
   computed frame (data checks, with drift against the previous version's statistics);
   any blocking failure raises ``GovernanceError`` **before anything is written**, so a
   refused publish leaves the catalog and the feature table exactly as they were. A
   version below the one the definition's changes alone need is refused before the frame
   is computed (``refuse_version_before_compute``; ``publish_range`` asks it before it
   computes anything): no data check runs, and the report says so;
3. the frame replaces ``[start, end)`` of the feature table
   ``<warehouse>/features/<domain>/<name>/v<major>`` in one Delta commit (``feature_ts``; a
   global set's whole history replaces the whole table, and records the range its rows cover);
   commits of other runs that landed between the check of unpublished rows and this commit
   are checked the same way, and the commit is undone as in step 5 if they changed rows
   outside the range;
4. the catalog rows are appended: feature set, statistics, check results, lineage, the
   publish's own HTML report (``reports/<set>/<version>/<publish_id>.html``), and last the
   ``versions`` row, the publish's commit point (rows of the other tables are only visible
   through it; the report is deleted if that row does not land). Then the report is copied
   to the version's stable page ``reports/<set>/<version>.html``, so a later publish of the
   same version replaces that page but never an earlier publish's report;
5. if step 4 fails, the feature-table commit is undone by a compensating commit that puts
   back the range's previous rows (carrying the previous commit's metadata, so readers that
   pick "the newest commit of semantic version X" land on restored content); a table this
   publish created is removed. The error is raised again.

A publish refused in step 2 keeps only its report, under
``reports/<set>/<version>/refused/<publish_id>.html`` (named in the error): it records no
version and replaces no page of a landed publish.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mesh.catalog import reports
from mesh.catalog.access import Identity, authorize_publish, current_identity
from mesh.catalog.lineage import input_versions, lineage_rows
from mesh.catalog.paths import stored_path
from mesh.catalog.rollback import undo_commit
from mesh.catalog.search import VersionRecord, latest_version, recorded_versions, statistics_of
from mesh.catalog.tables import Catalog, utc_now
from mesh.catalog.unchecked import refuse_unchecked_rows
from mesh.compute.widening import added_columns
from mesh.definitions import AggregationFeature
from mesh.definitions.base import parse_semver
from mesh.definitions.binding import published_definition
from mesh.definitions.columns import FEATURE_TS
from mesh.errors import CatalogError
from mesh.storage import CommitInfo, DeltaFeatureTable, normalize_path, open_table
from mesh.times import as_utc, optional_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from mesh.definitions import AnyFeatureSet, MeshDefinition
    from mesh.governance.results import GovernanceReport


@dataclass(frozen=True)
class PublishResult:
    """What a publish recorded: semantic version, bump and why, the Delta version written."""

    name: str
    semantic_version: str
    bump: str
    reasons: list[str]
    delta_version: int
    table_path: str
    publish_id: str
    row_count: int
    report: GovernanceReport
    report_path: str
    warnings: list[str] = field(default_factory=list)


def feature_table_path(mesh: MeshDefinition, fs: AnyFeatureSet, version: str | None = None) -> str:
    """``<warehouse>/features/<domain>/<name>/v<major>`` for ``version`` (default: fs.version)."""
    major = parse_semver(version or fs.version)[0]
    return f"{mesh.warehouse.rstrip('/')}/features/{fs.domain}/{fs.name}/v{major}"


def publish_feature_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    df: DataFrame,
    *,
    start: datetime | date | str,
    end: datetime | date | str,
    commit: CommitInfo | None = None,
    identity: Identity | str | None = None,
    as_of: datetime | date | str | None = None,
    inputs: Sequence[tuple[str, str]] = (),
    whole: bool = False,
) -> PublishResult:
    """Check, write and record one computed range ``[start, end)`` of ``fs`` (see module doc).

    ``df`` holds the entity keys, ``feature_ts``, ``created_ts`` and the feature columns;
    every row must have ``start <= feature_ts < end``. ``commit`` carries the job's run id
    and source versions (its definition hash, range and extra are filled in here).
    ``as_of`` is the "now" of the freshness check (default: the wall clock). ``inputs``
    are the (feature set, semantic version) pairs a global set's rows were computed from:
    its lineage edges record them, and lineage follows its inputs at those versions (at
    their newest without them). Where the table keeps rows outside ``[start, end)``, the
    inputs of the publish that wrote them are recorded too. An input read at another major
    than the previous publish read it (without ``inputs``: the major the definitions
    resolve it to) is a breaking change: the contract needs a new major. ``whole``: ``df`` is
    the set's whole history, which replaces the whole table (the range replaced is widened
    over every row the table holds and its last publish held); the commit and the catalog
    record ``[start, end)``, the range the rows cover.

    Raises ``AccessDeniedError`` when ``identity`` does not act for ``fs.domain``,
    ``GovernanceError`` (``error.report`` names every failing check, feature, measured value
    and threshold) when governance refuses (a version the definition's changes alone refuse
    before any Spark job reads ``df``), ``StorageError`` when the feature-table commit
    fails; in all three cases nothing was written but a refusal's own HTML report
    (``error.params["report_path"]``).
    """
    start = as_utc(start, "start", CatalogError)
    end = as_utc(end, "end", CatalogError)
    as_of = optional_utc(as_of, "as_of", CatalogError)
    who = current_identity(mesh.standards, identity)
    authorize_publish(who, fs)
    catalog = Catalog(spark, mesh.warehouse)
    published = recorded_versions(spark, mesh, fs.qualified_name)  # newest first
    previous = published[0] if published else None
    written = _written_types(catalog, previous.publish_id) if previous else None
    publish_id = uuid.uuid4().hex
    previous_inputs = _previous_inputs(catalog, fs, previous)
    _refuse_before_data(catalog, mesh, fs, previous, written, publish_id, previous_inputs)
    frame = df.persist()
    try:
        report, decision, stats = _govern(
            spark,
            mesh,
            fs,
            frame,
            previous,
            written=written,
            as_of=as_of,
            inputs=(previous_inputs, list(inputs) or None),
        )
        reports.refuse_if_failed(catalog, fs, publish_id, stats, report)
        row_count = frame.count()
        path = normalize_path(feature_table_path(mesh, fs))
        table = open_table(spark, path, backend=mesh.standards.storage.backend)
        existed = table.exists()
        before = table.latest_version() if existed else None
        kept_from: VersionRecord | None = None  # the publish whose rows outside the range stay
        # The range replaced: [start, end), or (whole) every row the table holds. The range
        # recorded stays [start, end), the one the rows cover.
        low, high = start, end
        if before is not None:
            same_table = [v for v in published if normalize_path(v.table_path) == path]
            checked = same_table[0].delta_version if same_table else None
            if whole:
                spanned = [before] if checked is None else [checked, before]
                low, high = _widened(table, spanned, start, end)
            refuse_unchecked_rows(table, fs.qualified_name, checked, before, low, high)
            if fs.kind == "global_feature_set" and same_table:
                kept_from = same_table[0] if _rows_outside(table, before, low, high) else None
        base = commit or CommitInfo(run_id=publish_id, operation="publish")
        info = dataclasses.replace(
            base,
            operation="publish",
            definition_hash=mesh.data_hash(fs),
            range_start=start,
            range_end=end,
            extra={
                **dict(base.extra),
                "feature_set": fs.qualified_name,
                "semantic_version": fs.version,
                "metadata_hash": fs.metadata_hash(),
                "publish_id": publish_id,
                "row_count": row_count,
                "publisher": str(who),
            },
        )
        # A minor version that adds features writes into its major's table: the new columns
        # join the table's schema in this commit (governance has refused removals and type
        # changes without a new major; ``added_columns`` refuses them again, by schema).
        widened = existed and bool(added_columns(fs, table.path, table.schema(), frame.schema))
        delta_version = table.replace_range(
            frame, info, time_column=FEATURE_TS, start=low, end=high, merge_schema=widened
        )
        if delta_version > (-1 if before is None else before) + 1:
            # Other commits landed between the check above and this one (a compute of another
            # range rebases cleanly): consumers would read their rows unchecked, too.
            try:
                refuse_unchecked_rows(
                    table, fs.qualified_name, before, delta_version - 1, low, high
                )
            except CatalogError as exc:
                undo_commit(table, existed, before, delta_version, low, high, exc, widened=widened)
                raise
    finally:
        frame.unpersist()
    record = _VersionRow(
        publish_id=publish_id,
        fs=fs,
        delta_version=delta_version,
        table_path=path,
        bump=decision.bump,
        reasons=_reasons(decision),
        start=start,
        end=end,
        row_count=row_count,
        publisher=str(who),
        run_id=info.run_id,
        # A global set's rows kept outside the range were computed from what the publish
        # that wrote them read: lineage names those input versions too.
        inputs=tuple(
            sorted({*inputs, *(input_versions(catalog, kept_from.publish_id) if kept_from else ())})
        ),
    )
    try:
        report_path = _record(spark, mesh, catalog, record, _types(frame), stats, report)
    except BaseException as exc:
        undo_commit(table, existed, before, delta_version, low, high, exc, widened=widened)
        raise
    page = reports.copy_to_version_page(catalog, fs, publish_id, report_path)
    return PublishResult(
        name=fs.qualified_name,
        semantic_version=fs.version,
        bump=decision.bump,
        reasons=record.reasons,
        delta_version=delta_version,
        table_path=path,
        publish_id=publish_id,
        row_count=row_count,
        report=report,
        report_path=report_path,
        warnings=[r.message for r in report.warnings] + ([page] if page else []),
    )


def _widened(
    table: DeltaFeatureTable, versions: Sequence[int], start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    """``[start, end)`` widened over the ``feature_ts`` of every row ``table`` holds at
    ``versions``: replacing it leaves none of those rows (but rows without a time)."""
    from functools import reduce

    from pyspark.sql import functions as F

    times = [table.read(version=v).select(FEATURE_TS) for v in versions]
    rows = reduce(lambda a, b: a.unionByName(b), times)  # one job over every version
    low, high = rows.agg(F.min(FEATURE_TS), F.max(FEATURE_TS)).collect()[0]
    if low is not None:
        start = min(start, as_utc(low, FEATURE_TS))
        end = max(end, as_utc(high, FEATURE_TS) + timedelta(microseconds=1))
    return start, end


def first_publish(spark: SparkSession, mesh: MeshDefinition, fs: AnyFeatureSet) -> tuple[str, str]:
    """How to publish ``fs``, which ``conf/`` defines and no publish recorded: the step, and
    the ``mesh publish`` command in it (one that runs: a domain set's takes a range, the
    range its feature table's commits computed when they record one)."""
    from mesh.sets.commits import computed_range, range_publish_command

    name = fs.qualified_name
    if fs.kind == "global_feature_set":
        command = range_publish_command(name, None, domain=False)
        return f"publish its whole history, computed from its inputs, with `{command}`", command
    table = open_table(spark, feature_table_path(mesh, fs))
    covered = computed_range(table) if table.exists() else None
    command = range_publish_command(name, covered)
    if covered is not None:
        return f"publish the range its computations covered with `{command}`", command
    return (
        f"publish it over a range with `{command}` (UTC dates or ISO times; the publish "
        "computes that range, then checks it)",
        command,
    )


def _full_publish_command(spark: SparkSession, fs: AnyFeatureSet, previous: VersionRecord) -> str:
    """The ``mesh publish`` that publishes ``fs`` with its data, in place of a metadata-only
    one: a global set's whole history; a domain set's range its published feature table's
    commits computed (``NotPublishedError``'s command, from the same table)."""
    from mesh.sets.commits import publish_command

    table = open_table(spark, previous.table_path)
    return publish_command(table, fs.qualified_name, domain=fs.kind == "feature_set")


def _rows_outside(table: DeltaFeatureTable, version: int, start: datetime, end: datetime) -> bool:
    """Whether ``version`` of ``table`` holds rows a replacement of ``[start, end)`` keeps."""
    from pyspark.sql import functions as F

    ts = F.col(FEATURE_TS)
    outside = ts.isNull() | (ts < F.lit(start)) | (ts >= F.lit(end))
    return bool(table.read(version=version).where(outside).limit(1).count())


def publish_definition(
    spark: SparkSession,
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    *,
    identity: Identity | str | None = None,
) -> PublishResult:
    """Re-publish a metadata-only change (owner, description, tags, PII classes): a patch.

    The new version points at the same feature-table Delta version as the last published
    one; statistics are carried over. Refused with ``GovernanceError`` when static or
    contract checks fail (its report kept as for ``publish_feature_set``), and with
    ``CatalogError`` when nothing was published before, or the data definition or the
    quality thresholds changed (that needs a full publish with computed data: thresholds
    are checked against the data). As in a full publish, an aggregation's
    ``type:`` spelled out (or dropped) where the table was written with that type anyway is
    no change.
    """
    who = current_identity(mesh.standards, identity)
    authorize_publish(who, fs)
    previous = latest_version(spark, mesh, fs.qualified_name)
    if previous is None:
        step, command = first_publish(spark, mesh, fs)
        raise CatalogError(
            f"{fs.qualified_name} was never published; a metadata-only publish needs a previous "
            f"version: {step}.",
            feature_set=fs.qualified_name,
            command=command,
        )
    from mesh.governance.contract import as_feature_set, compare
    from mesh.governance.results import GovernanceReport
    from mesh.governance.static import validate_definitions
    from mesh.governance.statistics import protected_columns, redact

    catalog = Catalog(spark, mesh.warehouse)
    # No frame: the types the feature table was written with are the previous entry's.
    written = _written_types(catalog, previous.publish_id)
    decision = compare(
        json.loads(previous.definition_json),
        fs,
        binding=mesh.binding(fs),
        written=(written, dict(written)),
    )
    # A hash recorded by an earlier engine (without the binding) still matches an unchanged
    # definition; the contract decision then warns that the binding was not recorded. A hash
    # that differs only by a `type:` naming the type the table holds anyway is no change
    # either (the contract decision sees it), as for a full publish.
    match = mesh.match_data_hash(fs, previous.data_hash)
    if match is None and decision.data_hash_changed:
        current = mesh.data_hash(fs)
        command = _full_publish_command(spark, fs, previous)
        raise CatalogError(
            f"{fs.qualified_name}: the data definition changed since {previous.semantic_version} "
            f"(data hash {previous.data_hash} -> {current}); a metadata-only publish "
            f"cannot carry it. Run a full publish over the data: `{command}`.",
            feature_set=fs.qualified_name,
            previous=previous.data_hash,
            current=current,
            command=command,
        )
    if as_feature_set(json.loads(previous.definition_json)).quality != fs.quality:
        # Thresholds are promises about the data (and exported as its contract): they land
        # only through the data checks that measure them.
        command = _full_publish_command(spark, fs, previous)
        raise CatalogError(
            f"{fs.qualified_name}: the quality thresholds changed since "
            f"{previous.semantic_version}; they are checked against the data, so a "
            f"metadata-only publish cannot carry them. Run a full publish over the data: "
            f"`{command}`.",
            feature_set=fs.qualified_name,
            previous=previous.semantic_version,
            command=command,
        )
    report = validate_definitions(mesh, subjects=[fs.qualified_name]) + GovernanceReport(
        [decision.check_version(previous.semantic_version, fs.version), *decision.warnings()]
    )
    # Stored before a feature was classified pii/sensitive, its values must not be carried on.
    stats = redact(statistics_of(spark, mesh, previous), protected_columns(fs))
    publish_id = uuid.uuid4().hex
    reports.refuse_if_failed(catalog, fs, publish_id, stats, report)
    record = _VersionRow(
        publish_id=publish_id,
        fs=fs,
        delta_version=previous.delta_version,
        table_path=previous.table_path,
        bump=decision.bump,
        reasons=_reasons(decision),
        start=previous.range_start,
        end=previous.range_end,
        row_count=previous.row_count,
        publisher=str(who),
        run_id=uuid.uuid4().hex,
        unbound=match == "legacy" or (match is None and decision.binding_unverified),
        inputs=tuple(input_versions(catalog, previous.publish_id)),  # the same rows
    )
    report_path = _record(spark, mesh, catalog, record, written, stats, report)
    page = reports.copy_to_version_page(catalog, fs, publish_id, report_path)
    return PublishResult(
        name=fs.qualified_name,
        semantic_version=fs.version,
        bump=decision.bump,
        reasons=record.reasons,
        delta_version=previous.delta_version,
        table_path=previous.table_path,
        publish_id=record.publish_id,
        row_count=previous.row_count,
        report=report,
        report_path=report_path,
        warnings=[r.message for r in report.warnings] + ([page] if page else []),
    )


def refuse_version_before_compute(
    spark: SparkSession, mesh: MeshDefinition, fs: AnyFeatureSet
) -> None:
    """Refuse a publish of ``fs`` whose definition alone needs a higher ``version:``.

    For a global set, "its definition" includes the major each input resolves to (a pin,
    else the input's ``version:`` in ``mesh``): one other than its previous publish read
    (its lineage edges) needs a new major.

    The ``GovernanceError`` is the one the publish would raise after computing (its
    ``contract.version`` failure, the hint, the refusal's HTML report under ``refused/``)
    and says that the data checks did not run (``refuse_before_data``). Nothing else is
    read or written; returns when the definition alone does not refuse the version.
    """
    previous = latest_version(spark, mesh, fs.qualified_name)
    if previous is None:
        return
    catalog = Catalog(spark, mesh.warehouse)
    written = _written_types(catalog, previous.publish_id)
    inputs = _previous_inputs(catalog, fs, previous)
    _refuse_before_data(catalog, mesh, fs, previous, written, uuid.uuid4().hex, inputs)


def last_publish_inputs(
    spark: SparkSession, mesh: MeshDefinition, fs: AnyFeatureSet
) -> tuple[VersionRecord | None, list[tuple[str, str]]]:
    """The newest published version of ``fs`` (``None``: never published) and the (feature
    set, semantic version) pairs its publish read: a global set's lineage edges, which its
    next publish compares (none for a domain feature set). Reads catalog records only."""
    previous = latest_version(spark, mesh, fs.qualified_name)
    return previous, _previous_inputs(Catalog(spark, mesh.warehouse), fs, previous)


def _previous_inputs(
    catalog: Catalog, fs: AnyFeatureSet, previous: VersionRecord | None
) -> list[tuple[str, str]]:
    """The (feature set, semantic version) pairs the previous publish of a global set read."""
    if previous is None or fs.kind != "global_feature_set":
        return []
    return input_versions(catalog, previous.publish_id)


def _refuse_before_data(
    catalog: Catalog,
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    previous: VersionRecord | None,
    written: dict[str, str] | None,
    publish_id: str,
    previous_inputs: Sequence[tuple[str, str]] = (),
) -> None:
    from mesh.governance.gate import refuse_before_data

    if previous is None:
        return
    report = refuse_before_data(
        mesh,
        fs,
        previous=json.loads(previous.definition_json),
        previous_types=written,
        previous_inputs=previous_inputs,
    )
    if report is not None:
        reports.refuse_if_failed(catalog, fs, publish_id, {}, report)


def _govern(
    spark: SparkSession,
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    frame: DataFrame,
    previous: VersionRecord | None,
    *,
    written: dict[str, str] | None,
    as_of: datetime | None,
    inputs: tuple[Sequence[tuple[str, str]], Sequence[tuple[str, str]] | None],
) -> tuple[GovernanceReport, Any, dict[str, Any]]:
    """``evaluate_publish`` against the previous version as the catalog holds it; ``inputs``:
    those the previous publish read, those ``frame`` was computed from (``None``: unknown)."""
    from mesh.governance.gate import evaluate_publish

    evaluation = evaluate_publish(
        mesh,
        fs,
        frame,
        previous=json.loads(previous.definition_json) if previous else None,
        previous_types=written,
        previous_stats=statistics_of(spark, mesh, previous) if previous else None,
        as_of=as_of,
        previous_inputs=inputs[0],
        inputs=inputs[1],
    )
    return evaluation.report, evaluation.decision, evaluation.stats


def _types(frame: DataFrame) -> dict[str, str]:
    """Output column -> Spark type of the rows being published."""
    from mesh.governance.data_types import column_types

    return column_types(frame)


def _written_types(catalog: Catalog, publish_id: str) -> dict[str, str]:
    """Output column -> Spark type, as the catalog entry of ``publish_id`` recorded them."""
    return {
        f["name"]: f["type"]
        for row in catalog.rows("feature_sets", publish_id=publish_id)
        for f in json.loads(row["features_json"])
        if f.get("type")
    }


def _reasons(decision: Any) -> list[str]:
    return [change.detail for change in decision.changes]


@dataclass(frozen=True)
class _VersionRow:
    publish_id: str
    fs: AnyFeatureSet
    delta_version: int
    table_path: str
    bump: str
    reasons: list[str]
    start: datetime | None
    end: datetime | None
    row_count: int
    publisher: str
    run_id: str
    # A metadata-only publish over a version an earlier engine recorded without its binding:
    # the commit was computed under a binding nobody recorded, so none is recorded now either.
    unbound: bool = False
    inputs: tuple[tuple[str, str], ...] = ()  # (feature set, semantic version) read


def _record(
    spark: SparkSession,
    mesh: MeshDefinition,
    catalog: Catalog,
    row: _VersionRow,
    written: dict[str, str],
    stats: dict[str, Any],
    report: GovernanceReport,
) -> str:
    """Append the catalog rows of one publish; the ``versions`` row goes last (commit point)."""
    from mesh.governance.report import render_html

    fs, now, name, version = row.fs, utc_now(), row.fs.qualified_name, row.fs.version
    commit = CommitInfo(
        run_id=row.run_id,
        operation="catalog_publish",
        extra={"feature_set": name, "semantic_version": version, "publish_id": row.publish_id},
    )
    catalog.append(
        "feature_sets",
        [
            {
                "publish_id": row.publish_id,
                "name": name,
                "domain": fs.domain,
                "set_name": fs.name,
                "kind": fs.kind,
                "entity": fs.entity,
                "owner": fs.metadata.owner,
                "description": fs.metadata.description,
                "tags": list(fs.metadata.tags),
                "visibility": fs.metadata.visibility or mesh.standards.access.default_visibility,
                "allowed_domains": list(fs.metadata.allowed_domains),
                "sources": [
                    f"{e['from_kind']}:{e['from_name']}" for e in lineage_rows(mesh, fs, "", now)
                ],
                "features_json": json.dumps(_features(mesh, fs, written)),
                "semantic_version": version,
                "published_at": now,
            }
        ],
        commit,
    )
    catalog.append(
        "statistics",
        [
            {
                "publish_id": row.publish_id,
                "name": name,
                "semantic_version": version,
                "feature": feature,
                "stats_json": json.dumps(_stats_dict(value), default=str),
                "published_at": now,
            }
            for feature, value in sorted(stats.items())
        ],
        commit,
    )
    catalog.append(
        "checks",
        [
            {
                "publish_id": row.publish_id,
                "name": name,
                "semantic_version": version,
                "check": rec["check"],
                "feature": rec.get("feature"),
                "passed": bool(rec["passed"]),
                "record_json": json.dumps(rec, default=str),
                "published_at": now,
            }
            for rec in report.to_records()
        ],
        commit,
    )
    catalog.append("lineage", lineage_rows(mesh, fs, row.publish_id, now, row.inputs), commit)
    report_path = catalog.report_path(name, version, row.publish_id)
    try:
        reports.write_text(report_path, render_html(name, version, stats, report))
        _append_version(mesh, catalog, row, now, commit)
    except BaseException:
        # No versions row: the report of a publish that did not land must not stay visible.
        reports.delete_file(report_path)
        raise
    return report_path


def _append_version(
    mesh: MeshDefinition, catalog: Catalog, row: _VersionRow, now: datetime, commit: CommitInfo
) -> None:
    fs, name, version = row.fs, row.fs.qualified_name, row.fs.version
    catalog.append(
        "versions",
        [
            {
                "publish_id": row.publish_id,
                "name": name,
                "domain": fs.domain,
                "semantic_version": version,
                "major": parse_semver(version)[0],
                "delta_version": row.delta_version,
                # Its place in the warehouse: a copied or moved warehouse reads its own table.
                "table_path": stored_path(mesh.warehouse, row.table_path),
                "data_hash": fs.legacy_data_hash() if row.unbound else mesh.data_hash(fs),
                "metadata_hash": fs.metadata_hash(),
                "definition_json": (
                    fs.model_dump_json()
                    if row.unbound
                    else json.dumps(published_definition(fs, mesh.binding(fs)))
                ),
                "bump": row.bump,
                "reasons": row.reasons,
                "range_start": row.start,
                "range_end": row.end,
                "row_count": row.row_count,
                "published_at": now,
                "publisher": row.publisher,
                "run_id": row.run_id,
            }
        ],
        commit,
    )


def _stats_dict(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else value


def _features(
    mesh: MeshDefinition, fs: AnyFeatureSet, written: dict[str, str]
) -> list[dict[str, Any]]:
    """Catalog view of every output column: type (as written, else declared), PII, docs."""
    product = mesh.product(fs.source, fs.domain) if fs.kind == "feature_set" else None
    out = []
    for feature in fs.features:
        for output in feature.output_names():
            declared = getattr(feature, "type", None)
            if declared is None and product is not None and isinstance(feature, AggregationFeature):
                declared = feature.output_type(product.columns.get(feature.column or ""))
            out.append(
                {
                    "name": output,
                    "feature": feature.name,
                    "kind": feature.kind,
                    "type": written.get(output, declared),
                    "pii": feature.pii or "none",
                    "description": feature.description,
                    "tags": list(feature.tags),
                }
            )
    return out


__all__ = [
    "PublishResult",
    "feature_table_path",
    "publish_definition",
    "publish_feature_set",
]
