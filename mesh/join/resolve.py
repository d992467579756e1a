"""Check the join inputs against their schemas and decide the output column names."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    ArrayType,
    DataType,
    IntegralType,
    MapType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
    VariantType,
)

from mesh.errors import JoinError, MeshError
from mesh.join.columns import col
from mesh.join.source import FeatureSource

INTERNAL_PREFIX = "__mesh_"
TIME_TYPES = (TimestampType, TimestampNTZType)


@dataclass(frozen=True)
class ResolvedSource:
    """A validated source: input column names, whether created_ts gates availability."""

    index: int
    label: str
    df: DataFrame
    keys: tuple[str, ...]
    timestamp: str
    created_timestamp: str | None
    gate_on_created: bool
    ttl: dt.timedelta | None
    features: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def gate(self) -> str | None:
        """The created-timestamp column when it gates availability, else None."""
        return self.created_timestamp if self.gate_on_created else None


def _types(schema: StructType) -> dict[str, DataType]:
    return {f.name: f.dataType for f in schema.fields}


def _column_name(
    columns: Sequence[str], name: str, argument: str, where: str, sensitive: bool
) -> str:
    """The column ``name`` refers to, spelled as the DataFrame spells it (``columns_named``).

    A name matching several columns only in case, or none, is a ``JoinError`` naming the
    columns.
    """
    matches = columns_named(columns, name, sensitive)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise JoinError(
            f"{argument}: `{name}` matches the columns {matches} of {where}, which differ only "
            f"in case{_case_note(sensitive)}; rename all but one (withColumnRenamed) or pass "
            "the exact name of one that is unique.",
            argument=argument,
            column=name,
            expected="one matching column",
            found=matches,
        )
    raise JoinError(
        f"{argument}: column `{name}` not found in {where}{case_hint(columns, name)}; "
        f"available columns: {sorted(columns)}. Rename or select the column before joining.",
        argument=argument,
        column=name,
        expected="existing column",
        found=sorted(columns),
    )


def columns_named(columns: Sequence[str], name: str, sensitive: bool) -> list[str]:
    """The columns ``name`` refers to, as Spark resolves names: the exact one, else
    (``spark.sql.caseSensitive`` false, its default) those equal to it in another case.

    One is the column, spelled as ``columns`` spell it; several differ only in case (an
    ambiguous name); none: no such column.
    """
    if name in columns:
        return [name]
    folded = fold_name(name, sensitive)
    return [c for c in columns if fold_name(c, sensitive) == folded]


def columns_of(
    columns: Sequence[str], names: Iterable[str], sensitive: bool
) -> tuple[dict[str, str], list[str]]:
    """Each of ``names`` that refers to one of ``columns`` (``columns_named``) -> that column,
    and the names that refer to none (or to several, differing only in case)."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        matches = columns_named(columns, name, sensitive)
        if len(matches) == 1:
            found[name] = matches[0]
        else:
            missing.append(name)
    return found, missing


def case_hint(columns: Sequence[str], name: str) -> str:
    """For a name ``columns_named`` found no column for: the columns that differ from it only
    in case, which a case-sensitive session does not match ("" when there are none)."""
    others = [c for c in columns if c.lower() == name.lower()]
    return f" (spark.sql.caseSensitive is true: {others} differ in case)" if others else ""


def _require_distinct(
    given: Sequence[str], columns: Sequence[str], argument: str, sensitive: bool
) -> None:
    """Names ``given`` that resolve to the same column (differing only in case) are refused."""
    if len(set(columns)) == len(columns):
        return
    repeated = [g for g, c in zip(given, columns, strict=True) if columns.count(c) > 1]
    raise JoinError(
        f"{argument}: {repeated} name the same column{_case_note(sensitive)}; "
        "list each column once.",
        argument=argument,
        expected="names of distinct columns",
        found=repeated,
    )


def _require_same_type(
    found: DataType, expected: DataType, column: str, argument: str, what: str
) -> None:
    if found != expected:
        raise JoinError(
            f"{argument}: column `{column}` has type {found.simpleString()}, expected "
            f"{expected.simpleString()} ({what}); cast it before joining.",
            argument=argument,
            column=column,
            expected=expected.simpleString(),
            found=found.simpleString(),
        )


def key_types_match(source_key: DataType, spine_key: DataType) -> bool:
    """Whether a source key column of type ``source_key`` can be matched against a spine key
    column of type ``spine_key``: the same type, or integers of any widths (``int`` and
    ``bigint``, ...), compared by value as in a Spark equi-join (see ``_as_spine_type``).

    As in that join, whether the fields or elements of a struct, array or map may be null
    (and their metadata) does not matter: only the values are compared.
    """
    if isinstance(source_key, IntegralType) and isinstance(spine_key, IntegralType):
        return True
    return _shape(source_key) == _shape(spine_key)


def _shape(data_type: DataType) -> DataType:
    """``data_type`` with every nested field and element nullable and no field metadata."""
    if isinstance(data_type, ArrayType):
        return ArrayType(_shape(data_type.elementType), True)
    if isinstance(data_type, MapType):
        return MapType(_shape(data_type.keyType), _shape(data_type.valueType), True)
    if isinstance(data_type, StructType):
        return StructType([StructField(f.name, _shape(f.dataType)) for f in data_type.fields])
    return data_type


def _as_spine_type(df: DataFrame, types: dict[str, DataType]) -> DataFrame:
    """The source with its integer keys of another width cast to the spine key's type.

    As in a Spark equi-join of an ``int`` and a ``bigint`` column, the values are compared,
    not the types. A source key outside the spine type's range (a ``bigint`` beyond what an
    ``int`` spine key holds) equals no spine key: ``try_cast`` makes it null, and rows with a
    null key never match, as before.
    """
    return df.withColumns({k: col(k).try_cast(t) for k, t in types.items()})


def case_sensitive(spark: SparkSession) -> bool:
    """Whether the session resolves column names by case (``spark.sql.caseSensitive``)."""
    return str(spark.conf.get("spark.sql.caseSensitive", "false")).lower() == "true"


def fold_name(name: str, sensitive: bool) -> str:
    """``name`` as Spark compares it: as is, or (its default) without regard to case."""
    return name if sensitive else name.lower()


def _case_note(sensitive: bool) -> str:
    return "" if sensitive else " (spark.sql.caseSensitive is false: names match in any case)"


def check_plain_columns(
    columns: Sequence[str],
    argument: str,
    sensitive: bool,
    label: str | None = None,
    error: type[MeshError] = JoinError,
) -> None:
    """Refuse names the join cannot refer to: two that differ only in case (as the session
    compares names, ``sensitive``) and the reserved prefix ``INTERNAL_PREFIX``.

    Checks names only, so no job runs. ``label`` begins the message (default: ``argument``);
    ``error`` is the ``MeshError`` raised (the set builds raise their ``SpineError``).
    """
    label = label or argument
    groups: dict[str, list[str]] = {}
    for c in columns:
        groups.setdefault(fold_name(c, sensitive), []).append(c)
    duplicates = sorted(c for group in groups.values() if len(group) > 1 for c in group)
    if duplicates:
        raise error(
            f"{label}: duplicate column names {duplicates}{_case_note(sensitive)}; the "
            "join refers to columns by name, so rename them first (withColumnRenamed).",
            argument=argument,
            expected="unique column names",
            found=duplicates,
        )
    reserved = fold_name(INTERNAL_PREFIX, sensitive)
    internal = sorted(c for c in columns if fold_name(c, sensitive).startswith(reserved))
    if internal:
        raise error(
            f"{label}: columns {internal} use the reserved prefix `{INTERNAL_PREFIX}`; "
            "rename them.",
            argument=argument,
            expected=f"no column starting with {INTERNAL_PREFIX}",
            found=internal,
        )


def _not_a_frame(argument: str, value: object) -> JoinError:
    """The error for a value that is not a Spark DataFrame, naming its full type.

    A pandas (or pyarrow) frame's type is also called ``DataFrame``; the module says which,
    and the message says how to make it a Spark one.
    """
    kind = type(value)
    found = f"{kind.__module__}.{kind.__qualname__}"
    hint = ""
    if kind.__module__.split(".")[0] in ("pandas", "pyarrow", "polars"):
        hint = " Make it a Spark DataFrame first: spark.createDataFrame(frame)."
    elif isinstance(value, str) and argument != "spine":
        hint = _reference_hint(value)
    return JoinError(
        f"{argument}: expected a pyspark DataFrame, found {found}.{hint}",
        argument=argument,
        expected="pyspark.sql.DataFrame",
        found=found,
    )


def source_list(sources: object) -> list[FeatureSource]:
    """``sources`` as a list: one ``FeatureSource``, or an iterable of them. A string, a
    DataFrame, a mapping or None as the whole argument is a ``JoinError``: iterated, they
    would be reported as their characters, columns or keys."""
    if isinstance(sources, FeatureSource):
        return [sources]
    if isinstance(sources, (str, bytes, DataFrame, Mapping)) or not isinstance(sources, Iterable):
        raise _not_a_source("sources", sources)
    given = list(sources)
    for index, source in enumerate(given):
        if not isinstance(source, FeatureSource):
            raise _not_a_source(f"sources[{index}]", source)
    return given


def _not_a_source(argument: str, value: object) -> JoinError:
    """The error for ``value`` given where a ``FeatureSource`` belongs, with what to pass."""
    found = type(value).__name__
    expected = "a FeatureSource or a list of them" if argument == "sources" else "a FeatureSource"
    if isinstance(value, DataFrame):
        hint = (
            " Wrap the DataFrame with its keys and time: "
            "FeatureSource(df, keys=['customer_id'], timestamp='feature_ts')."
        )
    elif isinstance(value, str):
        hint = _reference_hint(value)
    else:
        hint = f" Pass {expected} (FeatureSource(df, keys, timestamp))."
    return JoinError(
        f"{argument}: expected {expected}, found {found}.{hint}",
        argument=argument,
        expected="FeatureSource",
        found=found,
    )


def _reference_hint(text: str) -> str:
    """What to do with a feature reference given where the join wants a DataFrame."""
    return (
        f" {text!r} reads as a feature reference, which point_in_time_join does not look up: "
        "mesh.build_inference_set (as of one time) and mesh.build_training_set (a spine "
        "table) read referenced feature sets at their published versions, access-checked; "
        "here pass each table as a DataFrame, FeatureSource(df, keys, timestamp)."
    )


def require_batch(
    df: DataFrame, argument: str, where: str = "", error: type[MeshError] = JoinError
) -> None:
    """Refuse a streaming DataFrame (``spark.readStream``) before any job runs.

    The join reads the spine more than once (count, index or range jobs, then the join)
    and ranks each key's rows as a whole, which a stream cannot give; Spark's own error
    comes from the first job, naming neither the argument nor the way out. ``where`` prefixes
    the message; ``error`` is the ``MeshError`` raised (the inference API raises its
    ``SpineError``).
    """
    if df.isStreaming:
        raise error(
            f"{where}{argument}: a streaming DataFrame (spark.readStream) cannot be joined "
            "point in time; read the table as a batch DataFrame (spark.read), or, for a "
            "stream of spine rows, join each micro-batch: "
            "stream.writeStream.foreachBatch(lambda batch, batch_id: ...), the batch as the "
            "spine.",
            argument=argument,
            expected="batch DataFrame",
            found="streaming DataFrame",
        )


def spine_time_column(spine: DataFrame, spine_timestamp: object) -> str:
    """The spine's time column ``spine_timestamp`` names, as the spine spells it; checked to
    be a ``timestamp`` or ``timestamp_ntz`` column (names resolved as the session does)."""
    if not isinstance(spine, DataFrame):
        raise _not_a_frame("spine", spine)
    if not isinstance(spine_timestamp, str) or not spine_timestamp:
        found = repr(spine_timestamp) if isinstance(spine_timestamp, str) else None
        found = found or type(spine_timestamp).__name__
        raise JoinError(
            f"spine_timestamp: expected the name of the spine's time column, found {found}; "
            "pass its name (e.g. 'ts'), not a Column.",
            argument="spine_timestamp",
            expected="column name",
            found=found,
        )
    sensitive = case_sensitive(spine.sparkSession)
    name = _column_name(spine.columns, spine_timestamp, "spine_timestamp", "the spine", sensitive)
    t_type = _types(spine.schema)[name]
    if not isinstance(t_type, TIME_TYPES):
        raise JoinError(
            f"spine_timestamp: column `{name}` has type {t_type.simpleString()}, "
            "expected timestamp or timestamp_ntz; cast it (e.g. to_timestamp) before joining.",
            argument="spine_timestamp",
            column=name,
            expected="timestamp | timestamp_ntz",
            found=t_type.simpleString(),
        )
    return name


def resolve(
    spine: DataFrame, sources: Sequence[FeatureSource], spine_timestamp: str
) -> list[ResolvedSource]:
    """Validate spine and sources; return sources with their final output column names.

    Every column name given (keys, timestamps, features) is resolved as the session
    resolves names (see ``_column_name``); the resolved sources use the DataFrames' own
    spellings, and a source key spelled otherwise than its spine key is renamed to it.
    """
    if not isinstance(spine, DataFrame):
        raise _not_a_frame("spine", spine)
    if not sources:
        raise JoinError(
            "sources: expected at least one FeatureSource, found none.",
            argument="sources",
            expected="non-empty list of FeatureSource",
            found=[],
        )
    require_batch(spine, "spine")
    sensitive = case_sensitive(spine.sparkSession)
    check_plain_columns(spine.columns, "spine", sensitive)
    spine_timestamp = spine_time_column(spine, spine_timestamp)
    spine_types = _types(spine.schema)
    t_type = spine_types[spine_timestamp]

    resolved: list[ResolvedSource] = []
    for index, source in enumerate(sources):
        if not isinstance(source, FeatureSource):
            raise _not_a_source(f"sources[{index}]", source)
        label = source.name or f"sources[{index}]"
        if not isinstance(source.df, DataFrame):
            raise _not_a_frame(f"{label}.df", source.df)
        require_batch(source.df, f"{label}.df")
        types = _types(source.df.schema)
        name = partial(
            _column_name, source.df.columns, where=f"source {label}", sensitive=sensitive
        )

        mapped = source.spine_keys is not None
        spine_argument = f"{label}.spine_keys" if mapped else f"{label}.keys"
        keys = tuple(name(k, f"{label}.keys") for k in source.key_columns)
        _require_distinct(source.key_columns, keys, f"{label}.keys", sensitive)
        spine_keys = tuple(
            _column_name(spine.columns, k, spine_argument, "the spine", sensitive)
            for k in source.spine_key_columns
        )
        _require_distinct(source.spine_key_columns, spine_keys, spine_argument, sensitive)
        # Integer keys of other widths are matched as the spine's type (see _as_spine_type).
        # Keyed by the name the key has once matched (the spine's).
        retyped: dict[str, DataType] = {}
        for key, spine_key in zip(keys, spine_keys, strict=True):
            key_type = types[key]
            spine_key_type = spine_types[spine_key]
            if unorderable(key_type) or unorderable(spine_key_type):
                raise JoinError(
                    f"{label}.keys: key `{key}` ({key_type.simpleString()}) or the spine "
                    f"key `{spine_key}` ({spine_key_type.simpleString()}) holds a map or a "
                    "variant, which Spark cannot hash or compare for a join; key on "
                    "columns of other types (e.g. map_entries, to_json).",
                    argument=f"{label}.keys",
                    column=key,
                    expected="keys without map or variant types",
                    found=key_type.simpleString(),
                )
            if key_types_match(key_type, spine_key_type):
                if isinstance(spine_key_type, IntegralType) and key_type != spine_key_type:
                    retyped[spine_key] = spine_key_type
                continue
            _require_same_type(
                key_type, spine_key_type, key, f"{label}.keys", f"the spine key `{spine_key}`"
            )
        timestamp = name(source.timestamp, f"{label}.timestamp")
        _require_same_type(
            types[timestamp], t_type, timestamp, f"{label}.timestamp", "the spine timestamp type"
        )
        created = source.created_timestamp
        if created is not None:
            created = name(created, f"{label}.created_timestamp")
            _require_same_type(
                types[created], t_type, created, f"{label}.created_timestamp", "the spine timestamp"
            )
        if created == timestamp:
            # Known when it happened: the rules give what no created_ts gives, and the
            # reduced source would have the column twice.
            created = None
        reserved = {*keys, timestamp, *([created] if created else [])}
        if source.features is None:
            features = tuple(c for c in source.df.columns if c not in reserved)
        else:
            features = tuple(name(f, f"{label}.features") for f in source.features)
            _require_distinct(source.features, features, f"{label}.features", sensitive)
            folded = {fold_name(c, sensitive) for c in reserved}
            clashing = [f for f in features if fold_name(f, sensitive) in folded]
            if clashing:
                raise JoinError(
                    f"{label}.features: {clashing} are keys or timestamps, not features; "
                    "remove them from features.",
                    argument=f"{label}.features",
                    expected="non-key, non-timestamp columns",
                    found=clashing,
                )
        # Only the columns the join refers to: others may repeat without harm.
        used = {fold_name(c, sensitive) for c in (*reserved, *features)}
        referenced = [c for c in source.df.columns if fold_name(c, sensitive) in used]
        check_plain_columns(referenced, f"{label}.df", sensitive)
        unordered = [f for f in features if unorderable(types[f])]
        if unordered:
            raise JoinError(
                f"{label}.features: {unordered} hold maps or variants, which Spark cannot "
                "order, and the winning row is chosen by ordering its values; convert them "
                "(e.g. map_entries, to_json) or leave them out of features.",
                argument=f"{label}.features",
                expected="features without map or variant types",
                found=unordered,
            )
        if not features:
            raise JoinError(
                f"{label}.features: the source has no feature columns besides keys and "
                "timestamps; add features or drop the source.",
                argument=f"{label}.features",
                expected="at least one feature column",
                found=[],
            )
        df = source.df
        if spine_keys != keys:
            df = _match_spine_keys(df, label, keys, spine_keys, [*reserved, *features], sensitive)
        if retyped:
            df = _as_spine_type(df, retyped)
        prefix = source.prefix or ""
        resolved.append(
            ResolvedSource(
                index=index,
                label=label,
                df=df,
                keys=spine_keys,
                timestamp=timestamp,
                created_timestamp=created,
                gate_on_created=created is not None and source.exclude_not_yet_created,
                ttl=source.ttl_delta,
                features=features,
                outputs=tuple(prefix + f for f in features),
            )
        )
    return _disambiguate(resolved, sources, spine.columns, sensitive)


def _match_spine_keys(
    df: DataFrame,
    label: str,
    keys: tuple[str, ...],
    spine_keys: tuple[str, ...],
    used: Sequence[str],
    sensitive: bool,
) -> DataFrame:
    """The source's columns the join uses, its keys renamed to the spine's key names.

    The rest of the join then sees a source keyed like the spine. A spine key name that is
    also another column of the source (a feature or timestamp) would be two columns after the
    rename: refused.
    """
    own = {fold_name(k, sensitive) for k in keys}
    others = {fold_name(c, sensitive): c for c in used if fold_name(c, sensitive) not in own}
    folded = (fold_name(k, sensitive) for k in spine_keys)
    clashing = sorted(others[n] for n in folded if n in others)
    if clashing:
        raise JoinError(
            f"{label}.spine_keys: {clashing} are also feature or timestamp columns of the "
            f"source, which would repeat once the keys {list(keys)} are matched as "
            f"{list(spine_keys)}{_case_note(sensitive)}; rename them first (withColumnRenamed).",
            argument=f"{label}.spine_keys",
            expected="spine key names not used by the source's other columns",
            found=clashing,
        )
    renamed = dict(zip(keys, spine_keys, strict=True))
    rest = [c for c in dict.fromkeys(used) if c not in renamed]
    return df.select(*[col(k).alias(s) for k, s in renamed.items()], *[col(c) for c in rest])


def _disambiguate(
    resolved: list[ResolvedSource],
    sources: Sequence[FeatureSource],
    spine_columns: list[str],
    sensitive: bool,
) -> list[ResolvedSource]:
    """Final output names; a collision, as the session compares names, is a ``JoinError``.

    Two sources returning the same name: each named source involved gets ``<name>__``.
    """
    counts = Counter(fold_name(name, sensitive) for r in resolved for name in r.outputs)

    def repeated(output: str) -> bool:
        return counts[fold_name(output, sensitive)] > 1

    result = []
    for r, source in zip(resolved, sources, strict=True):
        if source.name and any(repeated(o) for o in r.outputs):
            outputs = tuple(f"{source.name}__{o}" if repeated(o) else o for o in r.outputs)
            r = ResolvedSource(**{**r.__dict__, "outputs": outputs})
        result.append(r)
    spine_names = {fold_name(c, sensitive): c for c in spine_columns}
    seen: dict[str, tuple[str, str]] = {}  # folded output -> (output, source label)
    note = _case_note(sensitive)
    for r in result:
        for output in r.outputs:
            folded = fold_name(output, sensitive)
            if folded in spine_names:
                other = spine_names[folded]
                raise JoinError(
                    f"{r.label}.features: output column `{output}` collides with the spine "
                    f"column `{other}`{note}; pass prefix= to the FeatureSource, leave the "
                    "feature out of features=, or rename one of them first "
                    "(withColumnRenamed, or select with an alias).",
                    argument=f"{r.label}.features",
                    column=output,
                    expected="feature names not in the spine",
                    found=output,
                    collides_with=other,
                    collides_in="spine",
                )
            if folded in seen:
                other, where = seen[folded]
                raise JoinError(
                    f"{r.label}.features: output column `{output}` collides with `{other}` "
                    f"returned by {where}{note}; give the sources a name= or a prefix=, or "
                    "rename one of the columns first (withColumnRenamed, or select with an "
                    "alias).",
                    argument=f"{r.label}.features",
                    column=output,
                    expected="unique feature names across sources",
                    found=output,
                    collides_with=other,
                    collides_in=where,
                )
            seen[folded] = (output, r.label)
    return result


def unorderable(data_type: DataType) -> bool:
    """Whether ``data_type`` is or holds a map or a variant (no order, no hash in Spark)."""
    if isinstance(data_type, (MapType, VariantType)):
        return True
    if isinstance(data_type, ArrayType):
        return unorderable(data_type.elementType)
    if isinstance(data_type, StructType):
        return any(unorderable(f.dataType) for f in data_type.fields)
    return False
