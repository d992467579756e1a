"""Inference sets: the feature values of a set of entities as known at one time (default now)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mesh.definitions import MeshDefinition
from mesh.sets.access import authorize
from mesh.sets.errors import SpineError
from mesh.sets.resolve import access_requests, load_sources, resolve_inputs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from mesh.catalog.access import Identity

AS_OF_COLUMN = "as_of_ts"


def build_inference_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    features: Sequence[str],
    entities: DataFrame | Sequence[Mapping[str, Any]],
    *,
    as_of: datetime | None = None,
    identity: str | Identity | None = None,
    strict: bool = False,
    allow_unpublished: bool = False,
) -> DataFrame:
    """The latest value of every referenced feature for each entity row, as known at ``as_of``.

    Runs the same point-in-time join as training sets on a spine made of ``entities`` (a
    DataFrame, or rows as mappings of key column -> value) with ``as_of_ts = as_of`` (default:
    now, UTC; naive datetimes are UTC). So TTLs apply (an expired value is null), rows not yet
    created at ``as_of`` are excluded, and references may pin versions (``@1.2``). Output: the
    entity columns unchanged, ``as_of_ts``, then one column per feature; one row per entity
    row. The read is access-checked and audited first. Features are read at their sets'
    newest published versions; a set never published is refused (``NotPublishedError``)
    unless ``allow_unpublished`` (read with a warning).
    """
    from pyspark.sql import functions as F

    from mesh.join import point_in_time_join
    from mesh.storage.base import epoch_micros

    when = as_of or datetime.now(timezone.utc)
    rows_given = not hasattr(entities, "columns")
    given_columns = _columns(entities) if rows_given else list(entities.columns)  # type: ignore[union-attr]
    # Spark resolves names without regard to case: `AS_OF_TS` would be replaced too.
    clash = next((c for c in given_columns if c.lower() == AS_OF_COLUMN), None)
    if clash is not None:
        raise SpineError(
            f"build_inference_set entities: column {clash!r} is reserved for the lookup "
            f"time ({AS_OF_COLUMN!r}, in any case); drop or rename it.",
            argument="entities",
            column=clash,
        )
    inputs = resolve_inputs(
        spark,
        mesh,
        features,
        taken=[*given_columns, AS_OF_COLUMN],
        allow_unpublished=allow_unpublished,
    )
    keys = [k for pin in inputs for k in pin.keys]
    missing = sorted({k for k in keys if k not in given_columns})
    if missing:
        raise SpineError(
            f"build_inference_set entities: key column(s) {', '.join(missing)} are missing "
            f"(found: {', '.join(given_columns) or 'none'}); give one row per entity with its "
            "key columns.",
            argument="entities",
            missing=missing,
            available=given_columns,
        )
    authorize(spark, mesh, access_requests(spark, mesh, inputs), "inference set", identity)
    frame = _frame(spark, mesh, inputs, entities) if rows_given else entities
    spine = frame.withColumn(AS_OF_COLUMN, F.timestamp_micros(F.lit(epoch_micros(when))))  # type: ignore[union-attr]
    sources = load_sources(spark, mesh, inputs)
    return point_in_time_join(spine, sources, spine_timestamp=AS_OF_COLUMN, strict=strict)


def _columns(rows: Any) -> list[str]:
    names: list[str] = []
    for row in rows:
        names.extend(c for c in row if c not in names)
    return names


def _frame(spark: SparkSession, mesh: MeshDefinition, inputs: Any, rows: Any) -> DataFrame:
    # Key types come from the entity registry so the spine joins without casts.
    types: dict[str, str] = {}
    for pin in inputs:
        entity = mesh.entity(mesh.any_set(pin.feature_set).entity)
        types.update(entity.keys)
    columns = _columns(rows)
    schema = ", ".join(f"`{c}` {types.get(c, 'string')}" for c in columns)
    return spark.createDataFrame([tuple(r.get(c) for c in columns) for r in rows], schema)
