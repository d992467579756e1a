"""Hot keys: split one entity's timeline into time buckets so its work spreads over tasks.

A hot key's rows (spine and source alike) get a bucket number from cut points on the
availability time, so bucket order is time order and rows with equal time share a bucket.
The running max then runs per (key, bucket); a small aggregate gives each bucket the max of
every source row in earlier buckets, and ``greatest`` of the two is the exact answer because
max is associative. Non-hot rows get bucket 0 and behave exactly as without skew handling.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, LongType, StructField, StructType

from mesh.errors import JoinError
from mesh.join.columns import AVAIL, BOUNDS, BUCKET, col, epoch_micros, ident, not_null


@dataclass(frozen=True)
class SkewConfig:
    """How the join finds and splits hot keys.

    Args:
        hot_keys: explicit hot keys, each a mapping of key column to value, e.g.
            ``[{"customer_id": 42}]``; a mapping applies to the sources keyed by exactly
            those columns. ``None`` detects hot keys from a sample.
        sample_fraction: fraction of spine and source rows sampled to count keys and place
            bucket cut points (deterministic with ``seed``).
        min_rows: estimated rows (spine + sources) at which a key counts as hot.
        partition_factor: a key also has to hold more than this many times the average
            rows per shuffle partition: smaller keys are no stragglers, splitting them only
            costs time.
        rows_per_bucket: target rows per time bucket of a hot key.
        max_buckets: most buckets one hot key is split into.
        max_hot_keys: most hot keys split per key set (the largest are kept).
        seed: sampling seed.
    """

    hot_keys: Sequence[Mapping[str, Any]] | None = None
    sample_fraction: float = 0.01
    min_rows: int = 200_000
    partition_factor: float = 2.0
    rows_per_bucket: int = 100_000
    max_buckets: int = 64
    max_hot_keys: int = 1000
    seed: int = 7

    def __post_init__(self) -> None:
        for name in ("min_rows", "rows_per_bucket", "max_buckets", "max_hot_keys", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise JoinError(
                    f"skew.{name}: expected an integer, found {value!r} ({type(value).__name__}).",
                    argument=f"skew.{name}",
                    expected="int",
                    found=value,
                )
        for name in ("sample_fraction", "partition_factor"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
            ):
                raise JoinError(
                    f"skew.{name}: expected a finite number, found {value!r} "
                    f"({type(value).__name__}).",
                    argument=f"skew.{name}",
                    expected="float",
                    found=value,
                )
        if self.partition_factor < 0:
            raise JoinError(
                f"skew.partition_factor: expected a non-negative number, found "
                f"{self.partition_factor!r}.",
                argument="skew.partition_factor",
                expected=">= 0",
                found=self.partition_factor,
            )
        if not 0 < self.sample_fraction <= 1:
            raise JoinError(
                f"skew.sample_fraction: expected a fraction in (0, 1], found "
                f"{self.sample_fraction!r}.",
                argument="skew.sample_fraction",
                expected="0 < fraction <= 1",
                found=self.sample_fraction,
            )
        for name in ("min_rows", "rows_per_bucket", "max_hot_keys"):
            if getattr(self, name) < 1:
                raise JoinError(
                    f"skew.{name}: expected a positive integer, found {getattr(self, name)!r}.",
                    argument=f"skew.{name}",
                    expected=">= 1",
                    found=getattr(self, name),
                )
        if self.max_buckets < 2:
            raise JoinError(
                f"skew.max_buckets: expected at least 2, found {self.max_buckets!r}.",
                argument="skew.max_buckets",
                expected=">= 2",
                found=self.max_buckets,
            )


def normalise_skew(skew: object) -> SkewConfig | None:
    """``None``/``True`` = detect, ``False`` = off, a list of key mappings = those keys."""
    if skew is None or skew is True:
        return SkewConfig()
    if skew is False:
        return None
    if isinstance(skew, SkewConfig):
        return skew
    if (
        isinstance(skew, Sequence)
        and not isinstance(skew, str)
        and all(isinstance(m, Mapping) and m for m in skew)
    ):
        return SkewConfig(hot_keys=list(skew))
    raise JoinError(
        f"skew: expected None (detect), False (off), a SkewConfig or a list of key mappings "
        f"like [{{'customer_id': 42}}], found {skew!r}.",
        argument="skew",
        expected="None | bool | SkewConfig | list[dict]",
        found=skew,
    )


def check_hot_keys(config: SkewConfig, key_sets: Sequence[Sequence[str]], spine: DataFrame) -> None:
    """Explicit hot keys name a key set of the join and hold values of its key types.

    Checked before any job (``JoinError``, argument ``skew.hot_keys``): a mapping whose
    columns are no key set's would be ignored silently, and a value of another type would
    fail inside Spark after jobs have run. Building the small local frame runs no job.
    """
    if config.hot_keys is None:
        return
    sets = [list(keys) for keys in key_sets]
    for i, mapping in enumerate(config.hot_keys):
        argument = f"skew.hot_keys[{i}]"
        if not isinstance(mapping, Mapping) or not mapping:
            raise JoinError(
                f"{argument}: expected a mapping of key column to value, found {mapping!r}.",
                argument=argument,
                expected="dict of key column -> value",
                found=mapping,
            )
        keys = next((k for k in sets if set(k) == set(mapping)), None)
        if keys is None:
            raise JoinError(
                f"{argument}: columns {sorted(map(str, mapping))} are not the key columns of "
                f"any source (key sets, as the spine names them: {sets}); name every key "
                "column of one key set, spelled as in the spine.",
                argument=argument,
                expected=sets,
                found=sorted(map(str, mapping)),
            )
        schema = StructType([StructField(k, spine.schema[k].dataType) for k in keys])
        try:
            spine.sparkSession.createDataFrame([tuple(mapping[k] for k in keys)], schema=schema)
        except (TypeError, ValueError) as exc:  # PySparkTypeError / PySparkValueError too
            types = {k: spine.schema[k].dataType.simpleString() for k in keys}
            raise JoinError(
                f"{argument}: {dict(mapping)!r} does not fit the key types {types}: "
                f"{str(exc).strip().splitlines()[0]}",
                argument=argument,
                expected=types,
                found=dict(mapping),
            ) from None


def _micros(avail_type: DataType) -> Column:
    # Cut points are compared as epoch micros, which must follow the order of times exactly:
    # for timestamp_ntz a zone-free mapping (a cast in the session time zone is not monotonic
    # across a spring-forward gap, so buckets would disagree with the join's order).
    return F.expr(epoch_micros(ident(AVAIL), avail_type))


def _join_hot(df: DataFrame, hot: DataFrame, keys: Sequence[str], how: str) -> DataFrame:
    renamed = hot.select(
        *[col(k).alias(f"__mesh_hk{j}") for j, k in enumerate(keys)],
        *[c for c in hot.columns if c not in keys],
    )
    condition = reduce(
        lambda a, b: a & b, [col(k) == F.col(f"__mesh_hk{j}") for j, k in enumerate(keys)]
    )
    joined = df.join(F.broadcast(renamed), condition, how)
    return joined.drop(*[f"__mesh_hk{j}" for j in range(len(keys))])


def find_hot_keys(
    parts: Sequence[DataFrame], keys: Sequence[str], config: SkewConfig
) -> DataFrame | None:
    """Small DataFrame (keys..., cut points) of the hot keys, or None when there are none.

    Runs one job on a sample of the key columns of ``parts`` (the projected spine and
    sources), and a second one on the candidates' times only when there are candidates.
    """
    first = parts[0]
    spark = first.sparkSession
    avail_type = first.schema[AVAIL].dataType
    key_schema = StructType([StructField(k, first.schema[k].dataType) for k in keys])
    fraction = config.sample_fraction

    def sampled(df: DataFrame) -> DataFrame:
        return df if fraction >= 1 else df.sample(fraction=fraction, seed=config.seed)

    threshold = max(1, math.ceil(config.min_rows * fraction))
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions") or 200)
    if config.hot_keys is None:
        # First pass on the key columns only (a columnar scan reads nothing else): rows with
        # a null time are counted too, so this over-counts and can only find too many
        # candidates; the second pass below counts exactly and drops the false ones.
        keys_only = reduce(DataFrame.union, [p.select(*[col(k) for k in keys]) for p in parts])
        per_key = sampled(keys_only.where(not_null(keys))).groupBy(*[col(k) for k in keys]).count()
        # The sample's size, one row broadcast next to every key's count (the two branches
        # share one shuffle): a window over no partition would move every key to one task.
        sample_size = per_key.agg(F.sum("count").alias("__mesh_total"))
        counted = (
            per_key.crossJoin(F.broadcast(sample_size))
            .where(F.col("count") >= threshold)
            .where(F.col("count") > F.col("__mesh_total") / partitions * config.partition_factor)
            .orderBy(F.col("count").desc())
            .limit(config.max_hot_keys)
            .collect()
        )
        values = [tuple(row[j] for j in range(len(keys))) for row in counted]
        total = counted[0]["__mesh_total"] if counted else 0
    else:
        values = [tuple(m[k] for k in keys) for m in config.hot_keys if set(m) == set(keys)]
        total = 0
    if not values:
        return None

    light = reduce(
        DataFrame.union, [p.select(*[col(k) for k in keys], _micros(avail_type)) for p in parts]
    )
    # Rows without a time never match, so they neither make a key hot nor place cut points.
    light = light.toDF(*keys, "__mesh_us").where(not_null([*keys, "__mesh_us"]))
    grid_size = config.max_buckets
    grid = [i / grid_size for i in range(1, grid_size)]
    hot = spark.createDataFrame(values, schema=key_schema)
    stats = (
        _join_hot(sampled(light), hot, keys, "inner")
        .groupBy(*[col(k) for k in keys])
        .agg(
            F.count(F.lit(1)).alias("__mesh_n"),
            F.percentile_approx("__mesh_us", grid, 10_000).alias("__mesh_q"),
        )
        .collect()
    )
    rows = []
    for row in stats:
        n = row["__mesh_n"]
        if config.hot_keys is None and (
            n < threshold or n <= total / partitions * config.partition_factor
        ):
            continue  # hot only by its rows without a time
        estimate = n / fraction
        buckets = min(grid_size, max(2, math.ceil(estimate / config.rows_per_bucket)))
        quantiles = row["__mesh_q"]
        if not quantiles:
            continue
        cuts = sorted({quantiles[round(j * grid_size / buckets) - 1] for j in range(1, buckets)})
        rows.append((*[row[j] for j in range(len(keys))], cuts))
    if not rows:
        return None
    schema = StructType([*key_schema.fields, StructField(BOUNDS, ArrayType(LongType()))])
    return spark.createDataFrame(rows, schema=schema)


def assign_buckets(
    df: DataFrame, hot: DataFrame, keys: Sequence[str], how: str = "left"
) -> DataFrame:
    """Add ``BUCKET``: 0 for non-hot rows, else the number of cut points <= the row's time."""
    avail_type = df.schema[AVAIL].dataType
    joined = _join_hot(df, hot, keys, how)
    us = _micros(avail_type)
    bounds = F.col(BOUNDS)
    bucket = F.when(bounds.isNull(), F.lit(0)).otherwise(
        F.size(F.filter(bounds, lambda b: b <= us))
    )
    return joined.withColumn(BUCKET, bucket.cast("int")).drop(BOUNDS)
