"""Lay the sorted pass's rows out so that Spark's sort before the window is cheap.

The window sorts each shuffle partition by ``(keys..., AVAIL, TAG)``. Spark sorts on a
64-bit prefix of the *first* column only, and compares whole rows whenever two prefixes are
equal: with many rows per key that is most comparisons, each one reading two rows from
wherever they happen to lie in memory. Each partition is therefore first sorted by a single
long (one radix sort, no row comparisons) that orders the rows nearly as the window wants
them: a hash of the keys in the high bits, the time the row becomes known in the middle
ones, its tag in the lowest two. The window's own sort (a TimSort) then finds its input in
order, bar the rare rows whose keys' hashes collide or whose times share a slot, and needs
about one comparison per row where it is. The order the window sees is still its own, so
the answer cannot change; only the work does (``benchmarks/README_join.md``).

Times are placed on a scale of ``2**TIME_BITS`` slots over the spine's range and, before it,
the history a source adds: as long again as the range, at least a year (so an inference set,
whose range is one instant, still has one). Earlier rows share slot 0, which only leaves
their order to the window's sort. Without a spine range the pre-sort is by key alone.

The pre-sort has to run after the shuffle, so the rows are hash-partitioned by the window's
partition columns explicitly, unless Spark's plan says they already are (as the window
alone would have left them, so no shuffle is added).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegralType

from mesh.join.bounds import TimeRange
from mesh.join.columns import AVAIL, TAG, col, epoch_micros, ident

KEY_BITS = 24  # bits of the keys' hash (bits 40-63)
TIME_BITS = 38  # time slots (bits 2-39); the tag (0-2) takes bits 0-1
HISTORY_MICROS = 366 * 86_400_000_000  # the scale reaches at least this far before the spine


def presorted(
    df: DataFrame,
    keys: Sequence[str],
    partition: Sequence[str],
    times: TimeRange | None,
    part: DataFrame | None = None,
) -> DataFrame:
    """``df`` hash-partitioned by the columns ``partition``, each partition pre-sorted.

    ``keys`` are the key columns (a prefix of ``partition``); ``times`` the spine's range.
    ``part``: one input of the union ``df`` with a small plan (the spine's). A union is
    hash-partitioned only if every input is, so when ``part`` is not, ``df``'s own plan
    (with the reduced sources, the larger one to plan) is not asked.
    """
    known = part is None or hash_partitioned_by(part, partition)
    if not (known and hash_partitioned_by(df, partition)):
        df = df.repartition(*[col(c) for c in partition])
    return df.sortWithinPartitions(F.expr(_order(df, keys, times)))


def _order(df: DataFrame, keys: Sequence[str], times: TimeRange | None) -> str:
    """SQL: the one long to pre-sort by (see the module docstring)."""
    hashed = "xxhash64(" + ", ".join(ident(k) for k in keys) + ")"
    if times is None:
        if len(keys) == 1 and isinstance(df.schema[keys[0]].dataType, IntegralType):
            return ident(keys[0])
        return hashed
    key = f"{hashed} & {(1 << KEY_BITS) - 1}"

    def micros(t: str) -> str:
        # Zone-free for timestamp_ntz (its wall-clock reading as UTC), so strictly monotonic.
        return epoch_micros(t, df.schema[AVAIL].dataType)

    low, high = micros(times.low), micros(times.high)
    # [low - history, high] onto [0, 1]; null times (spine rows) give slot 0, as the
    # window puts them first.
    history = f"greatest({high} - {low}, {HISTORY_MICROS})"
    fraction = f"({micros(AVAIL)} - ({low} - {history})) / ({high} - {low} + {history} + 1)"
    slot = f"CAST(least(greatest({fraction}, 0D), 1D) * {(1 << TIME_BITS) - 1} AS BIGINT)"
    return f"shiftleft({key}, {TIME_BITS + 2}) | shiftleft({slot}, 2) | {TAG}"


def hash_partitioned_by(df: DataFrame, columns: Sequence[str]) -> bool:
    """Whether Spark's physical plan already hash-partitions ``df`` by some of ``columns``.

    Then an operator grouping by ``columns`` (the window, a source's per-bucket aggregate)
    needs no shuffle, and none is added. Read from the JVM plan (classic PySpark); without
    one (Spark Connect) the answer is no: at worst one more shuffle.
    """
    jdf = getattr(df, "_jdf", None)
    if jdf is None:
        return False
    partitioning = jdf.queryExecution().sparkPlan().outputPartitioning()
    if partitioning.getClass().getSimpleName() != "HashPartitioning":
        return False
    expressions = partitioning.expressions()
    found = [expressions.apply(i) for i in range(expressions.size())]
    return bool(found) and all(
        e.getClass().getSimpleName() == "AttributeReference" and e.name() in columns for e in found
    )


__all__ = ["hash_partitioned_by", "presorted"]
