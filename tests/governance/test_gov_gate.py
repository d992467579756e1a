"""The publish gate: static, contract and data results of one version in one report."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from governance_helpers import edit_product, example_mesh

from mesh.definitions.binding import published_definition
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


def test_gate_sees_a_type_change_of_an_aggregation_typed_by_its_source_column(spark) -> None:
    # channel was a string when tx_events 1.0.0 was published (last_channel_1d string); the
    # data product now declares it int, so last_channel_1d is an int: a breaking change.
    mesh = example_mesh()
    fs = mesh.feature_sets["payments.tx_events"]
    previous = published_definition(fs, mesh.binding(fs))  # as the catalog stores it
    written = {"tx_count_1h": "bigint", "tx_count_1d": "bigint", "last_channel_1d": "string"}
    edit_product(mesh, "payments.transactions", lambda d: d["columns"].update(channel="int"))
    rows = [(i, DAY + timedelta(hours=i), DAY + timedelta(hours=i), 1, 1, 0.5, 7) for i in range(4)]
    df = spark.createDataFrame(
        rows,
        "customer_id bigint, feature_ts timestamp, created_ts timestamp, tx_count_1h bigint, "
        "tx_count_1d bigint, amount_stddev_1d double, last_channel_1d int",
    )
    result = evaluate_publish(mesh, fs, df, previous=previous, previous_types=written, as_of=DAY)
    assert result.decision.bump == "major"
    assert [(c.kind, c.detail) for c in result.decision.changes] == [
        ("type_changed", "type of last_channel_1d string -> int")
    ]
    assert [(r.check, r.measured, r.threshold) for r in result.report.failed] == [
        ("contract.version", "1.0.0", ">= 2.0.0")
    ]
    unreadable = evaluate_publish(
        mesh, fs, df, previous=previous, previous_types=written, proposed_version="two", as_of=DAY
    )
    failed = [(r.check, r.measured) for r in unreadable.report.failed]
    assert failed == [("contract.version", "two")]
    major = fs.model_copy(update={"version": "2.0.0"})
    assert evaluate_publish(
        mesh, major, df, previous=previous, previous_types=written, as_of=DAY
    ).ok
