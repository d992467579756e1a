"""Statistics of a feature-set version: stored with the version, shown in its report, and the
baseline the next version's drift is measured against.

Two Spark jobs whatever the number of columns: one aggregate pass (count, nulls, min, max,
mean, stddev, approx distinct, approx quantiles) and one grouped pass for every histogram
(fixed-width bins for numbers and times, top-k values for strings and booleans). NaN counts
as null (a missing value to a model). Times are measured in seconds since the epoch (UTC)
and shown as ISO text.

Statistics are stored in the catalog and shown in reports without an access check, so the
values of a text column classified ``pii`` or ``sensitive`` (``protected``) are never
collected: such a column keeps its counts, nulls and distinct count only.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from mesh.definitions.feature_set import PROTECTED_PII
from mesh.errors import MeshError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType

    from mesh.definitions.mesh import AnyFeatureSet

Kind = Literal["numeric", "temporal", "categorical", "other"]
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Histogram:
    """``bins``: ``counts[i]`` values in ``[edges[i], edges[i+1])`` (last bin closed);
    ``top_k``: ``counts[i]`` rows equal to ``values[i]``, ``other`` non-null rows besides.

    A single bin (a constant column: edges ``(v, v)``) is three buckets for drift: below,
    within and above it, so that values leaving it are seen (see ``bucket_column``)."""

    kind: Literal["bins", "top_k"]
    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    values: tuple[str, ...] = ()
    other: int = 0

    @property
    def buckets(self) -> list[int]:
        """Counts of every bucket, ``other`` last for top-k (the base of PSI)."""
        if self.kind == "top_k":
            return [*self.counts, self.other]
        if len(self.counts) == 1:
            return [0, self.counts[0], 0]
        return list(self.counts)


@dataclass(frozen=True)
class FeatureStats:
    """Statistics of one column. ``min``/``max`` are numbers, or ISO text for times;
    ``mean``/``stddev``/``quantiles`` only for numbers; ``distinct`` is approximate.
    ``redacted``: a text column of personal data, whose values (top-k) are not kept."""

    name: str
    type: str
    kind: Kind
    count: int
    nulls: int
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    stddev: float | None = None
    distinct: int | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    histogram: Histogram | None = None
    redacted: bool = False

    @property
    def null_rate(self) -> float:
        return self.nulls / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN/inf as None) for the catalog."""
        data = asdict(self)
        return {k: _finite(v) for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureStats:
        """Inverse of ``to_dict``."""
        values = dict(data)
        hist = values.get("histogram")
        if hist is not None:
            values["histogram"] = Histogram(
                kind=hist["kind"],
                counts=tuple(hist["counts"]),
                edges=tuple(hist["edges"]),
                values=tuple(hist["values"]),
                other=hist.get("other", 0),
            )
        values["quantiles"] = dict(values.get("quantiles") or {})
        return cls(**values)


def protected_columns(fs: AnyFeatureSet) -> list[str]:
    """Output columns of ``fs`` classified ``pii`` or ``sensitive`` (``protected`` below)."""
    return [o for f in fs.features if f.pii in PROTECTED_PII for o in f.output_names()]


def redact(
    stats: Mapping[str, FeatureStats], protected: Collection[str], *, every_kind: bool = False
) -> dict[str, FeatureStats]:
    """``stats`` without the values of the ``protected`` text columns (e.g. statistics stored
    before a feature was classified ``pii``): their top-k histogram is dropped.

    With ``every_kind`` (statistics shown to a reader without the PII grant), protected
    columns of every type lose what can show an individual's value: min, max, mean, stddev,
    quantiles and histogram; count, nulls (null rate) and distinct count remain. The stored
    statistics keep them (the owner's drift baseline)."""
    out: dict[str, FeatureStats] = {}
    for name, s in stats.items():
        if name in protected and every_kind:
            out[name] = replace(
                s,
                min=None,
                max=None,
                mean=None,
                stddev=None,
                quantiles={},
                histogram=None,
                redacted=True,
            )
        elif name in protected and s.type == "string":
            out[name] = replace(s, histogram=None, redacted=True)
        else:
            out[name] = s
    return out


def stats_to_dict(stats: Mapping[str, FeatureStats]) -> dict[str, dict[str, Any]]:
    """All columns' statistics as one JSON-able dict."""
    return {name: s.to_dict() for name, s in stats.items()}


def stats_from_dict(data: Mapping[str, Mapping[str, Any]]) -> dict[str, FeatureStats]:
    """Inverse of ``stats_to_dict`` (what the catalog stored for a version)."""
    return {name: FeatureStats.from_dict(value) for name, value in data.items()}


def compute_statistics(
    df: DataFrame,
    columns: Sequence[str] | None = None,
    *,
    bins: int = 10,
    top_k: int = 10,
    quantiles: Sequence[float] = QUANTILES,
    accuracy: int = 10000,
    protected: Collection[str] = (),
) -> dict[str, FeatureStats]:
    """Statistics of ``columns`` (default: every column) of ``df`` in two Spark jobs.

    Numeric columns get min, max, mean, sample stddev, approx quantiles (``p50`` etc., from
    ``percentile_approx`` with ``accuracy``) and ``bins`` equal-width bins between min and
    max; timestamps/dates get min/max and bins over epoch seconds; strings and booleans get
    the ``top_k`` most frequent values (ties by value) and the count of the rest. Every
    column gets row count, null count and an approximate distinct count.

    ``protected`` names the columns holding personal data (``protected_columns(fs)``): a
    text column among them gets no histogram (no value of it is collected) and
    ``redacted=True``; numbers, times and booleans keep theirs (aggregates or the type's
    own values).
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    names = list(columns) if columns is not None else list(df.columns)
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise MeshError(
            f"compute_statistics: columns {missing} are not in the DataFrame (columns: "
            f"{', '.join(df.columns)}); pass existing column names",
            missing=missing,
        )
    types = {f.name: f.dataType for f in df.schema.fields}
    kinds = {c: column_kind(types[c]) for c in names}
    values = {c: value_column(c, types[c]) for c in names}
    hidden = {c for c in names if c in protected and isinstance(types[c], T.StringType)}
    probs = [float(q) for q in quantiles]

    aggs = [F.count(F.lit(1)).alias("__n")]
    for i, c in enumerate(names):
        v = values[c]
        aggs += [F.count(v).alias(f"nn{i}"), F.approx_count_distinct(v).alias(f"d{i}")]
        if kinds[c] in ("numeric", "temporal"):
            aggs += [F.min(v).alias(f"lo{i}"), F.max(v).alias(f"hi{i}")]
        if kinds[c] == "numeric":
            aggs += [
                F.mean(v).alias(f"m{i}"),
                F.stddev_samp(v).alias(f"s{i}"),
                F.percentile_approx(v, probs, accuracy).alias(f"q{i}"),
            ]
    row = df.agg(*aggs).collect()[0].asDict()
    total = int(row["__n"])

    ranges = {
        c: (float(row[f"lo{i}"]), float(row[f"hi{i}"]))
        for i, c in enumerate(names)
        if kinds[c] in ("numeric", "temporal") and row[f"lo{i}"] is not None
    }
    edges_of = {c: bin_edges(low, high, bins) for c, (low, high) in ranges.items()}
    categories = [c for c in names if kinds[c] == "categorical" and c not in hidden]
    hist_counts = _bucket_counts(df, values, edges_of, categories, top_k)

    result: dict[str, FeatureStats] = {}
    for i, c in enumerate(names):
        kind = kinds[c]
        non_null = int(row[f"nn{i}"])
        stats: dict[str, Any] = {"distinct": int(row[f"d{i}"])}
        if c in ranges:
            low, high = ranges[c]
            edges = edges_of[c]
            counts = hist_counts.get(c, {})
            stats["histogram"] = Histogram(
                "bins",
                # One bin holds every non-null value (they all lie within [min, max]).
                (non_null,)
                if len(edges) == 2
                else tuple(counts.get(str(b), 0) for b in range(len(edges) - 1)),
                edges,
            )
            stats["min"], stats["max"] = (
                (low, high) if kind == "numeric" else (_iso(low, types[c]), _iso(high, types[c]))
            )
        if kind == "numeric" and non_null:
            stats["mean"] = _float(row[f"m{i}"])
            stats["stddev"] = _float(row[f"s{i}"])
            stats["quantiles"] = {
                _qname(q): float(x) for q, x in zip(probs, row[f"q{i}"] or [], strict=False)
            }
        if c in hidden:
            stats["redacted"] = True
        elif kind == "categorical":
            ranked = sorted(hist_counts.get(c, {}).items(), key=lambda kv: (-kv[1], kv[0]))
            top = ranked[:top_k]
            stats["histogram"] = Histogram(
                "top_k",
                tuple(n for _, n in top),
                values=tuple(v for v, _ in top),
                other=non_null - sum(n for _, n in top),
            )
        result[c] = FeatureStats(
            name=c,
            type=types[c].simpleString(),
            kind=kind,
            count=total,
            nulls=total - non_null,
            **stats,
        )
    return result


def column_kind(data_type: DataType) -> Kind:
    """How a Spark type is summarised: numeric, temporal, categorical or other."""
    from pyspark.sql import types as T

    if isinstance(data_type, T.NumericType):
        return "numeric"
    if isinstance(data_type, T.TimestampType | T.TimestampNTZType | T.DateType):
        return "temporal"
    if isinstance(data_type, T.StringType | T.BooleanType):
        return "categorical"
    return "other"


def value_column(name: str, data_type: DataType) -> Column:
    """The column as statistics see it: double for numbers (NaN -> null), epoch seconds
    for times, text for strings/booleans."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    col = F.col(name)
    kind = column_kind(data_type)
    if kind == "numeric":
        as_double = col.cast("double")
        if isinstance(data_type, T.FloatType | T.DoubleType):
            return F.when(F.isnan(col), F.lit(None).cast("double")).otherwise(as_double)
        return as_double
    if isinstance(data_type, T.DateType):
        return (F.unix_date(col) * 86400).cast("double")
    if kind == "temporal":
        return (F.unix_micros(col.cast("timestamp")) / 1_000_000).cast("double")
    if kind == "categorical":
        return col.cast("string")
    return col


def bucket_column(value: Column, histogram: Histogram) -> Column:
    """Bucket index of each value under ``histogram`` (null for nulls).

    Bins: values below the first edge fall in the first bin and above the last edge in the
    last one (a new version may leave the old range). A single bin (constant baseline): 0
    below it, 1 within it, 2 above it (``Histogram.buckets``). Top-k: index of the value, or
    ``len(values)`` (the ``other`` bucket)."""
    from pyspark.sql import functions as F

    if histogram.kind == "top_k":
        index = F.lit(len(histogram.values))
        for i, item in reversed(list(enumerate(histogram.values))):
            index = F.when(value == F.lit(item), F.lit(i)).otherwise(index)
        return F.when(value.isNull(), F.lit(None)).otherwise(index)
    edges = histogram.edges
    n = len(edges) - 1
    low, high = edges[0], edges[-1]
    if n <= 1 or high <= low:
        # Clamping into one bin would hide any shift (PSI 0 whatever the new values).
        side = F.when(value < F.lit(low), F.lit(0)).when(value > F.lit(high), F.lit(2))
        return F.when(value.isNull(), F.lit(None)).otherwise(side.otherwise(F.lit(1)))
    raw = F.floor((value - F.lit(low)) / F.lit((high - low) / n)).cast("int")
    # greatest/least skip nulls, so a null value must stay null explicitly.
    return F.when(value.isNull(), F.lit(None)).otherwise(
        F.least(F.greatest(raw, F.lit(0)), F.lit(n - 1))
    )


def bin_edges(low: float, high: float, bins: int) -> tuple[float, ...]:
    """``bins`` equal-width bins from low to high; one bin when all values are equal."""
    if high <= low or bins <= 1:
        return (low, high)
    width = (high - low) / bins
    return tuple([low + i * width for i in range(bins)] + [high])


def _bucket_counts(
    df: DataFrame,
    values: dict[str, Column],
    edges_of: dict[str, tuple[float, ...]],
    categories: list[str],
    top_k: int,
) -> dict[str, dict[str, int]]:
    """One grouped job: (column, bucket) -> count for every histogram of several bins and
    the top ``top_k`` values of every column in ``categories``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    numeric = [c for c, edges in edges_of.items() if len(edges) > 2]
    entries = []
    for c in numeric:
        bucket = bucket_column(values[c], Histogram("bins", (), edges_of[c])).cast("string")
        entries.append(F.struct(F.lit(c).alias("k"), bucket.alias("b")))
    for c in categories:
        entries.append(F.struct(F.lit(c).alias("k"), values[c].alias("b")))
    if not entries:
        return {}
    long = df.select(F.explode(F.array(*entries)).alias("e")).select("e.k", "e.b")
    counted = long.where(F.col("b").isNotNull()).groupBy("k", "b").count()
    # Keep every bin but only the top k categories per column: the rest is `other`.
    rank = F.row_number().over(Window.partitionBy("k").orderBy(F.desc("count"), F.asc("b")))
    keep = rank <= top_k
    if numeric:
        keep = F.col("k").isin(numeric) | keep
    kept = counted.withColumn("keep", keep).where("keep")
    out: dict[str, dict[str, int]] = {}
    for r in kept.collect():
        out.setdefault(r["k"], {})[r["b"]] = int(r["count"])
    return out


def _iso(seconds: float, data_type: DataType) -> str:
    from pyspark.sql import types as T

    moment = _EPOCH + timedelta(seconds=seconds)
    if isinstance(data_type, T.DateType):
        return date(moment.year, moment.month, moment.day).isoformat()
    if isinstance(data_type, T.TimestampNTZType):
        return moment.replace(tzinfo=None).isoformat()
    return moment.isoformat()


def _qname(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
