"""Data checks a feature-set version must pass before it is published.

One Spark job (one scan of the data) whatever the number of features, and nothing but
aggregates is collected: row count, key nulls, feature nulls, min/max/out-of-range counts,
latest ``feature_ts``, drift buckets and the distinct count of
``(keys, feature_ts, created_ts)`` are one aggregation (Spark plans the distinct count with
an Expand, so the data is read once instead of twice).

Thresholds come from the feature set's ``quality`` when set, else ``standards.quality``:

* ``data.schema``      every key, ``feature_ts`` and feature column is present;
* ``data.types``       each key column has its entity's registered type, and each feature
  that declares a ``type`` has that type;
* ``data.aggregation_type``  each aggregation's column has the type its function gives over
  its source column (``sum`` of a double is double, ``count`` bigint); a declared ``type:``
  that casts it to another type fails here. Without the source column's type (not given,
  not declared in the data product, or a sum/mean of a decimal, whose precision Spark widens)
  the result is a warning;
* ``data.allowed_type``  each aggregation's column type is in ``allowed_types`` (typed
  features are held to their declared type, which ``validate`` checks against the list);
* ``data.row_count``   rows >= ``min_rows`` (and always > 0);
* ``data.key_nulls``   null share of each key column, ``feature_ts`` and ``created_ts``
  <= ``max_key_null_rate`` (0 by default);
* ``data.uniqueness``  no two rows share ``(keys, feature_ts, created_ts)`` (measured: the
  surplus rows, rows minus distinct combinations);
* ``data.null_rate``   null share (NaN counts as null) per feature <= ``max_null_rate``;
* ``data.range``       every value within ``quality.ranges[feature]`` (bounds inclusive);
* ``data.freshness``   ``as_of - max(feature_ts)`` <= ``freshness`` (skipped when unset);
* ``data.drift_psi``   population stability index against the previous version's
  histogram <= ``max_psi`` (skipped without previous statistics).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mesh.definitions.mesh import AnyFeatureSet
from mesh.definitions.standards import Standards
from mesh.governance.data_types import type_checks
from mesh.governance.results import CheckResult, GovernanceReport, Severity
from mesh.governance.statistics import (
    FeatureStats,
    Histogram,
    bucket_column,
    column_kind,
    value_column,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

PSI_EPSILON = 1e-4  # share given to an empty bucket so PSI stays finite


def population_stability_index(
    expected: Sequence[float], actual: Sequence[float], epsilon: float = PSI_EPSILON
) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bucket shares; empty buckets count as ``epsilon``.

    Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift.
    """
    if len(expected) != len(actual):
        raise ValueError(f"PSI needs the same buckets, got {len(expected)} and {len(actual)}")
    e_total, a_total = sum(expected), sum(actual)
    if e_total <= 0 or a_total <= 0:
        return 0.0
    psi = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_share = max(e / e_total, epsilon)
        a_share = max(a / a_total, epsilon)
        psi += (a_share - e_share) * math.log(a_share / e_share)
    return psi


def run_data_checks(
    df: DataFrame,
    fs: AnyFeatureSet,
    standards: Standards,
    *,
    key_columns: Sequence[str],
    source_columns: Mapping[str, str] | None = None,
    previous_stats: Mapping[str, FeatureStats] | None = None,
    as_of: datetime | None = None,
) -> GovernanceReport:
    """Check the rows of a feature-set version (``df``, feature-table schema) before publish.

    ``key_columns`` are the entity's key columns; ``source_columns`` the column types its
    data product declares (``DataProduct.columns``), from which aggregation types derive;
    ``previous_stats`` the statistics stored
    with the previous published version (``compute_statistics``), the drift baseline;
    ``as_of`` the freshness reference (default now; a naive datetime is UTC). Every check
    appears in the report, passed ones included. See the module doc for the checks.
    """
    from pyspark.sql import functions as F

    subject = fs.qualified_name
    quality = standards.quality
    results: list[CheckResult] = []

    def add(
        check: str,
        feature: str | None,
        passed: bool,
        measured: Any,
        threshold: Any,
        message: str,
        severity: Severity = "error",
        setting: str | None = None,
    ) -> None:
        # ``setting``: the `quality` setting that holds the threshold (the result's field).
        results.append(
            CheckResult(
                check,
                subject,
                feature,
                passed,
                measured,
                threshold,
                "ok" if passed else f"{subject}: {message}",
                field=setting,
                severity=severity,
            )
        )

    columns = set(df.columns)
    id_columns = [*key_columns, "feature_ts", *(["created_ts"] if "created_ts" in columns else [])]
    for column in [*key_columns, "feature_ts", *fs.output_names()]:
        add(
            "data.schema",
            column,
            column in columns,
            "present" if column in columns else "missing",
            "present",
            f"column {column!r} is missing from the data (columns: {', '.join(df.columns)}); "
            "the feature table must hold the entity keys, feature_ts and every feature",
        )
    types = {f.name: f.dataType for f in df.schema.fields}
    type_checks(add, fs, standards, types, key_columns=key_columns, source_columns=source_columns)
    features = [f for f in fs.output_names() if f in columns]
    ids = [c for c in id_columns if c in columns]
    values = {f: value_column(f, types[f]) for f in features}
    baselines: dict[str, Histogram] = {}
    for f in features:
        baseline = previous_stats.get(f) if previous_stats else None
        if baseline is not None and baseline.histogram is not None:
            baselines[f] = baseline.histogram

    aggs = [F.count(F.lit(1)).alias("n")]
    if ids:
        aggs.append(F.count_distinct(F.struct(*ids)).alias("distinct_ids"))
    aggs += [F.sum(F.col(c).isNull().cast("long")).alias(f"k{i}") for i, c in enumerate(ids)]
    aggs += [F.count(values[f]).alias(f"nn{i}") for i, f in enumerate(features)]
    if "feature_ts" in columns:
        aggs.append(F.max(value_column("feature_ts", types["feature_ts"])).alias("latest"))
    for i, f in enumerate(features):
        bounds = fs.quality.ranges.get(f)
        if bounds and column_kind(types[f]) == "numeric":
            low, high = bounds
            outside = F.lit(False)
            if low is not None:
                outside = outside | (values[f] < F.lit(low))
            if high is not None:
                outside = outside | (values[f] > F.lit(high))
            aggs += [
                F.min(values[f]).alias(f"lo{i}"),
                F.max(values[f]).alias(f"hi{i}"),
                F.sum(F.when(outside, 1).otherwise(0)).alias(f"out{i}"),
            ]
        if f in baselines:
            bucket = bucket_column(values[f], baselines[f])
            aggs += [
                F.sum(F.when(bucket == b, 1).otherwise(0)).alias(f"b{i}_{b}")
                for b in range(len(baselines[f].buckets))
            ]
    row = df.agg(*aggs).collect()[0].asDict()
    n = int(row["n"])

    min_rows = max(quality.min_rows, 1)
    add(
        "data.row_count",
        None,
        n >= min_rows,
        n,
        min_rows,
        f"{n} row(s), at least {min_rows} required (quality.min_rows); check the source data "
        "and the time range of the run",
        setting="quality.min_rows",
    )
    for i, c in enumerate(ids):
        nulls = int(row[f"k{i}"] or 0)
        rate = nulls / n if n else 0.0
        add(
            "data.key_nulls",
            c,
            rate <= quality.max_key_null_rate,
            rate,
            quality.max_key_null_rate,
            f"{nulls} of {n} row(s) have a null {c!r}; rows without keys or times can never "
            "be joined: filter or fix them in the source",
            setting="quality.max_key_null_rate",
        )
    if ids and n:
        surplus = n - int(row["distinct_ids"])
        add(
            "data.uniqueness",
            None,
            surplus == 0,
            surplus,
            0,
            f"{surplus} row(s) repeat a combination of ({', '.join(ids)}); each "
            "(keys, feature_ts, created_ts) must be one row: deduplicate before writing or "
            "check the job's time range (a range written twice?)",
        )
    for i, f in enumerate(features):
        _feature_checks(add, fs, quality.max_null_rate, row, i, f, n, types[f])
        if f in baselines and n:
            _drift(add, fs, standards, row, i, f, baselines[f])
    if "feature_ts" in columns:
        _freshness(add, fs, standards, row.get("latest"), as_of)
    return GovernanceReport(results)


def _feature_checks(
    add: Any,
    fs: AnyFeatureSet,
    default_rate: float,
    row: dict[str, Any],
    i: int,
    f: str,
    n: int,
    data_type: Any,
) -> None:
    if n:
        nulls = n - int(row[f"nn{i}"])
        rate = nulls / n
        limit = fs.quality.max_null_rate.get(f, default_rate)
        add(
            "data.null_rate",
            f,
            rate <= limit,
            rate,
            limit,
            f"feature {f!r} is null (or NaN) in {nulls} of {n} row(s) ({rate:.1%}), more than "
            f"max_null_rate={limit}; check its source columns, or set "
            f"quality.max_null_rate.{f} on the feature set if that is expected",
            setting=f"quality.max_null_rate.{f}",
        )
    bounds = fs.quality.ranges.get(f)
    if not bounds:
        return
    low, high = bounds
    if column_kind(data_type) != "numeric":
        add(
            "data.range",
            f,
            False,
            data_type.simpleString(),
            [low, high],
            f"quality.ranges.{f} is set but {f!r} is {data_type.simpleString()}, not numeric; "
            "remove the range",
            setting=f"quality.ranges.{f}",
        )
        return
    outside = int(row[f"out{i}"] or 0)
    add(
        "data.range",
        f,
        outside == 0,
        [row[f"lo{i}"], row[f"hi{i}"]],
        [low, high],
        f"{outside} value(s) of {f!r} fall outside [{low}, {high}] (min {row[f'lo{i}']}, "
        f"max {row[f'hi{i}']}); fix the computation or widen quality.ranges.{f}",
        setting=f"quality.ranges.{f}",
    )


def _drift(
    add: Any,
    fs: AnyFeatureSet,
    standards: Standards,
    row: dict[str, Any],
    i: int,
    f: str,
    baseline: Histogram,
) -> None:
    actual = [int(row[f"b{i}_{b}"] or 0) for b in range(len(baseline.buckets))]
    if not sum(actual) or not sum(baseline.buckets):
        return  # nothing to compare; null-rate and row-count checks report empty data
    psi = population_stability_index(baseline.buckets, actual)
    limit = fs.quality.max_psi if fs.quality.max_psi is not None else standards.quality.max_psi
    add(
        "data.drift_psi",
        f,
        psi <= limit,
        psi,
        limit,
        f"feature {f!r} drifted from the previous version: PSI {psi:.3f} > max_psi={limit} "
        f"(buckets before {baseline.buckets}, now {actual}); check the source data, or set "
        "quality.max_psi if the shift is expected",
        setting="quality.max_psi",
    )


def _freshness(
    add: Any, fs: AnyFeatureSet, standards: Standards, latest: Any, as_of: datetime | None
) -> None:
    limit = fs.quality.freshness or standards.quality.freshness
    if limit is None:
        return
    now = as_of or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    if latest is None:
        return  # no feature_ts at all: data.row_count or data.key_nulls already fail
    newest = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=float(latest))
    age = now - newest
    add(
        "data.freshness",
        None,
        age <= limit,
        age,
        limit,
        f"the latest feature_ts is {newest.isoformat()}, {age} before {now.isoformat()}, "
        f"older than freshness={limit}; run the job for the recent range, relax "
        "quality.freshness, or, for a backfill, check it as of the range's end",
        setting="quality.freshness",
    )
