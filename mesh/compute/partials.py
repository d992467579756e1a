"""Partial aggregates of windowed features, and how each function turns them into a value.

Source rows are first reduced per (entity, position) to partials; windows then combine
partials of many positions. Counts and sums of integers are exact, so a window may be a
difference of two running totals; sums of floating-point values and the spread behind
``stddev`` are combined from the window's own partials only (a running total that once held a
large value keeps its rounding after the value has left the window). Min, max and approximate
distinct are combined over range frames; ``last`` is a running maximum of
``(event time, arrival time, value)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mesh.compute.sources import AR_US, E_US, own_columns
from mesh.definitions import AggregationFeature, FeatureSet
from mesh.errors import ComputeError, first_line

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# Partials each function needs: n = count of values, s = sum, m2 = (count, mean, sum of
# squared deviations from the mean) of the values, mn/mx = min/max, last = max struct by
# time, hll = HLL sketch (or set) of the values.
NEEDS: dict[str, tuple[str, ...]] = {
    "count": ("n",),
    "sum": ("n", "s"),
    "mean": ("n", "s"),
    "stddev": ("n", "m2"),
    "min": ("mn",),
    "max": ("mx",),
    "last": ("last",),
    "approx_distinct": ("hll",),
}
_HLL_TYPES = ("int", "bigint", "string", "binary")
_FLOATING = ("float", "double")


@dataclass(frozen=True)
class Partial:
    """One partial column: what it aggregates (kind over column under filter) and its name."""

    kind: str
    column: str | None
    filter: str | None
    name: str


class PartialPlan:
    """The partial columns a feature set needs, shared between features that can share them."""

    def __init__(self, fs: FeatureSet, source: DataFrame) -> None:
        self.fs = fs
        self.partials: dict[tuple[str, str | None, str | None], Partial] = {}
        self.features: list[AggregationFeature] = []
        source = own_columns(source)
        types = dict(source.dtypes)
        for i, feature in enumerate(fs.features):
            if not isinstance(feature, AggregationFeature):
                continue
            self.features.append(feature)
            if feature.column and feature.column not in types:
                raise ComputeError(
                    f"Feature set `{fs.qualified_name}` (features[{i}].column): column "
                    f"{feature.column!r} is not in the source (columns: {', '.join(types)}); "
                    "fix the feature's `column`.",
                    feature_set=fs.qualified_name,
                    feature=feature.name,
                    column=feature.column,
                )
            _check_sql(fs, i, feature.filter, source)
            for kind in NEEDS[feature.function]:
                self.partial(feature, kind)

    def partial(self, feature: AggregationFeature, kind: str) -> Partial:
        key = (kind, feature.column, feature.filter)
        if key not in self.partials:
            self.partials[key] = Partial(
                kind, feature.column, feature.filter, f"_p{len(self.partials)}_{kind}"
            )
        return self.partials[key]

    def aggregations(
        self,
        hll_source_types: dict[str, str],
        *,
        distinct_sets: bool = False,
        counted: Column | None = None,
    ) -> list[Column]:
        """Aggregate expressions producing every partial over a group of source rows.

        ``distinct_sets``: approximate distinct partials are the set of distinct values
        (``collect_set``, counted exactly by the window kernel) instead of an HLL sketch.
        ``counted``: rows where it is false add no value to any partial (a group of only
        such rows has count 0 and null values).
        """
        from pyspark.sql import functions as F

        out = []
        for p in self.partials.values():
            cond = F.coalesce(F.expr(p.filter), F.lit(False)) if p.filter else F.lit(True)
            if counted is not None:
                cond = cond & counted
            value = F.col(p.column) if p.column else F.lit(1)
            if p.kind == "n":
                agg = F.count(F.when(cond, value))
            elif p.kind == "s":
                agg = F.sum(F.when(cond, value))
            elif p.kind == "m2":
                x = F.when(cond, value).cast("double")
                # Spark's var_pop is computed from deviations, so it does not cancel.
                agg = F.struct(
                    F.count(x).alias("n"),
                    F.avg(x).alias("mean"),
                    (F.var_pop(x) * F.count(x)).alias("m2"),
                )
            elif p.kind == "mn":
                agg = F.min(F.when(cond, value))
            elif p.kind == "mx":
                agg = F.max(F.when(cond, value))
            elif p.kind == "last":
                # Latest by event time, then arrival (a correction wins), then greatest value.
                agg = F.max(
                    F.when(
                        cond & value.isNotNull(),
                        F.struct(F.col(E_US).alias("e"), F.col(AR_US).alias("a"), value.alias("v")),
                    )
                )
            else:
                dtype = hll_source_types.get(p.column or "")
                if dtype in _FLOATING:
                    # One value for 0.0 and -0.0 and one for every NaN, as Spark's = says.
                    value = (
                        F.when(F.isnan(value), F.lit(float("nan")).cast(dtype))
                        .when(value == 0, F.lit(0.0).cast(dtype))
                        .otherwise(value)
                    )
                if distinct_sets:
                    agg = F.collect_set(F.when(cond, value))
                else:
                    typed = value if dtype in _HLL_TYPES else value.cast("string")
                    agg = F.hll_sketch_agg(F.when(cond, typed))
            out.append(agg.alias(p.name))
        return out


def finalize(feature: AggregationFeature, window: str, values: dict[str, Column]) -> Column:
    """A feature's value for one window from its combined partials (``values`` by kind).

    ``count`` and ``approx_distinct`` over an empty window are 0; every other function is null
    there (SQL semantics). ``stddev`` is the sample standard deviation (null below two values).
    """
    from pyspark.sql import functions as F

    fn = feature.function
    if fn == "count":
        result = values["n"]
    elif fn == "sum":
        result = F.when(values["n"] > 0, values["s"])
    elif fn == "mean":
        result = F.when(values["n"] > 0, values["s"] / values["n"])
    elif fn == "stddev":
        n, m2 = values["n"], values["m2"]
        result = F.when(n >= 2, F.sqrt(m2 / (n - 1)))
    elif fn == "min":
        result = values["mn"]
    elif fn == "max":
        result = values["mx"]
    elif fn == "last":
        result = values["last"]
    else:
        result = F.coalesce(values["hll"], F.lit(0)).cast("bigint")
    name = f"{feature.name}_{window}"
    return (result.cast(feature.type) if feature.type else result).alias(name)


def _check_sql(fs: FeatureSet, index: int, text: str | None, source: DataFrame) -> None:
    """Analyse a filter against the source now, so a typo names its feature, not a stack."""
    if not text:
        return
    from pyspark.errors import AnalysisException, ParseException
    from pyspark.sql import functions as F

    try:
        source.select(F.expr(text)).schema  # noqa: B018 - analysis only
    except (AnalysisException, ParseException) as exc:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}` (features[{index}].filter): {text!r} is not a "
            f"valid predicate over the source ({first_line(exc)}); write a SQL "
            "boolean expression over the source's columns.",
            feature_set=fs.qualified_name,
            feature=fs.features[index].name,
            filter=text,
        ) from exc
