"""Compute-then-publish for one feature set: what ``mesh publish`` and ``jobs/publish.py`` run."""

from __future__ import annotations

import importlib
import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mesh.catalog.access import Identity, authorize_publish, current_identity
from mesh.catalog.publish import (
    PublishResult,
    publish_feature_set,
    refuse_version_before_compute,
)
from mesh.definitions.columns import FEATURE_TS
from mesh.errors import CatalogError
from mesh.storage import CommitInfo
from mesh.times import optional_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from mesh.definitions import MeshDefinition

# The domain compute engine's entry points: the source read at its current version, then the
# feature rows of [start, end) from that version (nothing written: the publish commit is the
# only write).
READ_SOURCE = ("mesh.compute.sources", "read_source")
COMPUTE = ("mesh.compute", "feature_rows")


def publish_range(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str,
    *,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    identity: Identity | str | None = None,
    run_id: str | None = None,
    as_of: datetime | date | str | None = None,
    version_checked: bool = False,
) -> PublishResult:
    """Compute ``name`` over ``[start, end)`` and publish it (see ``publish_feature_set``).

    A domain feature set is computed by ``mesh.compute``; a global feature set from its
    inputs' published tables (the caller must be allowed to read them: checked and
    audited). Without ``start``/``end`` a global set is published over its whole history
    (the publish replaces the whole table: ``publish_feature_set``'s ``whole``); with
    both, its rows in ``[start, end)`` (computed over the whole history, then cut); one
    without the other is refused (``require_range``), as for a domain feature set.
    A global set's inputs are read at their published versions (recorded on its lineage
    edges); an input never published is refused (``NotPublishedError``). ``as_of`` is the
    "now" of the freshness check.
    An identity that does not act for the set's domain is refused (``AccessDeniedError``)
    before anything is read or computed, and so is a ``version:`` below the one the
    definition's changes alone need (``GovernanceError``, ``refuse_version_before_compute``).
    ``version_checked``: the caller has just asked ``refuse_version_before_compute`` itself
    (``mesh publish`` does, before Spark starts), so the catalog is not read for it again
    here; ``publish_feature_set`` still refuses such a version before any Spark job reads
    the rows, against the catalog as it holds the set then.
    """
    start = optional_utc(start, "start", CatalogError)
    end = optional_utc(end, "end", CatalogError)
    check_range(name, start, end)
    as_of = optional_utc(as_of, "as_of", CatalogError)
    fs = mesh.any_set(name)
    who = current_identity(mesh.standards, identity)
    authorize_publish(who, fs)  # before any data is read: another domain's publish computes nothing
    run = run_id or uuid.uuid4().hex
    read: list[tuple[str, str]] = []  # (input feature set, semantic version) of a global set
    require_range(fs, start, end)
    # Nothing in a version the definition alone refuses depends on the data: refused before
    # anything is read, computed or audited.
    if not version_checked:
        refuse_version_before_compute(spark, mesh, fs)
    if fs.kind == "global_feature_set":
        from mesh.sets.global_features import refuse_not_row_level

        refuse_not_row_level(mesh, fs)  # an expression no input read could make right
        df, sources, read = _global_frame(spark, mesh, fs, who)
    else:
        assert start is not None and end is not None  # require_range
        df, sources = _compute(spark, mesh, fs, start, end)
    from pyspark.sql import functions as F

    from mesh.compute.failures import computing
    from mesh.sets.global_features import evaluating

    if fs.kind == "global_feature_set" and start is not None and end is not None:
        # Computed over the whole history; only the asked range is checked and replaced.
        ts = F.col(FEATURE_TS)
        df = df.where((ts >= F.lit(start)) & (ts < F.lit(end)))
    # Without a range (require_range: both or neither) a global set's publish is its whole
    # history: it replaces the whole table (rows a build removed or wrote since the last
    # publish included), and records the range its rows cover.
    whole = fs.kind == "global_feature_set" and start is None
    # The set's computation runs in the actions below: its failures on the data name it.
    with evaluating(fs) if fs.kind == "global_feature_set" else computing(fs):
        if start is None or end is None:
            low, high = df.agg(F.min(FEATURE_TS), F.max(FEATURE_TS)).collect()[0]
            if low is None:
                raise CatalogError(f"publish {name}: the computed frame is empty", feature_set=name)
            start, end = low, high + timedelta(microseconds=1)
        commit = CommitInfo(run_id=run, operation="publish", source_versions=sources)
        return publish_feature_set(
            spark,
            mesh,
            fs,
            df,
            start=start,
            end=end,
            commit=commit,
            identity=who,
            as_of=as_of,
            inputs=read,
            whole=whole,
        )


def require_range(fs: Any, start: datetime | None, end: datetime | None) -> None:
    """A domain feature set's publish needs ``[start, end)``, a global set's both bounds or
    neither (its whole history): ``CatalogError`` otherwise. A range open on one side has no
    bound to replace up to (the table may hold rows past the computed ones)."""
    name = fs.qualified_name
    if fs.kind != "global_feature_set" and (start is None or end is None):
        raise CatalogError(
            f"publish {name}: --start and --end are required for a domain "
            "feature set (the range [start, end) of feature_ts to compute and replace)",
            feature_set=name,
        )
    if (start is None) != (end is None):
        given, missing = ("--start", "--end") if end is None else ("--end", "--start")
        raise CatalogError(
            f"publish {name}: {given} without {missing}; a global feature set is published "
            "over [--start, --end) (give both) or over its whole history (give neither)",
            feature_set=name,
            argument=missing,
        )


def check_range(name: str, start: datetime | None, end: datetime | None) -> None:
    """Refuse ``[start, end)`` when it is empty (``CatalogError``), before anything runs."""
    if start is not None and end is not None and start >= end:
        raise CatalogError(
            f"publish {name}: --start {start.isoformat()} is not before --end "
            f"{end.isoformat()}; pass a start earlier than the end",
            feature_set=name,
            start=start,
            end=end,
        )


def _compute(
    spark: SparkSession, mesh: MeshDefinition, fs: Any, start: datetime, end: datetime
) -> tuple[DataFrame, dict[str, int]]:
    """The feature rows of ``[start, end)`` and the source version they were computed from."""
    read_source, compute = (_entry(fs, module, name) for module, name in (READ_SOURCE, COMPUTE))
    src = read_source(spark, mesh, fs)
    df = compute(spark, mesh, fs, start=start, end=end, source_version=src.version)
    sources = {} if src.version is None else {src.product.qualified_name: int(src.version)}
    return df, sources


def _entry(fs: Any, module_name: str, function: str) -> Any:
    module = importlib.import_module(module_name)
    found = getattr(module, function, None)
    if found is None:
        raise CatalogError(
            f"publish {fs.qualified_name}: {module_name}.{function} is not available in this "
            "installation; compute the frame yourself and call "
            "mesh.catalog.publish_feature_set(spark, mesh, fs, df, start=..., end=...)",
            feature_set=fs.qualified_name,
        )
    return found


def _global_frame(
    spark: SparkSession, mesh: MeshDefinition, fs: Any, who: Identity
) -> tuple[DataFrame, dict[str, int], list[tuple[str, str]]]:
    """The global set's rows, the Delta version of every input table and the (feature set,
    semantic version) of every input, as read."""
    from mesh.catalog.access import authorize_read
    from mesh.sets.access import access_requests, check_visible_references
    from mesh.sets.global_features import compute_global_features
    from mesh.sets.resolve import resolve_inputs

    purpose = f"global feature set {fs.qualified_name}"
    check_visible_references(spark, mesh, list(fs.inputs.values()), purpose, who)
    inputs = resolve_inputs(spark, mesh, list(fs.inputs.values()))
    authorize_read(
        spark,
        mesh,
        who,
        access_requests(spark, mesh, inputs),
        purpose,
    )
    df = compute_global_features(spark, mesh, fs, inputs)
    read = [(pin.feature_set, pin.semantic_version) for pin in inputs]
    return df, {pin.table: pin.delta_version for pin in inputs}, read
