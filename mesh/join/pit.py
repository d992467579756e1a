"""Point-in-time join: a union, one shuffle per key set and one sorted pass.

No range join and no row explosion. For every key set, spine rows and the rows of every
source keyed by that set are unioned, hash-partitioned by the keys and sorted by the time at
which each row becomes *known* (``AVAIL``). A source row is eligible at spine time ``t`` iff
``feature_ts <= t`` and (when gated) ``created_ts <= t``, i.e. iff
``greatest(feature_ts, created_ts) <= t``. Eligibility therefore only grows with ``t``, and
the winner at a spine row is a running ``max(struct(feature_ts, created_ts, features...))``
over the rows sorted before it: the struct order *is* the tie-breaking rule.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from functools import cache, partial, reduce
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from mesh.errors import JoinError
from mesh.join.bounds import TimeRange, prune, spine_range
from mesh.join.columns import (
    AT_SPINE,
    AVAIL,
    BOUNDS,
    BUCKET,
    SPINE,
    TAG,
    availability,
    col,
    ident,
    non_null_default,
    not_null,
    prefix_of,
    row_struct,
    src,
    within_ttl,
)
from mesh.join.estimate import estimated_rows
from mesh.join.layout import presorted
from mesh.join.reduction import (
    INDEX_MAX_ROWS,
    SpineScan,
    collect_spine_index,
    indexable,
    lookup_frame,
    reduce_source,
)
from mesh.join.resolve import ResolvedSource, resolve, source_list, spine_time_column
from mesh.join.skew import (
    SkewConfig,
    assign_buckets,
    check_hot_keys,
    find_hot_keys,
    normalise_skew,
)
from mesh.join.source import FeatureSource, require_bool
from mesh.join.spine_index import SpineIndex

STRATEGIES = ("auto", "indexed", "sorted")

# "auto" indexes a key set only when its sources' estimated rows are at least this many
# times the spine's rows. Measured on Parquet sources (benchmarks/README_join.md, "`auto`
# indexes only sources several times the spine's size"):
# estimated 7.4x, the index 1.3x faster; 3.0x, both the same; 1.9x, the sorted pass 1-18%
# faster (warm); 1.5x, 17-21%.
INDEX_MIN_RATIO = 3


def point_in_time_join(
    spine: DataFrame,
    sources: FeatureSource | Sequence[FeatureSource],
    spine_timestamp: str,
    *,
    strict: bool = False,
    skew: SkewConfig | Sequence[Mapping[str, Any]] | bool | None = None,
    strategy: str = "auto",
    index_max_rows: int = INDEX_MAX_ROWS,
) -> DataFrame:
    """Join feature values onto ``spine`` as they were known at each spine row's time.

    This is a backward as-of join (like ``DataFrame._joinAsOf`` with ``direction="backward"``)
    generalised to several sources, late-arriving data and expiry. For each spine row with
    keys ``k`` and time ``t = spine[spine_timestamp]``, and for each source ``F``:

    1. candidates are rows of ``F`` with keys equal to ``k`` and ``feature_ts <= t``
       (``strict=True``: ``feature_ts < t``);
    2. if ``F`` has ``created_timestamp`` and ``exclude_not_yet_created`` (the default), rows
       with ``created_ts > t`` are excluded: they had not arrived yet (``created_ts == t`` is
       known, also in strict mode);
    3. the winner is the candidate with the greatest ``feature_ts``; ties are broken by the
       greatest ``created_ts`` (a null ``created_ts`` loses to any value and is treated as
       known at ``feature_ts``); rows equal on both are ordered by their feature values so
       the result is deterministic;
    4. if ``t - feature_ts > ttl`` the winner has expired and the features are null (a row
       exactly ``ttl`` old is still valid). With ``timestamp`` times the age is an exact
       duration in any session time zone (a 7-day TTL is 168 hours, also across a
       daylight-saving change); with ``timestamp_ntz`` times, the local date-times' difference;
    5. all features of ``F`` come from the winning row: a null feature in the winner stays
       null, it is never filled from an older row;
    6. no candidate, a null key or a null ``t`` give null features.

    Source rows with a null key or null ``feature_ts`` are ignored. Output: every spine row
    exactly once (duplicates kept; row order is not preserved), the spine columns unchanged
    in name, type (nullability and metadata included), value and order, followed by each
    source's features in source order (named ``prefix + feature``; when two sources return
    the same name, each named source uses ``<name>__<feature>``). Names are compared as the
    session compares them: without regard to case unless ``spark.sql.caseSensitive`` is
    true, so a feature ``amount`` next to a spine column ``Amount`` is a collision (a
    ``JoinError`` naming both), and so are spine columns, or columns of one source the join
    refers to, that differ only in case. The names passed (keys, timestamps, features) are
    resolved the same way, and the output spells each column as its DataFrame does.

    Sources may be keyed by different key sets (e.g. ``customer_id``, ``merchant_id`` or
    both); key columns must have the same names (or see ``spine_keys``) and types in the
    spine, except that integer keys of other widths (``int`` and ``bigint``, ...) match by
    value, as in a Spark equi-join: a source key the spine key's type cannot hold matches
    nothing. Timestamps must be ``timestamp`` or ``timestamp_ntz``, the same type in spine
    and sources.

    Cost: per key set, one hash shuffle of the (growing) spine and of its sources and one
    sort (none for inputs already hash-partitioned by the keys); no range join, no row
    explosion. ``strategy`` decides what is shuffled:

    - ``"indexed"``: the spine's (keys, time) columns are counted and collected to the driver
      (two small jobs) into a per-key index of its distinct times; every source row is
      placed, where it is read, in the bucket of the first spine time at which it becomes
      eligible (a broadcast lookup), and a map-side aggregate keeps the greatest row per
      bucket: the only one of them that can ever win. Rows of keys absent from the spine or
      known only after its last time are dropped, and so are rows the source's ``ttl`` has
      expired at that first spine time (they could only give nulls). Only those rows are
      shuffled and sorted (``mesh.join.reduction``).
    - ``"sorted"``: every source row is shuffled and sorted.
    - ``"auto"`` (default): ``"indexed"`` when the spine times are ``timestamp`` (not
      ``timestamp_ntz``) and the spine has at most ``index_max_rows`` rows with non-null
      keys and time, and no more than a third of the key set's sources' rows as Spark's
      plan statistics estimate them (file sizes for Parquet and Delta scans; a source
      without an estimate, e.g. built from Python data, counts as large); else
      ``"sorted"`` (such a spine is counted, never collected). The index costs in
      proportion to the spine and saves in proportion to the sources.

    With either, a source is first filtered to the spine's time range ``[t_min, t_max]``:
    ``feature_ts <= t_max`` (and ``created_ts <= t_max`` or null, when it gates) and, with a
    ``ttl``, ``feature_ts >= t_min - ttl``; no other row can be eligible and unexpired at any
    spine row. The bounds are literals (from the count job of ``"indexed"`` and ``"auto"``,
    or one small job over the spine for ``"sorted"``), so a Parquet or Delta scan skips the
    files and row groups outside them (``mesh.join.bounds``). The spine is therefore read
    more than once (count, index or range jobs, then the join): a spine whose rows change
    between reads (an unseeded ``rand()``, a table overwritten meanwhile) must be cached or
    checkpointed first.

    ``skew`` controls hot keys (see ``SkewConfig``): ``None`` detects them (from a sample,
    or from the spine index, where only the spine can be skewed), ``False`` disables, a
    list like ``[{"customer_id": 42}]`` names them. Results are identical in every case.

    Raises:
        JoinError: a column is missing, types differ, an output name collides, the spine
            or a source is a streaming DataFrame, an argument has the wrong kind
            (``strict`` not a bool, ``index_max_rows`` not a non-negative int), or
            ``strategy="indexed"`` cannot be used (spine too large, ``timestamp_ntz``
            times).
    """
    require_bool(strict, "strict")
    index_max_rows = _row_limit(index_max_rows)
    if strategy not in STRATEGIES:
        raise JoinError(
            f"strategy: expected one of {list(STRATEGIES)}, found {strategy!r}.",
            argument="strategy",
            expected=" | ".join(STRATEGIES),
            found=strategy,
        )
    resolved = resolve(spine, source_list(sources), spine_timestamp)
    # As the spine spells it (the session may resolve names in any case).
    spine_timestamp = spine_time_column(spine, spine_timestamp)
    skew_config = normalise_skew(skew)

    groups: dict[tuple[str, ...], list[ResolvedSource]] = {}
    for r in resolved:
        groups.setdefault(r.keys, []).append(r)
    if skew_config is not None:
        check_hot_keys(skew_config, list(groups), spine)

    result = spine
    # The whole spine's time range: one small job, at most once, for key sets not scanned
    # by _spine_index ("sorted", timestamp_ntz times).
    whole_range = cache(partial(spine_range, spine, spine_timestamp))
    for keys, group in groups.items():
        scan = None
        if strategy != "sorted":
            frames = [r.df for r in group]
            scan = _spine_index(spine, keys, spine_timestamp, strategy, index_max_rows, frames)
        index = scan.index if scan is not None else None
        times = scan.times if scan is not None else whole_range()
        if times is not None:
            group = [prune(r, times) for r in group]
        # Sample the original spine, not `result`: that would recompute earlier key sets.
        spine_times = spine.select(*[col(k) for k in keys], col(spine_timestamp).alias(AVAIL))
        hot = None
        if index is not None:
            lookup = lookup_frame(spine, index, keys)
            group = [reduce_source(r, index, strict, lookup) for r in group]
            if skew_config is not None:
                hot = _hot_spine_keys(spine_times, index, keys, len(group), skew_config)
        elif skew_config is not None:
            sources_times = [
                r.df.select(*[col(k) for k in keys], col(r.timestamp).alias(AVAIL)) for r in group
            ]
            hot = find_hot_keys([spine_times, *sources_times], keys, skew_config)
        result = _join_key_set(result, group, keys, spine_timestamp, strict, hot, times)

    outputs = [o for r in resolved for o in r.outputs]
    spine_cols = [_keep_nullability(f) for f in spine.schema.fields]
    joined = result.selectExpr(*spine_cols, *[ident(o) for o in outputs])
    return _exact_spine_types(joined, spine.schema)


def _row_limit(value: object) -> int:
    """``index_max_rows`` checked: a row count, not a bool, a float or a negative number."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0:
        return int(value)
    raise JoinError(
        f"index_max_rows: expected a non-negative integer (a number of spine rows), found "
        f"{value!r} ({type(value).__name__}); pass e.g. index_max_rows={INDEX_MAX_ROWS:_}, "
        "or strategy='sorted' to never index the spine.",
        argument="index_max_rows",
        expected="int >= 0",
        found=value,
    )


def _auto_index_limit(sources: Sequence[DataFrame], max_rows: int) -> int:
    """Most spine rows ``"auto"`` indexes: ``max_rows``, and the sources' rows / the ratio.

    The index costs in proportion to the spine (collected, broadcast, every bucket a row
    of the sorted pass) and saves in proportion to the sources' rows it drops. A source
    Spark has no estimate for (Python data, an RDD, Spark Connect) leaves ``max_rows``
    alone, as before.
    """
    total = 0
    for df in sources:
        rows = estimated_rows(df)
        if rows is None:
            return max_rows
        total += rows
    return min(max_rows, total // INDEX_MIN_RATIO)


def _spine_index(
    spine: DataFrame,
    keys: tuple[str, ...],
    spine_timestamp: str,
    strategy: str,
    max_rows: int,
    sources: Sequence[DataFrame],
) -> SpineScan | None:
    """The key set's spine index and range; None for ``timestamp_ntz`` times (not scanned).

    ``"auto"`` indexes at most ``_auto_index_limit(sources, max_rows)`` rows.
    """
    if not indexable(spine.schema, spine_timestamp, keys):
        if strategy == "indexed":
            raise JoinError(
                "strategy='indexed': needs timestamp (not timestamp_ntz) times and keys of "
                f"atomic types (keys: {list(keys)}); use strategy='sorted' or cast the times "
                "to timestamp.",
                argument="strategy",
                expected="timestamp times",
                found=spine.schema[spine_timestamp].dataType.simpleString(),
            )
        return None
    if strategy == "auto":
        max_rows = _auto_index_limit(sources, max_rows)
    scan = collect_spine_index(spine, keys, spine_timestamp, max_rows)
    if scan.index is None and strategy == "indexed":
        raise JoinError(
            f"strategy='indexed': the spine has more than {max_rows:,} rows with keys "
            f"{list(keys)}; raise index_max_rows or use strategy='sorted'.",
            argument="strategy",
            expected=f"spine <= {max_rows} rows",
            found=strategy,
        )
    return scan


def _hot_spine_keys(
    spine_times: DataFrame,
    index: SpineIndex,
    keys: tuple[str, ...],
    sources: int,
    config: SkewConfig,
) -> DataFrame | None:
    """Hot keys of a reduced join: only the spine can be skewed, and the index counts it.

    After the reduction a key holds at most about ``spine rows x (1 + sources)`` rows, so
    keys are judged on that estimate, exactly, without sampling; cut points come from the
    spine's times (a second small job over the spine only).
    """
    if config.hot_keys is None:
        load = index.counts * (1 + sources)
        partitions = int(spine_times.sparkSession.conf.get("spark.sql.shuffle.partitions") or 200)
        limit = max(config.min_rows, load.sum() / partitions * config.partition_factor)
        heavy = [int(i) for i in load.argsort()[::-1][: config.max_hot_keys] if load[i] >= limit]
        if not heavy:
            return None
        rows = index.lookup.select(list(keys)).take(heavy).to_pylist()
        config = dataclasses.replace(config, hot_keys=rows, sample_fraction=1.0)
    return find_hot_keys([spine_times], keys, config)


def _union_parts(
    spine: DataFrame,
    group: list[ResolvedSource],
    keys: tuple[str, ...],
    spine_timestamp: str,
    strict: bool,
) -> tuple[DataFrame, list[DataFrame]]:
    """The spine and each source as rows (keys, AVAIL, TAG, own struct): one select each.

    A part has only its own struct column; ``_union`` fills the others with typed nulls.
    """
    # Keys re-aliased: a table's columns carry its name as qualifier, its bucketed scan's
    # partitioning does not, and Spark's union maps its inputs' partitionings through
    # exact attribute equality. An alias's attribute is the same in the output and in the
    # partitioning projected through it, so a union of inputs bucketed (or repartitioned)
    # by the keys stays known as partitioned by them.
    key_cols = [f"{ident(k)} AS {ident(k)}" for k in keys]
    spine_part = spine.selectExpr(
        *key_cols,
        f"{ident(spine_timestamp)} AS {AVAIL}",
        f"CAST({AT_SPINE} AS TINYINT) AS {TAG}",
        "struct(" + ", ".join(ident(c) for c in spine.columns) + f") AS {SPINE}",
    )
    source_parts = []
    for r in group:
        avail, tag = availability(r.timestamp, r.gate, strict)
        part = r.df.where(not_null([*keys, r.timestamp])).selectExpr(
            *key_cols,
            f"{avail} AS {AVAIL}",
            f"CAST({tag} AS TINYINT) AS {TAG}",
            f"{row_struct(r.timestamp, r.created_timestamp, r.features)} AS {src(r.index)}",
        )
        source_parts.append(part)
    return spine_part, source_parts


def _union(parts: Sequence[DataFrame]) -> DataFrame:
    """Union by name; a column a part lacks is null there, typed by the JVM."""
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)


def _join_key_set(
    spine: DataFrame,
    group: list[ResolvedSource],
    keys: tuple[str, ...],
    spine_timestamp: str,
    strict: bool,
    hot: DataFrame | None,
    times: TimeRange | None,
) -> DataFrame:
    spine_part, source_parts = _union_parts(spine, group, keys, spine_timestamp, strict)
    union = _union([spine_part, *source_parts])

    partition = list(keys)
    if hot is not None:
        union = assign_buckets(union, hot, keys)
        partition.append(BUCKET)
    union = presorted(union, keys, partition, times, part=spine_part)
    by = ", ".join(ident(c) for c in partition)
    running = (
        f"OVER (PARTITION BY {by} ORDER BY {AVAIL} ASC NULLS FIRST, {TAG} "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    carried = [SPINE, AVAIL, TAG, *[ident(k) for k in keys]]
    if hot is not None:
        carried.append(BUCKET)
    ran = union.selectExpr(
        *carried, *[f"max({src(r.index)}) {running} AS {src(r.index)}" for r in group]
    ).where(f"{TAG} = {AT_SPINE}")

    winners = {r.index: src(r.index) for r in group}
    if hot is not None:
        ran = _add_earlier_buckets(ran, source_parts, hot, group, keys)
        # max is associative: max(earlier buckets, this bucket so far) is the global answer.
        winners = {r.index: f"greatest({src(r.index)}, {prefix_of(r.index)})" for r in group}

    # A key column comes from the union's own key, which holds the spine row's key: the
    # attribute the sorted pass is partitioned by, so a groupBy or window by the keys on the
    # result needs no shuffle (one taken from the struct is a new attribute to Spark). Only
    # where the union kept the spine's type (a source's wider key type widens the union's).
    union_types = {f.name: f.dataType for f in union.schema.fields}
    out = [
        ident(c)
        if c in keys and union_types[c] == spine.schema[c].dataType
        else f"{SPINE}.{ident(c)} AS {ident(c)}"
        for c in spine.columns
    ]
    time_type = spine.schema[spine_timestamp].dataType
    for r in group:
        winner = f"({winners[r.index]})"
        valid = f"{winner} IS NOT NULL AND {AVAIL} IS NOT NULL"
        if r.ttl is not None:
            valid += f" AND {within_ttl(f'{winner}.ft', AVAIL, r.ttl, time_type)}"
        out += [
            f"CASE WHEN {valid} THEN {winner}.v{j} END AS {ident(o)}"
            for j, o in enumerate(r.outputs)
        ]
    return ran.selectExpr(*out)


def _add_earlier_buckets(
    ran: DataFrame,
    source_parts: list[DataFrame],
    hot: DataFrame,
    group: list[ResolvedSource],
    keys: tuple[str, ...],
) -> DataFrame:
    """Per spine row of a hot key: max of each source over all *earlier* buckets."""
    sources_only = assign_buckets(_union(source_parts), hot, keys, "inner")
    bucketed = sources_only.select(
        *[col(k) for k in keys], F.col(BUCKET), *[F.col(src(r.index)) for r in group]
    )
    # Every bucket of every hot key gets a row, also buckets without source rows: a spine
    # row in such a bucket still needs the max over the buckets before it.
    all_buckets = hot.select(
        *[col(k) for k in keys],
        F.explode(F.sequence(F.lit(0), F.size(BOUNDS))).alias(BUCKET),
        *[
            F.lit(None).cast(bucketed.schema[src(r.index)].dataType).alias(src(r.index))
            for r in group
        ],
    )
    totals = (
        bucketed.union(all_buckets)
        .groupBy(*[col(k) for k in keys], F.col(BUCKET))
        .agg(*[F.max(src(r.index)).alias(src(r.index)) for r in group])
    )
    earlier = (
        Window.partitionBy(*[col(k) for k in keys])
        .orderBy(F.col(BUCKET))
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    prefix = totals.select(
        *[col(k).alias(f"__mesh_pk{j}") for j, k in enumerate(keys)],
        F.col(BUCKET).alias("__mesh_pb"),
        *[F.max(src(r.index)).over(earlier).alias(prefix_of(r.index)) for r in group],
    )
    condition = reduce(
        lambda a, b: a & b,
        [col(k) == F.col(f"__mesh_pk{j}") for j, k in enumerate(keys)],
        F.col(BUCKET) == F.col("__mesh_pb"),
    )
    return ran.join(F.broadcast(prefix), condition, "left")


def _keep_nullability(field: StructField) -> str:
    """SQL for the spine column ``field``; a non-nullable one stays non-nullable in the output.

    The union with source rows makes every carried column nullable in Spark's schema even
    though spine rows never hold a null there. ``coalesce`` with a non-null constant of the
    type is a no-op on the values and restores the flag, nested ones included.
    """
    c = ident(field.name)
    default = None if field.nullable else non_null_default(field.dataType)
    return c if default is None else f"coalesce({c}, {default}) AS {c}"


def _exact_spine_types(joined: DataFrame, spine: StructType) -> DataFrame:
    """``joined`` with each spine column's type and metadata exactly as in ``spine``.

    ``coalesce`` (``_keep_nullability``) returns a column without metadata, and its type
    without the metadata of nested fields; a cast to the spine's type and an alias with its
    metadata give both back. Columns that kept them are left alone.
    """
    differing = {f.name: f for f in spine.fields if joined.schema[f.name] != f}
    if not differing:
        return joined
    # A select, not withColumns: Spark Connect's withColumns drops an alias's metadata.
    return joined.select(
        *[
            col(c).cast(differing[c].dataType).alias(c, metadata=differing[c].metadata)
            if c in differing
            else col(c)
            for c in joined.columns
        ]
    )


__all__ = ["point_in_time_join"]
