"""Deterministic random columns: hashes of (seed, salt, row id), never ``rand()``.

``rand(seed)`` depends on how rows fall into partitions; a hash of the row's id does not, so
the same seed gives the same rows whatever the cluster, the partitioning or the Spark version
(``xxhash64`` is part of Spark SQL's stable function set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import Column

_MANTISSA = (1 << 53) - 1


def uniform(seed: int, salt: str, *ids: Column | str) -> Column:
    """A double in (0, 1), uniform, fixed by the seed, the salt and the id columns."""
    hashed = F.xxhash64(F.lit(seed), F.lit(salt), *ids)
    return (hashed.bitwiseAND(F.lit(_MANTISSA)) + F.lit(0.5)) / F.lit(float(1 << 53))


def normal(seed: int, salt: str, *ids: Column | str) -> Column:
    """A standard normal draw (Box-Muller over two uniforms)."""
    u1 = uniform(seed, salt + ".n1", *ids)
    u2 = uniform(seed, salt + ".n2", *ids)
    return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2 * math.pi) * u2)


def between(u: Column, low: float, high: float) -> Column:
    """Map a uniform draw to ``[low, high)``."""
    return F.lit(low) + u * F.lit(high - low)


def choice(u: Column, weighted: Sequence[tuple[Any, float]]) -> Column:
    """Pick a value by weight with one uniform draw (weights need not sum to 1)."""
    total = sum(weight for _, weight in weighted)
    cumulative = 0.0
    expr: Any = F
    for value, weight in weighted[:-1]:
        cumulative += weight / total
        expr = expr.when(u < F.lit(cumulative), F.lit(value))
    return expr.otherwise(F.lit(weighted[-1][0]))


def seconds_to_ts(epoch_seconds: Column) -> Column:
    """Epoch seconds (whole) to a Spark timestamp; session time zone does not matter."""
    return F.timestamp_seconds(epoch_seconds.cast("long"))
