"""Shrink each source to the rows that can still win, before any shuffle, with a spine index.

The spine's (keys, time) columns are counted, then collected to the driver (two small jobs
over two or three columns) and turned into one lookup row per key (``spine_index``). Every
source row is broadcast-joined to its key's lookup row where it is read, placed in its
bucket (the first spine time at which it becomes eligible) by a constant-time expression,
and an aggregate keeps the greatest row per (key, bucket), map-side first, like any
``groupBy`` (a sort aggregate: Spark hash-aggregates fixed-width buffers only,
``max(struct)`` is not one), or entirely where the rows are when the source is already
hash-partitioned by its keys. Rows of keys the spine does not have, or known only after the
key's last spine time, are dropped, and so are rows a source's TTL has expired at their
bucket's spine time. The sorted pass then shuffles and sorts at most about one row per spine
time and source instead of the whole history, and no key can be hot on the source side any
more. Results are identical: a dropped row either never wins, or wins only where it is
expired, where the row that wins instead (older) is expired too, or there is none: null
features either way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    MapType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from mesh.join.bounds import TimeRange, micros_range
from mesh.join.columns import (
    AFTER,
    availability,
    col,
    ident,
    not_null,
    row_struct,
    within_ttl,
)
from mesh.join.layout import hash_partitioned_by
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
_GROUP = "__mesh_group"  # bucket number over all keys (negative: a row kept as is)
_WIN = "__mesh_win"  # the winning row of a bucket, as a struct
_START = "__mesh_start"  # position of the first spine time at or after the cell's start
_POS = "__mesh_pos"  # position of the row's bucket in the key's times (null: crowded cell)
_ID = "__mesh_id"  # a row id, for rows of crowded cells

_LOCAL_RELATION_THRESHOLD = "spark.sql.execution.arrow.localRelationThreshold"


def indexable(schema: StructType, timestamp: str, keys: Sequence[str] = ()) -> bool:
    """Indexed joins need ``timestamp`` times (``timestamp_ntz`` has no exact epoch form)
    and atomic key columns (the index factorizes the keys on the driver; structs, arrays
    and maps are not hashable there)."""
    return isinstance(schema[timestamp].dataType, TimestampType) and not any(
        isinstance(schema[k].dataType, (ArrayType, MapType, StructType)) for k in keys
    )


@dataclass(frozen=True)
class SpineScan:
    """What the spine's (keys, time) columns give a key set: its index, if small, and range."""

    index: SpineIndex | None  # None: more than ``max_rows`` rows with keys and time
    times: TimeRange | None  # None: no such row


def collect_spine_index(
    spine: DataFrame, keys: Sequence[str], spine_timestamp: str, max_rows: int
) -> SpineScan:
    """Index of the spine's (keys, time), and the range of its times.

    One small aggregate job counts the rows with keys and time and finds their range; only
    when there are at most ``max_rows`` are they collected (a second job) into the index.
    A larger spine is thus read once here, and never shipped to the driver, however large.
    """
    projected = spine.where(not_null([*keys, spine_timestamp])).select(
        *[col(k) for k in keys], F.unix_micros(col(spine_timestamp)).alias(_US)
    )
    stats = projected.selectExpr("count(1)", f"min({_US})", f"max({_US})").first()
    count, low, high = (0, None, None) if stats is None else tuple(stats)
    times = None if low is None or high is None else micros_range(int(low), int(high))
    if count > max_rows:
        return SpineScan(None, times)
    return SpineScan(build_index(projected.toArrow(), list(keys), _US), times)


def reduce_source(
    r: ResolvedSource, index: SpineIndex, strict: bool, lookup: DataFrame
) -> ResolvedSource:
    """The same source with only the rows that can win at some spine row.

    ``lookup`` is ``index.lookup`` as a DataFrame (see ``lookup_frame``), shared by the
    sources of one key set. Built from SQL text: a handful of JVM calls per source.
    """
    keys = [ident(k) for k in r.keys]
    # A source already hash-partitioned by its keys (as a repartition or a bucketed scan
    # leaves it) is aggregated where it is: grouped by the keys too, Spark needs no
    # exchange, and the reduced rows keep that partitioning for the sorted pass. Otherwise
    # by the group alone (the keys ride in the row struct): the sort before the aggregate
    # is then a radix sort on one long.
    kept = keys if hash_partitioned_by(r.df, r.keys) else []
    winner = row_struct(r.timestamp, r.created_timestamp, r.features, () if kept else r.keys)
    # The sorted pass's availability; +1 µs for rows that must be known strictly before t.
    avail, tag = availability(r.timestamp, r.gate, strict)
    a = f"unix_micros({avail}) + CASE WHEN {tag} = {AFTER} THEN 1 ELSE 0 END"

    rows = r.df.where(not_null([*r.keys, r.timestamp])).selectExpr(
        *keys, f"{a} AS {_US}", f"{winner} AS {_WIN}"
    )
    renamed = lookup.selectExpr(
        *[f"{ident(k)} AS __mesh_lk{j}" for j, k in enumerate(r.keys)],
        BASE,
        T_MIN,
        T_MAX,
        WIDTH,
        TIMES,
        STARTS,
    )
    same_key = " AND ".join(f"{ident(k)} = __mesh_lk{j}" for j, k in enumerate(r.keys))
    placed = (
        rows.join(F.broadcast(renamed), F.expr(same_key), "inner")
        .where(f"{_US} <= {T_MAX}")
        .selectExpr(*kept, _WIN, _US, BASE, TIMES, f"{_start()} AS {_START}")
        # The id is nondeterministic, so the optimizer keeps this projection below the
        # filter: the search runs once per row, not once more inside the filter.
        .selectExpr(
            *kept,
            _WIN,
            BASE,
            TIMES,
            f"{_bucket()} AS {_POS}",
            f"monotonically_increasing_id() AS {_ID}",
        )
    )
    if r.ttl is not None:
        # A row already expired at the first spine time it is eligible at is expired at
        # every later one; as a winner it gives nulls, and so does any row it would hide
        # (a lower winner has an older feature_ts). Dropping it changes no output.
        at_bucket = f"timestamp_micros(get({TIMES}, {_POS}))"
        valid = within_ttl(f"{_WIN}.ft", at_bucket, r.ttl, TimestampType())
        placed = placed.where(f"{_POS} IS NULL OR {valid}")
    # One long per (key, spine time) bucket. A row of a crowded cell gets a group of its own
    # (negative id): kept as is.
    group = f"coalesce({BASE} + {_POS}, -({_ID} + 1))"
    best = (
        placed.selectExpr(f"{group} AS {_GROUP}", *kept, _WIN)
        .groupBy(_GROUP, *kept)
        .agg(F.expr(f"max({_WIN}) AS {_WIN}"))
    )
    # The grouping keys themselves, when grouped by them: their partitioning stays known.
    columns = list(kept) or [f"{_WIN}.k{j} AS {ident(k)}" for j, k in enumerate(r.keys)]
    columns.append(f"{_WIN}.ft AS {ident(r.timestamp)}")
    if r.created_timestamp is not None:
        columns.append(f"{_WIN}.ct AS {ident(r.created_timestamp)}")
    columns += [f"{_WIN}.v{j} AS {ident(f)}" for j, f in enumerate(r.features)]
    return dataclasses.replace(r, df=best.selectExpr(*columns))


def _start() -> str:
    """SQL: the position in ``TIMES`` of the first spine time of the row's cell.

    Safe for any row, also one after ``T_MAX`` (whose cell is past the last: null), since
    the optimizer may evaluate it before the filter that drops such rows.
    """
    cell = f"least(greatest({_US} - {T_MIN}, 0) div {WIDTH}, size({STARTS}))"
    return f"get({STARTS}, CAST({cell} AS INT))"


def _bucket() -> str:
    """SQL: first position ``p >= start`` with ``times[p] >= us``; null if the cell is crowded.

    One ``CASE`` over ``SLOTS`` positions.
    """
    branches = " ".join(
        f"WHEN get({TIMES}, {_START} + {slot}) >= {_US} THEN {_START} + {slot}"
        for slot in range(SLOTS)
    )
    return f"(CASE {branches} END)"


def lookup_frame(spine: DataFrame, index: SpineIndex, keys: Sequence[str]) -> DataFrame:
    """``index.lookup`` as a DataFrame whose key columns have the spine's types.

    The lookup is made an RDD of Arrow batches, never a local relation: Spark keeps Arrow
    data under ``spark.sql.execution.arrow.localRelationThreshold`` (48 MB) as rows inside
    the plan, and the analyzer and optimizer then walk and rewrite those rows at every step
    (about 2 s of planning for 100k keys, measured; the plan stays small this way).
    """
    spark = spine.sparkSession
    # Arrow's zone-less timestamps would be read as the session zone's local times (and a
    # key in a daylight-saving gap or overlap refused): a timestamp_ntz key is given as one.
    schema = StructType(
        [
            StructField(f.name, TimestampNTZType(), f.nullable)
            if f.name in keys and isinstance(spine.schema[f.name].dataType, TimestampNTZType)
            else f
            for f in from_arrow_schema(index.lookup.schema)
        ]
    )
    if index.lookup.num_rows == 0:  # no spine row with keys and time
        # Spark Connect infers no schema from an empty Arrow table: given, the same for both.
        frame = spark.createDataFrame([], schema)
    else:
        with _arrow_never_local(spark):
            frame = spark.createDataFrame(index.lookup, schema)
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


__all__ = [
    "INDEX_MAX_ROWS",
    "SpineScan",
    "collect_spine_index",
    "indexable",
    "lookup_frame",
    "reduce_source",
]
