"""The vectorised window kernel: windowed partials of one entity chunk, computed with numpy.

After the one shuffle on the keys, each Spark partition holds whole entities, sorted by key.
``run_partition`` (the function handed to ``DataFrame.mapInArrow``) reads its Arrow batches,
cuts them at entity boundaries into chunks and computes every (partial, window) value at every
output position of every entity of a chunk with a constant number of vectorised passes. No
Spark window frame is involved, so nothing is re-aggregated per output row and nothing is
multiplied by the number of window steps.

The model (positions are integers: grid index for snapshots, microseconds for events):

* an *item* is one group of source rows of an entity with entry position ``a`` (when it may
  first count) and event position ``p`` (``a >= p``); for a window of ``W`` positions it is in
  the window at every output position ``t`` with ``a <= t <= p + W - 1``, an interval;
* *outputs* are the positions of an entity where values are produced: for snapshots, the grid
  points covered by some item's longest-window interval; for events, the distinct entries.

Intervals are mapped to ranges of output rows (one ``searchsorted``). Then:

* counts and sums of integers: +value at the interval's first output row, -value after its
  last, and a cumulative sum per entity (exact);
* sums of floating-point values, and the (count, mean, squared deviations) behind ``stddev``:
  a segment tree over output rows. Each interval is added to the disjoint tree nodes that
  cover it (at most two per level), then nodes are pushed down to their children level by
  level, so a row combines only the values in its window: a sum is as accurate as summing
  the window directly, whatever left the window before, and spreads are merged with Chan's
  formula (deviations from the means, never a difference of sums of squares);
* min and max: a "range chmin, point query" sparse table over output rows: each interval is
  written to the two power-of-two blocks that cover it, and the blocks are pushed down level
  by level (``log2`` of the longest interval levels, each one vectorised pass). It works on
  the values' sort ranks, so any orderable type (numbers with Spark's NaN order, strings,
  dates, timestamps) is exact;
* last: a running maximum per entity of the ``(event, arrival, value)`` rank from the entry on;
* approximate distinct count: counted exactly, from each group's set of distinct values
  (each value's row ranges are merged, then +1/-1 like a count).

Nothing here imports pyspark; numpy, pandas and pyarrow are needed where the kernel runs (the
driver in local mode, the executors' Python on a cluster).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ENTRY = "_entry"
EVENT = "_pe"
POSITION = "_k"
CREATED_US = "_created_us"
ARRIVAL_MAX = "_ar_max"
# In the message of the ArithmeticError a window sum of bigints out of range raises: the
# compute job finds it in Spark's PythonException and names the feature set.
SUM_OVERFLOW = "window sum out of the bigint range"


@dataclass(frozen=True)
class Output:
    """One computed column: ``kind`` of ``partial`` over a window of ``size`` positions."""

    name: str
    partial: str
    kind: str
    size: int  # unused for ``last`` (its window check is done by the caller)


@dataclass(frozen=True)
class KernelSpec:
    """Everything a kernel run needs; picklable, shipped to the executors."""

    keys: tuple[str, ...]
    snapshot: bool
    k_start: int
    k_end: int
    longest: int
    outputs: tuple[Output, ...]
    track_arrival: bool
    columns: tuple[str, ...]  # output columns in order (keys, position, created, outputs)
    chunk_rows: int = 200_000


def run_partition(batches: Iterator[pa.RecordBatch], spec: KernelSpec) -> Iterator[pa.RecordBatch]:
    """Compute one Spark partition (batches sorted by the keys) chunk by chunk."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        rows += batch.num_rows
        if rows < spec.chunk_rows:
            continue
        table = pa.Table.from_batches(pending)
        cut = _last_entity_start(table, spec.keys)
        if cut == 0:  # one entity so far: keep reading until it ends
            continue
        yield from compute_chunk(table.slice(0, cut), spec).to_batches()
        rest = table.slice(cut)
        pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield from compute_chunk(pa.Table.from_batches(pending), spec).to_batches()


def compute_chunk(table: pa.Table, spec: KernelSpec) -> pa.Table:
    """Every output row of the whole entities in ``table`` (sorted by the keys)."""
    starts = _entity_starts(table, spec.keys)
    entity = np.cumsum(starts) - 1
    entry = _ints(table, ENTRY)
    event = _ints(table, EVENT)
    order = np.lexsort((entry, entity))
    if not np.array_equal(order, np.arange(len(order))):
        table = table.take(pa.array(order))
        entity, entry, event = entity[order], entry[order], event[order]
    first_row = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])

    out_entity, out_t = _outputs(entity, entry, event, spec)
    grid = _Grid(out_entity, out_t)
    columns: dict[str, pa.Array] = {}
    for name in spec.keys:
        columns[name] = table.column(name).take(pa.array(first_row[out_entity]))
    columns[POSITION] = pa.array(out_t, type=pa.int64())
    first = grid.first(entity, entry)
    ends = grid.entity_end(entity)
    if spec.track_arrival:
        arrived = _ints(table, ARRIVAL_MAX)
        lo, hi = first, grid.stop(entity, entry + spec.longest - 1)
        best = _stab(grid.n, lo, hi, arrived, np.iinfo(np.int64).min, np.maximum)
        columns[CREATED_US] = pa.array(best, mask=best == np.iinfo(np.int64).min)
    ranks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    stops: dict[int, np.ndarray] = {}
    covers: dict[int, _Cover] = {}
    for out in spec.outputs:
        values = table.column(out.partial).combine_chunks()
        if out.kind == "last":
            columns[out.name] = _last(grid, entity, first, values, ranks, out.partial)
            continue
        if out.size not in stops:
            stops[out.size] = grid.stop(entity, event + out.size - 1)
        lo, hi = first, stops[out.size]
        if out.kind == "n":
            columns[out.name] = pa.array(_running(grid, lo, hi, ends, _int64(values)))
        elif out.kind == "s" and pa.types.is_integer(values.type):
            columns[out.name] = pa.array(_integer_sum(grid, lo, hi, ends, _int64(values), out))
        elif out.kind in ("s", "m2"):
            if out.size not in covers:
                covers[out.size] = _Cover(grid.n, lo, hi)
            combine = _windowed_float_sum if out.kind == "s" else _windowed_spread
            columns[out.name] = combine(covers[out.size], values)
        elif out.kind == "hll":
            columns[out.name] = _windowed_distinct(grid, lo, hi, values)
        else:
            columns[out.name] = _windowed_extreme(grid, lo, hi, values, out, ranks)
    return pa.Table.from_arrays(
        [_whole(columns[c]) for c in spec.columns], names=list(spec.columns)
    )


class _Grid:
    """Output rows sorted by (entity, position), and how to find the rows of an interval."""

    def __init__(self, entity: np.ndarray, t: np.ndarray) -> None:
        self.n = len(t)
        self.entity = entity
        self.uniq = np.unique(t)
        self.base = len(self.uniq) + 1
        self.keys = entity * self.base + np.searchsorted(self.uniq, t)

    def first(self, entity: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """First output row of each entity at a position ``>= lo`` (an interval's start)."""
        return np.searchsorted(self.keys, entity * self.base + np.searchsorted(self.uniq, lo))

    def stop(self, entity: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """One past the entity's last output row at a position ``<= hi`` (an interval's end)."""
        ranked = np.searchsorted(self.uniq, hi, side="right")
        return np.searchsorted(self.keys, entity * self.base + ranked)

    def entity_end(self, entity: np.ndarray) -> np.ndarray:
        """One past each entity's last output row."""
        return np.searchsorted(self.keys, entity * self.base + len(self.uniq))

    def cumulative(self, deltas: np.ndarray) -> np.ndarray:
        """Cumulative sum of ``deltas`` restarting at each entity."""
        return pd.Series(deltas).groupby(self.entity, sort=False).cumsum().to_numpy()


def _outputs(
    entity: np.ndarray, entry: np.ndarray, event: np.ndarray, spec: KernelSpec
) -> tuple[np.ndarray, np.ndarray]:
    """(entity, position) of every output row, sorted."""
    if not spec.snapshot:
        keep = (entry >= spec.k_start) & (entry < spec.k_end)
        e, t = entity[keep], entry[keep]
        first = np.r_[True, (e[1:] != e[:-1]) | (t[1:] != t[:-1])] if len(t) else keep[:0]
        return e[first], t[first]
    lo = np.maximum(entry, spec.k_start)
    hi = np.minimum(event + spec.longest - 1, spec.k_end - 1)
    keep = lo <= hi
    e, lo, hi = entity[keep], lo[keep], hi[keep]
    if not len(e):
        return e, lo
    # Union of each entity's intervals (sorted by start): skip what earlier ones covered.
    reach = pd.Series(hi).groupby(e, sort=False).cummax().to_numpy()
    new_entity = np.r_[True, e[1:] != e[:-1]]
    before = np.where(new_entity, np.iinfo(np.int64).min + 1, np.r_[0, reach[:-1]])
    piece_lo = np.maximum(lo, before + 1)
    length = np.maximum(hi - piece_lo + 1, 0)
    total = int(length.sum())
    offsets = np.cumsum(length) - length
    step = np.arange(total, dtype=np.int64) - np.repeat(offsets, length)
    return np.repeat(e, length), np.repeat(piece_lo, length) + step


def _int64(values: pa.Array) -> np.ndarray:
    return values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


class _Cover:
    """A segment tree over ``n`` output rows and the disjoint nodes covering each item's rows.

    Leaves are nodes ``size + row``; node ``i``'s children are ``2i`` and ``2i + 1``. An item
    covering rows ``[lo, hi)`` is held by at most two nodes per level: ``node[j]`` holds item
    ``item[j]``. Pushing every node's value down to its children then gives each row the
    values of exactly the items that cover it, and no others.
    """

    def __init__(self, n: int, lo: np.ndarray, hi: np.ndarray) -> None:
        self.n = n
        self.size = 1 << max(n - 1, 0).bit_length()
        item = np.flatnonzero(lo < hi)
        left, right = lo[item] + self.size, hi[item] + self.size
        nodes, items = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        while len(item):
            odd = (left & 1) == 1
            nodes.append(left[odd])
            items.append(item[odd])
            left = left + odd
            odd = (right & 1) == 1
            right = right - odd
            nodes.append(right[odd])
            items.append(item[odd])
            left, right = left >> 1, right >> 1
            more = left < right
            item, left, right = item[more], left[more], right[more]
        self.node, self.item = np.concatenate(nodes), np.concatenate(items)

    def sums(self, weights: np.ndarray, node: np.ndarray | None = None) -> np.ndarray:
        """Each node's sum of ``weights`` (one per held item, in ``node`` order)."""
        node = self.node if node is None else node
        sums = np.bincount(node, weights=weights, minlength=2 * self.size)
        return sums.astype(np.float64, copy=False)  # bincount of nothing is integer

    def levels(self, *nodes: np.ndarray) -> Iterator[list[tuple[np.ndarray, np.ndarray]]]:
        """For each level from the root down, (parents, their children as pairs) of each array.

        Both are views: writing to the children writes to ``nodes``.
        """
        width = 1
        while width < self.size:
            yield [
                (a[width : 2 * width, None], a[2 * width : 4 * width].reshape(width, 2))
                for a in nodes
            ]
            width *= 2

    def leaves(self, nodes: np.ndarray) -> np.ndarray:
        return nodes[self.size : self.size + self.n]


def _windowed_float_sum(cover: _Cover, values: pa.Array) -> pa.Array:
    """Sum of the floating-point values of the items covering each row (segment tree).

    A row's sum holds only its window's values, added in a few groups; NaN, or both
    infinities, in the window give NaN and one infinity gives itself, as Spark's ``sum``.
    """
    v = values.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
    total = cover.sums(v[cover.item])
    with np.errstate(invalid="ignore"):  # inf + -inf
        for [(parent, children)] in cover.levels(total):
            children += parent
    return pa.array(cover.leaves(total))


def _windowed_spread(cover: _Cover, values: pa.Array) -> pa.Array:
    """Sum of squared deviations from the window's mean over the items covering each row.

    ``values`` holds each item's ``(n, mean, m2)``. A node first takes its items' count and
    mean, then their deviations from that mean; each parent is merged into its children with
    Chan's formula. A window holding NaN or an infinity gives NaN, as Spark's ``stddev``.
    """
    n = values.field("n").fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
    mean = values.field("mean").fill_null(0.0).to_numpy(zero_copy_only=False)
    m2 = values.field("m2").fill_null(0.0).to_numpy(zero_copy_only=False)
    used = n[cover.item] > 0
    node, item = cover.node[used], cover.item[used]
    count = cover.sums(n[item], node)
    with np.errstate(invalid="ignore", over="ignore"):
        centre = cover.sums(n[item] * mean[item], node) / np.maximum(count, 1.0)
        deviation = mean[item] - centre[node]
        spread = cover.sums(m2[item] + n[item] * deviation * deviation, node)
        for (up_n, own_n), (up_mean, own_mean), (up_spread, own_spread) in cover.levels(
            count, centre, spread
        ):
            both = own_n + up_n
            share = up_n / np.maximum(both, 1.0)  # 0 when both are empty
            delta = up_mean - own_mean
            own_spread += up_spread + delta * delta * own_n * share
            own_mean += delta * share
            own_n[...] = both
    finite = np.isfinite(cover.leaves(centre))
    return pa.array(np.where(finite, cover.leaves(spread), np.nan))


def _running(
    grid: _Grid, lo: np.ndarray, hi: np.ndarray, ends: np.ndarray, v: np.ndarray
) -> np.ndarray:
    keep = lo < hi
    leaves = keep & (hi < ends)
    deltas = np.zeros(grid.n, dtype=v.dtype)
    np.add.at(deltas, lo[keep], v[keep])
    np.subtract.at(deltas, hi[leaves], v[leaves])
    return grid.cumulative(deltas)


def _integer_sum(
    grid: _Grid, lo: np.ndarray, hi: np.ndarray, ends: np.ndarray, v: np.ndarray, out: Output
) -> np.ndarray:
    """Window sums of ``bigint`` values, exact, or ``ArithmeticError`` (``SUM_OVERFLOW``)
    where one leaves the ``bigint`` range, as Spark's ANSI ``sum`` raises.

    Cumulative sums wrap modulo 2**64, so a window sum in range is exact even if an entity's
    running total is not. When the values' magnitudes add up to 2**62 or more, the sums are
    taken in two halves (the high and low 32 bits of each value, whose window sums cannot
    wrap) and put together only where the result fits.
    """
    if np.abs(v.astype(np.float64)).sum() < 2.0**62:
        return _running(grid, lo, hi, ends, v)
    high = _running(grid, lo, hi, ends, v >> 32)
    low = _running(grid, lo, hi, ends, v & 0xFFFFFFFF)
    high = high + (low >> 32)
    outside = (high < -(2**31)) | (high >= 2**31)
    if outside.any():
        raise ArithmeticError(f"{SUM_OVERFLOW}: {out.name}")
    return (high << 32) + (low & 0xFFFFFFFF)


def _windowed_distinct(grid: _Grid, lo: np.ndarray, hi: np.ndarray, values: pa.Array) -> pa.Array:
    """Exact count of distinct values over the items covering each output row.

    ``values`` holds each item's set of distinct values. Each value covers the union of its
    items' row ranges; overlapping ranges of one value are cut into disjoint pieces (sorted
    by start, each piece begins after the value's reach so far), and each piece adds one
    while it lasts. Ranges never cross entities, so one running total serves the chunk.
    """
    flat = pc.list_flatten(values)
    if len(flat) == 0:
        return pa.array(np.zeros(grid.n, dtype=np.int64))
    parent = pc.list_parent_indices(values).to_numpy()
    code = pc.dictionary_encode(flat).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    start, stop = lo[parent], hi[parent]
    keep = start < stop
    code, start, stop = code[keep], start[keep], stop[keep]
    order = np.lexsort((start, code))
    code, start, stop = code[order], start[order], stop[order]
    reach = pd.Series(stop).groupby(code, sort=False).cummax().to_numpy()
    first_of_value = np.r_[True, code[1:] != code[:-1]] if len(code) else code.astype(bool)
    before = np.where(first_of_value, -1, np.r_[0, reach[:-1]])
    start = np.maximum(start, before)
    piece = start < stop
    deltas = np.zeros(grid.n + 1, dtype=np.int64)
    np.add.at(deltas, start[piece], 1)
    np.subtract.at(deltas, stop[piece], 1)
    return pa.array(np.cumsum(deltas[:-1]))


def _windowed_extreme(
    grid: _Grid,
    lo: np.ndarray,
    hi: np.ndarray,
    values: pa.Array,
    out: Output,
    ranks: dict[str, tuple[np.ndarray, np.ndarray]],
) -> pa.Array:
    """min / max of the items whose interval covers each output row, by sort rank."""
    order, rank = _ranks(values, ranks, out.partial)
    valid = values.is_valid().to_numpy(zero_copy_only=False) & (lo < hi)
    if out.kind == "mn":
        empty = np.iinfo(np.int64).max
        best = _stab(grid.n, lo[valid], hi[valid], rank[valid], empty, np.minimum)
    else:
        empty = -1
        best = _stab(grid.n, lo[valid], hi[valid], rank[valid], empty, np.maximum)
    missing = best == empty
    picked = order[np.where(missing, 0, best)] if len(order) else np.zeros(grid.n, np.int64)
    return values.take(pa.array(picked, mask=missing))


def _last(
    grid: _Grid,
    entity: np.ndarray,
    first: np.ndarray,
    values: pa.Array,
    ranks: dict[str, tuple[np.ndarray, np.ndarray]],
    partial: str,
) -> pa.Array:
    """The greatest ``(event, arrival, value)`` struct entered at or before each output row."""
    order, rank = _ranks(values, ranks, partial)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    valid &= first < grid.entity_end(entity)  # entered after the entity's last output: unseen
    best = np.full(grid.n + 1, -1, dtype=np.int64)
    np.maximum.at(best, first[valid], rank[valid])
    best = pd.Series(best[:-1]).groupby(grid.entity, sort=False).cummax().to_numpy()
    missing = best < 0
    picked = order[np.where(missing, 0, best)] if len(order) else np.zeros(grid.n, np.int64)
    return values.take(pa.array(picked, mask=missing))


def _ranks(
    values: pa.Array, cache: dict[str, tuple[np.ndarray, np.ndarray]], partial: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sort order and rank of each value (Spark's order: NaN above numbers; structs by field)."""
    if partial not in cache:
        if pa.types.is_struct(values.type):
            fields = [values.field(i) for i in range(values.type.num_fields)]
            # lexsort: last key is the primary one (event, then arrival, then value).
            order = np.lexsort([_order_and_rank(f)[1] for f in reversed(fields)])
            cache[partial] = (order, _rank_from(order))
        else:
            cache[partial] = _order_and_rank(values)
    return cache[partial]


def _order_and_rank(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    order = pc.array_sort_indices(values, null_placement="at_end").to_numpy()
    return order, _rank_from(order)


def _rank_from(order: np.ndarray) -> np.ndarray:
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank


def _stab(
    n: int,
    lo: np.ndarray,
    hi: np.ndarray,
    values: np.ndarray,
    empty: int,
    better: np.ufunc,
) -> np.ndarray:
    """For each of ``n`` rows, ``better``-reduce the values of the ranges ``[lo, hi)`` covering it.

    Sparse table in reverse: a range of length L is written at level ``j = floor(log2 L)`` at
    its start and at ``hi - 2**j`` (two blocks of ``2**j`` rows covering it exactly); level
    ``j`` then passes each block's value to the two halves at level ``j - 1``.
    """
    length = hi - lo
    keep = length > 0
    lo, hi, values, length = lo[keep], hi[keep], values[keep], length[keep]
    if not len(lo):
        return np.full(n, empty, dtype=np.int64)
    level = np.frexp(length.astype(np.float64))[1].astype(np.int64) - 1
    above: np.ndarray | None = None
    current = np.full(n, empty, dtype=np.int64)
    for j in range(int(level.max()), -1, -1):
        current = np.full(n, empty, dtype=np.int64)
        at = level == j
        if at.any():
            better.at(current, lo[at], values[at])
            better.at(current, hi[at] - (1 << j), values[at])
        if above is not None:
            half = 1 << j
            better(current, above, out=current)
            if half < n:
                better(current[half:], above[:-half], out=current[half:])
        above = current
    return current


def _entity_starts(table: pa.Table, keys: tuple[str, ...]) -> np.ndarray:
    n = table.num_rows
    starts = np.zeros(n, dtype=bool)
    if n == 0:
        return starts
    starts[0] = True
    for name in keys:
        column = table.column(name).combine_chunks()
        differs = pc.not_equal(column.slice(1), column.slice(0, n - 1))
        starts[1:] |= differs.fill_null(True).to_numpy(zero_copy_only=False)
    return starts


def _last_entity_start(table: pa.Table, keys: tuple[str, ...]) -> int:
    return int(np.flatnonzero(_entity_starts(table, keys))[-1])


def _ints(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).combine_chunks().to_numpy(zero_copy_only=False).astype(np.int64)


def _whole(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
