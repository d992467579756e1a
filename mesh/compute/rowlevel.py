"""Row-level features: SQL expressions over one source row, or columns taken as they are.

Every source row becomes one feature row: ``feature_ts`` is its event time (when the value
became true) and ``created_ts`` its arrival (the later of arrival and event time when the source
records arrival, else the event time), whether or not the feature set excludes late data. A
correction (same event time, later arrival) is a new row with a later ``created_ts``; joins that
exclude late data pick it only from then, the others prefer it at every time (ties on
``feature_ts`` go to the greatest ``created_ts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesh.compute.sources import AR_US, E_US, own_columns
from mesh.compute.windowed import CREATED_TS, FEATURE_TS
from mesh.definitions import ColumnFeature, ExpressionFeature, FeatureSet
from mesh.errors import ComputeError, first_line

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def compute_row_features(
    rows: DataFrame, fs: FeatureSet, keys: list[str], start_us: int, end_us: int
) -> DataFrame:
    """Feature rows with ``start <= feature_ts < end``, one per (keys, feature_ts, created_ts).

    Source rows that collide on those three columns (exact duplicates in time) are reduced to
    one deterministically: the greatest tuple of feature values.
    """
    from pyspark.sql import functions as F

    if fs.row_level_off_event:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}` (accuracy): row-level features are computed "
            f"per source row, found accuracy {fs.accuracy!r}; set `accuracy: event`.",
            feature_set=fs.qualified_name,
            accuracy=fs.accuracy,
        )
    rows = rows.where((F.col(E_US) >= start_us) & (F.col(E_US) < end_us))
    values = [_feature_column(fs, i, rows) for i in range(len(fs.features))]
    names = fs.output_names()
    out = rows.select(
        *keys,
        F.timestamp_micros(F.col(E_US)).alias(FEATURE_TS),
        # Arrival, not availability: with late data admitted availability is the event time,
        # and a correction would collide with the row it corrects.
        F.timestamp_micros(F.greatest(F.col(E_US), F.col(AR_US))).alias(CREATED_TS),
        F.struct(*values).alias("_v"),
    )
    deduped = out.groupBy(*keys, FEATURE_TS, CREATED_TS).agg(F.max("_v").alias("_v"))
    return deduped.select(
        *keys, FEATURE_TS, CREATED_TS, *[F.col("_v").getField(n).alias(n) for n in names]
    )


def _feature_column(fs: FeatureSet, index: int, rows: DataFrame) -> Column:
    from pyspark.errors import AnalysisException, ParseException
    from pyspark.sql import functions as F

    feature = fs.features[index]
    if isinstance(feature, ExpressionFeature):
        text, where = feature.expr, f"features[{index}].expr"
    elif isinstance(feature, ColumnFeature):
        text, where = f"`{feature.source_column}`", f"features[{index}].column"
    else:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}` ({'features'}[{index}]): aggregation "
            f"{feature.name!r} cannot be computed per row; split it into its own feature set.",
            feature_set=fs.qualified_name,
            feature=feature.name,
        )
    column = F.expr(text).cast(feature.type).alias(feature.name)
    source = own_columns(rows)
    try:
        source.select(column).schema  # noqa: B018 - analysis only, to name the culprit
    except (AnalysisException, ParseException) as exc:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}` ({where}): {text!r} cannot be evaluated over "
            f"the source ({first_line(exc)}); use the source's columns "
            f"({', '.join(source.columns)}).",
            feature_set=fs.qualified_name,
            feature=feature.name,
            expr=text,
        ) from exc
    return column
