"""The physical plan: one hash shuffle per key set, no row explosion, no range join."""

from __future__ import annotations

import datetime as dt
import re
from functools import partial

import pytest

from mesh.join import FeatureSource, SkewConfig, layout, point_in_time_join
from mesh.join.spine_index import SLOTS

# These tests count partitions (or spread hot keys) for four shuffle partitions.
pytestmark = pytest.mark.usefixtures("four_shuffle_partitions")


def plan_of(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def shuffles_added(df) -> list[str]:
    """Hash exchanges the join adds: Spark's own and the join's repartition by the keys.

    Not the tests' input repartitions: those give a number of partitions (REPARTITION_BY_NUM).
    """
    pattern = r"Exchange hashpartitioning\(([^)]*)\), (?:ENSURE_REQUIREMENTS|REPARTITION_BY_COL)"
    return re.findall(pattern, plan_of(df))


def frames(spark):
    spine = spark.createDataFrame(
        [(1, 10, dt.datetime(2024, 1, 5))], "cid long, mid long, ts timestamp"
    )
    by_c = spark.createDataFrame(
        [(1, dt.datetime(2024, 1, 1), 1.0)], "cid long, fts timestamp, c double"
    )
    by_c2 = spark.createDataFrame(
        [(1, dt.datetime(2024, 1, 1), 2.0)], "cid long, fts timestamp, d double"
    )
    by_m = spark.createDataFrame(
        [(10, dt.datetime(2024, 1, 1), 3.0)], "mid long, fts timestamp, m double"
    )
    by_cm = spark.createDataFrame(
        [(1, 10, dt.datetime(2024, 1, 1), 4.0)], "cid long, mid long, fts timestamp, p double"
    )
    return spine, by_c, by_c2, by_m, by_cm


def test_one_shuffle_for_one_key_set_and_no_join_or_explode(spark):
    spine, by_c, by_c2, *_ = frames(spark)
    sources = [FeatureSource(by_c, "cid", "fts"), FeatureSource(by_c2, "cid", "fts")]
    result = point_in_time_join(spine, sources, "ts", skew=False, strategy="sorted")
    assert len(shuffles_added(result)) == 1
    plan = plan_of(result)
    for operator in ("Join", "CartesianProduct", "Generate", "Expand"):
        assert operator not in plan
    assert plan.count("Window [") == 1
    assert [tuple(r) for r in result.collect()] == [(1, 10, dt.datetime(2024, 1, 5), 1.0, 2.0)]


def test_one_shuffle_per_key_set(spark):
    spine, by_c, by_c2, by_m, by_cm = frames(spark)
    sources = [
        FeatureSource(by_c, "cid", "fts"),
        FeatureSource(by_m, "mid", "fts"),
        FeatureSource(by_cm, ["cid", "mid"], "fts"),
        FeatureSource(by_c2, "cid", "fts"),
    ]
    result = point_in_time_join(spine, sources, "ts", skew=False, strategy="sorted")
    keys = sorted(re.sub(r"#\d+L?", "", s) for s in shuffles_added(result))
    assert keys == ["cid, 4", "cid, mid, 4", "mid, 4"]
    assert "Join" not in plan_of(result)


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_no_shuffle_when_inputs_are_already_partitioned_by_the_keys(spark, strategy):
    spine, by_c, *_ = frames(spark)
    result = point_in_time_join(
        spine.repartition(4, "cid"),
        FeatureSource(by_c.repartition(4, "cid"), "cid", "fts", ttl=dt.timedelta(days=30)),
        "ts",
        skew=False,
        strategy=strategy,
    )
    assert shuffles_added(result) == []
    assert plan_of(result).count("REPARTITION_BY_NUM") == 2
    # The pre-sort still runs, on the partitions as they are.
    assert re.search(r"Sort \[\(\(shiftleft\(\(xxhash64\(cid#\d+L, 42\)", plan_of(result))
    assert [tuple(r) for r in result.collect()] == [(1, 10, dt.datetime(2024, 1, 5), 1.0)]


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_result_stays_partitioned_by_the_keys(spark, strategy):
    spine, by_c, *_ = frames(spark)
    result = point_in_time_join(
        spine, FeatureSource(by_c, "cid", "fts"), "ts", skew=False, strategy=strategy
    )
    # A groupBy (or window) by the keys on the result reuses the join's partitioning.
    grouped = result.groupBy("cid").agg({"c": "max", "*": "count"})
    unnumbered = partial(re.sub, r"#\d+L?", "")
    assert sorted(map(unnumbered, shuffles_added(grouped))) == sorted(
        map(unnumbered, shuffles_added(result))
    )
    assert [tuple(r) for r in grouped.collect()] == [(1, 1.0, 1)]


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_no_shuffle_over_tables_bucketed_by_the_keys(spark, strategy):
    """A bucketed scan's partitioning is known to the union too (it names its keys unqualified)."""
    spine, by_c, *_ = frames(spark)
    for name, df in (("mesh_spine_b", spine), ("mesh_source_b", by_c)):
        df.write.bucketBy(4, "cid").mode("overwrite").saveAsTable(name)
    try:
        result = point_in_time_join(
            spark.table("mesh_spine_b"),
            FeatureSource(spark.table("mesh_source_b"), "cid", "fts"),
            "ts",
            skew=False,
            strategy=strategy,
        )
        assert "Exchange hashpartitioning" not in plan_of(result)
        assert [tuple(r) for r in result.collect()] == [(1, 10, dt.datetime(2024, 1, 5), 1.0)]
    finally:
        for name in ("mesh_spine_b", "mesh_source_b"):
            spark.sql(f"DROP TABLE IF EXISTS {name}")


def test_indexed_source_partitioned_by_its_keys_is_reduced_where_it_is(spark):
    """Its per-bucket aggregate needs no exchange; only the sorted pass shuffles."""
    spine, by_c, by_c2, *_ = frames(spark)
    sources = [
        FeatureSource(by_c.repartition(3, "cid"), "cid", "fts"),
        FeatureSource(by_c2, "cid", "fts"),
    ]
    result = point_in_time_join(spine, sources, "ts", skew=False, strategy="indexed")
    added = sorted(re.sub(r"#\d+L?", "", s) for s in shuffles_added(result))
    assert added == ["__mesh_group, 4", "cid, 4"]
    assert [tuple(r) for r in result.collect()] == [(1, 10, dt.datetime(2024, 1, 5), 1.0, 2.0)]


def test_rows_are_presorted_by_one_long_before_the_windows_sort(spark):
    spine, by_c, *_ = frames(spark)
    for keys, spine_, source in (
        ("cid", spine, by_c),
        (["cid", "mid"], spine, by_c.withColumn("mid", by_c.cid * 10)),
        (
            "k",
            spine.selectExpr("CAST(cid AS STRING) AS k", "ts"),
            by_c.selectExpr("CAST(cid AS STRING) AS k", "fts", "c"),
        ),
    ):
        for strategy in ("sorted", "indexed"):
            result = point_in_time_join(
                spine_, FeatureSource(source, keys, "fts"), "ts", skew=False, strategy=strategy
            )
            plan = plan_of(result)
            # The window's sort (keys, time, tag) sits on the pre-sort by one long (keys'
            # hash, time, tag), which sits on the one shuffle by the keys.
            lines = plan.split("\n")  # top down: a parent comes before its children
            sorts = [i for i, line in enumerate(lines) if " Sort [" in line]
            window = next(i for i in sorts if "__mesh_avail" in lines[i])
            presort = next(i for i in range(window + 1, len(lines)) if " Project [" not in lines[i])
            # Nothing but projections between the two sorts; one sort key; the shuffle below.
            assert presort in sorts, lines[window : presort + 1]
            assert lines[presort].count(" ASC NULLS FIRST") == 1, lines[presort]
            for part in ("xxhash64(", "__mesh_avail", "__mesh_tag"):
                assert part in lines[presort], lines[presort]
            below = next(ln for ln in lines[presort + 1 :] if " Project [" not in ln)
            assert "Exchange hashpartitioning" in below, below
            assert [r["c"] for r in result.collect()] == [1.0]


def test_skew_plan_shuffles_big_data_once(spark):
    spine, by_c, *_ = frames(spark)
    skew = SkewConfig(hot_keys=[{"cid": 1}], sample_fraction=1.0)
    result = point_in_time_join(
        spine, FeatureSource(by_c, "cid", "fts"), "ts", skew=skew, strategy="sorted"
    )
    added = [re.sub(r"#\d+L?", "", s) for s in shuffles_added(result)]
    # The spine and sources are shuffled once, by (keys, bucket). The other two exchanges
    # move per-(key, bucket) partial aggregates of hot keys only.
    assert added.count("cid, __mesh_bucket, 4") == 2
    assert added.count("cid, 4") == 1
    assert len(added) == 3
    assert "SortMergeJoin" not in plan_of(result)


def test_indexed_plan_reduces_sources_before_any_shuffle(spark):
    spine, by_c, by_c2, *_ = frames(spark)
    year = dt.timedelta(days=365)  # with a TTL, a filter reads the bucket too
    sources = [FeatureSource(by_c, "cid", "fts", ttl=year), FeatureSource(by_c2, "cid", "fts")]
    result = point_in_time_join(spine, sources, "ts", skew=False, strategy="indexed")
    added = sorted(re.sub(r"#\d+L?", "", s) for s in shuffles_added(result))
    # Per source one exchange of its per-bucket partial aggregates; one for the sorted pass.
    assert added == ["__mesh_group, 4", "__mesh_group, 4", "cid, 4"]
    plan = plan_of(result)
    # Each source is placed by a broadcast lookup of the spine index and aggregated map-side:
    # the partial aggregate sits below its exchange; no sort-merge join, no row explosion.
    assert plan.count("BroadcastHashJoin") == 2
    assert len(re.findall(r"partial_max\(__mesh_win", plan)) == 2
    # The bucket search (a CASE over the cell's slots) runs once per source row: the
    # optimizer inlined it into no filter, join condition or later projection.
    assert plan.count("WHEN (__mesh_times") == 2 * SLOTS
    for operator in (
        "SortMergeJoin",
        "CartesianProduct",
        "Generate",
        "Expand",
        "BroadcastNestedLoop",
    ):
        assert operator not in plan
    assert plan.count("Window [") == 1
    # The lookup is scanned from an RDD, not held as rows inside the plan.
    assert "Scan ExistingRDD arrow" in plan
    assert [tuple(r) for r in result.collect()] == [(1, 10, dt.datetime(2024, 1, 5), 1.0, 2.0)]


def jvm_calls_to_build(spark, build) -> int:
    """Py4J round trips made while ``build()`` runs (the plan only, nothing is executed).

    Not counted: the "forget this object" messages Python's garbage collector sends for
    proxies of earlier objects whenever it happens to run.
    """
    client = spark.sparkContext._gateway._gateway_client
    original = client.send_command
    calls = 0

    def counting(command, *args, **kwargs):
        nonlocal calls
        if not command.startswith("m\nd\n"):
            calls += 1
        return original(command, *args, **kwargs)

    client.send_command = counting
    try:
        build()
    finally:
        del client.send_command  # the instance attribute shadowed the method
    return calls


def test_building_the_plan_costs_a_few_jvm_calls_per_source(spark):
    # Columns built with PySpark's Column API cost a JVM round trip per node; with one null
    # placeholder per other source in every part, that grew with the square of the number
    # of sources: between 4 and 12 sources about 920 more calls per source (sorted) and
    # 1,700 (indexed), against about 18 and 88 now. The bounds leave room for other PySpark
    # versions; the old way exceeds them 6x and 4x.
    spine = spark.createDataFrame(
        [(1, dt.datetime(2024, 1, 5), "x")], "cid long, ts timestamp, label string"
    )

    def sources(n):
        return [
            FeatureSource(
                spark.createDataFrame(
                    [(1, dt.datetime(2024, 1, 1), 1.0, "a")],
                    f"cid long, fts timestamp, c{i} double, d{i} string",
                ),
                "cid",
                "fts",
                name=f"s{i}",
            )
            for i in range(n)
        ]

    few, many = sources(4), sources(12)
    for strategy, per_source in (("sorted", 150), ("indexed", 400)):
        calls = [
            jvm_calls_to_build(
                spark, partial(point_in_time_join, spine, s, "ts", skew=False, strategy=strategy)
            )
            for s in (few, many)
        ]
        assert (calls[1] - calls[0]) / 8 <= per_source, (strategy, calls)
    result = point_in_time_join(spine, many, "ts", skew=False)
    assert [tuple(r) for r in result.collect()] == [
        (1, dt.datetime(2024, 1, 5), "x", *[1.0, "a"] * 12)
    ]


def test_the_union_is_planned_for_its_partitioning_only_when_the_spine_part_is_partitioned(
    spark, monkeypatch
):
    """A union is hash-partitioned only if every input is: the spine's small plan decides first."""
    spine, by_c, *_ = frames(spark)
    asked = []
    check = layout.hash_partitioned_by

    def spy(df, columns):
        asked.append("union" if "__mesh_src0" in df.columns else "spine part")
        return check(df, columns)

    monkeypatch.setattr(layout, "hash_partitioned_by", spy)
    for strategy in ("indexed", "sorted"):
        for partitioned, expected in ((False, ["spine part"]), (True, ["spine part", "union"])):
            asked.clear()
            spine_, source = spine, by_c
            if partitioned:
                spine_, source = spine.repartition(4, "cid"), by_c.repartition(4, "cid")
            result = point_in_time_join(
                spine_, FeatureSource(source, "cid", "fts"), "ts", skew=False, strategy=strategy
            )
            assert asked == expected, (strategy, partitioned)
            assert [r["c"] for r in result.collect()] == [1.0]
