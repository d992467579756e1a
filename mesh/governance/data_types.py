"""Type checks of a feature-set version's columns (part of the publish data checks).

* ``data.types``: key columns have their entity's registered type, typed features their
  declared ``type``;
* ``data.aggregation_type``: an aggregation's column has the type its function gives over
  its source column's type;
* ``data.allowed_type``: an aggregation's column type is in the standards' ``allowed_types``.

They read only the frame's schema, never its rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mesh.definitions.base import spark_form
from mesh.definitions.feature_set import AggregationFeature, FeatureSet
from mesh.definitions.mesh import AnyFeatureSet, MeshDefinition
from mesh.definitions.standards import Standards


def source_columns(mesh: MeshDefinition, fs: AnyFeatureSet) -> dict[str, str] | None:
    """The column types ``fs``'s data product declares (``None`` for a global set, or a
    source that is not defined: static checks report that one)."""
    if not isinstance(fs, FeatureSet):
        return None
    product = mesh.product(fs.source, fs.domain)
    return dict(product.columns) if product is not None else None


def type_checks(
    add: Any,
    fs: AnyFeatureSet,
    standards: Standards,
    types: Mapping[str, Any],
    *,
    key_columns: Sequence[str],
    source_columns: Mapping[str, str] | None,
) -> None:
    """Add every type check of ``fs`` over the frame's column types (``types``: name ->
    Spark ``DataType``) through ``add(check, feature, passed, measured, threshold, message,
    severity)``; missing columns are left to ``data.schema``."""
    for column, declared in _declared_types(fs, standards, key_columns).items():
        if column not in types:
            continue
        actual = types[column].simpleString()
        add(
            "data.types",
            column,
            actual == declared,
            actual,
            declared,
            f"column {column!r} is {actual}, declared {declared}; cast it (the feature table "
            "keeps the declared types, and joins on keys need the registered ones)",
        )
    _aggregation_types(add, fs, standards, types, source_columns)


def column_types(df: Any) -> dict[str, str]:
    """Column -> Spark type (``simpleString``) of a DataFrame, from its schema alone."""
    return {f.name: f.dataType.simpleString() for f in df.schema.fields}


def _aggregation_types(
    add: Any,
    fs: AnyFeatureSet,
    standards: Standards,
    types: Mapping[str, Any],
    source_columns: Mapping[str, str] | None,
) -> None:
    """``data.aggregation_type`` and ``data.allowed_type`` for every aggregation column."""
    allowed = [spark_form(t) for t in standards.allowed_types]
    for feature in fs.features:
        if not isinstance(feature, AggregationFeature):
            continue
        column = feature.column
        input_type = (source_columns or {}).get(column) if column else None
        expected = feature.result_type(spark_form(input_type) if input_type else None)
        call = f"{feature.function}({column or ''})"
        for output in feature.output_names():
            if output not in types:
                continue  # data.schema reports the missing column
            found = types[output].simpleString()
            if expected is None and not feature.type:
                # Not derivable; with a declared `type:`, data.types checks the column.
                reason = (
                    f"a {feature.function} of a decimal widens its precision with every sum"
                    if input_type
                    else f"the type of source column {column!r} is not known (declare it "
                    "under the data product's `columns:`)"
                )
                add(
                    "data.aggregation_type",
                    output,
                    False,
                    found,
                    None,
                    f"the type of {output!r} ({found}) cannot be checked against its source: "
                    f"{reason}; set `type:` on the feature to fix its type",
                    "warning",
                )
            elif expected is not None:
                add(
                    "data.aggregation_type",
                    output,
                    found == spark_form(expected),
                    found,
                    spark_form(expected),
                    f"column {output!r} is {found}, but {call} over "
                    f"{'a ' + input_type + ' column' if input_type else 'its rows'} gives "
                    f"{spark_form(expected)}; remove or correct the feature's `type:` (the "
                    "engine casts to it), or change the source column's type",
                )
            add(
                "data.allowed_type",
                output,
                found in allowed,
                found,
                allowed,
                f"column {output!r} is {found}, not allowed by mesh.yaml (allowed_types: "
                f"{', '.join(allowed)}); aggregate a column of an allowed type, set an allowed "
                "`type:`, or ask the platform team to allow the type",
            )


def _declared_types(
    fs: AnyFeatureSet, standards: Standards, key_columns: Sequence[str]
) -> dict[str, str]:
    """Column -> the Spark type it must have (``simpleString`` form): keys and typed features."""
    declared = {}
    entity = standards.entities.get(fs.entity)
    for key in key_columns:
        if entity is not None and key in entity.keys:
            declared[key] = spark_form(entity.keys[key])
    for feature in fs.features:
        kind_type = getattr(feature, "type", None)
        if kind_type:
            for name in feature.output_names():
                declared[name] = spark_form(kind_type)
    return declared
