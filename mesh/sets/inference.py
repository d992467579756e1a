"""Inference sets: the feature values of a set of entities as known at one time (default now)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from mesh.definitions import FeatureLookup, FeatureRef, MeshDefinition
from mesh.definitions.columns import AS_OF_TS
from mesh.errors import first_line
from mesh.sets.access import access_requests, authorize, check_visible_references
from mesh.sets.errors import SetBuildError, SpineError
from mesh.sets.resolve import resolve_inputs
from mesh.sets.sources import load_sources
from mesh.sets.spine import case_hints, check_key_types, check_spine_columns, spine_spelling
from mesh.times import optional_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from mesh.catalog.access import Identity

AS_OF_COLUMN = AS_OF_TS


def build_inference_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    features: Sequence[str | FeatureRef | FeatureLookup],
    entities: DataFrame | Sequence[Mapping[str, Any]],
    *,
    as_of: datetime | date | str | None = None,
    identity: str | Identity | None = None,
    strict: bool = False,
    exclude_late_data: bool = True,
    allow_unpublished: bool = False,
) -> DataFrame:
    """The latest value of every referenced feature for each entity row, as known at ``as_of``.

    Runs the same point-in-time join as training sets on a spine made of ``entities`` (a
    Spark DataFrame, or rows as mappings of key column -> value, in a list or any iterable)
    with ``as_of_ts = as_of`` (default: now, UTC; naive datetimes are UTC). So TTLs apply (an
    expired value is null), rows not yet created at ``as_of`` are excluded, and references
    may pin versions (``@1.2``). Output: the entity columns unchanged, ``as_of_ts``, then
    one column per feature; one row per entity row. ``features`` may hold
    ``FeatureLookup``s: their sets are matched on the entity columns they name (``keys``)
    and their outputs prefixed. The read is access-checked and
    audited first. ``strict`` and ``exclude_late_data`` are a training set's options of the
    same names (``mesh inference --training`` passes the set's). Features are read at their sets'
    newest published versions; a set never published is refused (``NotPublishedError``)
    unless ``allow_unpublished`` (read with a warning).
    """
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    from mesh.join import point_in_time_join
    from mesh.join.resolve import case_sensitive, require_batch
    from mesh.join.source import require_bool
    from mesh.storage.base import epoch_micros

    _check_features(features)
    flags = {"exclude_late_data": exclude_late_data, "allow_unpublished": allow_unpublished}
    for flag, value in flags.items():
        require_bool(value, flag, "build_inference_set ", SetBuildError)
    if isinstance(entities, DataFrame):
        require_batch(entities, "entities", "build_inference_set ", SpineError)
    rows_given = not isinstance(entities, DataFrame)
    if rows_given:
        entities = _rows(entities)
    given_columns = _columns(entities) if rows_given else list(entities.columns)  # type: ignore[union-attr]
    # Names the join cannot refer to: refused before the access check (and any job).
    check_spine_columns("build_inference_set entities", "entities", given_columns, spark)
    # Spark resolves names without regard to case: `AS_OF_TS` would be replaced too.
    clash = next((c for c in given_columns if c.lower() == AS_OF_COLUMN), None)
    if clash is not None:
        raise SpineError(
            f"build_inference_set entities: column {clash!r} is reserved for the lookup "
            f"time ({AS_OF_COLUMN!r}, in any case); drop or rename it.",
            argument="entities",
            column=clash,
        )
    check_visible_references(spark, mesh, features, "inference set", identity)
    when = optional_utc(as_of, "as_of", SetBuildError) or datetime.now(timezone.utc)
    inputs = resolve_inputs(
        spark,
        mesh,
        features,
        exclude_late_data=exclude_late_data,
        taken=[*given_columns, AS_OF_COLUMN],
        allow_unpublished=allow_unpublished,
    )
    matched = [spine_spelling(pin, given_columns, case_sensitive(spark)) for pin in inputs]
    inputs = [pin for pin, _ in matched]
    missing = sorted({k for _, lacking in matched for k in lacking})
    if missing:
        raise SpineError(
            f"build_inference_set entities: key column(s) {', '.join(missing)} are missing "
            f"(found: {', '.join(given_columns) or 'none'}){case_hints(given_columns, missing)}; "
            "give one row per entity with its key columns.",
            argument="entities",
            missing=missing,
            available=given_columns,
        )
    authorize(spark, mesh, access_requests(spark, mesh, inputs), "inference set", identity)
    frame = _frame(spark, mesh, inputs, entities) if rows_given else entities
    spine = frame.withColumn(AS_OF_COLUMN, F.timestamp_micros(F.lit(epoch_micros(when))))  # type: ignore[union-attr]
    sources = load_sources(spark, mesh, inputs)
    check_key_types("build_inference_set entities", spine, inputs, sources)
    return point_in_time_join(spine, sources, spine_timestamp=AS_OF_COLUMN, strict=strict)


def _check_features(features: object) -> None:
    """A ``SetBuildError`` unless ``features`` is a non-empty list of references: a single
    reference would be read as its characters, and no reference has nothing to look up."""
    if isinstance(features, (str, FeatureRef, FeatureLookup)) or not features:
        given = repr(features) if isinstance(features, str) else type(features).__name__
        raise SetBuildError(
            f"build_inference_set features: expected a non-empty list of feature references, "
            f"found {given}; pass e.g. ['payments.spend.amount'] or ['payments.spend.*'].",
            argument="features",
            expected="non-empty list of feature references",
            found=given,
        )


def _rows(entities: object) -> list[Mapping[str, Any]]:
    """The entity rows as a list (an iterator is read once), or a ``SpineError`` for a frame
    that is not Spark's (pandas, polars) or a single mapping."""
    kind = type(entities)
    found = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    if hasattr(entities, "columns") or isinstance(entities, (Mapping, str, bytes)):
        raise SpineError(
            f"build_inference_set entities: expected a Spark DataFrame or a list of rows "
            f"(mappings of column to value), found {found}; pass spark.createDataFrame(frame) "
            "for a pandas frame, or [row] for a single row.",
            argument="entities",
            expected="pyspark DataFrame | list of mappings",
            found=found,
        )
    rows = list(entities)  # type: ignore[call-overload]
    wrong = next((r for r in rows if not isinstance(r, Mapping)), None)
    if wrong is not None:
        raise SpineError(
            f"build_inference_set entities: every row must be a mapping of column to value, "
            f"found {wrong!r} ({type(wrong).__name__}); e.g. [{{'customer_id': 1}}].",
            argument="entities",
            expected="mapping",
            found=type(wrong).__name__,
        )
    return rows


def _columns(rows: Any) -> list[str]:
    names: list[str] = []
    for row in rows:
        names.extend(c for c in row if c not in names)
    return names


def _frame(spark: SparkSession, mesh: MeshDefinition, inputs: Any, rows: Any) -> DataFrame:
    from pyspark.errors import PySparkException
    from pyspark.sql.types import DataType, StringType, StructField, StructType

    # Key types come from the entity registry so the spine joins without casts; other
    # columns take the type Spark infers from their values (as createDataFrame does).
    types: dict[str, str] = {}
    for pin in inputs:
        entity = mesh.entity(mesh.any_set(pin.feature_set).entity)
        types.update({s: entity.keys[k] for k, s in zip(pin.keys, pin.spine_columns, strict=True)})
    columns = _columns(rows)
    values = [tuple(_plain(r.get(c)) for c in columns) for r in rows]
    fields = []
    for j, c in enumerate(columns):
        given = [(v[j],) for v in values if v[j] is not None]
        data_type: DataType = StringType()
        if c in types:
            data_type = DataType.fromDDL(types[c])
        elif given:
            try:
                data_type = spark.createDataFrame(given, ["v"]).schema[0].dataType
            except (PySparkException, TypeError, ValueError) as exc:
                raise SpineError(
                    f"build_inference_set entities: the values of column {c!r} have no common "
                    f"Spark type ({exc}); give them one Python type, or pass a DataFrame.",
                    argument="entities",
                    column=c,
                ) from None
        fields.append(StructField(c, data_type))
    try:
        return spark.createDataFrame(values, StructType(fields))
    except (PySparkException, TypeError, ValueError) as exc:
        expected = {f.name: f.dataType.simpleString() for f in fields}
        raise SpineError(
            f"build_inference_set entities: the rows do not fit the columns' types {expected} "
            f"(key columns as their entity registers them): {first_line(exc)}; give each "
            "value that type in Python (int for bigint keys, str for string ones), or pass a "
            "DataFrame.",
            argument="entities",
            expected=expected,
        ) from None


def _plain(value: Any) -> Any:
    """A numpy scalar (``np.int64`` from a pandas column) as the Python value it holds."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value
