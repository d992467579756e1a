"""Windowed features against the plain-Python oracle on random data (hypothesis).

Times sit on a 30-minute lattice so ties, window edges and grid points collide often; rows
arrive on time, a little late, a lot late (beyond short windows, or after they left the
longest one: an event value is still stamped at their arrival) or never say; corrections
repeat an event time with a later arrival and another value; values and filters may be null.
Sums, means and standard deviations of doubles of many magnitudes are checked against the
oracle within the rounding of each window's own values.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from typing import Any

import pytest
from _compute_helpers import KEYS, T0, feature_set, product, source_df
from _compute_oracle import micros, reference, same
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from mesh.compute import feature_frame

LAG_MINUTES = [None, 0, 0, 0, 10, 30, 60, 150, 26 * 60, 50 * 60]
FILTERS = {"flag": lambda r: r["flag"] is True}

row_strategy = st.tuples(
    st.integers(1, 3),  # entity
    st.integers(0, 96),  # event slot (30 min each, two days)
    st.sampled_from(LAG_MINUTES),  # arrival lag
    st.one_of(st.none(), st.integers(-5, 20)),  # x
    st.sampled_from([None, "a", "b", "c"]),  # ch
    st.sampled_from([None, True, False]),  # flag
    st.booleans(),  # add a correction (same event, later arrival)
)
data_strategy = st.fixed_dictionaries(
    {
        "rows": st.lists(row_strategy, min_size=0, max_size=14),
        "exclude_late": st.booleans(),
        "has_arrival": st.booleans(),
        "start_slot": st.integers(-4, 60),
        "length_slots": st.integers(1, 100),
        # One shuffle partition puts all entities in one kernel chunk (entity boundaries).
        "partitions": st.sampled_from([1, 4]),
    }
)

SNAPSHOT_FEATURES = [
    {"kind": "aggregation", "name": "n", "function": "count", "windows": ["1h", "3h", "12h"]},
    {"kind": "aggregation", "name": "nf", "function": "count", "filter": "flag", "windows": ["3h"]},
    {
        "kind": "aggregation",
        "name": "s",
        "function": "sum",
        "column": "x",
        "windows": ["1h", "12h"],
    },
    {"kind": "aggregation", "name": "m", "function": "mean", "column": "x", "windows": ["3h"]},
    {"kind": "aggregation", "name": "sd", "function": "stddev", "column": "x", "windows": ["12h"]},
    {"kind": "aggregation", "name": "lo", "function": "min", "column": "x", "windows": ["3h"]},
    {
        "kind": "aggregation",
        "name": "hi",
        "function": "max",
        "column": "x",
        "filter": "flag",
        "windows": ["12h"],
    },
    {"kind": "aggregation", "name": "lc", "function": "last", "column": "ch", "windows": ["3h"]},
    {"kind": "aggregation", "name": "lx", "function": "last", "column": "x", "windows": ["1h"]},
    {
        "kind": "aggregation",
        "name": "dc",
        "function": "approx_distinct",
        "column": "ch",
        "windows": ["12h"],
    },
]
EVENT_FEATURES = [
    {"kind": "aggregation", "name": "n", "function": "count", "windows": ["30m", "2h"]},
    {"kind": "aggregation", "name": "s", "function": "sum", "column": "x", "windows": ["2h"]},
    {"kind": "aggregation", "name": "m", "function": "mean", "column": "x", "windows": ["2h"]},
    {"kind": "aggregation", "name": "sd", "function": "stddev", "column": "x", "windows": ["1d"]},
    {"kind": "aggregation", "name": "lo", "function": "min", "column": "x", "windows": ["30m"]},
    {"kind": "aggregation", "name": "hi", "function": "max", "column": "x", "windows": ["1d"]},
    {"kind": "aggregation", "name": "lc", "function": "last", "column": "ch", "windows": ["2h"]},
    {
        "kind": "aggregation",
        "name": "dc",
        "function": "approx_distinct",
        "column": "ch",
        "filter": "flag",
        "windows": ["1d"],
    },
]


# Spark makes every example cost a second or two: few examples, and no shrinking (a failure
# prints the full example; MESH_HYPOTHESIS_SHRINK=1 turns shrinking back on to minimise it).
SETTINGS = settings(
    max_examples=int(os.environ.get("MESH_HYPOTHESIS_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    + ([Phase.shrink] if os.environ.get("MESH_HYPOTHESIS_SHRINK") else []),
)


def _rows(raw: list[tuple[Any, ...]], has_arrival: bool) -> list[dict[str, Any]]:
    out = []
    for cid, slot, lag, x, ch, flag, correct in raw:
        e = T0 + timedelta(minutes=30 * slot)
        a = None if (lag is None or not has_arrival) else e + timedelta(minutes=lag)
        row = {
            "cid": cid,
            "e": e,
            "a": a,
            "x": None if x is None else float(x),
            "ch": ch,
            "flag": flag,
        }
        out.append(row)
        if correct:
            later = (a or e) + timedelta(minutes=90)
            out.append(
                {
                    **row,
                    "a": later if has_arrival else None,
                    "x": None if x is None else float(x) + 100,
                }
            )
    return out


def _check(
    spark: Any,
    data: dict[str, Any],
    accuracy: str,
    features: list[dict[str, Any]],
    engine: str,
) -> None:
    rows = _rows(data["rows"], data["has_arrival"])
    fs = feature_set(
        features, accuracy=accuracy, interval="1h", exclude_late_data=data["exclude_late"]
    )
    start = T0 + timedelta(minutes=30 * data["start_slot"])
    end = start + timedelta(minutes=30 * data["length_slots"])
    df = source_df(spark, rows)
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(data["partitions"]))
    try:
        got = {
            (r["cid"], micros(r["feature_ts"])): r.asDict()
            for r in feature_frame(
                df, fs, product(data["has_arrival"]), KEYS, start, end, engine=engine
            ).collect()
        }
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    oracle_rows = [
        {**r, "e": micros(r["e"]), "a": micros(r["a"]) if r["a"] else None} for r in rows
    ]
    want = reference(
        oracle_rows,
        fs,
        has_arrival=data["has_arrival"],
        start_us=micros(start),
        end_us=micros(end),
        filters=FILTERS,
    )
    assert sorted(got) == sorted(want)
    for point, expected in want.items():
        actual = got[point]
        assert micros(actual["created_ts"]) == expected["created_ts"], point
        for name in fs.output_names():
            assert same(actual[name], expected[name]), (point, name, actual[name], expected[name])


@pytest.mark.parametrize("engine", ["kernel", "sql"])
@SETTINGS
@given(data=data_strategy)
def test_snapshot_matches_reference(spark: Any, data: dict[str, Any], engine: str) -> None:
    _check(spark, data, "snapshot", SNAPSHOT_FEATURES, engine)


@pytest.mark.parametrize("engine", ["kernel", "sql"])
@SETTINGS
@given(data=data_strategy)
# Rows arriving after they left the 1d window (one with its event before the range's reach,
# one entity with no other row): each stamps a value at its arrival, counting in none.
@example(
    data={
        "rows": [
            (1, 60, 0, 3, "a", True, False),
            (1, 40, 26 * 60, 5, "b", True, True),
            (1, 0, 50 * 60, 7, None, None, False),
            (2, 0, 50 * 60, 1, "c", True, False),
        ],
        "exclude_late": True,
        "has_arrival": True,
        "start_slot": 50,
        "length_slots": 60,
        "partitions": 1,
    }
)
def test_event_matches_reference(spark: Any, data: dict[str, Any], engine: str) -> None:
    _check(spark, data, "event", EVENT_FEATURES, engine)


magnitudes = st.builds(
    lambda mantissa, exponent: mantissa * 10.0**exponent,
    st.floats(-9.99, 9.99, allow_nan=False),
    st.sampled_from([-3, 0, 0, 9, 17, 17]),
)
wide_strategy = st.lists(
    st.tuples(
        st.integers(1, 2),  # entity
        st.integers(0, 30),  # event slot
        st.sampled_from([0, 0, 60, 150]),  # arrival lag (minutes)
        magnitudes,
    ),
    max_size=12,
)
WIDE_FEATURES = [
    {"kind": "aggregation", "name": f, "function": f, "column": "x", "windows": ["1h", "3h"]}
    for f in ("sum", "mean", "stddev")
]
SCALE_FEATURES = [
    {"kind": "aggregation", "name": f, "function": f, "column": "x", "windows": ["1h", "3h"]}
    for f in ("count", "sum", "max")
]


@pytest.mark.parametrize("engine", ["kernel", "sql"])
@SETTINGS
@given(raw=wide_strategy)
# Deviations whose squares underflow, next to a value 1e17 that has left the window.
@example(
    raw=[
        (1, 15, 0, 0.8123279515998547),
        (2, 26, 0, -2.8976269856793985e-271),
        (2, 11, 60, -5.478783917874338),
        (2, 30, 0, -1.2241211379116872e-180),
        (2, 16, 0, 9.593594369406693e17),
    ]
)
def test_double_windows_are_as_accurate_as_their_own_values(
    spark: Any, raw: list[tuple[int, int, int, float]], engine: str
) -> None:
    rows = [
        {"cid": cid, "e": T0 + timedelta(minutes=30 * slot), "x": x, "lag": lag}
        for cid, slot, lag, x in raw
    ]
    for r in rows:
        r["a"] = r["e"] + timedelta(minutes=r.pop("lag"))
    fs = feature_set(WIDE_FEATURES, accuracy="event")
    start, end = T0, T0 + timedelta(days=1)
    got = {
        (r["cid"], micros(r["feature_ts"])): r.asDict()
        for r in feature_frame(
            source_df(spark, rows), fs, product(True), KEYS, start, end, engine=engine
        ).collect()
    }
    oracle_rows = [{**r, "e": micros(r["e"]), "a": micros(r["a"])} for r in rows]
    bounds = {"has_arrival": True, "start_us": micros(start), "end_us": micros(end), "filters": {}}
    want = reference(oracle_rows, fs, **bounds)
    # Count, sum and largest of the absolute values in each window: the scale of its rounding.
    scale = reference(
        [{**r, "x": abs(r["x"])} for r in oracle_rows],
        feature_set(SCALE_FEATURES, accuracy="event"),
        **bounds,
    )
    assert sorted(got) == sorted(want)
    for point, expected in want.items():
        for w in ("1h", "3h"):
            n, size, top = (scale[point][f"{f}_{w}"] for f in ("count", "sum", "max"))
            for f in ("sum", "mean"):
                a, b = got[point][f"{f}_{w}"], expected[f"{f}_{w}"]
                assert (a is None) == (b is None), (point, f, w)
                if b is not None:
                    assert abs(a - b) <= 1e-14 * size, (point, f, w, a, b)
            a, b = got[point][f"stddev_{w}"], expected[f"stddev_{w}"]
            assert (a is None) == (b is None) == (n < 2), (point, w)
            if b is not None:
                # Deviations below about 1e-154 square to zero in doubles (Spark's own stddev
                # of -1.2e-180 and -2.9e-271 is 0.0): no accuracy is owed below that.
                tiny = 1e-150
                assert math.isclose(a, b, rel_tol=1e-12, abs_tol=max(1e-13 * top, tiny)), (
                    point,
                    w,
                    a,
                    b,
                )
