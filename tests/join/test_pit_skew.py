"""Hot keys: split over several tasks, results identical to the unsplit join."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from mesh.join import FeatureSource, SkewConfig, point_in_time_join
from mesh.join.columns import AVAIL, BOUNDS
from mesh.join.skew import find_hot_keys

# These tests count partitions (or spread hot keys) for four shuffle partitions.
pytestmark = pytest.mark.usefixtures("four_shuffle_partitions")

BASE = dt.datetime(2024, 1, 1)


def skewed_frames(spark):
    rng = random.Random(11)

    def ts(limit: int) -> dt.datetime:
        return BASE + dt.timedelta(minutes=rng.randrange(limit))

    # Key 1 owns ~80% of the rows; coarse minutes give many ties; created_ts is late for some.
    def key() -> int:
        return 1 if rng.random() < 0.8 else rng.randrange(2, 12)

    feats = []
    for _ in range(400):
        ft = ts(300)
        feats.append((key(), ft, ft + dt.timedelta(minutes=rng.choice([0, 0, 5, 60])),
                      rng.choice([None, 1.0, 2.0, 3.0])))  # fmt: skip
    spine = [(i, key(), ts(320)) for i in range(200)]
    spine_df = spark.createDataFrame(spine, "id int, cid long, ts timestamp")
    feats_df = spark.createDataFrame(feats, "cid long, fts timestamp, cts timestamp, x double")
    return spine_df, FeatureSource(feats_df, "cid", "fts", "cts", ttl=dt.timedelta(hours=2))


AUTO = SkewConfig(sample_fraction=1.0, min_rows=100, rows_per_bucket=40, max_buckets=8)


def test_hot_key_results_equal_unsplit_results(spark):
    spine, source = skewed_frames(spark)
    plain = point_in_time_join(spine, source, "ts", skew=False)
    for skew in (
        AUTO,
        [{"cid": 1}],
        SkewConfig(hot_keys=[{"cid": 1}, {"cid": 5}], sample_fraction=1.0, rows_per_bucket=3),
    ):
        split = point_in_time_join(spine, source, "ts", skew=skew)
        assert_df_equality(split, plain, ignore_row_order=True)
    # and the joined values are not trivially all null
    assert plain.where(F.col("x").isNotNull()).count() > 50


def test_hot_key_is_spread_over_several_partitions(spark):
    spine, source = skewed_frames(spark)

    def partitions_of_key_1(skew) -> int:
        # The sorted pass: with the index, key 1 keeps too few rows to need splitting.
        result = point_in_time_join(spine, source, "ts", skew=skew, strategy="sorted")
        # Collect the feature too: otherwise the optimizer prunes the window away.
        rows = (
            result.select("cid", "x", F.spark_partition_id().alias("p"))
            .where(F.col("cid") == 1)
            .collect()
        )
        assert len(rows) > 100
        return len({r["p"] for r in rows})

    assert partitions_of_key_1(False) == 1
    assert partitions_of_key_1(AUTO) >= 3  # 4 shuffle partitions in the test session


def test_detection_finds_only_the_hot_key(spark):
    spine, source = skewed_frames(spark)
    parts = [
        spine.select("cid", F.col("ts").alias(AVAIL)),
        source.df.select("cid", F.col("fts").alias(AVAIL)),
    ]
    hot = find_hot_keys(parts, ["cid"], AUTO)
    assert hot is not None
    rows = hot.collect()
    assert [r["cid"] for r in rows] == [1]
    bounds = rows[0][BOUNDS]
    assert 2 <= len(bounds) + 1 <= AUTO.max_buckets
    assert bounds == sorted(bounds)
    cold = SkewConfig(sample_fraction=1.0, min_rows=10_000)
    assert find_hot_keys(parts, ["cid"], cold) is None


def test_detection_never_moves_every_key_to_one_task(spark, monkeypatch):
    # The sample's total used to be a window over no partition: all keys in one task, and
    # a warning from Spark ("No Partition Defined for Window operation") on every join.
    spine, source = skewed_frames(spark)
    parts = [
        spine.select("cid", F.col("ts").alias(AVAIL)),
        source.df.select("cid", F.col("fts").alias(AVAIL)),
    ]
    plans = []
    frame = type(spine)  # the classic DataFrame, which defines collect
    collect = frame.collect

    def recording(df):
        plans.append(df._jdf.queryExecution().executedPlan().toString())
        return collect(df)

    monkeypatch.setattr(frame, "collect", recording)
    assert find_hot_keys(parts, ["cid"], AUTO) is not None
    monkeypatch.undo()
    assert plans and not any("Window" in plan for plan in plans)
    # The per-key counts and their total share one shuffle of the sample.
    assert "ReusedExchange" in plans[0]


def test_keys_smaller_than_a_shuffle_partition_are_not_split(spark):
    # Key 1 holds ~80% of 600 rows; with 4 shuffle partitions the average partition holds 150
    # rows: a factor of 2 makes it hot (480 > 300), a factor of 4 does not (480 < 600).
    spine, source = skewed_frames(spark)
    parts = [
        spine.select("cid", F.col("ts").alias(AVAIL)),
        source.df.select("cid", F.col("fts").alias(AVAIL)),
    ]
    relaxed = SkewConfig(sample_fraction=1.0, min_rows=1, partition_factor=4.0)
    assert find_hot_keys(parts, ["cid"], relaxed) is None
    strict = SkewConfig(sample_fraction=1.0, min_rows=1, partition_factor=2.0)
    hot = find_hot_keys(parts, ["cid"], strict)
    assert hot is not None and [r["cid"] for r in hot.collect()] == [1]


def test_a_hot_key_without_any_time_is_not_split(spark):
    # Found by the property test: rows with null times never match, so they must not make a
    # key hot (their quantiles would be null).
    spine = spark.createDataFrame(
        [(i, 1, None) for i in range(5)] + [(9, 2, BASE)], "id int, cid long, ts timestamp"
    )
    feats = spark.createDataFrame(
        [(1, None, 1.0)] * 5 + [(2, BASE, 2.0)], "cid long, fts timestamp, x double"
    )
    config = SkewConfig(sample_fraction=1.0, min_rows=1, partition_factor=0.1)
    out = point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "ts", skew=config)
    assert sorted((r["id"], r["x"]) for r in out.collect()) == [
        (0, None),
        (1, None),
        (2, None),
        (3, None),
        (4, None),
        (9, 2.0),
    ]


@pytest.mark.parametrize("strategy", ["sorted", "auto"])
def test_a_hot_key_split_over_a_daylight_saving_gap_keeps_the_order_of_times(spark, strategy):
    # timestamp_ntz times in New York on its spring-forward day: 02:30 does not exist there,
    # and read in the session zone it becomes 03:30, after 03:15. Buckets must follow the
    # wall-clock order: the past row (02:30) is seen at 03:15, a future one (03:00) not at 02:30.
    day = dt.datetime(2024, 3, 10)
    spine = spark.createDataFrame(
        [(i, 1, day.replace(hour=3, minute=15)) for i in range(6)]
        + [(10 + i, 2, day.replace(hour=2, minute=30)) for i in range(6)]
        + [(99, 2, day.replace(hour=4))],
        "id int, cid long, ts timestamp_ntz",
    )
    feats = spark.createDataFrame(
        [(1, day.replace(hour=2, minute=30), i) for i in range(6)]
        + [(2, day.replace(hour=3), 100 + i) for i in range(6)],
        "cid long, fts timestamp_ntz, x int",
    )
    expected = [(i, 5) for i in range(6)] + [(10 + i, None) for i in range(6)] + [(99, 105)]
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        hot = [{"cid": 1}, {"cid": 2}]
        split = SkewConfig(hot_keys=hot, sample_fraction=1.0, rows_per_bucket=2, max_buckets=4)
        for skew in (False, hot, split):
            out = point_in_time_join(
                spine, FeatureSource(feats, "cid", "fts"), "ts", strategy=strategy, skew=skew
            )
            assert sorted(tuple(r) for r in out.select("id", "x").collect()) == expected, skew
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
