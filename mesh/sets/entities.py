"""Entity rows given as text, as ``mesh inference --key`` takes them, typed for
``build_inference_set``: key columns by their entity's registered types, other columns by
the type given or the narrowest that holds their values."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from mesh.definitions import FeatureLookup, FeatureRef, MeshDefinition
from mesh.definitions.references import expand_references
from mesh.sets.errors import SpineError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def entities_from_text(
    spark: SparkSession,
    mesh: MeshDefinition,
    features: Sequence[str | FeatureRef | FeatureLookup],
    columns: Mapping[str, Sequence[str]],
    types: Mapping[str, str] | None = None,
) -> DataFrame:
    """Entity rows given as text (``mesh inference --key``), typed, for ``build_inference_set``.

    ``columns`` maps each column to its values as text, one per entity; ``types`` gives some
    columns a Spark SQL type (``double``, ``date``, ``decimal(10,2)``...). A key column of
    the ``features``' entities (named in any case, as the join matches names, unless
    ``spark.sql.caseSensitive``) takes the entity's key type (a type given for it is refused).
    Another column takes its type from ``types`` or else, read as JSON, the narrowest of
    ``bigint`` (``1``), ``double`` (``1.5``, or numbers of both kinds), ``boolean``
    (``true``) and ``string`` (anything else, or values of mixed kinds) that holds all its
    values. ``null`` is a null and ``"1"`` the text 1 in any column. Values are converted by
    Spark's cast from text; one that does not convert to its column's type is a
    ``SpineError`` naming the column, the value and the type.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql.types import DataType, StringType, StructField, StructType

    from mesh.join.columns import col
    from mesh.join.resolve import case_sensitive, columns_of

    given = dict(types or {})
    lengths = {len(v) for v in columns.values()}
    if not columns or len(lengths) != 1:
        raise SpineError(
            "entities: expected one or more columns with one value per entity each; found "
            + (", ".join(f"{c}: {len(v)}" for c, v in columns.items()) or "no columns")
            + ".",
            argument="entities",
            found={c: len(v) for c, v in columns.items()},
        )
    keys = _key_types(mesh, features)
    # As the join matches them: a key column given in another case is that key.
    spelled, _ = columns_of(list(columns), keys, case_sensitive(spark))
    keys = {spelled[k]: v for k, v in keys.items() if k in spelled}
    decoded = {c: [_decode(v) for v in values] for c, values in columns.items()}
    targets: dict[str, DataType] = {}
    for c, values in decoded.items():
        if c in keys and c in given:
            key_type, entity = keys[c]
            raise SpineError(
                f"entities: {c} is a key of entity {entity}, which registers it as {key_type}; "
                f"drop the type {given[c]!r} (key columns always take the registered type).",
                argument="entities",
                column=c,
                expected=key_type,
                found=given[c],
            )
        name = keys[c][0] if c in keys else given.get(c) or _narrowest(k for _, k in values)
        try:
            targets[c] = DataType.fromDDL(name)
        except AnalysisException:
            raise SpineError(
                f"entities: column {c}: {name!r} is not a Spark SQL type; use e.g. bigint, "
                "double, boolean, string, date, timestamp or decimal(10,2).",
                argument="entities",
                column=c,
                found=name,
            ) from None
    names = list(columns)
    rows = list(zip(*[[text for text, _ in decoded[c]] for c in names], strict=True))
    text = spark.createDataFrame(rows, StructType([StructField(c, StringType()) for c in names]))
    # The text and the typed value side by side: a non-null text that gave a null failed.
    both = text.select(
        *[col(c) for c in names],
        *[col(c).try_cast(targets[c]).alias(f"__mesh_typed{j}") for j, c in enumerate(names)],
    )
    for row in both.collect():
        for j, c in enumerate(names):
            if row[j] is not None and row[len(names) + j] is None:
                type_name = targets[c].simpleString()
                where, hint = f"{c} ({type_name})", f", or another type ({c}:TYPE=...)"
                if c in keys:
                    where = f"{c} ({type_name}, the key type of entity {keys[c][1]})"
                    hint = ""
                raise SpineError(
                    f"entities: column {where}: {row[j]!r} is not a {type_name}; give a "
                    f"{type_name} value{hint}.",
                    argument="entities",
                    column=c,
                    expected=type_name,
                    found=row[j],
                )
    return both.select(*[col(f"__mesh_typed{j}").alias(c) for j, c in enumerate(names)])


def _key_types(
    mesh: MeshDefinition, features: Sequence[str | FeatureRef | FeatureLookup]
) -> dict[str, tuple[str, str]]:
    """Key column -> (registered type, entity) of the entities the references are keyed by.

    A reference that does not parse or names no set is skipped: the build reports it.
    """
    sets = mesh.all_sets()
    keys: dict[str, tuple[str, str]] = {}
    for raw in features:
        try:
            refs = expand_references([raw])
        except ValueError:
            continue
        for ref in refs:
            definition = sets.get(ref.set_name)
            if definition is not None:
                entity = mesh.entity(definition.entity)
                spine = dict(ref.spine_keys)  # a lookup's entity key -> spine column
                keys.update({spine.get(c, c): (t, entity.name) for c, t in entity.keys.items()})
    return keys


def _decode(text: str) -> tuple[str | None, str | None]:
    """(text to cast, kind) of a value given as text; kind None for null."""
    try:
        value = json.loads(text)
    except ValueError:
        return text.strip(), "string"
    if value is None:
        return None, None
    if isinstance(value, str):
        return value, "string"
    kind = {bool: "boolean", int: "bigint", float: "double"}.get(type(value), "string")
    return text.strip(), kind


def _narrowest(kinds: Iterable[str | None]) -> str:
    found = {k for k in kinds if k is not None}
    if found and found <= {"bigint", "double"}:
        return "double" if "double" in found else "bigint"
    if found == {"boolean"}:
        return "boolean"
    return "string"
