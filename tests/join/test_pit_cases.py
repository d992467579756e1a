"""Point-in-time join: hand-made cases as tables of inputs and expected outputs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql.types import (
    ArrayType,
    DateType,
    DecimalType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from mesh.join import FeatureSource, point_in_time_join


def T(day: int, hour: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour, 0, second)


SPINE = StructType(
    [
        StructField("cid", LongType()),
        StructField("ts", TimestampType()),
        StructField("label", StringType()),
    ]
)
FEATS = StructType(
    [
        StructField("cid", LongType()),
        StructField("fts", TimestampType()),
        StructField("cts", TimestampType()),
        StructField("x", DoubleType()),
    ]
)
OUT = StructType([*SPINE.fields, StructField("x", DoubleType())])


def run(
    spark, spine_rows, feature_rows, expected_rows, *, strict=False, skews=(False,), **source_kw
):
    """Join and compare; ``skews`` also runs the hot-key path (key 1 hot) on the same case."""
    spine = spark.createDataFrame(spine_rows, SPINE)
    feats = spark.createDataFrame(feature_rows, FEATS)
    source = FeatureSource(feats, "cid", "fts", created_timestamp="cts", **source_kw)
    for skew in skews:
        result = point_in_time_join(spine, [source], "ts", strict=strict, skew=skew)
        expected = spark.createDataFrame(expected_rows, OUT)
        assert_df_equality(result, expected, ignore_row_order=True)


def test_ties_on_feature_ts_are_broken_by_created_ts(spark):
    feats = [(1, T(1), T(2), 1.0), (1, T(1), T(3), 2.0), (1, T(1), T(1, 12), 0.5)]
    spine = [(1, T(2), "a"), (1, T(5), "b"), (1, T(1, 6), "c")]
    # at T1 06:00 nothing has arrived yet; at T2 only the T2 correction; from T3 the latest.
    expected = [(1, T(2), "a", 1.0), (1, T(5), "b", 2.0), (1, T(1, 6), "c", None)]
    run(spark, spine, feats, expected, skews=(False, [{"cid": 1}]))


def test_rows_created_after_t_are_excluded(spark):
    feats = [(1, T(1), T(1), 1.0), (1, T(4), T(10), 9.0)]
    spine = [(1, T(5), "before arrival"), (1, T(10), "at arrival"), (1, T(11), "after")]
    expected = [
        (1, T(5), "before arrival", 1.0),
        (1, T(10), "at arrival", 9.0),
        (1, T(11), "after", 9.0),
    ]
    run(spark, spine, feats, expected)


def test_late_rows_leak_when_exclusion_is_disabled(spark):
    feats = [(1, T(1), T(1), 1.0), (1, T(4), T(10), 9.0)]
    spine = [(1, T(5), "a"), (1, T(3), "b")]
    expected = [(1, T(5), "a", 9.0), (1, T(3), "b", 1.0)]
    run(spark, spine, feats, expected, exclude_not_yet_created=False)


def test_inclusive_matches_equal_time(spark):
    feats = [(1, T(1), T(1), 1.0), (1, T(5), T(5), 5.0), (1, T(3), T(5), 3.0)]
    spine = [(1, T(5), "a"), (1, T(4), "b")]
    run(spark, spine, feats, [(1, T(5), "a", 5.0), (1, T(4), "b", 1.0)])


def test_strict_excludes_equal_feature_ts_but_not_equal_created_ts(spark):
    # (T5, T5) has feature_ts == t: excluded in strict mode. (T3, T5) has feature_ts < t and
    # created_ts == t: known at t, so it wins.
    feats = [(1, T(1), T(1), 1.0), (1, T(5), T(5), 5.0), (1, T(3), T(5), 3.0)]
    spine = [(1, T(5), "a"), (1, T(4), "b"), (1, T(5, 0, 1), "c")]
    expected = [(1, T(5), "a", 3.0), (1, T(4), "b", 1.0), (1, T(5, 0, 1), "c", 5.0)]
    run(spark, spine, feats, expected, strict=True, skews=(False, [{"cid": 1}]))


def test_strict_with_created_before_feature_ts(spark):
    # created_ts < feature_ts (a forecast): the strict feature_ts bound is the binding one.
    feats = [(1, T(5), T(2), 5.0)]
    spine = [(1, T(5), "a"), (1, T(6), "b")]
    run(spark, spine, feats, [(1, T(5), "a", None), (1, T(6), "b", 5.0)], strict=True)
    run(spark, spine, feats, [(1, T(5), "a", 5.0), (1, T(6), "b", 5.0)], strict=False)


def test_ttl_expiry_and_exact_boundary(spark):
    feats = [(1, T(3), T(3), 3.0), (2, T(3, 0, 1), T(3, 0, 1), 4.0)]
    spine = [
        (1, T(5), "exactly ttl old"),
        (1, T(5, 0, 1), "one second too old"),
        (2, T(5, 0, 1), "exactly ttl old"),
    ]
    expected = [
        (1, T(5), "exactly ttl old", 3.0),
        (1, T(5, 0, 1), "one second too old", None),
        (2, T(5, 0, 1), "exactly ttl old", 4.0),
    ]
    run(spark, spine, feats, expected, ttl=dt.timedelta(days=2))
    run(spark, spine, feats, expected, ttl=2 * 86400)


def test_expired_winner_does_not_fall_back_to_older_rows(spark):
    feats = [(1, T(1), T(1), 1.0), (1, T(9), T(9), 9.0)]
    spine = [(1, T(10), "fresh"), (1, T(9, 12), "fresh"), (1, T(8), "stale")]
    expected = [(1, T(10), "fresh", 9.0), (1, T(9, 12), "fresh", 9.0), (1, T(8), "stale", None)]
    run(spark, spine, feats, expected, ttl=dt.timedelta(days=1))


def test_null_feature_in_winner_stays_null(spark):
    schema = StructType(
        [
            StructField("cid", LongType()),
            StructField("fts", TimestampType()),
            StructField("x", DoubleType()),
            StructField("y", StringType()),
        ]
    )
    feats = spark.createDataFrame([(1, T(1), 1.0, "old"), (1, T(2), None, "new")], schema)
    spine = spark.createDataFrame([(1, T(3), "a")], SPINE)
    result = point_in_time_join(spine, [FeatureSource(feats, "cid", "fts")], "ts", skew=False)
    out = StructType([*SPINE.fields, schema["x"], schema["y"]])
    assert_df_equality(result, spark.createDataFrame([(1, T(3), "a", None, "new")], out))


def test_null_keys_null_times_no_history_and_bad_source_rows(spark):
    feats = [
        (1, T(1), T(1), 1.0),
        (None, T(1), T(1), 7.0),  # null key: never matches, not even a null spine key
        (1, None, T(1), 8.0),  # null feature_ts: ignored
        (1, T(2), None, 2.0),  # null created_ts: known at feature_ts
    ]
    spine = [
        (None, T(5), "null key"),
        (1, None, "null t"),
        (3, T(5), "no history"),
        (1, T(5), "ok"),
    ]
    expected = [
        (None, T(5), "null key", None),
        (1, None, "null t", None),
        (3, T(5), "no history", None),
        (1, T(5), "ok", 2.0),
    ]
    run(spark, spine, feats, expected)


def test_duplicate_spine_rows_are_kept(spark):
    feats = [(1, T(1), T(1), 1.0)]
    spine = [(1, T(5), "a"), (1, T(5), "a"), (1, T(5), "a"), (2, T(5), "a"), (2, T(5), "a")]
    expected = [(*row, 1.0 if row[0] == 1 else None) for row in spine]
    run(spark, spine, feats, expected)


def test_sources_with_different_key_sets(spark):
    spine = spark.createDataFrame(
        [(1, 10, T(5), "a"), (1, 20, T(5), "b"), (2, 10, T(2), "c"), (None, 10, T(5), "d")],
        "cid long, mid long, ts timestamp, label string",
    )
    by_customer = spark.createDataFrame(
        [(1, T(1), 1.5), (1, T(6), 6.5), (2, T(1), 2.5)], "cid long, fts timestamp, c double"
    )
    by_merchant = spark.createDataFrame(
        [(10, T(1), "m10-old"), (10, T(2), "m10"), (20, T(9), "m20-future")],
        "mid long, fts timestamp, m string",
    )
    by_pair = spark.createDataFrame(
        [(1, 10, T(4), 14), (1, 20, T(1), 120), (2, 10, T(3), 999)],
        "cid long, mid long, fts timestamp, p int",
    )
    result = point_in_time_join(
        spine,
        [
            FeatureSource(by_customer, "cid", "fts"),
            FeatureSource(by_merchant, ["mid"], "fts"),
            FeatureSource(by_pair, ["cid", "mid"], "fts"),
        ],
        "ts",
        skew=False,
    )
    expected = spark.createDataFrame(
        [
            (1, 10, T(5), "a", 1.5, "m10", 14),
            (1, 20, T(5), "b", 1.5, None, 120),
            (2, 10, T(2), "c", 2.5, "m10", None),
            (None, 10, T(5), "d", None, "m10", None),
        ],
        "cid long, mid long, ts timestamp, label string, c double, m string, p int",
    )
    assert_df_equality(result, expected, ignore_row_order=True)


def test_spine_columns_are_returned_unchanged(spark):
    schema = StructType(
        [
            StructField("cid", LongType(), nullable=False),
            StructField("amount.usd", DecimalType(12, 2), nullable=False),
            StructField("day", DateType()),
            StructField("tags", ArrayType(StringType())),
            StructField("ts", TimestampType(), nullable=False),
        ]
    )
    rows = [
        (1, Decimal("10.25"), dt.date(2024, 1, 5), ["a", "b"], T(5)),
        (2, Decimal("-3.00"), None, None, T(6)),
        (1, Decimal("10.25"), dt.date(2024, 1, 5), ["a", "b"], T(5)),
    ]
    spine = spark.createDataFrame(rows, schema)
    feats = spark.createDataFrame([(1, T(1), T(1), 1.0)], FEATS)
    result = point_in_time_join(spine, FeatureSource(feats, "cid", "fts", "cts"), "ts")
    assert result.columns == [*spine.columns, "x"]
    assert result.schema[:5] == spine.schema[:5]  # names, types and nullability
    # chispa sorts rows by column name and cannot sort by a dotted name: rename for it only.
    plain = ["cid", "amount", "day", "tags", "ts"]
    assert_df_equality(result.drop("x").toDF(*plain), spine.toDF(*plain), ignore_row_order=True)


# Complex spine columns that are not nullable, nor are their nested fields and elements.
_POINT = StructType(
    [
        StructField("lat", DoubleType(), nullable=False, metadata={"unit": "degree"}),
        StructField("tags", ArrayType(StringType(), containsNull=False), nullable=False),
    ]
)
COMPLEX_SPINE = StructType(
    [
        StructField("cid", LongType(), nullable=False),
        StructField("ts", TimestampType(), nullable=False),
        StructField("where", _POINT, nullable=False, metadata={"comment": "last seen"}),
        StructField("path", ArrayType(_POINT, containsNull=False), nullable=False),
        StructField("counts", MapType(StringType(), LongType(), False), nullable=False),
        StructField("label", StringType(), nullable=False, metadata={"comment": "target"}),
        StructField("maybe", _POINT),  # nullable, its fields not
    ]
)


@pytest.mark.parametrize(
    ("strategy", "skew"),
    [("sorted", False), ("indexed", False), ("sorted", [{"cid": 1}]), ("indexed", [{"cid": 1}])],
)
def test_non_nullable_complex_spine_columns_keep_their_schema(spark, strategy, skew):
    point = (1.5, ["a"])
    rows = [
        (1, T(5), point, [point, (2.5, [])], {"k": 1}, "yes", None),
        (1, T(6), (0.0, []), [], {}, "no", point),
        (2, T(5), point, [point], {"k": 2}, "yes", point),
    ]
    spine = spark.createDataFrame(rows, COMPLEX_SPINE)
    feats = spark.createDataFrame([(1, T(1), T(1), 1.0)], FEATS)
    source = FeatureSource(feats, "cid", "fts", "cts")
    result = point_in_time_join(spine, source, "ts", strategy=strategy, skew=skew)
    # Names, types, nullability at every depth and metadata, as in the spine.
    assert StructType(result.schema.fields[:-1]) == spine.schema
    assert result.schema["x"] == StructField("x", DoubleType())
    got = sorted(tuple(r) for r in result.collect())
    assert got == sorted((*r, 1.0 if r[0] == 1 else None) for r in rows)


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_non_nullable_time_spine_columns_keep_their_schema(spark, strategy):
    previous = spark.conf.get("spark.sql.timeType.enabled", "false")
    spark.conf.set("spark.sql.timeType.enabled", "true")
    try:
        spine = spark.sql(
            "SELECT 1L AS cid, TIMESTAMP'2024-01-05 00:00:00' AS ts, "
            "CAST(TIME'12:34:56.789' AS TIME(3)) AS at, "
            "named_struct('t', TIME'01:02:03') AS nested"
        )
        assert not spine.schema["at"].nullable and not spine.schema["nested"].nullable
        feats = spark.createDataFrame([(1, T(1), T(1), 1.0)], FEATS)
        source = FeatureSource(feats, "cid", "fts", "cts")
        result = point_in_time_join(spine, source, "ts", strategy=strategy, skew=False)
        assert StructType(result.schema.fields[:-1]) == spine.schema
        assert [tuple(r)[2:] for r in result.collect()] == [
            (*tuple(r)[2:], 1.0) for r in spine.collect()
        ]
    finally:
        spark.conf.set("spark.sql.timeType.enabled", previous)


def test_prefix_and_named_sources_disambiguate(spark):
    spine = spark.createDataFrame([(1, T(5), "a")], SPINE)
    f1 = spark.createDataFrame([(1, T(1), T(1), 1.0)], FEATS)
    f2 = spark.createDataFrame([(1, T(2), T(2), 2.0)], FEATS)
    f3 = spark.createDataFrame([(1, T(3), "label!")], "cid long, fts timestamp, label string")
    result = point_in_time_join(
        spine,
        [
            FeatureSource(f1, "cid", "fts", "cts", name="first"),
            FeatureSource(f2, "cid", "fts", "cts", name="second"),
            FeatureSource(f3, "cid", "fts", prefix="f3_"),
        ],
        "ts",
        skew=False,
    )
    assert result.columns == ["cid", "ts", "label", "first__x", "second__x", "f3_label"]
    assert result.collect()[0][3:] == (1.0, 2.0, "label!")


@pytest.mark.parametrize("strict", [False, True])
def test_timestamp_ntz(spark, strict):
    spine = spark.createDataFrame([(1, T(5))], "cid long, ts timestamp_ntz")
    feats = spark.createDataFrame(
        [(1, T(5), 5.0), (1, T(4), 4.0)], "cid long, fts timestamp_ntz, x double"
    )
    result = point_in_time_join(
        spine, FeatureSource(feats, "cid", "fts", ttl=3600), "ts", strict=strict, skew=[{"cid": 1}]
    )
    out = StructType(
        [
            StructField("cid", LongType()),
            StructField("ts", TimestampNTZType()),
            StructField("x", DoubleType()),
        ]
    )
    # strict: the T4 row wins but is a day old with a one-hour TTL.
    expected = [(1, T(5), None if strict else 5.0)]
    assert_df_equality(result, spark.createDataFrame(expected, out))


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_column_names_sql_would_parse_are_taken_literally(spark, strategy):
    # The join writes its plan as SQL text: names with dots, spaces, backticks, quotes and
    # non-ASCII letters, and struct features with such field names, must pass unparsed.
    spine = spark.createDataFrame(
        [(1, "a", T(5), "x"), (1, "a", T(2), "y"), (2, "b", T(5), "z")],
        "`c.id` long, `m id` string, `t``s` timestamp, `label'` string",
    )
    feats = spark.createDataFrame(
        [
            (1, "a", T(1), T(1), 1.0, (7, "p")),
            (1, "a", T(3), T(4), 2.0, (8, "q")),
            (1, "a", T(4), T(6), 3.0, (9, "r")),  # created after the spine time T(5)
            (2, "b", T(1), None, None, None),
        ],
        "`c.id` long, `m id` string, `f.ts` timestamp, `c ts` timestamp, `größe` double, "
        "`s,t` struct<`a b`: int, `c``d`: string>",
    )
    source = FeatureSource(
        feats,
        keys=["c.id", "m id"],
        timestamp="f.ts",
        created_timestamp="c ts",
        ttl=dt.timedelta(days=3, seconds=1),
    )
    result = point_in_time_join(spine, source, "t`s", strategy=strategy, skew=False)
    assert result.columns == ["c.id", "m id", "t`s", "label'", "größe", "s,t"]
    got = sorted((r[3], r[4], None if r[5] is None else tuple(r[5])) for r in result.collect())
    # x: T(3) row (T(4) created in time, T(6)-created row not yet); y: T(1) row;
    # z: T(1) row, 4 days old at T(5) > ttl of 3 days and a second: expired.
    assert got == [("x", 2.0, (8, "q")), ("y", 1.0, (7, "p")), ("z", None, None)]


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_created_timestamp_that_is_the_event_timestamp(spark, strategy):
    # One time column given as both: known when it happened, the same as no created_ts.
    spine = spark.createDataFrame([(1, T(2), "a"), (1, T(4), "b")], SPINE)
    feats = spark.createDataFrame([(1, T(1), None, 1.0), (1, T(3), None, 3.0)], FEATS)
    source = FeatureSource(
        feats, "cid", "fts", created_timestamp="fts", ttl=dt.timedelta(days=1), features=["x"]
    )
    result = point_in_time_join(spine, source, "ts", strategy=strategy, strict=True)
    expected = spark.createDataFrame([(1, T(2), "a", 1.0), (1, T(4), "b", 3.0)], OUT)
    assert_df_equality(result, expected, ignore_row_order=True)
