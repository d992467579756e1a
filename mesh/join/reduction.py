"""Shrink each source to the rows that can still win, before any shuffle, with a spine index.

The spine's (keys, time) columns are collected to the driver (one job over two or three
columns) and turned into one lookup row per key (``spine_index``). Every source row is
broadcast-joined to its key's lookup row where it is read, placed in its bucket (the first
spine time at which it becomes eligible) by a constant-time expression, and an aggregate
keeps the greatest row per (key, bucket), map-side first, like any ``groupBy`` (a sort
aggregate: Spark hash-aggregates fixed-width buffers only, ``max(struct)`` is not one).
Rows of keys the spine does not have, or known only after the key's last spine time, are
dropped. The sorted pass then shuffles and sorts at most about one row per spine time and
source instead of the whole history, and no key can be hot on the source side any more.
Results are identical: a dropped row could never be a winner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import reduce

from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType, TimestampType

from mesh.join.columns import AFTER, availability, col, keys_not_null
from mesh.join.resolve import ResolvedSource
from mesh.join.spine_index import (
    BASE,
    SLOTS,
    STARTS,
    T_MAX,
    T_MIN,
    TIMES,
    WIDTH,
    SpineIndex,
    build_index,
)

# Spines with more rows than this are joined without an index by default.
INDEX_MAX_ROWS = 5_000_000

_US = "__mesh_us"  # epoch micros of a spine time / of a source row's availability
_POS = "__mesh_pos"  # bucket: position of the first spine time the row is eligible at
_GROUP = "__mesh_group"  # bucket number over all keys (negative: a row kept as is)
_WIN = "__mesh_win"  # the winning row of a bucket, as a struct
_START = "__mesh_start"  # position of the first spine time at or after the cell's start
_CELL = "__mesh_cell"  # cell of the key's time range the row's availability falls in

_LOCAL_RELATION_THRESHOLD = "spark.sql.execution.arrow.localRelationThreshold"


def indexable(schema: StructType, timestamp: str) -> bool:
    """Indexed joins need ``timestamp`` times (``timestamp_ntz`` has no exact epoch form)."""
    return isinstance(schema[timestamp].dataType, TimestampType)


def collect_spine_index(
    spine: DataFrame, keys: Sequence[str], spine_timestamp: str, max_rows: int
) -> SpineIndex | None:
    """Index of the spine's (keys, time), or None when it has more than ``max_rows`` rows."""
    projected = spine.where(keys_not_null(keys) & col(spine_timestamp).isNotNull()).select(
        *[col(k) for k in keys], F.unix_micros(col(spine_timestamp)).alias(_US)
    )
    table = projected.limit(max_rows + 1).toArrow()
    if table.num_rows > max_rows:
        return None
    return build_index(table, list(keys), _US)


def reduce_source(
    r: ResolvedSource, index: SpineIndex, strict: bool, lookup: DataFrame
) -> ResolvedSource:
    """The same source with only the rows that can win at some spine row.

    ``lookup`` is ``index.lookup`` as a DataFrame (see ``lookup_frame``), shared by the
    sources of one key set.
    """
    ft = col(r.timestamp)
    ct = col(r.created_timestamp) if r.created_timestamp is not None else None
    # The keys ride at the end of the struct: equal within a bucket, they never decide.
    keys = [col(k).alias(f"k{j}") for j, k in enumerate(r.keys)]
    features = [col(f).alias(f"v{j}") for j, f in enumerate(r.features)]
    times = [ft.alias("ft"), *([ct.alias("ct")] if ct is not None else [])]
    winner = F.struct(*times, *features, *keys)
    # The sorted pass's availability; +1 µs for rows that must be known strictly before t.
    avail, tag = availability(ft, ct if r.gate_on_created else None, strict)
    a = F.unix_micros(avail) + F.when(tag == AFTER, 1).otherwise(0)

    rows = r.df.where(keys_not_null(r.keys) & ft.isNotNull()).select(
        *[col(k) for k in r.keys], a.alias(_US), winner.alias(_WIN)
    )
    renamed = lookup.select(
        *[col(k).alias(f"__mesh_lk{j}") for j, k in enumerate(r.keys)],
        *[F.col(c) for c in (BASE, T_MIN, T_MAX, WIDTH, TIMES, STARTS)],
    )
    same_key = reduce(
        lambda x, y: x & y, [col(k) == F.col(f"__mesh_lk{j}") for j, k in enumerate(r.keys)]
    )
    placed = (
        rows.join(F.broadcast(renamed), same_key, "inner")
        .where(F.col(_US) <= F.col(T_MAX))
        .withColumn(_CELL, F.expr(f"cast(greatest({_US} - {T_MIN}, 0) div {WIDTH} as int)"))
        .withColumn(_START, F.get(F.col(STARTS), F.col(_CELL)))
        .withColumn(_POS, _bucket())
    )
    # One long per (key, spine time) bucket: the sort before the aggregate is a radix sort
    # on it. A row of a crowded cell gets a group of its own (negative id): kept as is.
    group = F.coalesce(F.col(BASE) + F.col(_POS), -(F.monotonically_increasing_id() + F.lit(1)))
    best = (
        placed.select(group.alias(_GROUP), F.col(_WIN)).groupBy(_GROUP).agg(F.max(_WIN).alias(_WIN))
    )
    win = F.col(_WIN)
    columns = [win.getField(f"k{j}").alias(k) for j, k in enumerate(r.keys)]
    columns.append(win.getField("ft").alias(r.timestamp))
    if r.created_timestamp is not None:
        columns.append(win.getField("ct").alias(r.created_timestamp))
    columns += [win.getField(f"v{j}").alias(f) for j, f in enumerate(r.features)]
    return dataclasses.replace(r, df=best.select(*columns))


def _bucket() -> Column:
    """First position ``p >= start`` with ``times[p] >= us``; null when the cell is crowded.

    One SQL ``CASE`` over ``SLOTS`` positions, parsed once by the JVM (as Python column
    objects it costs a round trip per node, about 0.1 s per source).
    """
    branches = " ".join(
        f"WHEN get({TIMES}, {_START} + {slot}) >= {_US} THEN {_START} + {slot}"
        for slot in range(SLOTS)
    )
    return F.expr(f"CASE {branches} END")


def lookup_frame(spine: DataFrame, index: SpineIndex, keys: Sequence[str]) -> DataFrame:
    """``index.lookup`` as a DataFrame whose key columns have the spine's types.

    The lookup is made an RDD of Arrow batches, never a local relation: Spark keeps Arrow
    data under ``spark.sql.execution.arrow.localRelationThreshold`` (48 MB) as rows inside
    the plan, and the analyzer and optimizer then walk and rewrite those rows at every step
    (about 2 s of planning for 100k keys, measured; the plan stays small this way).
    """
    spark = spine.sparkSession
    with _arrow_never_local(spark):
        frame = spark.createDataFrame(index.lookup)
    casts = [col(k).cast(spine.schema[k].dataType).alias(k) for k in keys]
    return frame.select(*casts, *[F.col(c) for c in (BASE, T_MIN, T_MAX, WIDTH, TIMES, STARTS)])


@contextmanager
def _arrow_never_local(spark: SparkSession) -> Iterator[None]:
    """Arrow data becomes an RDD, not a local relation, inside; the session's value after.

    A session that refuses the setting (some managed Spark Connect services) keeps the
    local relation: the same rows and result, only slower planning.
    """
    previous = spark.conf.get(_LOCAL_RELATION_THRESHOLD, None)
    try:
        spark.conf.set(_LOCAL_RELATION_THRESHOLD, "0")
    except PySparkException:
        yield
        return
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(_LOCAL_RELATION_THRESHOLD)
        else:
            spark.conf.set(_LOCAL_RELATION_THRESHOLD, previous)


__all__ = ["INDEX_MAX_ROWS", "collect_spine_index", "indexable", "lookup_frame", "reduce_source"]
