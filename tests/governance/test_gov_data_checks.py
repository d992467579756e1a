"""Data checks on tiny feature tables: each bad frame fails its own check with its numbers."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StructField,
    StructType,
    TimestampType,
)

from mesh.definitions import FeatureSet, Standards
from mesh.errors import GovernanceError
from mesh.governance import (
    compute_statistics,
    population_stability_index,
    run_data_checks,
    stats_from_dict,
    stats_to_dict,
)

SCHEMA = StructType(
    [
        StructField("customer_id", LongType()),
        StructField("feature_ts", TimestampType()),
        StructField("created_ts", TimestampType()),
        StructField("tx_count_1d", LongType()),
        StructField("amount_sum_1d", DoubleType()),
    ]
)
DAY = datetime(2024, 3, 10, tzinfo=timezone.utc)
STANDARDS = Standards.model_validate(
    {"quality": {"min_rows": 1, "max_null_rate": 0.5, "freshness": "2d", "max_psi": 0.25}}
)


def spend(quality: dict[str, Any] | None = None) -> FeatureSet:
    return FeatureSet.model_validate(
        {
            "name": "spend",
            "domain": "payments",
            "entity": "customer",
            "source": "transactions",
            "features": [
                {
                    "kind": "aggregation",
                    "name": "tx_count",
                    "function": "count",
                    "windows": ["1d"],
                    "pii": "none",
                },
                {
                    "kind": "aggregation",
                    "name": "amount_sum",
                    "function": "sum",
                    "column": "amount",
                    "windows": ["1d"],
                    "pii": "none",
                },
            ],
            "quality": quality or {"ranges": {"amount_sum_1d": [0, 1000]}},
        }
    )


Row = tuple[Any, ...]


def good_rows() -> list[Row]:
    rows = []
    for i in range(8):
        at = DAY + timedelta(days=i % 2)
        rows.append((i, at, at + timedelta(hours=1), i + 1, 10.0 * (i + 1)))
    return rows


def replace(index: int, **values: Any) -> Callable[[list[Row]], list[Row]]:
    position = {f.name: i for i, f in enumerate(SCHEMA.fields)}

    def change(rows: list[Row]) -> list[Row]:
        row = list(rows[index])
        for key, value in values.items():
            row[position[key]] = value
        rows[index] = tuple(row)
        return rows

    return change


def null_amounts(count: int) -> Callable[[list[Row]], list[Row]]:
    def change(rows: list[Row]) -> list[Row]:
        return [(*r[:4], None) if i < count else r for i, r in enumerate(rows)]

    return change


AS_OF = DAY + timedelta(days=2)
# id, change of the rows, quality overrides, as_of, check, feature, measured, threshold
CASES: list[
    tuple[str, Callable[[list[Row]], list[Row]], Any, datetime, str, str | None, Any, Any]
] = [
    ("empty table", lambda rows: [], None, AS_OF, "data.row_count", None, 0, 1),
    (
        "null key",
        replace(3, customer_id=None),
        None,
        AS_OF,
        "data.key_nulls",
        "customer_id",
        1 / 8,
        0.0,
    ),
    (
        "null feature_ts",
        replace(2, feature_ts=None),
        None,
        AS_OF,
        "data.key_nulls",
        "feature_ts",
        1 / 8,
        0.0,
    ),
    (
        "null created_ts",
        replace(5, created_ts=None),
        None,
        AS_OF,
        "data.key_nulls",
        "created_ts",
        1 / 8,
        0.0,
    ),
    (
        "duplicate key and times",
        lambda rows: [*rows, rows[0]],
        None,
        AS_OF,
        "data.uniqueness",
        None,
        1,
        0,
    ),
    (
        "null rate above default",
        null_amounts(5),
        {},
        AS_OF,
        "data.null_rate",
        "amount_sum_1d",
        5 / 8,
        0.5,
    ),
    (
        "NaN counts as null",
        lambda rows: [(*r[:4], math.nan) for r in rows[:5]] + rows[5:],
        {},
        AS_OF,
        "data.null_rate",
        "amount_sum_1d",
        5 / 8,
        0.5,
    ),
    (
        "null rate above override",
        null_amounts(2),
        {"max_null_rate": {"amount_sum_1d": 0.1}},
        AS_OF,
        "data.null_rate",
        "amount_sum_1d",
        2 / 8,
        0.1,
    ),
    (
        "value below range",
        replace(0, amount_sum_1d=-5.0),
        None,
        AS_OF,
        "data.range",
        "amount_sum_1d",
        [-5.0, 80.0],
        [0.0, 1000.0],
    ),
    (
        "value above range",
        replace(7, amount_sum_1d=5000.0),
        None,
        AS_OF,
        "data.range",
        "amount_sum_1d",
        [10.0, 5000.0],
        [0.0, 1000.0],
    ),
    (
        "stale data",
        lambda rows: rows,
        None,
        DAY + timedelta(days=4),
        "data.freshness",
        None,
        timedelta(days=3),
        timedelta(days=2),
    ),
    (
        "stale data, set threshold",
        lambda rows: rows,
        {"freshness": "12h", "ranges": {"amount_sum_1d": [0, 1000]}},
        DAY + timedelta(days=1, hours=13),
        "data.freshness",
        None,
        timedelta(hours=13),
        timedelta(hours=12),
    ),
]


@pytest.mark.parametrize(
    ("change", "quality", "as_of", "check", "feature", "measured", "threshold"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_data_fails_its_own_check(
    spark, change, quality, as_of, check, feature, measured, threshold
) -> None:
    df = spark.createDataFrame(change(good_rows()), SCHEMA)
    report = run_data_checks(
        df, spend(quality), STANDARDS, key_columns=["customer_id"], as_of=as_of
    )
    failed = [(r.check, r.feature) for r in report.failed]
    assert failed == [(check, feature)], report.render_text()
    result = report.failed[0]
    assert result.subject == "payments.spend"
    if isinstance(measured, timedelta):
        assert (result.measured, result.threshold) == (measured, threshold)
    else:
        assert result.measured == pytest.approx(measured)
        assert result.threshold == pytest.approx(threshold)
    assert result.message.startswith("payments.spend: ")


def test_good_data_passes_every_check(spark) -> None:
    df = spark.createDataFrame(good_rows(), SCHEMA)
    report = run_data_checks(
        df,
        spend(),
        STANDARDS,
        key_columns=["customer_id"],
        source_columns={"amount": "double"},
        as_of=AS_OF,
    )
    assert report.ok, report.render_text()
    assert all(r.passed for r in report.results), report.render_text()
    assert {r.check for r in report.results} == {
        "data.schema",
        "data.aggregation_type",
        "data.allowed_type",
        "data.row_count",
        "data.key_nulls",
        "data.uniqueness",
        "data.null_rate",
        "data.range",
        "data.freshness",
    }


def test_missing_feature_column(spark) -> None:
    df = spark.createDataFrame(good_rows(), SCHEMA).drop("tx_count_1d")
    report = run_data_checks(df, spend(), STANDARDS, key_columns=["customer_id"], as_of=AS_OF)
    assert [(r.check, r.feature, r.measured) for r in report.failed] == [
        ("data.schema", "tx_count_1d", "missing")
    ]


def test_freshness_is_skipped_without_threshold(spark) -> None:
    df = spark.createDataFrame(good_rows(), SCHEMA)
    standards = Standards()
    report = run_data_checks(
        df, spend(), standards, key_columns=["customer_id"], as_of=DAY + timedelta(days=400)
    )
    assert report.ok and not report.find("data.freshness")


def test_freshness_with_naive_as_of_is_utc(spark) -> None:
    df = spark.createDataFrame(good_rows(), SCHEMA)
    naive = (DAY + timedelta(days=3, hours=1)).replace(tzinfo=None)
    (result,) = run_data_checks(
        df, spend(), STANDARDS, key_columns=["customer_id"], as_of=naive
    ).find("data.freshness")
    assert not result.passed and result.measured == timedelta(days=2, hours=1)


def shifted(spark, offset: float) -> Any:
    rows = [(i, DAY, DAY, i + 1, float(v) + offset) for i, v in enumerate(range(0, 200, 5))]
    return spark.createDataFrame(rows, SCHEMA)


def test_drift_psi_against_previous_statistics(spark) -> None:
    before = shifted(spark, 0.0)
    baseline = compute_statistics(before, ["amount_sum_1d", "tx_count_1d"])
    after = shifted(spark, 120.0)
    fs = spend({})
    report = run_data_checks(
        after, fs, STANDARDS, key_columns=["customer_id"], previous_stats=baseline, as_of=DAY
    )
    assert [(r.check, r.feature) for r in report.failed] == [("data.drift_psi", "amount_sum_1d")]
    # Oracle: bucket the new values with the old edges in plain Python.
    hist = baseline["amount_sum_1d"].histogram
    assert hist is not None
    edges = hist.edges
    width = (edges[-1] - edges[0]) / (len(edges) - 1)
    actual = [0] * (len(edges) - 1)
    for value in (float(v) + 120.0 for v in range(0, 200, 5)):
        actual[min(max(int((value - edges[0]) // width), 0), len(actual) - 1)] += 1
    expected_psi = sum(
        (max(a / sum(actual), 1e-4) - max(e / sum(hist.counts), 1e-4))
        * math.log(max(a / sum(actual), 1e-4) / max(e / sum(hist.counts), 1e-4))
        for e, a in zip(hist.counts, actual, strict=True)
    )
    (result,) = report.failed
    assert result.measured == pytest.approx(expected_psi)
    assert result.threshold == 0.25
    # tx_count_1d did not move: same values, PSI 0
    (same,) = report.find("data.drift_psi", "tx_count_1d")
    assert same.passed and same.measured == pytest.approx(0.0)


def test_drift_against_a_constant_baseline(spark) -> None:
    def frame(values: list[float]) -> Any:
        rows = [(i, DAY, DAY, 1, v) for i, v in enumerate(values)]
        return spark.createDataFrame(rows, SCHEMA)

    stats = compute_statistics(frame([5.0] * 40), ["amount_sum_1d"])
    baseline = stats_from_dict(json.loads(json.dumps(stats_to_dict(stats))))  # as stored
    hist = baseline["amount_sum_1d"].histogram
    assert hist is not None and (hist.edges, hist.counts) == ((5.0, 5.0), (40,))
    assert hist.buckets == [0, 40, 0]  # below, at, above 5.0
    cases = [
        ([5.0] * 40, [0, 40, 0]),
        ([100000.0 + i for i in range(40)], [0, 0, 40]),
        ([-1.0] * 40, [40, 0, 0]),
        ([5.0] * 30 + [6.0] * 10, [0, 30, 10]),
    ]
    for values, actual in cases:
        report = run_data_checks(
            frame(values),
            spend({}),
            STANDARDS,
            key_columns=["customer_id"],
            previous_stats=baseline,
            as_of=DAY,
        )
        (result,) = report.find("data.drift_psi", "amount_sum_1d")
        psi = population_stability_index([0, 40, 0], actual)
        assert result.measured == pytest.approx(psi)
        assert result.passed == (psi <= 0.25)
    assert population_stability_index([0, 40, 0], [0, 0, 40]) > 10
    assert population_stability_index([0, 40, 0], [0, 40, 0]) == 0.0


def test_drift_on_categories(spark) -> None:
    from pyspark.sql import functions as F

    base = spark.range(40).select(
        F.when(F.col("id") < 30, "card").otherwise("wallet").alias("channel")
    )
    baseline = compute_statistics(base, ["channel"])
    df = spark.range(40).select(
        F.col("id").alias("customer_id"),
        F.lit(DAY).alias("feature_ts"),
        F.when(F.col("id") < 10, "card").otherwise("cash").alias("channel"),
    )
    fs = FeatureSet.model_validate(
        {
            "name": "ch",
            "domain": "payments",
            "entity": "customer",
            "source": "transactions",
            "features": [{"kind": "column", "name": "channel", "type": "string", "pii": "none"}],
        }
    )
    report = run_data_checks(
        df, fs, STANDARDS, key_columns=["customer_id"], previous_stats=baseline, as_of=DAY
    )
    (result,) = report.find("data.drift_psi", "channel")
    # buckets [card, wallet, other]: before [30, 10, 0], after [10, 0, 30]
    assert result.measured == pytest.approx(population_stability_index([30, 10, 0], [10, 0, 30]))
    assert not result.passed


def test_psi_formula() -> None:
    assert population_stability_index([10, 10], [10, 10]) == 0.0
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert population_stability_index([5, 5], [1, 3]) == pytest.approx(expected)
    with pytest.raises(ValueError):
        population_stability_index([1, 2], [1])


def test_two_spark_jobs(spark) -> None:
    df = spark.createDataFrame(good_rows(), SCHEMA)
    tracker = spark.sparkContext.statusTracker()
    group = "gov-data-checks-jobs"
    spark.sparkContext.setJobGroup(group, "count jobs")
    try:
        run_data_checks(df, spend(), STANDARDS, key_columns=["customer_id"], as_of=AS_OF)
    finally:
        spark.sparkContext.setJobGroup("", "")
    jobs = tracker.getJobIdsForGroup(group)
    # one aggregate pass reads the data once (its shuffles are stages, not jobs)
    assert len(jobs) == 1, jobs


def test_types_of_keys_and_typed_features(spark) -> None:
    standards = Standards.model_validate(
        {
            "quality": {"min_rows": 1, "max_null_rate": 0.5},
            "entities": {"customer": {"keys": {"customer_id": "bigint"}}},
        }
    )
    typed = spend().model_copy(
        update={
            "features": (
                *spend().features,
                *FeatureSet.model_validate(
                    {
                        "name": "x",
                        "domain": "payments",
                        "entity": "customer",
                        "source": "transactions",
                        "features": [
                            {
                                "kind": "expression",
                                "name": "share",
                                "expr": "1",
                                "type": "decimal(10, 2)",
                                "pii": "none",
                            }
                        ],
                    }
                ).features,
            )
        }
    )
    base = spark.createDataFrame(good_rows(), SCHEMA)
    right = base.selectExpr("*", "CAST(0.5 AS DECIMAL(10,2)) AS share")
    report = run_data_checks(right, typed, standards, key_columns=["customer_id"])
    assert [(r.feature, r.passed) for r in report.results if r.check == "data.types"] == [
        ("customer_id", True),
        ("share", True),
    ]
    wrong = base.selectExpr(
        "CAST(customer_id AS STRING) AS customer_id",
        "feature_ts",
        "created_ts",
        "tx_count_1d",
        "amount_sum_1d",
        "CAST(0.5 AS DOUBLE) AS share",
    )
    report = run_data_checks(wrong, typed, standards, key_columns=["customer_id"])
    assert [(r.check, r.feature, r.measured, r.threshold) for r in report.failed] == [
        ("data.types", "customer_id", "string", "bigint"),
        ("data.types", "share", "double", "decimal(10,2)"),
    ]


def _aggregation_type_results(report: Any) -> list[tuple[Any, ...]]:
    return [
        (r.check, r.feature, r.passed, r.severity, r.measured, r.threshold)
        for r in report.results
        if r.check in ("data.aggregation_type", "data.allowed_type") and not r.passed
    ]


def test_aggregation_type_follows_its_source_column(spark) -> None:
    # A sum of a double column declared (and so cast to) bigint loses its fractions.
    declared = spend().model_copy(
        update={
            "features": (
                spend().features[0],
                spend().features[1].model_copy(update={"type": "bigint"}),
            )
        }
    )
    frame = spark.createDataFrame(good_rows(), SCHEMA).withColumn(
        "amount_sum_1d", F.col("amount_sum_1d").cast("bigint")
    )
    report = run_data_checks(
        frame,
        declared,
        STANDARDS,
        key_columns=["customer_id"],
        source_columns={"amount": "double"},
        as_of=AS_OF,
    )
    # data.types passes (the column is what `type:` declares); the derived type does not.
    assert [(r.feature, r.passed) for r in report.find("data.types")] == [("amount_sum_1d", True)]
    assert _aggregation_type_results(report) == [
        ("data.aggregation_type", "amount_sum_1d", False, "error", "bigint", "double")
    ]
    (failed,) = report.failed
    assert "sum(amount) over a double column gives double" in failed.message
    # The same bigint column is right for a sum of an int column (Spark sums ints as bigint).
    report = run_data_checks(
        frame,
        spend(),
        STANDARDS,
        key_columns=["customer_id"],
        source_columns={"amount": "int"},
        as_of=AS_OF,
    )
    assert report.ok, report.render_text()
    assert [r.passed for r in report.find("data.aggregation_type")] == [True, True]


def test_aggregation_type_must_be_allowed(spark) -> None:
    frame = spark.createDataFrame(good_rows(), SCHEMA)
    standards = STANDARDS.model_copy(update={"allowed_types": ("bigint", "string")})
    report = run_data_checks(
        frame,
        spend(),
        standards,
        key_columns=["customer_id"],
        source_columns={"amount": "double"},
        as_of=AS_OF,
    )
    assert _aggregation_type_results(report) == [
        ("data.allowed_type", "amount_sum_1d", False, "error", "double", ["bigint", "string"])
    ]


def test_aggregation_type_without_source_type_is_a_warning(spark) -> None:
    frame = spark.createDataFrame(good_rows(), SCHEMA)
    report = run_data_checks(frame, spend(), STANDARDS, key_columns=["customer_id"], as_of=AS_OF)
    assert report.ok, report.render_text()
    # count needs no source column: checked; the sum's type follows an unknown column.
    assert [(r.feature, r.passed) for r in report.find("data.aggregation_type")] == [
        ("tx_count_1d", True),
        ("amount_sum_1d", False),
    ]
    assert _aggregation_type_results(report) == [
        ("data.aggregation_type", "amount_sum_1d", False, "warning", "double", None)
    ]
    # With a declared `type:` the column is what it declares (data.types): no warning.
    typed = spend().model_copy(
        update={
            "features": (
                spend().features[0],
                spend().features[1].model_copy(update={"type": "double"}),
            )
        }
    )
    for source in (None, {"amount": "decimal(10,2)"}):
        report = run_data_checks(
            frame, typed, STANDARDS, key_columns=["customer_id"], source_columns=source, as_of=AS_OF
        )
        assert _aggregation_type_results(report) == [], report.render_text()


def test_a_refusal_names_the_setting_of_each_threshold_broken(spark) -> None:
    # A null key, five null sums (of 8) and a sum above the range: each threshold is named by
    # the setting that holds it, and the key-null rate, which a feature set cannot override,
    # is named in conf/mesh.yaml only.
    change = replace(7, customer_id=None, amount_sum_1d=5000.0)
    df = spark.createDataFrame(change(null_amounts(5)(good_rows())), SCHEMA)
    report = run_data_checks(df, spend(), STANDARDS, key_columns=["customer_id"], as_of=AS_OF)
    assert [(r.check, r.field) for r in report.failed] == [
        ("data.key_nulls", "quality.max_key_null_rate"),
        ("data.null_rate", "quality.max_null_rate.amount_sum_1d"),
        ("data.range", "quality.ranges.amount_sum_1d"),
    ]
    with pytest.raises(GovernanceError) as info:
        report.raise_if_failed("publish")
    first = str(info.value).splitlines()[0]
    assert "data.range on amount_sum_1d (measured [60, 5000], threshold [0, 1000])" in first
    assert first.endswith(
        "Fix the definitions or data, or change the threshold: quality.max_key_null_rate in "
        "conf/mesh.yaml; the feature set's quality.max_null_rate.amount_sum_1d; the feature "
        "set's quality.ranges.amount_sum_1d."
    )
