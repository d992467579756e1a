"""An obviously-correct, slow, plain-Python oracle for windowed features (tests only).

Written from the documented semantics, not from the engine: for every output point ``t`` and
window ``w`` it scans all rows and keeps those with availability <= t and event > t - w.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from mesh.definitions import AggregationFeature, FeatureSet, format_duration

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = 1_000_000


def micros(value: datetime) -> int:
    """Microseconds since the epoch; naive values (as Spark collects them here) are UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return (value - EPOCH) // timedelta(microseconds=1)


def reference(
    rows: list[dict[str, Any]],
    fs: FeatureSet,
    *,
    has_arrival: bool,
    start_us: int,
    end_us: int,
    filters: dict[str, Callable[[dict[str, Any]], bool]],
) -> dict[tuple[int, int], dict[str, Any]]:
    """(key, feature_ts micros) -> {"created_ts": micros, <output>: value} for an aggregation set.

    Rows: ``{"cid", "e" (micros), "a" (micros or None), columns...}``.
    """
    use_arrival = fs.exclude_late_data and has_arrival

    def arrival(r: dict[str, Any]) -> int:
        return r["a"] if r["a"] is not None else r["e"]

    def avail(r: dict[str, Any]) -> int:
        return max(r["e"], arrival(r)) if use_arrival else r["e"]

    feats = [f for f in fs.features if isinstance(f, AggregationFeature)]
    w_max = max(int(w.total_seconds() * US) for f in feats for w in f.windows)
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for cid in sorted({r["cid"] for r in rows}):
        mine = [r for r in rows if r["cid"] == cid]
        if fs.accuracy == "snapshot":
            unit = int(fs.interval.total_seconds() * US)
            first = -(-start_us // unit)
            candidates = [k * unit for k in range(first, -(-end_us // unit))]
            points = [
                t for t in candidates if any(avail(r) <= t and r["e"] > t - w_max for r in mine)
            ]
        else:
            # Every row's availability, also of a row that arrived after it left every window.
            points = sorted({avail(r) for r in mine if start_us <= avail(r) < end_us})
        for t in points:
            row: dict[str, Any] = {}
            if has_arrival and not use_arrival:
                used = [arrival(r) for r in mine if t - w_max < r["e"] <= t]
                row["created_ts"] = max([t, *used])
            else:
                row["created_ts"] = t
            for f in feats:
                for w in f.windows:
                    w_us = int(w.total_seconds() * US)
                    inside = [r for r in mine if avail(r) <= t and r["e"] > t - w_us]
                    row[f"{f.name}_{format_duration(w)}"] = _value(f, inside, filters, arrival)
            out[(cid, t)] = row
    return out


def _value(
    f: AggregationFeature,
    inside: list[dict[str, Any]],
    filters: dict[str, Callable[[dict[str, Any]], bool]],
    arrival: Callable[[dict[str, Any]], int],
) -> Any:
    keep = filters[f.filter] if f.filter else (lambda r: True)
    chosen = [r for r in inside if keep(r) and (f.column is None or r[f.column] is not None)]
    values = [r[f.column] for r in chosen] if f.column else [1] * len(chosen)
    if f.function == "count":
        return len(values)
    if f.function == "approx_distinct":
        return len(set(values))
    if not values:
        return None
    if f.function == "sum":
        return math.fsum(values) if f.column and isinstance(values[0], float) else sum(values)
    if f.function == "mean":
        return math.fsum(values) / len(values)
    if f.function == "stddev":
        return statistics.stdev(values) if len(values) >= 2 else None
    if f.function == "min":
        return min(values)
    if f.function == "max":
        return max(values)
    latest = max(chosen, key=lambda r: (r["e"], arrival(r), r[f.column]))
    return latest[f.column]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)
