"""One feature set's rows for a time range, from a source DataFrame (no reading, no writing)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mesh.compute.rowlevel import compute_row_features
from mesh.compute.sources import on_time_line
from mesh.compute.windowed import CREATED_TS, FEATURE_TS, compute_aggregations
from mesh.definitions import DataProduct, FeatureSet
from mesh.errors import ComputeError
from mesh.storage.base import epoch_micros

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def feature_frame(
    source: DataFrame,
    fs: FeatureSet,
    product: DataProduct,
    key_types: dict[str, str],
    start: datetime,
    end: datetime,
    *,
    engine: str = "auto",
) -> DataFrame:
    """Rows of ``fs`` with ``start <= feature_ts < end`` computed from ``source``.

    Columns follow the feature-table contract: the entity keys (cast to the registry's types),
    ``feature_ts``, ``created_ts``, then ``fs.output_names()``. ``source`` must hold every row
    that can reach the range (the job passes the whole data product; rows outside are skipped).
    Naive datetimes are UTC. See ``mesh.compute.windowed`` for the window and late-data rules
    and for ``engine`` (``auto``, ``kernel`` or ``sql``: how windows are computed).
    """
    from pyspark.sql import functions as F

    start_us, end_us = epoch_micros(start), epoch_micros(end)
    if start_us >= end_us:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}`: range start {start.isoformat()} is not before "
            f"end {end.isoformat()}; pass --start earlier than --end.",
            feature_set=fs.qualified_name,
            start=start,
            end=end,
        )
    keys = list(key_types)
    rows = on_time_line(source, fs, product, keys)
    if fs.is_aggregation:
        out = compute_aggregations(rows, fs, product, keys, start_us, end_us, engine=engine)
    else:
        out = compute_row_features(rows, fs, keys, start_us, end_us)
    return out.select(
        *[F.col(k).cast(t).alias(k) for k, t in key_types.items()],
        FEATURE_TS,
        CREATED_TS,
        *fs.output_names(),
    )
