"""The spine index (numpy only): every row is placed at its first eligible spine time."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.join import spine_index
from mesh.join.spine_index import BASE, SLOTS, STARTS, T_MAX, T_MIN, TIMES, WIDTH, build_index


def bucket_of(index, key_row: int, a: int) -> int | None:
    """The bucket of one row the way ``reduction._bucket`` finds it in Spark.

    ``-1``: never eligible (``a > t_max``); ``None``: crowded cell, the row is kept as is.
    """
    t_min = index.lookup[T_MIN][key_row].as_py()
    t_max = index.lookup[T_MAX][key_row].as_py()
    width = index.lookup[WIDTH][key_row].as_py()
    times = index.lookup[TIMES][key_row].as_py()
    starts = index.lookup[STARTS][key_row].as_py()
    if a > t_max:
        return -1
    start = starts[max(0, (a - t_min) // width)]
    for p in range(start, min(start + SLOTS, len(times))):
        if times[p] >= a:
            return p
    return None


def first_at_or_after(times: list[int], a: int) -> int:
    return next((p for p, t in enumerate(times) if t >= a), -1)


def index_of(keys: list[object], us: list[int], key_type: pa.DataType = pa.int64()):
    table = pa.table({"k": pa.array(keys, key_type), "us": pa.array(us, pa.int64())})
    return build_index(table, ["k"], "us")


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 4),
            st.one_of(st.integers(0, 40), st.integers(-(10**12), 10**15)),
        ),
        min_size=1,
        max_size=80,
    ),
    probes=st.lists(st.integers(-(10**12) - 5, 10**15 + 5), max_size=20),
)
def test_bucket_is_the_first_spine_time_at_or_after(rows, probes):
    keys, us = [k for k, _ in rows], [u for _, u in rows]
    index = index_of(keys, us)
    lookup_keys = index.lookup["k"].to_pylist()
    assert sorted(lookup_keys) == sorted(set(keys))
    base = 0
    for row, key in enumerate(lookup_keys):
        times = sorted({u for k, u in rows if k == key})
        assert index.lookup[TIMES][row].as_py() == times
        assert index.lookup[BASE][row].as_py() == base  # buckets numbered without gaps
        base += len(times)
        assert index.counts[row] == keys.count(key)
        for a in [*probes, *times, *[t + 1 for t in times], *[t - 1 for t in times]]:
            found = bucket_of(index, row, a)
            # None = crowded cell: the row is kept unreduced, which is always correct.
            assert found is None or found == first_at_or_after(times, a)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.integers(0, 5), st.integers(0, 2**40)),
            # Narrow spans take the packed sort, spans near 2**63 the two-key lexsort.
            st.one_of(st.integers(-50, 50), st.integers(-(2**62), 2**62)),
        ),
        max_size=60,
    )
)
def test_pairs_are_sorted_by_code_then_time_in_both_ways(pairs):
    codes = np.array([c for c, _ in pairs], dtype=np.int64)
    us = np.array([u for _, u in pairs], dtype=np.int64)
    got_codes, got_us = spine_index._sorted_pairs(codes, us)
    expected = sorted(pairs)
    assert got_codes.tolist() == [c for c, _ in expected]
    assert got_us.tolist() == [u for _, u in expected]


def test_cells_hold_about_per_cell_times_and_starts_point_into_them():
    us = list(range(0, 10_000, 7))
    index = index_of([1] * len(us), us)
    starts = index.lookup[STARTS][0].as_py()
    assert len(starts) == max(1, len(us) // spine_index.PER_CELL)
    assert starts == sorted(starts) and starts[0] == 0
    assert all(bucket_of(index, 0, a) == first_at_or_after(us, a) for a in range(-3, 10_003))


def test_a_burst_of_times_makes_a_crowded_cell_that_is_left_unreduced():
    # 40 distinct times within 40 µs, then two far apart: the burst shares one cell.
    us = [1_000 + i for i in range(40)] + [10**9, 2 * 10**9]
    index = index_of([7] * len(us), us)
    assert bucket_of(index, 0, 1_030) is None  # 31st time of the burst: beyond 16 slots
    assert bucket_of(index, 0, 1_005) == 5
    assert bucket_of(index, 0, 10**9 - 1) == 40
    assert bucket_of(index, 0, 2 * 10**9 + 1) == -1  # after the last spine time: never


def test_several_key_columns_and_string_keys():
    table = pa.table(
        {
            "a": pa.array(["x", "x", "y", "x"]),
            "b": pa.array([1, 2, 1, 1], pa.int32()),
            "us": pa.array([5, 6, 7, 9], pa.int64()),
        }
    )
    index = build_index(table, ["a", "b"], "us")
    rows = {(r["a"], r["b"]): r[TIMES] for r in index.lookup.to_pylist()}
    assert rows == {("x", 1): [5, 9], ("x", 2): [6], ("y", 1): [7]}
    assert index.lookup.schema.field("b").type == pa.int32()


def test_nan_is_a_key_like_any_other():
    index = index_of([float("nan"), 1.0, float("nan")], [3, 4, 5], pa.float64())
    assert sorted(index.counts.tolist()) == [1, 2]
    times = sorted(index.lookup[TIMES].to_pylist())
    assert times == [[3, 5], [4]]
