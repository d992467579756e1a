"""Delta per-file statistics (numRecords, minValues, maxValues, nullCount) from Parquet footers.

Only footers are read, never data. Min/max are kept for top-level integer, floating point,
string, date and timestamp columns, the types data skipping and ``replace_range`` use.
Timestamps are written at millisecond precision as the Delta protocol does, rounded outwards
(min down, max up) so the bounds stay conservative; a max in the last millisecond of 9999 has
no millisecond above it and is truncated, as delta-rs writes every max (readers allow for a
millisecond). Years have four digits (0001-...), as the protocol's readers parse them.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pyarrow.parquet as pq
from pyarrow import fs as pafs

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_STRING = 32  # longer strings are truncated for min (still a lower bound), dropped for max
_UNIT_TO_MICROS = {"milliseconds": 1000, "microseconds": 1}  # nanoseconds: no stats


def file_stats(filesystem: pafs.FileSystem, path: str) -> tuple[int, str]:
    """Row count and the Delta ``stats`` JSON of one Parquet file."""
    with filesystem.open_input_file(path) as handle:
        meta = pq.read_metadata(handle)
    return meta.num_rows, json.dumps(stats_from_metadata(meta), separators=(",", ":"))


def stats_from_metadata(meta: pq.FileMetaData) -> dict[str, Any]:
    """Delta stats of a file from its footer metadata."""
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    schema = meta.schema
    for index in range(meta.num_columns):
        column = schema.column(index)
        if "." in column.path:  # nested leaf: Delta would nest it; not needed for skipping
            continue
        name = column.path
        low = high = None
        null_count: int | None = 0
        for rg in range(meta.num_row_groups):
            chunk = meta.row_group(rg).column(index)
            st = chunk.statistics
            if st is None:
                null_count = None
                low = high = None
                break
            if null_count is not None:
                null_count = null_count + st.null_count if st.has_null_count else None
            if st.has_min_max:
                lo, hi = _convert(column, st.min_raw), _convert(column, st.max_raw)
                if lo is None or hi is None:
                    low = high = None
                    break
                low = lo if low is None else min(low, lo)
                high = hi if high is None else max(high, hi)
        if null_count is not None:
            nulls[name] = null_count
        if low is not None and high is not None:
            lo_json, hi_json = _to_json(low, up=False), _to_json(high, up=True)
            if lo_json is not None and hi_json is not None:
                mins[name], maxs[name] = lo_json, hi_json
    return {"numRecords": meta.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}


def _convert(column: Any, raw: Any) -> Any:
    """Footer raw value -> comparable Python value, or None when not a supported type."""
    logical = column.logical_type
    kind = logical.type
    physical = column.physical_type
    if kind == "TIMESTAMP" and physical == "INT64":
        unit = json.loads(logical.to_json()).get("timeUnit", "")
        factor = _UNIT_TO_MICROS.get(unit)
        if factor is None:
            return None
        return _EPOCH + timedelta(microseconds=int(raw) * factor)
    if kind == "DATE" and physical == "INT32":
        return date(1970, 1, 1) + timedelta(days=int(raw))
    if kind == "STRING" and physical == "BYTE_ARRAY":
        return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    if kind in ("NONE", "INT") and physical in ("INT32", "INT64"):
        return int(raw)
    if kind == "NONE" and physical in ("FLOAT", "DOUBLE"):
        value = float(raw)
        return None if math.isnan(value) else value
    return None  # decimals, booleans, binary, int96: no min/max (allowed by the protocol)


def _to_json(value: Any, *, up: bool) -> Any:
    if isinstance(value, datetime):
        micros = value.microsecond % 1000
        top = datetime.max.replace(tzinfo=value.tzinfo) - timedelta(microseconds=999)
        if micros and up and value < top:
            value += timedelta(microseconds=1000 - micros)
        elif micros:  # a max in the last millisecond of 9999 truncated, as delta-rs writes it
            value -= timedelta(microseconds=micros)
        # Four-digit years (strftime's %Y does not pad years before 1000).
        return f"{value.year:04d}-{value:%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if len(value) <= _MAX_STRING:
            return value
        return None if up else value[:_MAX_STRING]
    if isinstance(value, float) and math.isinf(value):
        return None
    return value
