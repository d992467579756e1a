"""Schema rules shared by both backends: nullable table columns, alignment, time columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DataType,
    MapType,
    StructField,
    StructType,
    TimestampType,
)

from mesh.errors import StorageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def as_nullable(data_type: DataType) -> DataType:
    """Same type with every field nullable, as Delta stores frames written by Spark."""
    if isinstance(data_type, StructType):
        return StructType(
            [StructField(f.name, as_nullable(f.dataType), True, f.metadata) for f in data_type]
        )
    if isinstance(data_type, ArrayType):
        return ArrayType(as_nullable(data_type.elementType), True)
    if isinstance(data_type, MapType):
        return MapType(as_nullable(data_type.keyType), as_nullable(data_type.valueType), True)
    return data_type


def table_schema_of(df: DataFrame) -> StructType:
    """The Delta schema a new table gets from ``df``."""
    schema = as_nullable(df.schema)
    assert isinstance(schema, StructType)
    return schema


def align(
    df: DataFrame, table_schema: StructType, *, path: str, merge_schema: bool
) -> tuple[DataFrame, StructType]:
    """Reorder ``df`` to the table's columns; with ``merge_schema`` also add its new columns.

    Returns the frame to write and the (possibly widened) table schema. Type changes are never
    merged: they would make older files unreadable.
    """
    table_fields = {f.name: f for f in table_schema}
    frame_fields = {f.name: f for f in df.schema}
    by_lower = {n.lower(): n for n in table_fields}
    recased = [
        f"{n} (table {by_lower[n.lower()]})"
        for n in frame_fields
        if n not in table_fields and n.lower() in by_lower
    ]
    if recased:
        # Spark and Delta resolve column names case-insensitively: as a new column it would
        # collide with the table's (Spark's COLUMN_ALREADY_EXISTS).
        raise StorageError(
            f"Delta table {path}: the frame's columns differ from the table's only in case: "
            f"{', '.join(recased)}; rename them to the table's names (Delta column names are "
            "case-insensitive, so they cannot be added as new columns).",
            path=path,
            recased=recased,
        )
    missing = [n for n in table_fields if n not in frame_fields]
    extra = [n for n in frame_fields if n not in table_fields]
    changed = [
        f"{n} (table {table_fields[n].dataType.simpleString()}, "
        f"frame {frame_fields[n].dataType.simpleString()})"
        for n in table_fields
        if n in frame_fields
        and table_fields[n].dataType.simpleString() != frame_fields[n].dataType.simpleString()
    ]
    if changed:
        raise StorageError(
            f"Delta table {path}: column types differ from the table's: {', '.join(changed)}; "
            "cast the frame's columns to the table's types, or write a new table "
            "(create(..., overwrite=True)).",
            path=path,
            changed=changed,
        )
    if (missing or extra) and not merge_schema:
        raise StorageError(
            f"Delta table {path}: the frame's columns differ from the table's "
            f"(missing from the frame: {missing or 'none'}; not in the table: {extra or 'none'}); "
            "select the table's columns, or pass merge_schema=True to add new columns.",
            path=path,
            missing=missing,
            extra=extra,
        )
    new_schema = StructType(
        list(table_schema) + [StructField(n, as_nullable(frame_fields[n].dataType)) for n in extra]
    )
    columns = [
        F.col(n) if n in frame_fields else F.lit(None).cast(table_fields[n].dataType).alias(n)
        for n in table_fields
    ] + [F.col(n) for n in extra]
    return df.select(*columns), new_schema


def require_time_column(schema: StructType, column: str, *, path: str) -> None:
    """The column must exist and be a TIMESTAMP (UTC instant) for range operations."""
    field = next((f for f in schema if f.name == column), None)
    if field is None:
        raise StorageError(
            f"Delta table {path}: time column `{column}` is not in the frame "
            f"(columns: {', '.join(schema.names)}); pass the name of its timestamp column.",
            path=path,
            column=column,
        )
    if not isinstance(field.dataType, TimestampType):
        raise StorageError(
            f"Delta table {path}: time column `{column}` is {field.dataType.simpleString()}, "
            "expected timestamp; cast it with to_timestamp().",
            path=path,
            column=column,
            found=field.dataType.simpleString(),
        )
