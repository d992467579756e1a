"""Sources are pruned to the spine's time range, exactly, with filters pushed to the scan."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from chispa import assert_df_equality

from mesh.join import FeatureSource, point_in_time_join
from mesh.join.bounds import prune, spine_range
from mesh.join.reduction import collect_spine_index
from mesh.join.resolve import resolve

BASE = dt.datetime(2024, 1, 1)
DAY = dt.timedelta(days=1)
MICRO = dt.timedelta(microseconds=1)
T_MIN, T_MAX = BASE + 2 * DAY, BASE + 10 * DAY


def frames(spark, time_type="timestamp"):
    spine = spark.createDataFrame(
        [(1, 1, T_MIN), (2, 1, T_MAX), (3, 2, T_MIN), (4, None, T_MAX + DAY), (5, 2, None)],
        f"id int, cid long, ts {time_type}",
    )
    feats = spark.createDataFrame(
        [
            (1, T_MAX, T_MAX, "a"),  # feature_ts == t_max: kept
            (1, T_MAX + MICRO, T_MAX + MICRO, "b"),  # after t_max: dropped
            (1, T_MAX - DAY, T_MAX, "c"),  # created at t_max: kept
            (1, T_MAX - DAY, T_MAX + MICRO, "d"),  # created after t_max: dropped when gated
            (1, T_MAX - DAY, None, "e"),  # no created_ts: known at feature_ts, kept
            (2, T_MIN - DAY, T_MIN - DAY, "f"),  # exactly ttl old at t_min: kept
            (2, T_MIN - DAY - MICRO, T_MIN - DAY, "g"),  # older: expired everywhere, dropped
        ],
        f"cid long, fts {time_type}, cts {time_type}, x string",
    )
    return spine, feats


def kept(spine, source, times):
    (r,) = resolve(spine, [source], "ts")
    return sorted(row["x"] for row in prune(r, times).df.collect())


def test_rows_outside_the_spine_range_are_dropped_and_the_answer_is_the_same(spark):
    spine, feats = frames(spark)
    # A key set's range (from its count job) covers the rows with keys; the sorted strategy's
    # (one job, shared by all key sets) every non-null time: here one day wider, because of
    # the null-key row.
    scan = collect_spine_index(spine, ["cid"], "ts", 100)
    times = scan.times
    assert times is not None and scan.index is not None
    # Above the index limit the count job still gives the range (and no index).
    assert collect_spine_index(spine, ["cid"], "ts", 2) == dataclasses.replace(scan, index=None)
    assert times == spine_range(spine.where("cid IS NOT NULL"), "ts")
    wider = spine_range(spine, "ts")
    assert wider is not None and wider.low == times.low and wider.high != times.high
    gated = FeatureSource(feats, "cid", "fts", "cts", ttl=DAY)
    assert kept(spine, gated, times) == ["a", "c", "e", "f"]
    ungated = FeatureSource(feats, "cid", "fts", "cts", ttl=DAY, exclude_not_yet_created=False)
    assert kept(spine, ungated, times) == ["a", "c", "d", "e", "f"]
    assert kept(spine, FeatureSource(feats, "cid", "fts", "cts"), times) == [
        "a",
        "c",
        "e",
        "f",
        "g",
    ]
    assert kept(spine, gated, wider) == ["a", "b", "c", "d", "e", "f"]

    expected = {1: None, 2: "a", 3: "f", 4: None, 5: None}
    for strategy in ("sorted", "indexed"):
        out = point_in_time_join(spine, gated, "ts", strategy=strategy, skew=False)
        assert {r["id"]: r["x"] for r in out.collect()} == expected, strategy


def test_an_empty_spine_has_no_range_and_joins_to_nothing(spark):
    spine, feats = frames(spark)
    empty = spine.where("id < 0")
    assert spine_range(empty, "ts") is None
    scan = collect_spine_index(empty, ["cid"], "ts", 100)
    assert scan.times is None and scan.index is not None and scan.index.lookup.num_rows == 0
    source = FeatureSource(feats, "cid", "fts", "cts", ttl=DAY)
    for strategy in ("sorted", "indexed"):
        assert point_in_time_join(empty, source, "ts", strategy=strategy).count() == 0


def test_timestamp_ntz_bounds_do_not_depend_on_the_session_time_zone(spark):
    # 2024-03-10 02:30 does not exist in New York (clocks jump from 2:00 to 3:00): a bound
    # that went through an instant would move by an hour; the local date-time must not.
    gap = dt.datetime(2024, 3, 10, 2, 30, 0, 1)
    spine = spark.createDataFrame([(1, 1, gap)], "id int, cid long, ts timestamp_ntz")
    feats = spark.createDataFrame(
        [
            (1, gap, "at"),
            (1, gap + MICRO, "after"),
            (1, gap - DAY, "ttl"),
            (1, gap - DAY - MICRO, "old"),
        ],
        "cid long, fts timestamp_ntz, x string",
    )
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        times = spine_range(spine, "ts")
        assert times is not None
        assert kept(spine, FeatureSource(feats, "cid", "fts", ttl=DAY), times) == ["at", "ttl"]
        out = point_in_time_join(spine, FeatureSource(feats, "cid", "fts", ttl=DAY), "ts")
        assert [r["x"] for r in out.collect()] == ["at"]
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_a_timestamp_ttl_is_an_exact_duration_across_a_daylight_saving_change(spark, strategy):
    # New York moved its clocks forward on 2024-03-10: a week before noon on the 12th, by
    # the calendar, is only 167 hours earlier. The TTL (7 days) is an age, t - feature_ts:
    # exactly 168 hours, in any session time zone.
    ny = ZoneInfo("America/New_York")
    # Noon in New York; arithmetic on a UTC datetime is exact (on a New York one, Python
    # would step over wall-clock days too).
    t = dt.datetime(2024, 3, 12, 12, tzinfo=ny).astimezone(dt.UTC)
    week = 7 * DAY
    spine = spark.createDataFrame(
        [(1, 1, t), (2, 2, t), (3, 3, t)], "id int, cid long, ts timestamp"
    )
    feats = spark.createDataFrame(
        [
            (1, t - week, "exactly a week old"),  # 11:00 on the 5th: 168 hours
            (2, t - week - MICRO, "too old"),
            (3, dt.datetime(2024, 3, 5, 11, 30, tzinfo=ny), "167.5 hours old"),
        ],
        "cid long, fts timestamp, x string",
    )
    source = FeatureSource(feats, "cid", "fts", ttl=week)
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        times = spine_range(spine, "ts")
        assert times is not None
        assert kept(spine, source, times) == ["167.5 hours old", "exactly a week old"]
        out = point_in_time_join(spine, source, "ts", strategy=strategy, skew=False)
        assert sorted((r["id"], r["x"]) for r in out.collect()) == [
            (1, "exactly a week old"),
            (2, None),
            (3, "167.5 hours old"),
        ]
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)


@pytest.mark.parametrize("time_type", ["timestamp", "timestamp_ntz"])
def test_a_ttl_longer_than_any_timestamp_span_expires_nothing(spark, time_type):
    spine, feats = frames(spark, time_type)
    source = FeatureSource(feats, "cid", "fts", "cts", ttl=dt.timedelta.max)
    out = point_in_time_join(spine, source, "ts", skew=False)
    unlimited = point_in_time_join(spine, FeatureSource(feats, "cid", "fts", "cts"), "ts")
    assert_df_equality(out, unlimited, ignore_row_order=True)
    assert out.where("x IS NOT NULL").count() == 2


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_the_bounds_are_pushed_down_to_the_parquet_scan(spark, tmp_path, strategy):
    spine, feats = frames(spark)
    feats.write.parquet(str(tmp_path / "feats"))
    stored = spark.read.parquet(str(tmp_path / "feats"))
    source = FeatureSource(stored, "cid", "fts", "cts", ttl=DAY)
    out = point_in_time_join(spine, source, "ts", strategy=strategy, skew=False)
    previous = spark.conf.get("spark.sql.maxMetadataStringLength")
    spark.conf.set("spark.sql.maxMetadataStringLength", "10000")  # PushedFilters in full
    try:
        plan = out._jdf.queryExecution().executedPlan().toString()
    finally:
        spark.conf.set("spark.sql.maxMetadataStringLength", previous)
    scans = [line for line in plan.splitlines() if "FileScan parquet" in line and "fts" in line]
    assert len(scans) == 1
    pushed = scans[0].split("PushedFilters: [", 1)[1]
    for predicate in ("LessThanOrEqual(fts,", "GreaterThanOrEqual(fts,", "IsNull(cts)"):
        assert predicate in pushed, pushed
    expected = point_in_time_join(spine, FeatureSource(feats, "cid", "fts", "cts", ttl=DAY), "ts")
    assert_df_equality(out, expected, ignore_row_order=True)
