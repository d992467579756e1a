"""Bad input raises JoinError naming the argument, the expectation and what was found."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mesh.errors import JoinError, MeshError
from mesh.join import FeatureSource, SkewConfig, point_in_time_join


@pytest.fixture(scope="module")
def frames(spark):
    spine = spark.createDataFrame([], "cid long, mid long, ts timestamp, x double")
    feats = spark.createDataFrame([], "cid long, fts timestamp, cts timestamp, v double")
    return spine, feats


def join_error(call) -> JoinError:
    with pytest.raises(JoinError) as info:
        call()
    assert isinstance(info.value, MeshError)
    return info.value


def test_missing_key_in_source(frames):
    spine, feats = frames
    err = join_error(lambda: point_in_time_join(spine, FeatureSource(feats, "mid", "fts"), "ts"))
    assert err.params["argument"] == "sources[0].keys"
    assert err.params["column"] == "mid"
    assert "cid" in err.params["found"]


def test_missing_key_in_spine(spark, frames):
    spine, _ = frames
    feats = spark.createDataFrame([], "account long, fts timestamp, v double")
    err = join_error(
        lambda: point_in_time_join(
            spine, FeatureSource(feats, "account", "fts", name="accounts"), "ts"
        )
    )
    assert err.params["argument"] == "accounts.keys"
    assert err.params["column"] == "account"
    assert "accounts" in err.message


def test_key_type_mismatch(spark, frames):
    spine, _ = frames
    feats = spark.createDataFrame([], "cid string, fts timestamp, v double")
    err = join_error(lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "ts"))
    assert err.params == {
        "argument": "sources[0].keys",
        "column": "cid",
        "expected": "bigint",
        "found": "string",
    }


def test_missing_spine_timestamp(frames):
    spine, feats = frames
    err = join_error(
        lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "event_time")
    )
    assert err.params["argument"] == "spine_timestamp"
    assert err.params["column"] == "event_time"


@pytest.mark.parametrize("given", ["column", "", None])
def test_spine_timestamp_that_is_not_a_name(frames, given):
    from pyspark.sql import functions as F

    spine, feats = frames
    value = F.col("ts") if given == "column" else given
    err = join_error(lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), value))
    assert err.params["argument"] == "spine_timestamp"
    assert err.params["found"] == {"column": "Column", "": "''", None: "NoneType"}[given]


def test_spine_timestamp_not_a_timestamp(frames):
    spine, feats = frames
    err = join_error(lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "x"))
    assert err.params["expected"] == "timestamp | timestamp_ntz"
    assert err.params["found"] == "double"


def test_source_timestamp_type_must_match_spine(spark, frames):
    spine, _ = frames
    feats = spark.createDataFrame([], "cid long, fts date, v double")
    err = join_error(lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "ts"))
    assert err.params["argument"] == "sources[0].timestamp"
    assert (err.params["expected"], err.params["found"]) == ("timestamp", "date")


def test_missing_created_timestamp(frames):
    spine, feats = frames
    err = join_error(
        lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts", "arrived"), "ts")
    )
    assert err.params["argument"] == "sources[0].created_timestamp"
    assert err.params["column"] == "arrived"


def test_missing_feature(frames):
    spine, feats = frames
    source = FeatureSource(feats, "cid", "fts", features=["v", "w"])
    err = join_error(lambda: point_in_time_join(spine, source, "ts"))
    assert err.params["argument"] == "sources[0].features"
    assert err.params["column"] == "w"


def test_feature_that_is_a_key(frames):
    spine, feats = frames
    source = FeatureSource(feats, "cid", "fts", features=["v", "cid"])
    err = join_error(lambda: point_in_time_join(spine, source, "ts"))
    assert err.params["found"] == ["cid"]


def test_feature_collides_with_spine_column_unless_prefixed(spark, frames):
    spine, _ = frames
    feats = spark.createDataFrame([], "cid long, fts timestamp, x double")
    err = join_error(lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "ts"))
    assert err.params["argument"] == "sources[0].features"
    assert err.params["column"] == "x"
    out = point_in_time_join(spine, FeatureSource(feats, "cid", "fts", prefix="f_"), "ts")
    assert out.columns == ["cid", "mid", "ts", "x", "f_x"]


def test_unnamed_sources_with_the_same_feature(frames):
    spine, feats = frames
    sources = [FeatureSource(feats, "cid", "fts", "cts"), FeatureSource(feats, "cid", "fts", "cts")]
    err = join_error(lambda: point_in_time_join(spine, sources, "ts", skew=False))
    assert err.params["argument"] == "sources[1].features"
    assert err.params["column"] == "v"


def test_reserved_column_prefix(spark, frames):
    _, feats = frames
    spine = spark.createDataFrame([], "cid long, ts timestamp, __mesh_avail int")
    err = join_error(lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "ts"))
    assert err.params["argument"] == "spine"
    assert err.params["found"] == ["__mesh_avail"]


def test_no_sources_and_wrong_types(frames):
    spine, feats = frames
    assert join_error(lambda: point_in_time_join(spine, [], "ts")).params["argument"] == "sources"
    err = join_error(lambda: point_in_time_join(spine, [feats], "ts"))  # type: ignore[list-item]
    assert err.params == {
        "argument": "sources[0]",
        "expected": "FeatureSource",
        "found": "DataFrame",
    }
    err = join_error(lambda: point_in_time_join("spine", FeatureSource(feats, "cid", "fts"), "ts"))
    assert err.params["argument"] == "spine"
    assert err.params["found"] == "builtins.str"


def test_sources_of_the_wrong_kind_say_what_to_pass(frames):
    # Iterated, a string was reported as its first character, a DataFrame as a Column, and
    # None failed with a TypeError.
    spine, feats = frames
    reference = "build_inference_set"
    for sources, argument, found, hint in [
        ("payments.spend", "sources", "str", reference),
        (["payments.spend.amount"], "sources[0]", "str", reference),
        (feats, "sources", "DataFrame", "FeatureSource(df, keys=['customer_id']"),
        ({"spend": feats}, "sources", "dict", "FeatureSource(df, keys, timestamp)"),
        (None, "sources", "NoneType", "FeatureSource(df, keys, timestamp)"),
    ]:
        err = join_error(lambda s=sources: point_in_time_join(spine, s, "ts"))
        assert err.params == {"argument": argument, "expected": "FeatureSource", "found": found}
        assert hint in str(err)
    # A reference as a source's table.
    err = join_error(
        lambda: point_in_time_join(spine, FeatureSource("payments.spend", "cid", "fts"), "ts")
    )
    assert err.params["argument"] == "sources[0].df" and reference in str(err)


def test_pandas_frames_are_named_as_such(frames):
    spine, feats = frames
    err = join_error(
        lambda: point_in_time_join(spine.toPandas(), FeatureSource(feats, "cid", "fts"), "ts")
    )
    assert err.params["found"] == "pandas.core.frame.DataFrame"
    assert "spark.createDataFrame(frame)" in str(err)
    err = join_error(
        lambda: point_in_time_join(spine, FeatureSource(feats.toPandas(), "cid", "fts"), "ts")
    )
    assert err.params == {
        "argument": "sources[0].df",
        "expected": "pyspark.sql.DataFrame",
        "found": "pandas.core.frame.DataFrame",
    }


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"ttl": -1}, "ttl"),
        ({"ttl": dt.timedelta(hours=-1)}, "ttl"),
        ({"ttl": "7d"}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"ttl": float("nan")}, "ttl"),
        ({"ttl": float("inf")}, "ttl"),
        ({"ttl": 1e20}, "ttl"),
        ({"keys": []}, "keys"),
        ({"keys": ["cid", "cid"]}, "keys"),
        ({"features": []}, "features"),
        ({"timestamp": ""}, "timestamp"),
        ({"prefix": 3}, "prefix"),
    ],
)
def test_feature_source_arguments(frames, kwargs, argument):
    _, feats = frames
    arguments = {"df": feats, "keys": "cid", "timestamp": "fts", **kwargs}
    err = join_error(lambda: FeatureSource(**arguments))
    assert err.params["argument"] == argument


def test_ttl_forms_are_normalised(frames):
    _, feats = frames
    assert FeatureSource(feats, "cid", "fts", ttl=90).ttl == dt.timedelta(seconds=90)
    assert FeatureSource(feats, "cid", "fts", ttl=1.5).ttl == dt.timedelta(seconds=1.5)
    assert FeatureSource(feats, "cid", "fts", ttl=None).ttl is None
    # Numbers from numpy (a pandas column, a config read with it) are seconds too.
    for seconds in (np.int64(3600), np.int32(3600), np.float64(3600.0), np.float32(3600.0)):
        assert FeatureSource(feats, "cid", "fts", ttl=seconds).ttl == dt.timedelta(hours=1)
    for refused in (np.bool_(True), np.int64(-1), np.float64("nan")):
        assert (
            join_error(lambda v=refused: FeatureSource(feats, "cid", "fts", ttl=v)).params[
                "argument"
            ]
            == "ttl"
        )
    assert FeatureSource(feats, ["cid"], "fts").keys == ("cid",)


def test_numpy_durations_count_in_their_unit(frames):
    """numpy's timedelta64 (a pandas timedelta column's value, in nanoseconds) is a duration
    in its unit, not a number of seconds: numpy registers it as an integer."""
    import pandas as pd

    _, feats = frames
    hour = pd.Series(pd.to_timedelta(["1h"])).to_numpy()[0]  # timedelta64(3600000000000,'ns')
    given = [
        (hour, dt.timedelta(hours=1)),
        (np.timedelta64(7, "D"), dt.timedelta(days=7)),
        (np.timedelta64(2, "W"), dt.timedelta(weeks=2)),
        (np.timedelta64(90, "s"), dt.timedelta(seconds=90)),
        (np.timedelta64(1500, "ns"), dt.timedelta(microseconds=1)),  # Spark's precision
        (np.array(np.timedelta64(3, "h")), dt.timedelta(hours=3)),
    ]
    for value, expected in given:
        assert FeatureSource(feats, "cid", "fts", ttl=value).ttl == expected
    refused = [
        np.timedelta64("NaT"),
        np.timedelta64(1, "M"),  # months and years have no fixed length
        np.timedelta64(1, "Y"),
        np.timedelta64(5),  # no unit
        np.timedelta64(10**17, "s"),  # beyond a timedelta (numpy's own conversion wraps)
        np.timedelta64(-1, "h"),
    ]
    for value in refused:
        err = join_error(lambda v=value: FeatureSource(feats, "cid", "fts", ttl=v))
        assert err.params["argument"] == "ttl"
        assert err.params["found"] is value


@pytest.mark.parametrize(
    ("skew", "argument"),
    [
        ("yes", "skew"),
        ([1, 2], "skew"),
        (SkewConfig, "skew"),
    ],
)
def test_bad_skew_argument(frames, skew, argument):
    spine, feats = frames
    err = join_error(
        lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "ts", skew=skew)
    )
    assert err.params["argument"] == argument


@pytest.mark.parametrize(
    ("hot", "message"),
    [
        ([{"cid": "42"}], "does not fit the key types {'cid': 'bigint'}"),
        ([{"customer": 1}], "are not the key columns of any source"),
        ([{"cid": 1, "mid": 2}], "are not the key columns of any source"),
    ],
)
def test_explicit_hot_keys_are_checked_before_any_job(spark, frames, hot, message):
    spine, feats = frames
    jobs = spark.sparkContext.statusTracker().getJobIdsForGroup()
    for strategy in ("auto", "indexed", "sorted"):
        source = FeatureSource(feats, "cid", "fts")
        err = join_error(
            lambda s=source, how=strategy: point_in_time_join(
                spine, s, "ts", skew=hot, strategy=how
            )
        )
        assert err.params["argument"] == "skew.hot_keys[0]" and message in str(err)
    assert spark.sparkContext.statusTracker().getJobIdsForGroup() == jobs


@pytest.mark.parametrize("strategy", ["auto", "indexed", "sorted"])
def test_streaming_frames_are_refused_before_any_job(spark, frames, strategy):
    # Spark's own error ("Queries with streaming sources must be executed with
    # writeStream.start()") came from the join's first job, naming neither input.
    spine, feats = frames
    rate = spark.readStream.format("rate").load()
    stream_spine = rate.selectExpr("value AS cid", "timestamp AS ts")
    stream_feats = rate.selectExpr("value AS cid", "timestamp AS fts", "1.0D AS v")
    jobs = spark.sparkContext.statusTracker().getJobIdsForGroup()
    for given, source, argument in [
        (stream_spine, FeatureSource(feats, "cid", "fts"), "spine"),
        (spine, FeatureSource(stream_feats, "cid", "fts", name="clicks"), "clicks.df"),
    ]:
        err = join_error(
            lambda g=given, s=source: point_in_time_join(g, s, "ts", strategy=strategy)
        )
        assert err.params == {
            "argument": argument,
            "expected": "batch DataFrame",
            "found": "streaming DataFrame",
        }
        assert "foreachBatch" in str(err) and "spark.read" in str(err)
    assert spark.sparkContext.statusTracker().getJobIdsForGroup() == jobs


def test_bad_skew_config():
    assert join_error(lambda: SkewConfig(sample_fraction=0)).params["argument"] == (
        "skew.sample_fraction"
    )
    assert join_error(lambda: SkewConfig(max_buckets=1)).params["argument"] == "skew.max_buckets"


def test_map_features_are_refused_by_name(spark):
    spine = spark.createDataFrame([(1, dt.datetime(2024, 1, 2))], "cid int, ts timestamp")
    feats = spark.sql(
        "SELECT 1 AS cid, TIMESTAMP'2024-01-01 00:00:00' AS fts, map('a', 1) AS m, "
        "array(named_struct('x', map('b', 2))) AS nested, 3 AS plain"
    )
    err = join_error(lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "ts"))
    assert err.params["found"] == ["m", "nested"]


@pytest.mark.parametrize("strategy", ["auto", "sorted"])
def test_map_keys_are_refused_before_any_job(spark, strategy):
    spine = spark.sql("SELECT map('a', 1) AS k, TIMESTAMP'2024-01-02 00:00:00' AS ts")
    feats = spark.sql("SELECT map('a', 1) AS k, TIMESTAMP'2024-01-01 00:00:00' AS fts, 3 AS x")
    jobs = spark.sparkContext.statusTracker().getJobIdsForGroup()
    err = join_error(
        lambda: point_in_time_join(spine, FeatureSource(feats, "k", "fts"), "ts", strategy=strategy)
    )
    assert err.params["argument"] == "sources[0].keys" and err.params["column"] == "k"
    assert "holds a map or a variant" in str(err)
    assert spark.sparkContext.statusTracker().getJobIdsForGroup() == jobs


@pytest.mark.parametrize("strategy", ["auto", "sorted"])
def test_struct_keys_join_without_an_index(spark, strategy):
    spine = spark.sql(
        "SELECT named_struct('id', 1, 'region', 'a') AS k, TIMESTAMP'2024-01-02 00:00:00' AS ts"
    )
    feats = spark.sql(
        "SELECT named_struct('id', 1, 'region', 'a') AS k, TIMESTAMP'2024-01-01 00:00:00' AS fts, "
        "3.0D AS x"
    )
    out = point_in_time_join(spine, FeatureSource(feats, "k", "fts"), "ts", strategy=strategy)
    assert [r["x"] for r in out.collect()] == [3.0]
    err = join_error(
        lambda: point_in_time_join(
            spine, FeatureSource(feats, "k", "fts"), "ts", strategy="indexed"
        )
    )
    assert err.params["argument"] == "strategy"


def test_variant_features_are_refused_by_name_and_variant_spine_columns_kept(spark):
    # Variants cannot be ordered either; a variant spine column is carried as any other.
    spine = spark.sql(
        "SELECT 1 AS cid, TIMESTAMP'2024-01-02 00:00:00' AS ts, parse_json('{\"a\": 1}') AS p"
    )
    feats = spark.sql(
        "SELECT 1 AS cid, TIMESTAMP'2024-01-01 00:00:00' AS fts, parse_json('[1]') AS v, "
        "array(named_struct('x', parse_json('2'))) AS nested, 3 AS plain"
    )
    err = join_error(lambda: point_in_time_join(spine, FeatureSource(feats, "cid", "fts"), "ts"))
    assert err.params["argument"] == "sources[0].features"
    assert err.params["found"] == ["v", "nested"]
    out = point_in_time_join(spine, FeatureSource(feats, "cid", "fts", features=["plain"]), "ts")
    row = out.selectExpr("cid", "to_json(p) AS p", "plain").first()
    assert tuple(row) == (1, '{"a":1}', 3)


@pytest.mark.parametrize(
    ("kwargs", "argument", "expected"),
    [
        ({"strict": "no"}, "strict", "bool"),
        ({"strict": 1}, "strict", "bool"),
        ({"strict": None}, "strict", "bool"),
        ({"index_max_rows": -1}, "index_max_rows", "int >= 0"),
        ({"index_max_rows": 1.5}, "index_max_rows", "int >= 0"),
        ({"index_max_rows": 10.0}, "index_max_rows", "int >= 0"),
        ({"index_max_rows": True}, "index_max_rows", "int >= 0"),
        ({"index_max_rows": "10"}, "index_max_rows", "int >= 0"),
    ],
)
def test_join_arguments_of_the_wrong_kind_are_refused(frames, kwargs, argument, expected):
    spine, feats = frames
    source = FeatureSource(feats, "cid", "fts")
    err = join_error(lambda: point_in_time_join(spine, source, "ts", **kwargs))
    (value,) = kwargs.values()
    assert err.params == {"argument": argument, "expected": expected, "found": value}
    assert err.message.startswith(f"{argument}: ")
    assert repr(value) in err.message


def test_join_arguments_of_the_right_kind_are_accepted(frames):
    import numpy as np

    spine, feats = frames
    source = FeatureSource(feats, "cid", "fts")
    for kwargs in ({"strict": True}, {"index_max_rows": 0}, {"index_max_rows": np.int64(10)}):
        assert point_in_time_join(spine, source, "ts", **kwargs).count() == 0


def test_exclude_not_yet_created_must_be_a_bool(frames):
    _, feats = frames
    err = join_error(
        lambda: FeatureSource(feats, "cid", "fts", "cts", exclude_not_yet_created="no")
    )
    assert err.params == {"argument": "exclude_not_yet_created", "expected": "bool", "found": "no"}
    assert FeatureSource(feats, "cid", "fts", "cts", exclude_not_yet_created=False)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"min_rows": "5"}, "skew.min_rows"),
        ({"min_rows": True}, "skew.min_rows"),
        ({"max_buckets": 4.5}, "skew.max_buckets"),
        ({"seed": 1.5}, "skew.seed"),
        ({"sample_fraction": "0.1"}, "skew.sample_fraction"),
        ({"partition_factor": "2"}, "skew.partition_factor"),
        ({"partition_factor": -1.0}, "skew.partition_factor"),
        ({"partition_factor": float("nan")}, "skew.partition_factor"),
    ],
)
def test_skew_config_fields_of_the_wrong_kind(kwargs, argument):
    assert join_error(lambda: SkewConfig(**kwargs)).params["argument"] == argument
