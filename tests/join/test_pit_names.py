"""Output names compared as the session compares them (``spark.sql.caseSensitive``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from chispa import assert_df_equality

from mesh.errors import JoinError
from mesh.join import FeatureSource, point_in_time_join

T1, T2 = dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)


@pytest.fixture
def case_sensitive(spark) -> Iterator[None]:
    before = spark.conf.get("spark.sql.caseSensitive")
    spark.conf.set("spark.sql.caseSensitive", "true")
    try:
        yield
    finally:
        spark.conf.set("spark.sql.caseSensitive", before)


def frames(spark):
    spine = spark.createDataFrame(
        [(1, 7, T2, 5.0)], "cid long, mid long, ts timestamp, Amount double"
    )
    amount = spark.createDataFrame([(1, T1, 7.0)], "cid long, fts timestamp, amount double")
    small = spark.createDataFrame([(1, T1, 8.0)], "cid long, fts timestamp, s double")
    big = spark.createDataFrame([(7, T1, 9.0)], "mid long, fts timestamp, S double")
    return spine, amount, small, big


def join_error(call) -> JoinError:
    with pytest.raises(JoinError) as info:
        call()
    return info.value


def test_feature_differing_from_a_spine_column_in_case_only(spark):
    spine, amount, _, _ = frames(spark)
    source = FeatureSource(amount, "cid", "fts", name="payments")
    err = join_error(lambda: point_in_time_join(spine, source, "ts"))
    assert err.params == {
        "argument": "payments.features",
        "column": "amount",
        "expected": "feature names not in the spine",
        "found": "amount",
        "collides_with": "Amount",
        "collides_in": "spine",
    }
    assert "spark.sql.caseSensitive" in err.message
    assert "prefix=" in err.message
    # The hint works: a prefix gives distinct names.
    out = point_in_time_join(spine, FeatureSource(amount, "cid", "fts", prefix="f_"), "ts")
    assert out.columns == ["cid", "mid", "ts", "Amount", "f_amount"]


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_two_sources_differing_in_case_only(spark, strategy):
    spine, _, small, big = frames(spark)
    sources = [FeatureSource(small, "cid", "fts"), FeatureSource(big, "mid", "fts")]
    err = join_error(lambda: point_in_time_join(spine, sources, "ts", strategy=strategy))
    assert err.params["argument"] == "sources[1].features"
    assert (err.params["column"], err.params["collides_with"]) == ("S", "s")
    assert err.params["collides_in"] == "sources[0]"
    # Named sources are told apart as for equal names: `<name>__<feature>`.
    named = [
        FeatureSource(small, "cid", "fts", name="a"),
        FeatureSource(big, "mid", "fts", name="b"),
    ]
    out = point_in_time_join(spine.drop("Amount"), named, "ts", strategy=strategy)
    assert out.columns == ["cid", "mid", "ts", "a__s", "b__S"]
    assert [tuple(r) for r in out.collect()] == [(1, 7, T2, 8.0, 9.0)]


def test_columns_differing_in_case_only_within_an_input(spark):
    spine, amount, _, _ = frames(spark)
    twice = spark.createDataFrame(
        [(1, T2, 5.0, 6.0)], "cid long, ts timestamp, Amount double, amount double"
    )
    err = join_error(lambda: point_in_time_join(twice, FeatureSource(amount, "cid", "fts"), "ts"))
    assert (err.params["argument"], err.params["found"]) == ("spine", ["Amount", "amount"])
    doubled = amount.selectExpr("*", "amount AS AMOUNT_X", "amount AS Amount")
    err = join_error(
        lambda: point_in_time_join(
            spine.drop("Amount"), FeatureSource(doubled, "cid", "fts", features=["amount"]), "ts"
        )
    )
    assert (err.params["argument"], err.params["found"]) == ("sources[0].df", ["Amount", "amount"])
    # A column the join does not refer to may repeat another in case.
    out = point_in_time_join(
        spine.drop("Amount"), FeatureSource(doubled, "cid", "fts", features=["AMOUNT_X"]), "ts"
    )
    assert out.columns == ["cid", "mid", "ts", "AMOUNT_X"]


def test_keys_and_reserved_names_in_another_case(spark):
    spine, amount, _, _ = frames(spark)
    keyed = amount.selectExpr("*", "cid AS CID")
    err = join_error(
        lambda: point_in_time_join(
            spine, FeatureSource(keyed, "cid", "fts", features=["CID"]), "ts"
        )
    )
    assert err.params["found"] == ["CID"]
    internal = spine.withColumnRenamed("Amount", "__MESH_avail")
    err = join_error(
        lambda: point_in_time_join(internal, FeatureSource(amount, "cid", "fts"), "ts")
    )
    assert (err.params["argument"], err.params["found"]) == ("spine", ["__MESH_avail"])


@pytest.mark.usefixtures("case_sensitive")
@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_case_sensitive_session_keeps_names_apart(spark, strategy):
    spine, amount, small, big = frames(spark)
    sources = [
        FeatureSource(amount, "cid", "fts"),
        FeatureSource(small, "cid", "fts"),
        FeatureSource(big, "mid", "fts"),  # another key set: `s` rides in the spine struct
    ]
    out = point_in_time_join(spine, sources, "ts", strategy=strategy)
    expected = spark.createDataFrame(
        [(1, 7, T2, 5.0, 7.0, 8.0, 9.0)],
        "cid long, mid long, ts timestamp, Amount double, amount double, s double, S double",
    )
    assert_df_equality(out, expected, ignore_nullable=True)


@pytest.mark.parametrize("strategy", ["sorted", "indexed"])
def test_names_in_another_case_resolve_as_spark_resolves_them(spark, strategy):
    # spark.sql.caseSensitive is false (Spark's default): a name matches a column in any
    # case, and the output is spelled as the DataFrames spell their columns.
    spine = spark.createDataFrame([(1, T2, 5.0)], "CUSTOMER_ID long, ts timestamp, x double")
    feats = spark.createDataFrame(
        [(1, T1, T1, 7.0), (1, T2, T2, 8.0)],
        "customer_id long, fts timestamp, cts timestamp, Amount double",
    )
    source = FeatureSource(
        feats, ["Customer_ID"], "FTS", created_timestamp="CTS", features=["amount"]
    )
    out = point_in_time_join(spine, source, "TS", strategy=strategy, strict=True)
    expected = spark.createDataFrame(
        [(1, T2, 5.0, 7.0)], "CUSTOMER_ID long, ts timestamp, x double, Amount double"
    )
    assert_df_equality(out, expected, ignore_nullable=True)
    # spine_keys in another case too.
    mapped = FeatureSource(
        feats, "CUSTOMER_id", "fts", spine_keys="customer_ID", prefix="f_", features=["AMOUNT"]
    )
    out = point_in_time_join(spine, mapped, "ts", strategy=strategy)
    assert out.columns == ["CUSTOMER_ID", "ts", "x", "f_Amount"]
    assert [tuple(r) for r in out.collect()] == [(1, T2, 5.0, 8.0)]


def test_names_matching_several_columns_or_one_column_twice(spark):
    spine, _, _, _ = frames(spark)
    feats = spark.createDataFrame(
        [(1, T1, 7.0, 8.0)], "cid long, fts timestamp, amount double, AMOUNT double"
    )
    err = join_error(
        lambda: point_in_time_join(
            spine.drop("Amount"), FeatureSource(feats, "cid", "fts", features=["Amount"]), "ts"
        )
    )
    assert err.params == {
        "argument": "sources[0].features",
        "column": "Amount",
        "expected": "one matching column",
        "found": ["amount", "AMOUNT"],
    }
    assert "spark.sql.caseSensitive" in err.message
    err = join_error(
        lambda: point_in_time_join(spine, FeatureSource(feats, ["cid", "CID"], "fts"), "ts")
    )
    assert err.params == {
        "argument": "sources[0].keys",
        "expected": "names of distinct columns",
        "found": ["cid", "CID"],
    }


@pytest.mark.usefixtures("case_sensitive")
def test_case_sensitive_session_names_the_column_in_another_case(spark):
    spine = spark.createDataFrame([(1, T2)], "customer_id long, ts timestamp")
    feats = spark.createDataFrame([(1, T1, 7.0)], "customer_id long, fts timestamp, v double")
    err = join_error(
        lambda: point_in_time_join(spine, FeatureSource(feats, "Customer_ID", "fts"), "ts")
    )
    assert (err.params["argument"], err.params["column"]) == ("sources[0].keys", "Customer_ID")
    assert "['customer_id'] differ in case" in err.message
    err = join_error(
        lambda: point_in_time_join(spine, FeatureSource(feats, "customer_id", "fts"), "TS")
    )
    assert (err.params["argument"], err.params["column"]) == ("spine_timestamp", "TS")
