"""The vectorised window kernel on its own (numpy and pyarrow, no Spark).

The Spark-level property tests (``test_reference_property.py``) check the kernel's results
against the oracle; these check its parts: the interval min/max table against brute force,
chunking across batch and entity boundaries, value order for NaN and strings, and sums and
spreads of floating-point values against exact arithmetic over each window.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.compute import kernel

intervals = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 12), st.integers(-50, 50)), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 45), items=intervals)
def test_interval_min_and_max_match_brute_force(n: int, items: list[tuple[int, int, int]]) -> None:
    lo = np.array([min(s, n) for s, _, _ in items], dtype=np.int64)
    hi = np.array([min(s + length, n) for s, length, _ in items], dtype=np.int64)
    values = np.array([v for _, _, v in items], dtype=np.int64)
    low = kernel._stab(n, lo, hi, values, 10**9, np.minimum)
    high = kernel._stab(n, lo, hi, values, -(10**9), np.maximum)
    for row in range(n):
        covering = [int(v) for a, b, v in zip(lo, hi, values, strict=True) if a <= row < b]
        assert low[row] == (min(covering) if covering else 10**9), row
        assert high[row] == (max(covering) if covering else -(10**9)), row


def _spec(snapshot: bool = True, chunk_rows: int = 200_000) -> kernel.KernelSpec:
    outputs = (
        kernel.Output("n_w3", "n", "n", 3),
        kernel.Output("s_w3", "s", "s", 3),
        kernel.Output("lo_w3", "lo", "mn", 3),
        kernel.Output("hi_w1", "hi", "mx", 1),
    )
    columns = ("cid", kernel.POSITION, *(o.name for o in outputs))
    return kernel.KernelSpec(
        keys=("cid",),
        snapshot=snapshot,
        k_start=0,
        k_end=20,
        longest=3,
        outputs=outputs,
        track_arrival=False,
        columns=columns,
        chunk_rows=chunk_rows,
    )


def _table(rows: list[tuple[int, int, int, float | None]]) -> pa.Table:
    """Items (cid, entry, event, value) sorted by cid, as the shuffle hands them over."""
    rows = sorted(rows, key=lambda r: r[0])
    values = [r[3] for r in rows]
    return pa.table(
        {
            "cid": pa.array([r[0] for r in rows], pa.int64()),
            kernel.ENTRY: pa.array([r[1] for r in rows], pa.int64()),
            kernel.EVENT: pa.array([r[2] for r in rows], pa.int64()),
            "n": pa.array([0 if v is None else 1 for v in values], pa.int64()),
            "s": pa.array(values, pa.float64()),
            "lo": pa.array(values, pa.float64()),
            "hi": pa.array(values, pa.float64()),
        }
    )


item = st.tuples(
    st.integers(1, 6),
    st.integers(0, 22),
    st.integers(0, 2),
    st.one_of(st.none(), st.floats(-10, 10, allow_nan=False).map(round)),
)


@settings(max_examples=100, deadline=None)
@given(raw=st.lists(item, max_size=40), batch=st.integers(1, 7), chunk=st.integers(1, 9))
def test_chunks_across_batches_and_entities_give_the_same_rows(
    raw: list[tuple[int, int, int, float | None]], batch: int, chunk: int
) -> None:
    rows = [(cid, e + lag, e, v) for cid, e, lag, v in raw]  # entry = event + lateness
    table = _table(rows)
    whole = kernel.compute_chunk(table, _spec())
    streamed = list(kernel.run_partition(iter(table.to_batches(batch)), _spec(chunk_rows=chunk)))
    parts = pa.Table.from_batches(streamed, schema=whole.schema) if streamed else whole.slice(0, 0)
    assert parts.to_pylist() == whole.to_pylist()


def test_late_item_counts_from_arrival_until_its_event_leaves_the_window() -> None:
    # cid 1: on time at 5 (value 1.0); late: event 5 arriving at 7 (value -4.0).
    out = kernel.compute_chunk(_table([(1, 5, 5, 1.0), (1, 7, 5, -4.0)]), _spec()).to_pylist()
    by_k = {r[kernel.POSITION]: r for r in out}
    assert sorted(by_k) == [5, 6, 7]  # the longest window (3) after the entries
    assert [by_k[k]["n_w3"] for k in (5, 6, 7)] == [1, 1, 2]
    assert [by_k[k]["lo_w3"] for k in (5, 6, 7)] == [1.0, 1.0, -4.0]
    assert [by_k[k]["hi_w1"] for k in (5, 6, 7)] == [1.0, None, None]


def test_nan_is_above_every_number_like_spark_and_strings_order_by_text() -> None:
    spec = _spec()
    table = _table([(1, 2, 2, 1.0), (1, 2, 2, math.nan)])
    row = kernel.compute_chunk(table, spec).to_pylist()[0]
    assert row["lo_w3"] == 1.0
    assert math.isnan(row["hi_w1"])

    strings = table.set_column(5, "lo", pa.array(["b", "a"])).set_column(
        6, "hi", pa.array(["b", "a"])
    )
    row = kernel.compute_chunk(strings, spec).to_pylist()[0]
    assert (row["lo_w3"], row["hi_w1"]) == ("a", "b")


def test_an_empty_partition_yields_nothing() -> None:
    assert list(kernel.run_partition(iter([]), _spec())) == []


def test_distinct_values_are_counted_once_while_any_of_their_items_covers_the_row() -> None:
    spec = kernel.KernelSpec(
        keys=("cid",),
        snapshot=True,
        k_start=0,
        k_end=20,
        longest=3,
        outputs=(kernel.Output("d_w3", "d", "hll", 3),),
        track_arrival=False,
        columns=("cid", kernel.POSITION, "d_w3"),
    )
    table = pa.table(
        {
            "cid": pa.array([1, 1, 1, 2], pa.int64()),
            kernel.ENTRY: pa.array([1, 2, 4, 2], pa.int64()),
            kernel.EVENT: pa.array([1, 2, 4, 2], pa.int64()),
            "d": pa.array([["a", "b"], ["a"], ["c"], ["a"]], pa.list_(pa.string())),
        }
    )
    rows = kernel.compute_chunk(table, spec).to_pylist()
    got = {(r["cid"], r[kernel.POSITION]): r["d_w3"] for r in rows}
    # cid 1: {a,b}@1 covers 1-3, {a}@2 covers 2-4, {c}@4 covers 4-6.
    assert got == {
        (1, 1): 2,
        (1, 2): 2,
        (1, 3): 2,
        (1, 4): 2,
        (1, 5): 1,
        (1, 6): 1,
        (2, 2): 1,
        (2, 3): 1,
        (2, 4): 1,
    }


def _sum_spec(longest: int, kinds: tuple[str, ...] = ("n", "s", "m2")) -> kernel.KernelSpec:
    outputs = tuple(kernel.Output(f"{kind}_w", kind, kind, longest) for kind in kinds)
    return kernel.KernelSpec(
        keys=("cid",),
        snapshot=True,
        k_start=0,
        k_end=40,
        longest=longest,
        outputs=outputs,
        track_arrival=False,
        columns=("cid", kernel.POSITION, *(o.name for o in outputs)),
    )


def _sum_table(rows: list[tuple[int, int, int, float]]) -> pa.Table:
    """Single-value items (cid, entry, event, value) with their count, sum and spread partials."""
    rows = sorted(rows, key=lambda r: r[0])
    values = [r[3] for r in rows]
    ones = pa.array([1] * len(rows), pa.int64())
    return pa.table(
        {
            "cid": pa.array([r[0] for r in rows], pa.int64()),
            kernel.ENTRY: pa.array([r[1] for r in rows], pa.int64()),
            kernel.EVENT: pa.array([r[2] for r in rows], pa.int64()),
            "n": ones,
            "s": pa.array(values, pa.float64()),
            "m2": pa.StructArray.from_arrays(
                [ones, pa.array(values, pa.float64()), pa.array([0.0] * len(rows), pa.float64())],
                names=["n", "mean", "m2"],
            ),
        }
    )


def _window_values(
    rows: list[tuple[int, int, int, float]], cid: int, t: int, longest: int
) -> list[float]:
    return [v for c, a, p, v in rows if c == cid and a <= t <= p + longest - 1]


def test_a_window_sum_holds_only_its_own_values_after_a_huge_one_left() -> None:
    rows = [(1, 0, 0, 1e17), (1, 5, 5, 1.0), (1, 6, 6, 2.0)]
    out = kernel.compute_chunk(_sum_table(rows), _sum_spec(3, ("n", "s"))).to_pylist()
    assert [(r[kernel.POSITION], r["s_w"]) for r in out] == [
        (0, 1e17),
        (1, 1e17),
        (2, 1e17),
        (5, 1.0),
        (6, 3.0),
        (7, 3.0),
        (8, 2.0),
    ]
    out = kernel.compute_chunk(_sum_table(rows), _sum_spec(3)).to_pylist()
    assert [r["m2_w"] for r in out] == [0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0]


def test_spread_of_large_values_that_differ_by_one_does_not_cancel() -> None:
    base = 1_700_000_000.0
    rows = [(1, t, t, base + t % 2) for t in range(8)]
    out = kernel.compute_chunk(_sum_table(rows), _sum_spec(4)).to_pylist()
    for r in out:
        inside = [Fraction(v) for v in _window_values(rows, 1, r[kernel.POSITION], 4)]
        mean = sum(inside, Fraction(0)) / len(inside)
        spread = float(sum((v - mean) ** 2 for v in inside))
        # The means carry rounding of about 1e-16 * 1.7e9; a difference of sums of squares
        # would be off by about 1e-16 * (1.7e9)^2.
        assert math.isclose(r["m2_w"], spread, rel_tol=1e-6), (r, spread)


magnitudes = st.builds(
    lambda mantissa, exponent: mantissa * 10.0**exponent,
    st.floats(-9.99, 9.99, allow_nan=False),
    st.sampled_from([-6, 0, 3, 9, 9, 17, 17, 30]),
)
sum_items = st.lists(
    st.tuples(st.integers(1, 3), st.integers(0, 30), st.integers(0, 3), magnitudes), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(raw=sum_items, longest=st.integers(1, 6))
def test_window_sums_and_spreads_match_exact_arithmetic_over_the_window(
    raw: list[tuple[int, int, int, float]], longest: int
) -> None:
    # Late items (entry after event) make windows that are not runs of consecutive items.
    rows = [(cid, e + min(lag, longest - 1), e, v) for cid, e, lag, v in raw]
    out = kernel.compute_chunk(_sum_table(rows), _sum_spec(longest)).to_pylist()
    for r in out:
        inside = _window_values(rows, r["cid"], r[kernel.POSITION], longest)
        assert r["n_w"] == len(inside)
        # As accurate as summing the window directly: error within rounding of its own values.
        size = math.fsum(abs(v) for v in inside)
        assert abs(r["s_w"] - math.fsum(inside)) <= 1e-15 * len(inside) * size, (r, inside)
        exact = [Fraction(v) for v in inside]
        mean = sum(exact, Fraction(0)) / len(exact) if exact else Fraction(0)
        spread = float(sum(((v - mean) ** 2 for v in exact), Fraction(0)))
        # Deviations are taken from rounded means: an error of a few ulps of the largest value.
        # Squares of tiny values are subnormal, where a rounding is off by up to the smallest
        # subnormal (math.ulp(0.0)) whatever the value: the relative terms alone would be 0.
        top = max(map(abs, inside), default=0.0)
        tolerance = len(inside) * (
            1e-12 * spread
            + 1e-14 * top * math.sqrt(spread)
            + (1e-15 * top) ** 2
            + 2 * math.ulp(0.0)
        )
        assert abs(r["m2_w"] - spread) <= tolerance, (r, inside)
