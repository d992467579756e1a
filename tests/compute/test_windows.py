"""Window conventions, late data, ties, row-level corrections, plan shape and errors."""

from __future__ import annotations

import math
import statistics
from datetime import datetime
from typing import Any

import pytest
from _compute_helpers import KEYS, T0, at, feature_set, product, source_df
from chispa import assert_df_equality

from mesh.compute import feature_frame
from mesh.errors import ComputeError

COUNTS = [{"kind": "aggregation", "name": "n", "function": "count", "windows": ["1d", "2d"]}]
OUT_SCHEMA = "cid bigint, feature_ts timestamp, created_ts timestamp, n_1d bigint, n_2d bigint"


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None)


def test_window_is_half_open_and_a_day_is_stamped_at_its_end(spark: Any) -> None:
    # (t - w, t]: a row exactly at t counts, a row exactly at t - w does not.
    src = source_df(spark, [{"cid": 1, "e": at(0)}, {"cid": 1, "e": at(12)}])
    fs = feature_set(COUNTS)
    got = feature_frame(src, fs, product(), KEYS, at(days=-1), at(days=5))
    d = [_naive(at(days=i)) for i in range(4)]
    expected = spark.createDataFrame(
        [(1, d[0], d[0], 1, 1), (1, d[1], d[1], 1, 2), (1, d[2], d[2], 0, 1)], OUT_SCHEMA
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_late_row_enters_at_arrival_and_leaves_by_event_time(spark: Any) -> None:
    src = source_df(spark, [{"cid": 1, "e": at(10), "a": at(days=1, hours=10)}])
    fs = feature_set(
        [{"kind": "aggregation", "name": "n", "function": "count", "windows": ["1d", "3d"]}]
    )
    got = feature_frame(src, fs, product(), KEYS, T0, at(days=6))
    schema = "cid bigint, feature_ts timestamp, created_ts timestamp, n_1d bigint, n_3d bigint"
    d = [_naive(at(days=i)) for i in range(5)]
    # Not known at day 1's end (arrives later); gone from the 3d window after day 3's end.
    expected = spark.createDataFrame([(1, d[2], d[2], 0, 1), (1, d[3], d[3], 0, 1)], schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_admitting_late_data_stamps_created_ts_with_the_arrival(spark: Any) -> None:
    src = source_df(spark, [{"cid": 1, "e": at(10), "a": at(days=1, hours=10)}])
    fs = feature_set(COUNTS, exclude_late_data=False)
    rows = feature_frame(src, fs, product(), KEYS, T0, at(days=2)).collect()
    assert [(r.feature_ts, r.created_ts, r.n_1d) for r in rows] == [
        (_naive(at(days=1)), _naive(at(days=1, hours=10)), 1)
    ]


def test_event_accuracy_gives_one_row_per_instant_including_ties(spark: Any) -> None:
    src = source_df(
        spark,
        [
            {"cid": 1, "e": at(1), "x": 1.0},
            {"cid": 1, "e": at(1), "x": 2.0},
            {"cid": 1, "e": at(2), "x": 4.0},
        ],
    )
    fs = feature_set(
        [{"kind": "aggregation", "name": "s", "function": "sum", "column": "x", "windows": ["1h"]}],
        accuracy="event",
    )
    rows = (
        feature_frame(src, fs, product(False), KEYS, T0, at(days=1)).orderBy("feature_ts").collect()
    )
    # At 02:00 the window (01:00, 02:00] no longer holds the 01:00 rows.
    assert [(r.feature_ts, r.s_1h) for r in rows] == [(_naive(at(1)), 3.0), (_naive(at(2)), 4.0)]


LATE_FEATURES = [
    {"kind": "aggregation", "name": "n", "function": "count", "windows": ["2h", "1d"]},
    *[
        {"kind": "aggregation", "name": f, "function": f, "column": "x", "windows": ["1d"]}
        for f in ("sum", "mean", "stddev", "min", "max")
    ],
    {"kind": "aggregation", "name": "lc", "function": "last", "column": "ch", "windows": ["1d"]},
    {
        "kind": "aggregation",
        "name": "dc",
        "function": "approx_distinct",
        "column": "ch",
        "windows": ["1d"],
    },
]
LATE_SCHEMA = (
    "cid bigint, feature_ts timestamp, created_ts timestamp, n_2h bigint, n_1d bigint, "
    "sum_1d double, mean_1d double, stddev_1d double, min_1d double, max_1d double, "
    "lc_1d string, dc_1d bigint"
)


@pytest.mark.parametrize("engine", ["kernel", "sql"])
@pytest.mark.parametrize("start", [T0, at(days=2, hours=11.5)], ids=["all", "after_reach"])
def test_a_row_arriving_after_it_left_every_window_still_stamps_a_value(
    spark: Any, engine: str, start: datetime
) -> None:
    # Each late row (event day 0, arriving day 2 12:00, past the longest window, 1d) counts in
    # no value but is available at 12:00, so its entity gets a value there: cid 1 then holds
    # only C (A has left), cid 2 (no other row) the empty window's values, and cid 3's late
    # row ties with an on-time row. From "after_reach" on, the late rows' events are before
    # every window of the range (the range is read by event time and, for them, arrival).
    noon = at(days=2, hours=12)
    src = source_df(
        spark,
        [
            {
                "cid": 1,
                "e": at(days=1, hours=11.5),
                "a": at(days=1, hours=11.5),
                "x": 1.0,
                "ch": "a",
            },
            {"cid": 1, "e": at(days=2, hours=11), "a": at(days=2, hours=11), "x": 4.0, "ch": "b"},
            {"cid": 1, "e": at(9), "a": noon, "x": 100.0, "ch": "z"},
            {"cid": 2, "e": at(9), "a": noon, "x": 7.0, "ch": "c"},
            {"cid": 3, "e": noon, "a": noon, "x": 2.0, "ch": "d"},
            {"cid": 3, "e": at(10), "a": noon, "x": 50.0, "ch": "e"},
        ],
    )
    fs = feature_set(LATE_FEATURES, accuracy="event")
    got = feature_frame(src, fs, product(), KEYS, start, at(days=3), engine=engine)
    a, c, t = _naive(at(days=1, hours=11.5)), _naive(at(days=2, hours=11)), _naive(noon)
    rows = [
        (1, a, a, 1, 1, 1.0, 1.0, None, 1.0, 1.0, "a", 1),
        (1, c, c, 1, 2, 5.0, 2.5, statistics.stdev([1.0, 4.0]), 1.0, 4.0, "b", 2),
        (1, t, t, 1, 1, 4.0, 4.0, None, 4.0, 4.0, "b", 1),
        (2, t, t, 0, 0, None, None, None, None, None, None, 0),
        (3, t, t, 1, 1, 2.0, 2.0, None, 2.0, 2.0, "d", 1),
    ]
    expected = spark.createDataFrame([r for r in rows if r[1] >= _naive(start)], LATE_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("exclude_late_data", [True, False])
def test_row_level_correction_is_a_new_row_known_from_its_arrival(
    spark: Any, exclude_late_data: bool
) -> None:
    # Admitting late data changes which values a point in time may use, not what the rows
    # are: the correction (to a value that loses a max() against the original) still arrives
    # later, so it is its own row, not a duplicate of the original reduced by value.
    src = source_df(
        spark,
        [
            {"cid": 1, "e": at(1), "a": at(1), "x": 5.0, "ch": "web"},
            {"cid": 1, "e": at(1), "a": at(3), "x": 6.0, "ch": "web"},
        ],
    )
    fs = feature_set(
        [
            {"kind": "expression", "name": "neg", "expr": "-x", "type": "double"},
            {"kind": "column", "name": "ch", "type": "string"},
        ],
        accuracy="event",
        exclude_late_data=exclude_late_data,
    )
    got = feature_frame(src, fs, product(), KEYS, T0, at(days=1))
    schema = "cid bigint, feature_ts timestamp, created_ts timestamp, neg double, ch string"
    expected = spark.createDataFrame(
        [
            (1, _naive(at(1)), _naive(at(1)), -5.0, "web"),
            (1, _naive(at(1)), _naive(at(3)), -6.0, "web"),
        ],
        schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("has_arrival", [True, False])
def test_row_level_created_ts_is_never_before_the_event(spark: Any, has_arrival: bool) -> None:
    # An arrival stamped before the event (clock skew) or missing reads as the event time.
    src = source_df(
        spark, [{"cid": 1, "e": at(2), "a": at(1), "x": 1.0}, {"cid": 2, "e": at(2), "x": 2.0}]
    )
    fs = feature_set(
        [{"kind": "expression", "name": "neg", "expr": "-x", "type": "double"}],
        accuracy="event",
        exclude_late_data=False,
    )
    rows = feature_frame(src, fs, product(has_arrival), KEYS, T0, at(days=1)).collect()
    assert sorted((r.cid, r.feature_ts, r.created_ts) for r in rows) == [
        (1, _naive(at(2)), _naive(at(2))),
        (2, _naive(at(2)), _naive(at(2))),
    ]


@pytest.mark.parametrize("accuracy", ["snapshot", "event"])
def test_plan_shuffles_once_on_the_keys(spark: Any, accuracy: str) -> None:
    src = source_df(spark, [{"cid": 1, "e": at(1), "a": at(2), "x": 1.0, "ch": "a"}])
    fs = feature_set(
        [
            {
                "kind": "aggregation",
                "name": "n",
                "function": "count",
                "windows": ["1d", "7d", "30d"],
            },
            {
                "kind": "aggregation",
                "name": "s",
                "function": "mean",
                "column": "x",
                "windows": ["7d"],
            },
            {
                "kind": "aggregation",
                "name": "hi",
                "function": "max",
                "column": "x",
                "windows": ["30d"],
            },
            {
                "kind": "aggregation",
                "name": "l",
                "function": "last",
                "column": "ch",
                "windows": ["7d"],
            },
            {
                "kind": "aggregation",
                "name": "d",
                "function": "approx_distinct",
                "column": "ch",
                "windows": ["30d"],
            },
        ],
        accuracy=accuracy,
    )
    df = feature_frame(src, fs, product(), KEYS, T0, at(days=3))
    plan = df._jdf.queryExecution().executedPlan().toString()
    exchanges = [line for line in plan.splitlines() if "Exchange" in line]
    assert len(exchanges) == 1, plan
    assert "hashpartitioning(cid" in exchanges[0]


def _error(spark: Any, features: list[dict[str, Any]], **kw: Any) -> ComputeError:
    src = source_df(spark, [{"cid": 1, "e": at(1)}])
    with pytest.raises(ComputeError) as info:
        feature_frame(src, feature_set(features, **kw), product(), KEYS, T0, at(days=1))
    return info.value


def test_window_not_on_the_grid_is_refused(spark: Any) -> None:
    err = _error(
        spark, [{"kind": "aggregation", "name": "n", "function": "count", "windows": ["36h"]}]
    )
    assert err.params == {"feature_set": "d.fs", "feature": "n", "window": "36h", "interval": "1d"}


@pytest.mark.parametrize("engine", ["kernel", "sql"])
@pytest.mark.parametrize("accuracy", ["snapshot", "event"])
def test_a_window_reaching_before_year_1_counts_every_row(
    spark: Any, engine: str, accuracy: str
) -> None:
    # 3000 years back from 2024 is before the first datetime: the window covers every row.
    fs = feature_set(
        [{"kind": "aggregation", "name": "n", "function": "count", "windows": ["1d", "3000y"]}],
        accuracy=accuracy,
    )
    src = source_df(spark, [{"cid": 1, "e": at(1)}, {"cid": 1, "e": at(days=2)}])
    got = feature_frame(src, fs, product(), KEYS, T0, at(days=4), engine=engine)
    last = got.orderBy("feature_ts").collect()[-1]
    assert (last.n_1d, last.n_1095000d) == (0 if accuracy == "snapshot" else 1, 2)


def test_bad_filter_names_the_feature(spark: Any) -> None:
    err = _error(
        spark,
        [
            {
                "kind": "aggregation",
                "name": "n",
                "function": "count",
                "filter": "no_such_column > 1",
                "windows": ["1d"],
            }
        ],
    )
    assert err.params["feature"] == "n"
    assert err.params["filter"] == "no_such_column > 1"


def test_a_filter_that_does_not_parse_says_why(spark: Any) -> None:
    # Spark's parse errors start with an empty line: the reason was lost, "source ()".
    err = _error(
        spark,
        [
            {
                "kind": "aggregation",
                "name": "n",
                "function": "count",
                "filter": "ch == = 'web'",
                "windows": ["1d"],
            }
        ],
    )
    assert "over the source ([PARSE_SYNTAX_ERROR] Syntax error at or near '='" in str(err)


def test_a_misspelt_filter_column_is_matched_to_the_source_columns_only(spark: Any) -> None:
    # Spark's suggestions for the typo come from the source's own columns, never from the
    # engine's (`_e_us`, `_pe`, ...) that no definition can name.
    err = _error(
        spark,
        [
            {
                "kind": "aggregation",
                "name": "n",
                "function": "count",
                "filter": "flg",
                "windows": ["1d"],
            }
        ],
    )
    suggested = str(err).split("Did you mean one of the following? [")[1].split("]")[0]
    assert "`flag`" in suggested and "`_" not in suggested, suggested


def test_a_row_level_expression_that_does_not_parse_says_why(spark: Any) -> None:
    err = _error(
        spark,
        [{"kind": "expression", "name": "y", "expr": "x + * 2", "type": "double"}],
        accuracy="event",
    )
    assert "over the source ([PARSE_SYNTAX_ERROR] Syntax error at or near" in str(err)
    assert "`_" not in str(err) and "(cid, event_ts, ingested_ts, x, ch, flag)" in str(err)


def test_unknown_aggregation_column_is_refused(spark: Any) -> None:
    err = _error(
        spark,
        [
            {
                "kind": "aggregation",
                "name": "s",
                "function": "sum",
                "column": "amount",
                "windows": ["1d"],
            }
        ],
    )
    assert err.params == {"feature_set": "d.fs", "feature": "s", "column": "amount"}


def test_row_level_features_need_event_accuracy(spark: Any) -> None:
    err = _error(spark, [{"kind": "column", "name": "ch", "type": "string"}])
    assert err.params == {"feature_set": "d.fs", "accuracy": "snapshot"}


def test_bad_expression_names_the_feature(spark: Any) -> None:
    err = _error(
        spark,
        [{"kind": "expression", "name": "y", "expr": "nope + 1", "type": "double"}],
        accuracy="event",
    )
    assert (err.params["feature"], err.params["expr"]) == ("y", "nope + 1")


def test_empty_range_is_refused(spark: Any) -> None:
    src = source_df(spark, [{"cid": 1, "e": at(1)}])
    with pytest.raises(ComputeError) as info:
        feature_frame(src, feature_set(COUNTS), product(), KEYS, at(days=1), T0)
    assert set(info.value.params) == {"feature_set", "start", "end"}


@pytest.mark.parametrize("engine", ["kernel", "sql"])
def test_nan_and_infinity_count_only_while_in_the_window(spark: Any, engine: str) -> None:
    # A sum holding NaN is NaN, +inf and -inf together are NaN (Spark's sum); once such a
    # row has left the window it no longer changes the value.
    rows = [
        {"cid": 1, "e": at(1), "x": float("nan")},
        {"cid": 1, "e": at(3), "x": 2.0},
        {"cid": 1, "e": at(5), "x": 3.0},
        {"cid": 2, "e": at(1), "x": float("inf")},
        {"cid": 2, "e": at(2), "x": float("-inf")},
        {"cid": 2, "e": at(5), "x": 3.0},
    ]
    fs = feature_set(
        [
            {
                "kind": "aggregation",
                "name": "s",
                "function": "sum",
                "column": "x",
                "windows": ["3h"],
            },
            {
                "kind": "aggregation",
                "name": "m",
                "function": "mean",
                "column": "x",
                "windows": ["3h"],
            },
        ],
        accuracy="event",
    )
    src = source_df(spark, rows)
    got = feature_frame(src, fs, product(False), KEYS, T0, at(days=1), engine=engine)
    schema = "cid bigint, feature_ts timestamp, created_ts timestamp, s_3h double, m_3h double"
    nan, inf = float("nan"), float("inf")
    expected = spark.createDataFrame(
        [
            (1, _naive(at(1)), _naive(at(1)), nan, nan),
            (1, _naive(at(3)), _naive(at(3)), nan, nan),
            (1, _naive(at(5)), _naive(at(5)), 5.0, 2.5),
            (2, _naive(at(1)), _naive(at(1)), inf, inf),
            (2, _naive(at(2)), _naive(at(2)), nan, nan),
            (2, _naive(at(5)), _naive(at(5)), 3.0, 3.0),
        ],
        schema,
    )
    assert_df_equality(
        got, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True
    )


def _stats_frame(spark: Any, rows: list[dict[str, Any]], engine: str, window: str) -> list[Any]:
    fs = feature_set(
        [
            {
                "kind": "aggregation",
                "name": name,
                "function": name,
                "column": "x",
                "windows": [window],
            }
            for name in ("sum", "mean", "stddev")
        ],
        accuracy="event",
    )
    got = feature_frame(
        source_df(spark, rows), fs, product(False), KEYS, T0, at(days=2), engine=engine
    )
    return got.orderBy("cid", "feature_ts").collect()


@pytest.mark.parametrize("engine", ["kernel", "sql"])
def test_window_of_small_values_after_a_huge_one_left_is_exact(spark: Any, engine: str) -> None:
    rows = [
        {"cid": 1, "e": at(1), "x": 1e17},
        {"cid": 1, "e": at(5), "x": 1.0},
        {"cid": 1, "e": at(6), "x": 2.0},
    ]
    got = _stats_frame(spark, rows, engine, "3h")
    assert [(r.sum_3h, r.mean_3h, r.stddev_3h) for r in got] == [
        (1e17, 1e17, None),
        (1.0, 1.0, None),
        (3.0, 1.5, math.sqrt(0.5)),
    ]


@pytest.mark.parametrize("engine", ["kernel", "sql"])
def test_stddev_of_large_values_that_differ_by_one_does_not_cancel(spark: Any, engine: str) -> None:
    # Epoch seconds: a spread of 0.5 next to a mean of 1.7e9 (squares near 2.9e18).
    xs = [1_700_000_000.0 + (i % 2) for i in range(6)] + [1_700_000_007.0]
    rows = [{"cid": 1, "e": at(i + 1), "x": x} for i, x in enumerate(xs)]
    got = _stats_frame(spark, rows, engine, "4h")
    assert len(got) == len(xs)
    for i, r in enumerate(got):
        inside = xs[max(0, i - 3) : i + 1]
        assert r.sum_4h == math.fsum(inside)
        if len(inside) < 2:
            assert r.stddev_4h is None
        else:
            assert math.isclose(r.stddev_4h, statistics.stdev(inside), rel_tol=1e-6), (i, r)


@pytest.mark.parametrize("engine", ["kernel", "sql"])
def test_distinct_doubles_count_zero_and_negative_zero_once_and_nan_once(
    spark: Any, engine: str
) -> None:
    nan = float("nan")
    rows = [
        {"cid": 1, "e": at(1), "x": 0.0},
        {"cid": 1, "e": at(1), "x": -0.0},
        {"cid": 1, "e": at(2), "x": -0.0},
        {"cid": 1, "e": at(2), "x": nan},
        {"cid": 1, "e": at(3), "x": nan},
        {"cid": 1, "e": at(3), "x": 1.0},
    ]
    fs = feature_set(
        [
            {
                "kind": "aggregation",
                "name": "d",
                "function": "approx_distinct",
                "column": "x",
                "windows": ["1d"],
            }
        ],
        accuracy="event",
    )
    got = feature_frame(
        source_df(spark, rows), fs, product(False), KEYS, T0, at(days=1), engine=engine
    )
    assert [r.d_1d for r in got.orderBy("feature_ts").collect()] == [1, 2, 3]


BIG = 2**62


def _bigint_sums(spark: Any, rows: list[tuple[int, float, int]], engine: str) -> tuple[Any, Any]:
    """A 3h window sum of a bigint column over (cid, hour, value) rows, event accuracy."""
    src = spark.createDataFrame(
        [(cid, at(hour), None, x) for cid, hour, x in rows],
        "cid bigint, event_ts timestamp, ingested_ts timestamp, x bigint",
    )
    fs = feature_set(
        [{"kind": "aggregation", "name": "s", "function": "sum", "column": "x", "windows": ["3h"]}],
        accuracy="event",
    )
    return fs, feature_frame(src, fs, product(False), KEYS, T0, at(days=1), engine=engine)


def test_bigint_window_sums_at_the_ends_of_the_range_are_exact(spark: Any) -> None:
    # The entity's running total passes 2**63, but every window's sum fits in a bigint (the
    # SQL engine's running sums raise ARITHMETIC_OVERFLOW here).
    rows = [(1, 1, BIG), (1, 2, BIG - 1), (1, 4, BIG), (1, 5, -BIG), (1, 7, -BIG), (2, 1, 3)]
    _, frame = _bigint_sums(spark, rows, "kernel")
    got = [(r.cid, r.feature_ts, r.s_3h) for r in frame.orderBy("cid", "feature_ts").collect()]
    expected = [
        (cid, _naive(at(hour)), sum(x for c, h, x in rows if c == cid and hour - 3 < h <= hour))
        for cid, hour, _ in rows
    ]
    assert got == expected
    assert [s for _, _, s in got[:5]] == [BIG, 2**63 - 1, 2**63 - 1, 0, -(2**63)]


@pytest.mark.parametrize("engine", ["kernel", "sql"])
def test_a_bigint_window_sum_out_of_range_is_an_error_naming_the_set(
    spark: Any, engine: str
) -> None:
    from mesh.compute.failures import computing

    # The kernel used to wrap around: 2**62 + 2**62 read as -2**63.
    fs, frame = _bigint_sums(spark, [(1, 1, BIG), (1, 2, BIG), (2, 1, 3)], engine)
    failed = r"`d\.fs`: its computation failed on the data"
    with pytest.raises(ComputeError, match=failed) as err, computing(fs):
        frame.collect()
    assert "bigint" in str(err.value)
