"""The publish gate: static, contract and data results of one version in one report."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from governance_helpers import example_mesh

from mesh.errors import GovernanceError
from mesh.governance import evaluate_publish

DAY = datetime(2024, 3, 10)
SCHEMA = (
    "customer_id bigint, feature_ts timestamp, created_ts timestamp, signed_amount double, "
    "is_online boolean"
)


def test_gate_blocks_a_breaking_change_and_bad_data_at_once(spark) -> None:
    mesh = example_mesh()
    previous = mesh.feature_sets["payments.tx_amounts"]
    # signed_amount removed (breaking) but the version only goes to 1.1.0
    current = previous.model_copy(update={"features": previous.features[1:], "version": "1.1.0"})
    rows = [
        (i, DAY + timedelta(hours=i), DAY + timedelta(hours=i), 1.0, i % 2 == 0) for i in range(6)
    ]
    df = spark.createDataFrame([*rows, rows[0]], SCHEMA)  # one duplicate row
    result = evaluate_publish(
        mesh,
        current,
        df,
        previous=previous.model_dump(mode="json"),
        as_of=DAY,
    )
    assert result.decision.bump == "major"
    assert [(r.check, r.measured) for r in result.report.failed] == [
        ("contract.version", "1.1.0"),
        ("data.uniqueness", 1),
    ]
    assert set(result.stats) == {"is_online"}
    assert result.report.find("naming.feature_pattern", "is_online")[0].passed
    with pytest.raises(GovernanceError) as caught:
        result.raise_if_failed()
    assert caught.value.params["failed"] == ["contract.version", "data.uniqueness"]
    assert "blocked" in result.html()


def test_gate_checks_aggregation_types_against_the_data_product(spark) -> None:
    mesh = example_mesh()
    fs = mesh.feature_sets["payments.tx_events"]
    rows = [(i, DAY + timedelta(hours=i), DAY + timedelta(hours=i), 1, 1, 0.5, 7) for i in range(4)]
    # last over the string column `channel` is a string; this frame holds ints.
    df = spark.createDataFrame(
        rows,
        "customer_id bigint, feature_ts timestamp, created_ts timestamp, tx_count_1h bigint, "
        "tx_count_1d bigint, amount_stddev_1d double, last_channel_1d int",
    )
    result = evaluate_publish(mesh, fs, df, as_of=DAY)
    assert [(r.check, r.feature, r.measured, r.threshold) for r in result.report.failed] == [
        ("data.aggregation_type", "last_channel_1d", "int", "string")
    ]
