"""Point-in-time join: sources matched on spine columns of other names (``spine_keys``)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from chispa import assert_df_equality
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from mesh.errors import JoinError
from mesh.join import FeatureSource, point_in_time_join

STRATEGIES = ("sorted", "indexed")


def T(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour)


TRANSFERS = StructType(
    [
        StructField("transfer_id", LongType()),
        StructField("sender_id", LongType()),
        StructField("receiver_id", LongType()),
        StructField("ts", TimestampType()),
    ]
)
CUSTOMERS = StructType(
    [
        StructField("customer_id", LongType()),
        StructField("fts", TimestampType()),
        StructField("score", DoubleType()),
        StructField("segment", StringType()),
    ]
)


def _customers(spark):
    return spark.createDataFrame(
        [
            (1, T(1), 0.1, "a"),
            (1, T(5), 0.5, "b"),
            (2, T(2), 0.2, "c"),
            (3, T(9), 0.9, "d"),
        ],
        CUSTOMERS,
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_table_looked_up_in_two_roles(spark, strategy):
    transfers = spark.createDataFrame(
        [
            (10, 1, 2, T(3)),  # sender 1 as of day 3: day 1; receiver 2: day 2
            (11, 2, 1, T(6)),  # sender 2: day 2; receiver 1: day 5
            (12, 3, 1, T(4)),  # sender 3: none before day 9; receiver 1: day 1
            (13, 4, 3, T(10)),  # sender 4 unknown; receiver 3: day 9
        ],
        TRANSFERS,
    )
    customers = _customers(spark)
    sources = [
        FeatureSource(customers, "customer_id", "fts", spine_keys="sender_id", prefix="sender_"),
        FeatureSource(customers, "customer_id", "fts", spine_keys="receiver_id", prefix="recv_"),
    ]
    result = point_in_time_join(transfers, sources, "ts", strategy=strategy)

    assert result.columns == [
        *TRANSFERS.names,
        "sender_score",
        "sender_segment",
        "recv_score",
        "recv_segment",
    ]
    expected = spark.createDataFrame(
        [
            (10, 1, 2, T(3), 0.1, "a", 0.2, "c"),
            (11, 2, 1, T(6), 0.2, "c", 0.5, "b"),
            (12, 3, 1, T(4), None, None, 0.1, "a"),
            (13, 4, 3, T(10), None, None, 0.9, "d"),
        ],
        result.schema,
    )
    assert_df_equality(result, expected, ignore_row_order=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_the_same_join_on_a_renamed_source(spark, strategy):
    """Random data, with ties, TTL and late rows: spine_keys gives the rows of a source whose
    key columns were renamed to the spine's by hand, keys of two columns one of them mapped."""
    rng = random.Random(7)
    spine_rows = [
        (i, rng.randint(0, 5), rng.choice(["x", "y"]), T(rng.randint(1, 20), rng.randint(0, 3)))
        for i in range(120)
    ]
    spine = spark.createDataFrame(
        spine_rows, "row_id long, account long, region string, ts timestamp"
    )
    feature_rows = [
        (
            rng.randint(0, 6),
            rng.choice(["x", "y", "z"]),
            T(rng.randint(1, 20), rng.randint(0, 3)),
            T(rng.randint(1, 21)),
            rng.choice([None, rng.random()]),
        )
        for _ in range(300)
    ]
    features = spark.createDataFrame(
        feature_rows, "id long, region string, fts timestamp, cts timestamp, v double"
    )
    options = {"created_timestamp": "cts", "ttl": dt.timedelta(days=4)}
    mapped = FeatureSource(
        features, ["id", "region"], "fts", spine_keys=["account", "region"], **options
    )
    renamed = FeatureSource(
        features.withColumnRenamed("id", "account"), ["account", "region"], "fts", **options
    )
    got = point_in_time_join(spine, mapped, "ts", strategy=strategy)
    want = point_in_time_join(spine, renamed, "ts", strategy=strategy)
    assert got.filter("v IS NOT NULL").count() > 10  # the case exercises matches
    assert_df_equality(got, want, ignore_row_order=True)


def test_a_feature_named_like_the_spine_key_is_refused(spark):
    transfers = spark.createDataFrame([], TRANSFERS)
    customers = _customers(spark).withColumnRenamed("segment", "sender_id")
    source = FeatureSource(customers, "customer_id", "fts", spine_keys="sender_id")
    with pytest.raises(JoinError, match=r"spine_keys: \['sender_id'\] are also feature"):
        point_in_time_join(transfers, source, "ts")


def test_spine_key_missing_from_the_spine(spark):
    transfers = spark.createDataFrame([], TRANSFERS)
    source = FeatureSource(_customers(spark), "customer_id", "fts", spine_keys="payer_id")
    with pytest.raises(JoinError, match=r"spine_keys: column `payer_id` not found in the spine"):
        point_in_time_join(transfers, source, "ts")


def test_spine_key_of_another_type(spark):
    # Integer keys of other widths match (tests/join/test_pit_key_widths.py); a string does not.
    transfers = spark.createDataFrame(
        [], "transfer_id long, sender_id string, receiver_id long, ts timestamp"
    )
    assert transfers.schema["sender_id"].dataType == StringType()
    source = FeatureSource(_customers(spark), "customer_id", "fts", spine_keys="sender_id")
    with pytest.raises(JoinError, match=r"`customer_id` has type bigint, expected string"):
        point_in_time_join(transfers, source, "ts")


def test_one_spine_column_per_key():
    with pytest.raises(JoinError, match="one spine column per key"):
        FeatureSource(None, ["a", "b"], "fts", spine_keys=["x"])  # type: ignore[arg-type]
    with pytest.raises(JoinError, match="spine_keys: column names must be unique"):
        FeatureSource(None, ["a", "b"], "fts", spine_keys=["x", "x"])  # type: ignore[arg-type]
    source = FeatureSource(None, "a", "fts", spine_keys="x")  # type: ignore[arg-type]
    assert source.spine_key_columns == ("x",)
    assert FeatureSource(None, "a", "fts").spine_key_columns == ("a",)  # type: ignore[arg-type]
