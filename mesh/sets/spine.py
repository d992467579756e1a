"""Spines: reading them and fingerprinting their content so a rebuild can prove it is the same."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from mesh.definitions import MeshDefinition, Spine
from mesh.sets.errors import SpineChangedError, SpineError
from mesh.sets.manifest import InputPin, SpinePin
from mesh.storage import in_warehouse

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from mesh.join import FeatureSource


class SpineRead(NamedTuple):
    """A spine as read: its rows, the Delta version read (``None``: Parquet), and its
    definition with the names of its columns as the table spells them."""

    df: DataFrame
    version: int | None
    spine: Spine


def read_spine(
    spark: SparkSession, mesh: MeshDefinition, spine: Spine, version: int | None = None
) -> SpineRead:
    """The spine table (Delta at ``version`` or latest, or Parquet), the Delta version read,
    and ``spine`` naming its columns as the table does.

    The columns ``spine`` names (timestamp, keys, labels) are resolved as the join resolves
    names (``mesh.join.resolve.columns_named``: in any case unless
    ``spark.sql.caseSensitive``), after its columns are checked (``check_spine_columns``),
    before any job runs.
    """
    from mesh.errors import StorageError
    from mesh.join.resolve import case_sensitive, columns_of
    from mesh.storage import open_table

    path = in_warehouse(mesh, spine.path)
    if spine.format == "parquet":
        try:
            df = spark.read.parquet(path)
        except Exception as exc:  # AnalysisException: path missing or not Parquet
            raise SpineError(
                f"Spine {spine.path}: cannot read Parquet at {path} "
                f"({str(exc).splitlines()[0]}); write the spine there or fix spine.path.",
                path=path,
            ) from exc
        read_version = None
    else:
        table = open_table(spark, path)
        if not table.exists():
            raise SpineError(
                f"Spine {spine.path}: no Delta table at {path}; write the spine there, fix "
                "spine.path, or set spine.format: parquet.",
                path=path,
            )
        try:
            read_version = version if version is not None else table.latest_version()
            df = table.read(version=read_version)
        except StorageError as exc:
            raise SpineError(
                f"Spine {spine.path}: Delta version {version} cannot be read ({exc.message}); "
                "the spine's history was removed (VACUUM or re-created), so this training set "
                "cannot be rebuilt from its manifest.",
                path=path,
                version=version,
            ) from exc
    check_spine_columns(f"Spine {spine.path}", "spine", df.columns, spark)
    named = (spine.timestamp, *spine.keys, *spine.labels)
    spelled, missing = columns_of(df.columns, named, case_sensitive(spark))
    if missing:
        raise SpineError(
            f"Spine {spine.path}: column(s) {', '.join(missing)} are not in the table (columns: "
            f"{', '.join(df.columns)}){case_hints(df.columns, missing)}; fix "
            "spine.timestamp/keys/labels or the table.",
            path=path,
            missing=missing,
            available=list(df.columns),
        )
    spine = spine.model_copy(
        update={
            "timestamp": spelled[spine.timestamp],
            "keys": tuple(spelled[k] for k in spine.keys),
            "labels": tuple(spelled[k] for k in spine.labels),
        }
    )
    time_type = df.schema[spine.timestamp].dataType.simpleString()
    if time_type != "timestamp":
        # Feature tables hold timestamps (instants); the join compares like with like.
        raise SpineError(
            f"Spine {spine.path}: timestamp column {spine.timestamp} is {time_type}, but "
            "feature tables' times are timestamp (instants); write the spine's "
            f"{spine.timestamp} as a timestamp (e.g. CAST({spine.timestamp} AS TIMESTAMP), "
            "read in the session time zone, or to_utc_timestamp for a local time elsewhere).",
            path=path,
            column=spine.timestamp,
            expected="timestamp",
            found=time_type,
        )
    return SpineRead(df, read_version, spine)


def fingerprint_spine(df: DataFrame) -> tuple[int, str]:
    """(row count, checksum): the sum of a 64-bit hash of every row, independent of order.

    The hash covers every column plus a null mask (Spark's ``xxhash64`` skips nulls, so
    without the mask ``(null, 1)`` and ``(1, null)`` would hash alike). A column that is or
    holds a map or a variant, which Spark refuses to hash, is hashed as its JSON text. The
    sum runs in ``decimal(38,0)`` so it can neither overflow nor depend on ANSI mode.
    """
    from pyspark.sql import functions as F

    from mesh.join.columns import col
    from mesh.join.resolve import unorderable

    if not df.columns:
        return df.count(), "0"
    # Backquoted: a name with a dot is a column, not a struct field.
    columns = [col(c) for c in df.columns]
    mask = F.array(*[c.isNull() for c in columns])
    hashed = [
        F.to_json(F.struct(c.alias("v"))) if unorderable(f.dataType) else c
        for c, f in zip(columns, df.schema.fields, strict=True)
    ]
    row_hash = F.xxhash64(mask, *hashed).cast("decimal(38,0)")
    row = df.agg(F.count(F.lit(1)).alias("n"), F.sum(row_hash).alias("s")).first()
    assert row is not None
    return int(row["n"]), str(row["s"] if row["s"] is not None else 0)


def spine_columns(df: DataFrame) -> tuple[str, ...]:
    return tuple(f"{f.name}:{f.dataType.simpleString()}" for f in df.schema.fields)


def pin_spine(spine: Spine, df: DataFrame, delta_version: int | None) -> SpinePin:
    """Fingerprint of the spine as read by a build, for the manifest."""
    count, checksum = fingerprint_spine(df)
    return SpinePin(
        path=spine.path,
        format=spine.format,
        timestamp=spine.timestamp,
        keys=spine.keys,
        labels=spine.labels,
        delta_version=delta_version,
        row_count=count,
        checksum=checksum,
        columns=spine_columns(df),
    )


def verify_spine(pinned: SpinePin, df: DataFrame) -> None:
    """Raise ``SpineChangedError`` unless ``df`` has the pinned columns, row count and checksum."""
    columns = spine_columns(df)
    count, checksum = fingerprint_spine(df)
    found = {"columns": list(columns), "row_count": count, "checksum": checksum}
    expected = {
        "columns": list(pinned.columns),
        "row_count": pinned.row_count,
        "checksum": pinned.checksum,
    }
    changed = [k for k in expected if expected[k] != found[k]]
    if changed:
        raise SpineChangedError(
            f"Spine {pinned.path}: its {', '.join(changed)} differ from the manifest "
            f"(expected {pinned.row_count} rows, checksum {pinned.checksum}; found {count} rows, "
            f"checksum {checksum}); a rebuild would not reproduce the training set. Restore "
            "the spine the manifest pinned, or build a new training set instead.",
            path=pinned.path,
            changed=changed,
            expected=expected,
            found=found,
        )


def spine_spelling(
    pin: InputPin, columns: Sequence[str], sensitive: bool
) -> tuple[InputPin, list[str]]:
    """``pin`` matched on the spine's own spelling of its spine columns, and those the spine
    lacks.

    Names are resolved as the join resolves them (``mesh.join.resolve.columns_named``):
    the exact name, else, unless ``sensitive`` (``spark.sql.caseSensitive``), the column
    equal to it in another case, which becomes the pin's ``spine_keys``, so a manifest
    records the columns matched and its rebuild matches them in any session. ``columns``
    are checked first (``check_plain_columns``): no two of them differ only in case.
    """
    from mesh.join.resolve import columns_of

    found, missing = columns_of(columns, pin.spine_columns, sensitive)
    spelled = tuple(found.get(name, name) for name in pin.spine_columns)
    if missing or spelled == pin.spine_columns:
        return pin, missing
    return pin.model_copy(update={"spine_keys": spelled}), missing


def case_hints(columns: Sequence[str], missing: Sequence[str]) -> str:
    """What a case-sensitive session did not match: the columns each of ``missing`` differs
    from only in case ("" when none does)."""
    from mesh.join.resolve import case_hint

    return "".join(case_hint(columns, name) for name in missing)


def check_spine_columns(
    label: str, argument: str, columns: Sequence[str], spark: SparkSession
) -> None:
    """``SpineError`` for spine or entity columns the join cannot refer to (two names that
    differ only in case as the session compares them, the join's reserved prefix), before
    any job: ``label`` begins the message, ``argument`` names what the caller passed."""
    from mesh.join.resolve import case_sensitive, check_plain_columns

    check_plain_columns(columns, argument, case_sensitive(spark), label, SpineError)


def check_key_types(
    what: str, spine: DataFrame, inputs: Sequence[InputPin], sources: Sequence[FeatureSource]
) -> None:
    """Raise ``SpineError`` unless every spine key column has its feature table's key type
    (integers of any width match by value, as in the join): the spine is what can be
    written otherwise, a feature table is not. ``what`` names the spine in the message."""
    from mesh.join.resolve import key_types_match

    for pin, source in zip(inputs, sources, strict=True):
        for key, column in zip(pin.keys, pin.spine_columns, strict=True):
            found, expected = spine.schema[column].dataType, source.df.schema[key].dataType
            if key_types_match(expected, found):
                continue
            wanted = expected.simpleString()
            raise SpineError(
                f"{what}: key column {column} is {found.simpleString()}, but feature set "
                f"{pin.feature_set} is keyed on {key} {wanted}; give {column} the type "
                f"{wanted} (e.g. CAST({column} AS {wanted})).",
                column=column,
                expected=wanted,
                found=found.simpleString(),
                feature_set=pin.feature_set,
            )
