"""The publish gate: static, contract and data results of one version in one report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from governance_helpers import edit_product, example_mesh, feature

from mesh.definitions.binding import published_definition
from mesh.errors import GovernanceError
from mesh.governance import compare, evaluate_publish
from mesh.governance.gate import inputs_at_new_majors, refuse_before_data

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


TX_EVENTS_WRITTEN = {
    "tx_count_1h": "bigint",
    "tx_count_1d": "bigint",
    "amount_stddev_1d": "double",
    "last_channel_1d": "string",
}


def _tx_events(change: Any, version: str) -> tuple[Any, Any, Any]:
    """The example mesh, tx_events 1.0.0 as the catalog stores it, and tx_events edited."""
    mesh = example_mesh()
    fs = mesh.feature_sets["payments.tx_events"]
    data = fs.model_dump(mode="json")
    change(data)
    edited = type(fs).model_validate({**data, "version": version})
    return mesh, published_definition(fs, mesh.binding(fs)), edited


def _stddev_to_mean(data: dict[str, Any]) -> None:
    feature(data, "amount_stddev")["function"] = "mean"


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_a_version_the_definition_alone_refuses_is_refused_without_the_rows(version: str) -> None:
    mesh, previous, changed = _tx_events(_stddev_to_mean, version)
    report = refuse_before_data(mesh, changed, previous=previous, previous_types=TX_EVENTS_WRITTEN)
    assert report is not None
    (failed,) = report.failed
    assert (failed.check, failed.measured, failed.threshold) == (
        "contract.version",
        version,
        ">= 2.0.0",
    )
    assert "definition of amount_stddev_1d changed (function 'stddev' -> 'mean')" in failed.message
    assert [(r.check, r.severity) for r in report.warnings] == [("data.not_run", "warning")]
    with pytest.raises(GovernanceError) as caught:
        report.raise_if_failed("publish")
    first = str(caught.value).splitlines()[0]
    assert caught.value.params["failed"] == ["contract.version"]
    assert "Set the definition's `version:` to the version named above." in first
    assert "The data checks did not run: the version check refused the publish" in first
    assert "data.not_run" in str(caught.value)  # the table below the first line lists it


def _describe(data: dict[str, Any]) -> None:
    data["metadata"]["description"] = "Velocity features, documented"


def _spell_channel_type(data: dict[str, Any]) -> None:
    feature(data, "last_channel")["type"] = "string"


@pytest.mark.parametrize(
    ("change", "version"),
    [
        # a major bump a type change read from the rows may justify (see the test above)
        (_describe, "2.0.0"),
        (lambda data: None, "2.0.0"),
        # the version the definition needs, or more
        (_stddev_to_mean, "2.0.0"),
        (_describe, "1.0.1"),
        # `type: string` says what the table holds anyway: no change
        (_spell_channel_type, "1.0.0"),
    ],
)
def test_what_the_rows_may_still_decide_is_left_to_the_publish(change: Any, version: str) -> None:
    mesh, previous, changed = _tx_events(change, version)
    report = refuse_before_data(mesh, changed, previous=previous, previous_types=TX_EVENTS_WRITTEN)
    assert report is None
    assert refuse_before_data(mesh, changed, previous=None) is None  # a first publish


def test_a_type_dropped_is_taken_to_be_the_tables_until_the_rows_say_otherwise() -> None:
    # 1.0.0 spelled out `type: string`; the definition leaves it out again. Before the rows
    # are computed, last_channel_1d keeps the type its table holds: no change, nothing refused.
    mesh, _, typed = _tx_events(_spell_channel_type, "1.0.0")
    fs = mesh.feature_sets["payments.tx_events"]
    previous = published_definition(typed, mesh.binding(typed))
    assert compare(previous, fs, written=(TX_EVENTS_WRITTEN, None)).bump == "none"
    assert refuse_before_data(mesh, fs, previous=previous, previous_types=TX_EVENTS_WRITTEN) is None
    # The rows show another type: a breaking change, which the publish checks after computing.
    retyped = {**TX_EVENTS_WRITTEN, "last_channel_1d": "int"}
    decision = compare(previous, fs, written=(TX_EVENTS_WRITTEN, retyped))
    assert [c.detail for c in decision.changes] == ["type of last_channel_1d string -> int"]


def _risk_with_spend_at(version: str, *, pinned: bool = False) -> tuple[Any, Any, Any]:
    """The example mesh with payments.customer_spend at ``version`` and risk.customer_risk
    (``pinned``: its references to customer_spend pinned ``@1``), and risk as the catalog
    stores it."""
    mesh = example_mesh()
    spend = mesh.feature_sets["payments.customer_spend"]
    mesh.feature_sets[spend.qualified_name] = spend.model_copy(update={"version": version})
    risk = mesh.global_sets["risk.customer_risk"]
    if pinned:
        at_1 = {
            alias: ref.replace("payments.customer_spend.", "payments.customer_spend@1.")
            for alias, ref in risk.inputs.items()
        }
        assert at_1 != risk.inputs
        risk = risk.model_copy(update={"inputs": at_1})
        mesh.global_sets[risk.qualified_name] = risk
    return mesh, published_definition(risk, mesh.binding(risk)), risk


READ_AT_1 = [
    ("customers.profile", "1.0.0"),
    ("payments.customer_spend", "1.0.0"),
    ("support.ticket_stats", "1.0.0"),
]


def test_a_global_set_whose_input_resolves_to_a_new_major_is_refused_without_the_rows() -> None:
    mesh, previous, risk = _risk_with_spend_at("2.0.0")
    report = refuse_before_data(mesh, risk, previous=previous, previous_inputs=READ_AT_1)
    assert report is not None
    (failed,) = report.failed
    assert (failed.check, failed.threshold) == ("contract.version", ">= 2.0.0")
    assert "input payments.customer_spend read at major 2 (was 1)" in failed.message
    bumped = risk.model_copy(update={"version": "2.0.0"})
    assert refuse_before_data(mesh, bumped, previous=previous, previous_inputs=READ_AT_1) is None


@pytest.mark.parametrize(
    ("version", "pinned"),
    [
        ("1.2.0", False),  # a minor of the input keeps its major
        ("2.0.0", True),  # a new major, but the global set reads major 1
    ],
)
def test_an_input_read_at_the_same_major_needs_no_new_version(version: str, pinned: bool) -> None:
    mesh, previous, risk = _risk_with_spend_at(version, pinned=pinned)
    assert refuse_before_data(mesh, risk, previous=previous, previous_inputs=READ_AT_1) is None


@pytest.mark.parametrize(
    ("version", "pinned", "risk_version", "expected"),
    [
        ("2.0.0", False, "1.0.0", {"payments.customer_spend": ([1], [2])}),
        ("2.0.0", False, "1.3.0", {"payments.customer_spend": ([1], [2])}),  # not a major
        ("2.0.0", False, "2.0.0", {}),  # the global set's own new major: a new table
        ("1.2.0", False, "1.0.0", {}),  # a minor of the input keeps its major
        ("2.0.0", True, "1.0.0", {}),  # pinned to the major it read
    ],
)
def test_the_inputs_a_build_would_read_at_a_new_major(
    version: str, pinned: bool, risk_version: str, expected: dict[str, Any]
) -> None:
    mesh, _, risk = _risk_with_spend_at(version, pinned=pinned)
    risk = risk.model_copy(update={"version": risk_version})
    assert inputs_at_new_majors(mesh, risk, "1.0.0", READ_AT_1) == expected
