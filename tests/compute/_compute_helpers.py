"""Tiny source tables and definitions for the compute tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from mesh.definitions import DataProduct, FeatureSet

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
SOURCE_SCHEMA = (
    "cid bigint, event_ts timestamp, ingested_ts timestamp, x double, ch string, flag boolean"
)
KEYS = {"cid": "bigint"}


def product(has_arrival: bool = True) -> DataProduct:
    return DataProduct(
        name="events",
        domain="d",
        event_timestamp="event_ts",
        created_timestamp="ingested_ts" if has_arrival else None,
    )


def feature_set(features: list[dict[str, Any]], **kw: Any) -> FeatureSet:
    return FeatureSet.model_validate(
        {
            "name": "fs",
            "domain": "d",
            "entity": "thing",
            "source": "events",
            "features": features,
            **kw,
        }
    )


def source_df(spark: Any, rows: list[dict[str, Any]]) -> Any:
    """Rows as dicts with ``e``/``a`` datetimes (``a`` may be None) and column values."""
    data = [(r["cid"], r["e"], r.get("a"), r.get("x"), r.get("ch"), r.get("flag")) for r in rows]
    return spark.createDataFrame(data, SOURCE_SCHEMA)


def at(hours: float = 0, days: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)
