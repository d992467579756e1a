"""Point-in-time join: integer keys of other widths on the spine and the source.

As in a Spark equi-join of an ``int`` and a ``bigint`` column, the values are matched: the
source's key is read as the spine key's type, and a source key that type cannot hold
matches nothing (it is not wrapped around onto a small key).
"""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    ByteType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from mesh.errors import JoinError
from mesh.join import FeatureSource, point_in_time_join
from mesh.join.resolve import key_types_match

STRATEGIES = ("sorted", "indexed")
TS, DOUBLE = TimestampType(), DoubleType()


def T(day: int) -> dt.datetime:
    return dt.datetime(2024, 1, day)


def _frames(spark):
    spine = spark.createDataFrame(
        [(1, T(3)), (1, T(6)), (2, T(4)), (3, T(5)), (None, T(5))],
        "cid int, ts timestamp",
    )
    feats = spark.createDataFrame(
        [
            (1, T(1), 1.0),
            (1, T(5), 1.5),
            (2, T(2), 2.0),
            # Beyond an int: as a plain cast it would wrap around onto 1 and 2.
            (2**32 + 1, T(2), 99.0),
            (2**32 + 2, T(3), 98.0),
        ],
        "cid bigint, fts timestamp, v double",
    )
    return spine, feats


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_int_spine_bigint_source(spark, strategy):
    spine, feats = _frames(spark)
    out = point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "ts", strategy=strategy)
    assert dict(out.dtypes)["cid"] == "int"  # the spine's columns as they were
    rows = {(r.cid, r.ts): r.v for r in out.collect()}
    assert rows == {
        (1, T(3)): 1.0,
        (1, T(6)): 1.5,
        (2, T(4)): 2.0,
        (3, T(5)): None,
        (None, T(5)): None,
    }


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("spine_type", "source_type"), [("bigint", "int"), ("short", "bigint")])
def test_widths_give_the_join_of_equal_types(spark, strategy, spine_type, source_type):
    spine, feats = _frames(spark)
    feats = feats.where("cid < 100")  # values every width holds
    expected = point_in_time_join(
        spine.withColumn("cid", F.col("cid").cast("bigint")),
        FeatureSource(feats, "cid", "fts"),
        "ts",
        strategy=strategy,
    ).withColumn("cid", F.col("cid").cast(spine_type))
    out = point_in_time_join(
        spine.withColumn("cid", F.col("cid").cast(spine_type)),
        FeatureSource(feats.withColumn("cid", F.col("cid").cast(source_type)), "cid", "fts"),
        "ts",
        strategy=strategy,
    )
    assert_df_equality(out, expected, ignore_row_order=True)


def test_mapped_spine_keys_are_retyped_too(spark):
    spine, feats = _frames(spark)
    spine = spine.withColumnRenamed("cid", "payer")
    out = point_in_time_join(
        spine, FeatureSource(feats, "cid", "fts", spine_keys="payer", prefix="payer_"), "ts"
    )
    rows = {(r.payer, r.ts): r.payer_v for r in out.collect()}
    assert rows[(1, T(6))] == 1.5 and rows[(2, T(4))] == 2.0 and rows[(3, T(5))] is None


def test_other_type_families_are_still_refused(spark):
    spine, feats = _frames(spark)
    with pytest.raises(JoinError) as info:
        point_in_time_join(
            spine,
            FeatureSource(feats.withColumn("cid", F.col("cid").cast("double")), "cid", "fts"),
            "ts",
        )
    assert info.value.params["expected"] == "int"
    assert info.value.params["found"] == "double"


@pytest.mark.parametrize(
    ("source", "spine", "match"),
    [
        (IntegerType(), LongType(), True),
        (ByteType(), ShortType(), True),
        (LongType(), LongType(), True),
        (StringType(), StringType(), True),
        (DecimalType(10, 0), LongType(), False),
        (LongType(), DecimalType(20, 0), False),
        (DecimalType(10, 0), DecimalType(12, 0), False),
        (DoubleType(), FloatType(), False),
        (StringType(), LongType(), False),
    ],
)
def test_key_types_match_same_types_and_integers_of_any_width(source, spine, match):
    # The one rule both the join (JoinError) and the sets' spine check (SpineError) apply.
    assert key_types_match(source, spine) is match
    assert key_types_match(spine, source) is match


def test_struct_keys_differing_only_in_nullability_match(spark):
    # As in a Spark equi-join, whether a key's fields may be null does not decide a match.
    key = StructType([StructField("a", LongType(), nullable=False)])
    spine = spark.createDataFrame(
        [((1,), T(5)), ((2,), T(5))], StructType([StructField("k", key), StructField("ts", TS)])
    )
    nullable_key = StructType([StructField("a", LongType())])
    feats = spark.createDataFrame(
        [((1,), T(1), 1.0), ((2,), T(6), 2.0)],
        StructType(
            [StructField("k", nullable_key), StructField("fts", TS), StructField("v", DOUBLE)]
        ),
    )
    assert key_types_match(nullable_key, key)
    assert key_types_match(ArrayType(LongType(), False), ArrayType(LongType()))
    out = point_in_time_join(spine, FeatureSource(feats, "k", "fts"), "ts")
    assert out.schema["k"] == spine.schema["k"]
    assert {r.k.a: r.v for r in out.collect()} == {1: 1.0, 2: None}
