"""An obviously-correct point-in-time join in plain Python: loop, filter, sort."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class OracleSource:
    rows: list[dict[str, Any]]
    keys: Sequence[str]
    timestamp: str
    features: Sequence[str]
    created_timestamp: str | None = None
    exclude_not_yet_created: bool = True
    ttl: dt.timedelta | None = None


def nulls_first(value: Any) -> tuple:
    """Sort key that puts None below every value, like Spark's struct ordering."""
    return (0,) if value is None else (1, value)


def oracle_join(
    spine: list[dict[str, Any]],
    spine_columns: Sequence[str],
    spine_timestamp: str,
    sources: Sequence[OracleSource],
    strict: bool,
) -> list[tuple]:
    out = []
    for row in spine:
        t = row[spine_timestamp]
        values: list[Any] = []
        for source in sources:
            nothing = [None] * len(source.features)
            if t is None or any(row[k] is None for k in source.keys):
                values += nothing
                continue
            candidates = []
            for r in source.rows:
                ft = r[source.timestamp]
                if ft is None or any(r[k] != row[k] for k in source.keys):
                    continue
                if (ft >= t) if strict else (ft > t):
                    continue
                ct = r[source.created_timestamp] if source.created_timestamp else None
                if source.exclude_not_yet_created and ct is not None and ct > t:
                    continue
                candidates.append(r)
            if not candidates:
                values += nothing
                continue
            order = [source.timestamp]
            if source.created_timestamp:
                order.append(source.created_timestamp)
            # Fully tied rows are ordered by their feature values (the engine's documented
            # deterministic tie-break); the sort makes "greatest" explicit.
            order += list(source.features)
            candidates.sort(key=lambda r: tuple(nulls_first(r[c]) for c in order))
            best = candidates[-1]
            if source.ttl is not None and t - best[source.timestamp] > source.ttl:
                values += nothing
            else:
                values += [best[f] for f in source.features]
        out.append(tuple(row[c] for c in spine_columns) + tuple(values))
    return out


def row_sort_key(row: Sequence[Any]) -> tuple:
    return tuple(nulls_first(v) for v in row)
