"""The indexed strategy: sources reduced with a spine index give exactly the sorted answer."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from chispa import assert_df_equality
from test_pit_skew import AUTO, skewed_frames

from mesh.errors import JoinError
from mesh.join import FeatureSource, SkewConfig, point_in_time_join
from mesh.join.estimate import estimated_rows
from mesh.join.pit import INDEX_MIN_RATIO
from mesh.join.reduction import _US, _start
from mesh.join.spine_index import STARTS, T_MIN, WIDTH

# These tests count partitions (or spread hot keys) for four shuffle partitions.
pytestmark = pytest.mark.usefixtures("four_shuffle_partitions")

BASE = dt.datetime(2024, 1, 1)


def both(spine, sources, skew=False, **kw):
    sorted_ = point_in_time_join(spine, sources, "ts", strategy="sorted", skew=False, **kw)
    indexed = point_in_time_join(spine, sources, "ts", strategy="indexed", skew=skew, **kw)
    return sorted_, indexed


def _indexed_plan(df) -> bool:
    return "partial_max(__mesh_win" in df._jdf.queryExecution().executedPlan().toString()


@pytest.mark.parametrize("strict", [False, True])
def test_skewed_data_with_late_rows_equals_the_sorted_pass(spark, strict):
    spine, source = skewed_frames(spark)
    for skew in (False, AUTO):
        expected, actual = both(spine, [source], strict=strict, skew=skew)
        assert_df_equality(actual, expected, ignore_row_order=True)


def test_a_burst_of_spine_times_leaves_rows_unreduced_and_still_exact(spark):
    # 40 spine times within 40 µs for key 1 (one crowded cell), source rows in and around it.
    micro = dt.timedelta(microseconds=1)
    spine_rows = [(i, 1, BASE + i * micro) for i in range(40)] + [(99, 1, BASE + dt.timedelta(1))]
    rng = random.Random(3)
    feats = [
        (1, BASE + rng.randrange(-5, 45) * micro, BASE + rng.randrange(0, 50) * micro, float(i))
        for i in range(300)
    ]
    spine = spark.createDataFrame(spine_rows, "id int, cid long, ts timestamp")
    df = spark.createDataFrame(feats, "cid long, fts timestamp, cts timestamp, x double")
    expected, actual = both(spine, [FeatureSource(df, "cid", "fts", "cts")])
    assert_df_equality(actual, expected, ignore_row_order=True)
    assert actual.where("x is not null").count() >= 35


def test_string_and_composite_keys_and_two_key_sets(spark):
    spine = spark.createDataFrame(
        [("a", 1, BASE + dt.timedelta(hours=h)) for h in range(0, 10, 3)]
        + [("b", 2, BASE + dt.timedelta(hours=5)), (None, 1, BASE)],
        "k string, m int, ts timestamp",
    )
    by_k = spark.createDataFrame(
        [("a", BASE + dt.timedelta(hours=h), h) for h in range(10)] + [("z", BASE, 0)],
        "k string, fts timestamp, x int",
    )
    by_km = spark.createDataFrame(
        [("a", 1, BASE + dt.timedelta(hours=h), -h) for h in range(0, 10, 2)]
        + [("b", 2, BASE + dt.timedelta(hours=9), 9)],
        "k string, m int, fts timestamp, y int",
    )
    sources = [FeatureSource(by_k, "k", "fts"), FeatureSource(by_km, ["k", "m"], "fts")]
    expected, actual = both(spine, sources)
    assert_df_equality(actual, expected, ignore_row_order=True)
    got = {(r["k"], r["ts"].hour): (r["x"], r["y"]) for r in actual.collect()}
    assert got[("a", 9)] == (9, -8) and got[("b", 5)] == (None, None)


def test_timestamp_ntz_keys_in_a_daylight_saving_gap_or_overlap(spark):
    # Wall-clock readings that do not exist (spring gap) or exist twice (autumn overlap) in
    # the session's zone: as keys they are plain values, in the index as everywhere else.
    gap, overlap = dt.datetime(2024, 3, 10, 2, 30), dt.datetime(2024, 11, 3, 1, 30)
    spine = spark.createDataFrame(
        [(k, BASE + dt.timedelta(hours=h)) for k in (gap, overlap) for h in (1, 5)],
        "k timestamp_ntz, ts timestamp",
    )
    feats = spark.createDataFrame(
        [(gap, BASE, 1), (gap, BASE + dt.timedelta(hours=3), 2), (overlap, BASE, 3)],
        "k timestamp_ntz, fts timestamp, x int",
    )
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        expected, actual = both(spine, [FeatureSource(feats, "k", "fts")])
        assert_df_equality(actual, expected, ignore_row_order=True)
        got = {(r["k"], r["ts"]): r["x"] for r in actual.collect()}
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    assert got == {
        (gap, BASE + dt.timedelta(hours=1)): 1,
        (gap, BASE + dt.timedelta(hours=5)): 2,
        (overlap, BASE + dt.timedelta(hours=1)): 3,
        (overlap, BASE + dt.timedelta(hours=5)): 3,
    }


def test_auto_uses_the_sorted_pass_above_the_index_limit(spark):
    spine, source = skewed_frames(spark)
    expected = point_in_time_join(spine, source, "ts", strategy="sorted", skew=False)
    auto = point_in_time_join(spine, source, "ts", skew=False, index_max_rows=10)
    assert not _indexed_plan(auto)
    assert_df_equality(auto, expected, ignore_row_order=True)


@pytest.mark.parametrize(
    ("sizes", "indexed"), [((100,), False), ((300, 300), True), ((3000,), True)]
)
def test_auto_indexes_only_sources_with_several_times_the_spine_rows(
    spark, tmp_path, sizes, indexed
):
    # 100 spine rows; the sources are Parquet files, estimated from their size (about 90
    # rows for 100, 200 for 300, 1500 for 3000): auto indexes from 3 x 100 estimated rows,
    # summed over the key set's sources.
    rng = random.Random(len(sizes))
    spine = spark.createDataFrame(
        [(i, rng.randrange(50), BASE + dt.timedelta(minutes=rng.randrange(10_000)))
         for i in range(100)],
        "id int, cid long, ts timestamp",
    )  # fmt: skip
    sources = []
    for j, n in enumerate(sizes):
        rows = [(rng.randrange(50), BASE + dt.timedelta(minutes=rng.randrange(10_000)),
                 rng.random()) for _ in range(n)]  # fmt: skip
        path = str(tmp_path / f"s{j}")
        frame = spark.createDataFrame(rows, f"cid long, fts timestamp, x{j} double")
        frame.coalesce(1).write.parquet(path)
        sources.append(FeatureSource(spark.read.parquet(path), "cid", "fts"))
    estimates = [estimated_rows(s.df) for s in sources]
    assert all(e is not None for e in estimates)
    assert (sum(estimates) >= INDEX_MIN_RATIO * 100) is indexed, estimates
    auto = point_in_time_join(spine, sources, "ts", skew=False)
    assert _indexed_plan(auto) is indexed
    expected = point_in_time_join(spine, sources, "ts", strategy="sorted", skew=False)
    assert_df_equality(auto, expected, ignore_row_order=True)
    # The ratio is auto's alone: "indexed" indexes whatever the sources' size.
    assert _indexed_plan(point_in_time_join(spine, sources, "ts", strategy="indexed"))


@pytest.mark.parametrize(("limit", "strategy"), [(10, "auto"), (10_000, "indexed")])
def test_a_spine_above_the_limit_is_counted_once_and_never_collected(
    spark, monkeypatch, limit, strategy
):
    # The spine is read from an RDD whose map counts the rows each job reads, and every
    # collect to the driver is recorded.
    spine, source = skewed_frames(spark)
    reads = spark.sparkContext.accumulator(0)

    def counted(row):
        reads.add(1)
        return row

    rows = spine.collect()
    spine = spark.createDataFrame(
        spark.sparkContext.parallelize(rows, 2).map(counted), spine.schema
    )
    collected = []
    to_arrow = type(spine).toArrow

    def recording(df):
        table = to_arrow(df)
        collected.append(table.num_rows)
        return table

    monkeypatch.setattr(type(spine), "toArrow", recording)
    out = point_in_time_join(
        spine, source, "ts", skew=False, index_max_rows=limit, strategy=strategy
    )
    if limit < len(rows):
        # One count job gives the size and the time range; nothing reaches the driver.
        assert collected == [] and reads.value == len(rows)
    else:
        assert collected == [len(rows)] and reads.value == 2 * len(rows)
    monkeypatch.undo()
    expected = point_in_time_join(spine, source, "ts", strategy="sorted", skew=False)
    assert_df_equality(out, expected, ignore_row_order=True)


@pytest.mark.parametrize("user_value", [None, "1234"])
def test_the_session_conf_is_left_as_it_was(spark, user_value):
    key = "spark.sql.execution.arrow.localRelationThreshold"
    spine, source = skewed_frames(spark)
    if user_value is not None:
        spark.conf.set(key, user_value)
    try:
        point_in_time_join(spine, source, "ts", strategy="indexed", skew=False)
        assert spark.conf.get(key, None) == user_value
    finally:
        spark.conf.unset(key)


def test_a_session_refusing_the_conf_still_gets_the_same_join(spark, monkeypatch):
    from pyspark.errors import PySparkException
    from pyspark.sql.conf import RuntimeConfig

    key = "spark.sql.execution.arrow.localRelationThreshold"
    original = RuntimeConfig.set

    def refuse(self, name, value):
        if name == key:
            raise PySparkException(message=f"[CONFIG_NOT_AVAILABLE] {name}")
        return original(self, name, value)

    spine, source = skewed_frames(spark)
    expected = point_in_time_join(spine, source, "ts", strategy="sorted", skew=False)
    monkeypatch.setattr(RuntimeConfig, "set", refuse)
    actual = point_in_time_join(spine, source, "ts", strategy="indexed", skew=False)
    # The lookup stays a local relation in the plan (no Arrow RDD scan); the rows are the same.
    assert "Scan ExistingRDD arrow" not in actual._jdf.queryExecution().executedPlan().toString()
    assert_df_equality(actual, expected, ignore_row_order=True)


def test_indexed_errors_are_explicit(spark):
    spine, source = skewed_frames(spark)
    with pytest.raises(JoinError, match="index_max_rows"):
        point_in_time_join(spine, source, "ts", strategy="indexed", index_max_rows=10)
    with pytest.raises(JoinError, match="strategy: expected one of"):
        point_in_time_join(spine, source, "ts", strategy="fast")
    ntz = spark.createDataFrame([(1, BASE)], "cid long, ts timestamp_ntz")
    feats = spark.createDataFrame([(1, BASE, 1.0)], "cid long, fts timestamp_ntz, x double")
    with pytest.raises(JoinError, match="timestamp_ntz"):
        point_in_time_join(ntz, FeatureSource(feats, "cid", "fts"), "ts", strategy="indexed")


def test_hot_spine_key_is_split_from_the_index_counts(spark):
    spine, source = skewed_frames(spark)
    expected = point_in_time_join(spine, source, "ts", strategy="sorted", skew=False)
    config = SkewConfig(min_rows=50, rows_per_bucket=20, max_buckets=8)
    actual = point_in_time_join(spine, source, "ts", strategy="indexed", skew=config)
    plan = actual._jdf.queryExecution().executedPlan().toString()
    assert "__mesh_bucket" in plan  # key 1 was split
    assert_df_equality(actual, expected, ignore_row_order=True)


def test_rows_expired_at_their_first_spine_time_are_dropped_and_the_answer_is_the_same(spark):
    from mesh.join import reduction
    from mesh.join.resolve import resolve

    day = dt.timedelta(days=1)
    spine = spark.createDataFrame(
        [(1, 1, BASE), (2, 1, BASE + 10 * day), (3, 1, BASE + 20 * day), (4, 2, BASE + 3 * day)],
        "id int, cid long, ts timestamp",
    )
    feats = spark.createDataFrame(
        [
            (1, BASE, BASE, "f"),  # eligible at day 0, 0 days old: kept
            (1, BASE + 1 * day, BASE + 1 * day, "a"),  # first at day 10, 9 days old: dropped
            (1, BASE + 9 * day, BASE + 9 * day, "b"),  # first at day 10, 1 day old: kept
            (1, BASE, BASE + 5 * day, "c"),  # late: known at day 5, first at day 10: dropped
            (1, BASE + 12 * day, BASE + 12 * day, "d"),  # the only row of day 20, expired
            (1, BASE + 21 * day, BASE + 21 * day, "g"),  # after the key's last time: dropped
            (2, BASE + 1 * day, BASE + 1 * day, "e"),  # exactly ttl old at day 3: kept
        ],
        "cid long, fts timestamp, cts timestamp, x string",
    )

    def reduced_rows(ttl):
        source = FeatureSource(feats, "cid", "fts", "cts", ttl=ttl)
        (r,) = resolve(spine, [source], "ts")
        index = reduction.collect_spine_index(spine, ["cid"], "ts", 100).index
        assert index is not None
        lookup = reduction.lookup_frame(spine, index, ["cid"])
        out = reduction.reduce_source(r, index, False, lookup).df
        return sorted(row["x"] for row in out.collect())

    assert reduced_rows(None) == ["b", "d", "e", "f"]
    assert reduced_rows(2 * day) == ["b", "e", "f"]
    expected, actual = both(spine, [FeatureSource(feats, "cid", "fts", "cts", ttl=2 * day)])
    assert_df_equality(actual, expected, ignore_row_order=True)
    assert {r["id"]: r["x"] for r in actual.collect()} == {1: "f", 2: "b", 3: None, 4: "e"}


def test_the_cell_lookup_is_safe_for_a_row_after_the_last_spine_time(spark):
    """A row known long after its key's last spine time lies past the last cell.

    Its cell number can exceed the int range; it gets no start (null), never an overflow
    error, whichever order the optimizer evaluates the placement and the filter in.
    """
    lookup = f"0L AS {T_MIN}, 10L AS {WIDTH}, array(0, 1, 3) AS {STARTS}"
    starts = {
        us: spark.sql(f"SELECT {lookup}, {us}L AS {_US}").selectExpr(f"{_start()} AS s").first()[0]
        for us in (-5, 0, 15, 29, 30, 10**15)
    }
    assert starts == {-5: 0, 0: 0, 15: 1, 29: 3, 30: None, 10**15: None}


def test_crowded_rows_of_two_sources_never_share_a_group(spark, monkeypatch):
    """A crowded cell's row is kept in a group of its own, never merged with another's.

    With one slot and cells of three spine times, each source's only row falls in a crowded
    cell, as the first row of its source's only partition: row ids numbered per source are
    both 0, so an aggregate over both sources' rows by such ids would carry key 2's row as
    key 1's.
    """
    from mesh.join import reduction, spine_index

    monkeypatch.setattr(reduction, "SLOTS", 1)
    monkeypatch.setattr(spine_index, "PER_CELL", 3)
    day = dt.timedelta(days=1)
    spine = spark.createDataFrame(
        [
            (i, cid, BASE + d * day)
            for i, (cid, d) in enumerate((c, d) for c in (1, 2) for d in (1, 2, 3))
        ],
        "id int, cid long, ts timestamp",
    )
    a = spark.createDataFrame([(1, BASE + 2 * day, 1.0)], "cid long, fts timestamp, a double")
    b = spark.createDataFrame([(2, BASE + 2 * day, 2.0)], "cid long, fts timestamp, b double")
    sources = [
        FeatureSource(a.coalesce(1), "cid", "fts"),
        FeatureSource(b.coalesce(1), "cid", "fts"),
    ]
    expected, actual = both(spine, sources)
    assert_df_equality(actual, expected, ignore_row_order=True)
    assert sorted((r["cid"], r["ts"].day, r["a"], r["b"]) for r in actual.collect()) == [
        (1, 2, None, None),
        (1, 3, 1.0, None),
        (1, 4, 1.0, None),
        (2, 2, None, None),
        (2, 3, None, 2.0),
        (2, 4, None, 2.0),
    ]
