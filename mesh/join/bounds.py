"""Prune each source to the time range the spine can see, with filters the scan can push down.

A source row can only be eligible at some spine row if ``feature_ts <= t_max`` (and, when
``created_ts`` gates, ``created_ts <= t_max`` or null), where ``t_max`` is the spine's latest
time; and with a ``ttl`` it is expired at every spine time if ``feature_ts < t_min - ttl``:
as a winner it would give nulls, and so would any row it hides (an older ``feature_ts``).
Dropping those rows therefore changes no output. The bounds are literals, so Spark pushes
them to the Parquet/Delta scan: on a table written in time order, a training window over
the last weeks of a long history reads only the files and row groups of those weeks (as
Feast's offline stores do with the entity frame's range).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampType

from mesh.join.columns import ident, within_ttl
from mesh.join.resolve import ResolvedSource


@dataclass(frozen=True)
class TimeRange:
    """The spine's earliest and latest time, as SQL literals of the spine's time type."""

    low: str
    high: str


def micros_range(low: int, high: int) -> TimeRange:
    """A ``timestamp`` range from epoch microseconds (exact, whatever the session time zone)."""
    return TimeRange(f"timestamp_micros({low}L)", f"timestamp_micros({high}L)")


def spine_range(spine: DataFrame, spine_timestamp: str) -> TimeRange | None:
    """The range of the spine's non-null times (one small job); None if it has none.

    ``timestamp`` times travel as epoch microseconds; ``timestamp_ntz`` ones as their
    string form, which names a local date-time exactly (no time zone is involved).
    """
    t = ident(spine_timestamp)
    if isinstance(spine.schema[spine_timestamp].dataType, TimestampType):
        low, high = _min_max(spine, f"unix_micros(min({t}))", f"unix_micros(max({t}))")
        return None if low is None else micros_range(int(low), int(high))
    low, high = _min_max(spine, f"CAST(min({t}) AS STRING)", f"CAST(max({t}) AS STRING)")
    return None if low is None else TimeRange(f"TIMESTAMP_NTZ '{low}'", f"TIMESTAMP_NTZ '{high}'")


def _min_max(spine: DataFrame, low: str, high: str) -> tuple[Any, Any]:
    row = spine.select(F.expr(low), F.expr(high)).first()
    return (None, None) if row is None else (row[0], row[1])


def prune(r: ResolvedSource, times: TimeRange) -> ResolvedSource:
    """``r`` without the rows that cannot be eligible and valid at any time in ``times``."""
    ft = ident(r.timestamp)
    conditions = [f"{ft} <= {times.high}"]
    if r.gate is not None:
        ct = ident(r.gate)
        conditions.append(f"({ct} IS NULL OR {ct} <= {times.high})")
    if r.ttl is not None:
        conditions.append(within_ttl(ft, times.low, r.ttl, r.df.schema[r.timestamp].dataType))
    return dataclasses.replace(r, df=r.df.where(" AND ".join(conditions)))


__all__ = ["TimeRange", "micros_range", "prune", "spine_range"]
