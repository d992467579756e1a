"""Static checks: every bad definition fails exactly its own check, naming file and field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from governance_helpers import (
    CONF,
    add_global,
    edit_product,
    edit_set,
    example_mesh,
    feature,
    set_standards,
)

from mesh.definitions import MeshDefinition
from mesh.errors import GovernanceError
from mesh.governance import GovernanceReport, validate_definitions
from mesh.governance.validate import validate_conf

SPEND = "payments.customer_spend"
TICKETS = "support.ticket_stats"
PROFILE = "customers.profile"
TX_AMOUNTS = "payments.tx_amounts"
TX_EVENTS = "payments.tx_events"
RISK = "risk.customer_risk"


def on_set(name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[MeshDefinition], None]:
    return lambda mesh: (edit_set(mesh, name, change), None)[1]


def on_product(name: str, change: Callable[[dict[str, Any]], None]) -> Callable[..., None]:
    return lambda mesh: edit_product(mesh, name, change)


def set_feature(name: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: feature(d, name).__setitem__(key, value)


def set_meta(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["metadata"].__setitem__(key, value)


def require_tags(mesh: MeshDefinition) -> None:
    set_standards(mesh, required_metadata=("owner", "description", "tags"))
    edit_set(mesh, RISK, set_meta("tags", []))


def require_visibility(mesh: MeshDefinition) -> None:
    set_standards(mesh, required_metadata=("owner", "description", "visibility"))
    edit_set(mesh, TX_EVENTS, set_meta("visibility", None))  # the default (internal) applies


def duplicate_tickets(d: dict[str, Any]) -> None:
    d["features"].append(
        {
            "kind": "aggregation",
            "name": "tickets",
            "function": "count",
            "windows": ["7d"],
            "pii": "none",
        }
    )


def merchant_input(mesh: MeshDefinition) -> None:
    edit_set(mesh, TX_EVENTS, lambda d: d.__setitem__("entity", "merchant"))
    edit_set(
        mesh, RISK, lambda d: d["inputs"].__setitem__("velocity", "payments.tx_events.tx_count_1d")
    )


def cycle(mesh: MeshDefinition) -> None:
    add_global(
        mesh,
        {
            "name": "loop",
            "domain": "risk",
            "entity": "customer",
            "inputs": {"r": "risk.customer_risk.spend_per_ticket"},
            "features": [
                {"kind": "expression", "name": "y", "expr": "r", "type": "double", "pii": "none"}
            ],
            "metadata": {
                "owner": "risk-team@example.com",
                "description": "loop",
                "allowed_domains": ["payments"],  # as open as customer_risk, which reads it
            },
        },
    )
    edit_set(mesh, RISK, lambda d: d["inputs"].__setitem__("back", "risk.loop.y"))


def pii_laundering(d: dict[str, Any]) -> None:
    d["inputs"]["born"] = "customers.profile.birth_year"
    d["features"].append(
        {
            "kind": "expression",
            "name": "spend_by_age",
            "pii": "none",
            "expr": "spend_30d / (2025 - born)",
            "type": "double",
        }
    )


def global_feature(name: str, expr: str) -> dict[str, Any]:
    return {"kind": "expression", "name": name, "expr": expr, "type": "double", "pii": "none"}


def birth_input_as(alias: str, expr: str, name: str) -> Callable[[dict[str, Any]], None]:
    """The risk set reads birth_year (pii) as ``alias`` into a feature classed none."""

    def change(d: dict[str, Any]) -> None:
        d["inputs"][alias] = "customers.profile.birth_year"
        d["features"].append(global_feature(name, expr))

    return change


def velocity_input(alias: str, **metadata: Any) -> Callable[[dict[str, Any]], None]:
    """The risk set reads tx_events (internal to payments and risk) with other metadata."""

    def change(d: dict[str, Any]) -> None:
        d["inputs"][alias] = "payments.tx_events.tx_count_1h"
        d["metadata"].update(metadata)

    return change


def quality(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["quality"].__setitem__(key, value)


def training_ref(mesh: MeshDefinition) -> None:
    ts = mesh.training_sets["risk.churn"]
    mesh.training_sets["risk.churn"] = ts.model_copy(
        update={"features": (*ts.features, "payments.customer_spend.amount_sum_90d")}
    )


def permissive(name: str, feature_name: str, new_name: str) -> Callable[[MeshDefinition], None]:
    """Rename a feature under naming rules that allow any letter case and reserve only
    ``label``: only the engine's own rules and Spark's case-blindness remain."""

    def edit(mesh: MeshDefinition) -> None:
        naming = mesh.standards.naming.model_copy(
            update={"feature_pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "reserved": ("label",)}
        )
        set_standards(mesh, naming=naming)
        edit_set(mesh, name, set_feature(feature_name, "name", new_name))

    return edit


def source_column(column: str, type_name: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["columns"].__setitem__(column, type_name)


# id, edit, check, subject, feature, measured, threshold
CASES: list[tuple[str, Callable[[MeshDefinition], None], str, str, str | None, Any, Any]] = [
    (
        "set name pattern",
        on_set(TX_AMOUNTS, lambda d: d.__setitem__("name", "TxAmounts")),
        "naming.feature_set_pattern",
        "payments.TxAmounts",
        None,
        "TxAmounts",
        "^[a-z][a-z0-9_]*$",
    ),
    (
        "aggregation cast by its type",
        on_set(SPEND, set_feature("tx_count", "type", "int")),
        "types.aggregation_cast",
        SPEND,
        "tx_count",
        "int",
        "bigint",
    ),
    (
        "filter names a misspelt column",
        on_set(SPEND, set_feature("refund_count", "filter", "is_refnd")),
        "references.sql",
        SPEND,
        "refund_count",
        ["is_refnd"],
        None,
    ),
    (
        "expression names a misspelt column",
        on_set(TX_AMOUNTS, set_feature("is_online", "expr", "chanel = 'online'")),
        "references.sql",
        TX_AMOUNTS,
        "is_online",
        ["chanel"],
        None,
    ),
    (
        "feature name pattern",
        on_set(TX_AMOUNTS, set_feature("signed_amount", "name", "SAmt")),
        "naming.feature_pattern",
        TX_AMOUNTS,
        "SAmt",
        "SAmt",
        "^[a-z][a-z0-9_]*$",
    ),
    (
        "feature name too long",
        on_set(TX_AMOUNTS, set_feature("is_online", "name", "c" * 70)),
        "naming.max_length",
        TX_AMOUNTS,
        "c" * 70,
        70,
        64,
    ),
    (
        "set name too long",
        on_set(TX_EVENTS, lambda d: d.__setitem__("name", "t" * 65)),
        "naming.max_length",
        "payments." + "t" * 65,
        None,
        65,
        64,
    ),
    (
        "reserved word",
        on_set(TX_AMOUNTS, set_feature("is_online", "name", "label")),
        "naming.reserved",
        TX_AMOUNTS,
        "label",
        "label",
        ["feature_ts", "created_ts", "_run_id", "timestamp", "label"],
    ),
    (
        "feature named like a key",
        on_set(TX_AMOUNTS, set_feature("is_online", "name", "customer_id")),
        "naming.key_collision",
        TX_AMOUNTS,
        "customer_id",
        "customer_id",
        ["customer_id"],
    ),
    (
        "owner missing",
        on_set(TICKETS, set_meta("owner", None)),
        "metadata.required",
        TICKETS,
        None,
        None,
        "owner",
    ),
    (
        "description missing",
        on_set(TICKETS, set_meta("description", "")),
        "metadata.required",
        TICKETS,
        None,
        None,
        "description",
    ),
    ("tags required and missing", require_tags, "metadata.required", RISK, None, None, "tags"),
    (
        "visibility required and missing",
        require_visibility,
        "metadata.required",
        TX_EVENTS,
        None,
        None,
        "visibility",
    ),
    (
        "domain not declared",
        on_set(TX_AMOUNTS, lambda d: d.update(domain="mkt", source="payments.transactions")),
        "domain.declared",
        "mkt.tx_amounts",
        None,
        "mkt",
        ["customers", "payments", "risk", "support"],
    ),
    (
        "entity not registered",
        on_set(TX_AMOUNTS, lambda d: d.__setitem__("entity", "acct")),
        "entity.registered",
        TX_AMOUNTS,
        None,
        "acct",
        ["customer", "merchant"],
    ),
    (
        "key column missing in source",
        on_product("customers.customer_profiles", lambda d: d["columns"].pop("customer_id")),
        "entity.key_missing",
        PROFILE,
        "customer_id",
        None,
        "bigint",
    ),
    (
        "key type differs from registry",
        on_product("support.tickets", source_column("customer_id", "string")),
        "entity.key_type",
        TICKETS,
        "customer_id",
        "string",
        "bigint",
    ),
    (
        "expression type not allowed",
        on_set(TX_AMOUNTS, set_feature("signed_amount", "type", "float")),
        "types.allowed",
        TX_AMOUNTS,
        "signed_amount",
        "float",
        ["boolean", "int", "bigint", "double", "string", "date", "timestamp"],
    ),
    (
        "aggregation output type from source",
        on_product("support.tickets", source_column("csat", "float")),
        "types.allowed",
        TICKETS,
        "csat_min_90d",
        "float",
        ["boolean", "int", "bigint", "double", "string", "date", "timestamp"],
    ),
    (
        "mean over a string",
        on_set(TICKETS, set_feature("csat_mean", "column", "channel")),
        "types.aggregation_input",
        TICKETS,
        "csat_mean",
        "string",
        "numeric",
    ),
    (
        "pii tag missing",
        on_set(PROFILE, set_feature("country", "pii", None)),
        "pii.tagged",
        PROFILE,
        "country",
        None,
        ["none", "pii", "sensitive"],
    ),
    (
        "sensitive feature in public set",
        on_set(PROFILE, set_feature("birth_year", "pii", "sensitive")),
        "pii.public",
        PROFILE,
        "birth_year",
        "sensitive",
        "none",
    ),
    (
        "pii laundered by a global feature",
        on_set(RISK, pii_laundering),
        "pii.lineage",
        RISK,
        "spend_by_age",
        "none",
        ["pii", "sensitive"],
    ),
    (
        "pii input alias written in another letter case",
        on_set(RISK, birth_input_as("BORN", "spend_30d / (2025 - born)", "spend_by_born")),
        "pii.lineage",
        RISK,
        "spend_by_born",
        "none",
        ["pii", "sensitive"],
    ),
    (
        "pii input read through a star expansion",
        on_set(RISK, birth_input_as("born", "hash(*)", "row_hash")),
        "pii.lineage",
        RISK,
        "row_hash",
        "none",
        ["pii", "sensitive"],
    ),
    (
        "public global set reads an internal input",
        on_set(RISK, velocity_input("velocity", visibility="public", allowed_domains=[])),
        "visibility.input",
        RISK,
        "velocity",
        "public",
        ["payments", "risk"],
    ),
    (
        "global set allows a domain its input does not",
        on_set(RISK, velocity_input("tx_1h", allowed_domains=["payments", "support"])),
        "visibility.input",
        RISK,
        "tx_1h",
        ["payments", "risk", "support"],
        ["payments", "risk"],
    ),
    (
        "allowed_domains on a public set",
        on_set(SPEND, set_meta("allowed_domains", ["risk"])),
        "visibility.allowed_domains",
        SPEND,
        None,
        "public",
        "internal",
    ),
    (
        "allowed_domains names an unknown domain",
        on_set(TX_EVENTS, set_meta("allowed_domains", ["risk", "marketing"])),
        "visibility.unknown_domain",
        TX_EVENTS,
        None,
        "marketing",
        ["customers", "payments", "risk", "support"],
    ),
    (
        "duplicate feature name",
        on_set(TICKETS, duplicate_tickets),
        "features.duplicate",
        TICKETS,
        "tickets_7d",
        2,
        1,
    ),
    (
        "source not defined",
        on_set(TX_EVENTS, lambda d: d.__setitem__("source", "raw_tx")),
        "references.source",
        TX_EVENTS,
        None,
        "raw_tx",
        "a defined data product",
    ),
    (
        "feature column not in source",
        on_set(SPEND, set_feature("amount_sum", "column", "amt")),
        "references.column",
        SPEND,
        "amount_sum",
        "amt",
        [
            "amount",
            "channel",
            "currency",
            "customer_id",
            "event_ts",
            "ingested_ts",
            "is_refund",
            "merchant_id",
            "tx_id",
        ],
    ),
    (
        "global input set not defined",
        on_set(
            RISK, lambda d: d["inputs"].__setitem__("spend_30d", "payments.nope.amount_sum_30d")
        ),
        "references.input",
        RISK,
        "spend_30d",
        "payments.nope.amount_sum_30d",
        "a defined feature set",
    ),
    (
        "global input feature not defined",
        on_set(RISK, lambda d: d["inputs"].__setitem__("csat", "support.ticket_stats.csat_7d")),
        "references.input_feature",
        RISK,
        "csat",
        "csat_7d",
        [
            "tickets_7d",
            "tickets_30d",
            "tickets_90d",
            "urgent_tickets_30d",
            "csat_mean_90d",
            "csat_min_90d",
        ],
    ),
    (
        "global input of another entity",
        merchant_input,
        "references.input_entity",
        RISK,
        "velocity",
        "merchant",
        "customer",
    ),
    (
        "cycle among global sets",
        cycle,
        "globals.cycle",
        RISK,
        None,
        ["risk.customer_risk", "risk.loop", "risk.customer_risk"],
        "no cycle",
    ),
    (
        "quality override names no feature",
        on_set(SPEND, quality("max_null_rate", {"amount_sum_90d": 0.1})),
        "quality.unknown_feature",
        SPEND,
        "amount_sum_90d",
        "amount_sum_90d",
        None,
    ),
    (
        "null-rate threshold above 1",
        on_set(SPEND, quality("max_null_rate", {"amount_sum_1d": 1.5})),
        "quality.null_rate",
        SPEND,
        "amount_sum_1d",
        1.5,
        [0, 1],
    ),
    (
        "range bounds reversed",
        on_set(SPEND, quality("ranges", {"amount_sum_1d": [100, 0]})),
        "quality.range",
        SPEND,
        "amount_sum_1d",
        [100.0, 0.0],
        "low <= high",
    ),
    (
        "drift threshold below 0",
        on_set(SPEND, quality("max_psi", -0.25)),
        "quality.max_psi",
        SPEND,
        None,
        -0.25,
        ">= 0",
    ),
    (
        "training set names a missing feature",
        training_ref,
        "references.training",
        "risk.churn",
        "amount_sum_90d",
        "payments.customer_spend.amount_sum_90d",
        None,
    ),
    (
        "event timestamp not a column",
        on_product("payments.transactions", lambda d: d.__setitem__("event_timestamp", "ev_ts")),
        "references.timestamp_column",
        "payments.transactions",
        None,
        "ev_ts",
        None,
    ),
    (
        "window off the snapshot grid",
        on_set(SPEND, set_feature("merchants", "windows", ["30d", "36h"])),
        "accuracy.grid",
        SPEND,
        "merchants",
        "36h",
        "1d",
    ),
    (
        "row-level features at snapshot accuracy",
        on_set(TX_AMOUNTS, lambda d: d.__setitem__("accuracy", "snapshot")),
        "accuracy.row_level",
        TX_AMOUNTS,
        None,
        "snapshot",
        "event",
    ),
    (
        "event timestamp of a type the engine cannot read as a time",
        on_product("payments.transactions", source_column("ingested_ts", "double")),
        "references.timestamp_type",
        "payments.transactions",
        None,
        "double",
        ["timestamp", "timestamp_ntz", "date", "string"],
    ),
    (
        "engine column, whatever naming.reserved lists",
        permissive(TX_AMOUNTS, "is_online", "created_ts"),
        "naming.engine_column",
        TX_AMOUNTS,
        "created_ts",
        "created_ts",
        ["feature_ts", "created_ts", "as_of_ts", "_*"],
    ),
    (
        "engine column in another letter case",
        permissive(TX_AMOUNTS, "is_online", "Feature_TS"),
        "naming.engine_column",
        TX_AMOUNTS,
        "Feature_TS",
        "Feature_TS",
        None,
    ),
    (
        "engine working column prefix",
        permissive(TX_AMOUNTS, "is_online", "_k"),
        "naming.engine_column",
        TX_AMOUNTS,
        "_k",
        "_k",
        None,
    ),
    (
        "key column in another letter case",
        permissive(TX_AMOUNTS, "is_online", "Customer_ID"),
        "naming.key_collision",
        TX_AMOUNTS,
        "Customer_ID",
        "Customer_ID",
        ["customer_id"],
    ),
    (
        "reserved word in another letter case",
        permissive(TX_AMOUNTS, "is_online", "LABEL"),
        "naming.reserved",
        TX_AMOUNTS,
        "LABEL",
        "LABEL",
        ["label"],
    ),
    (
        "feature names differing only in letter case",
        permissive(TX_AMOUNTS, "is_online", "Signed_Amount"),
        "features.duplicate",
        TX_AMOUNTS,
        "signed_amount",
        2,
        1,
    ),
]


def test_example_mesh_passes_with_one_warning() -> None:
    report = validate_definitions(example_mesh())
    assert report.ok, report.render_text()
    assert [(r.check, r.feature) for r in report.warnings] == [("pii.public", "birth_year")]
    assert len(report.results) > 100  # passed checks are recorded for the audit


@pytest.mark.parametrize(
    ("edit", "check", "subject", "feature", "measured", "threshold"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_definition_fails_its_own_check(
    edit, check, subject, feature, measured, threshold
) -> None:
    mesh = example_mesh()
    edit(mesh)
    report = validate_definitions(mesh)
    failed = [(r.check, r.subject, r.feature) for r in report.failed]
    if check == "globals.cycle":  # every member of the cycle fails, nothing else
        assert {f[0] for f in failed} == {check} and len(failed) == 2, report.render_text()
    elif check.startswith("entity.key"):  # a data product's key: each feature set reading it
        source = mesh.feature_sets[subject]
        readers = {
            (check, name, feature)
            for name, fs in mesh.feature_sets.items()
            if (fs.domain, fs.source) == (source.domain, source.source)
        }
        assert len(readers) >= 2 and set(failed) == readers, report.render_text()
    else:
        assert failed == [(check, subject, feature)], report.render_text()
    result = next(r for r in report.failed if r.subject == subject)
    assert result.measured == measured
    if threshold is not None:
        assert result.threshold == threshold
    assert result.field
    assert result.message.startswith(subject)
    if subject in mesh.files:
        assert result.file == mesh.files[subject]


@pytest.mark.parametrize(
    ("key", "value"),
    [("owner", " \t"), ("description", "   "), ("tags", [" "]), ("tags", ["", "  "])],
)
def test_blank_required_metadata_is_missing(key: str, value: Any) -> None:
    mesh = example_mesh()
    set_standards(mesh, required_metadata=("owner", "description", "tags"))
    edit_set(mesh, RISK, set_meta(key, value))
    report = validate_definitions(mesh, subjects=[RISK])
    (failed,) = report.failed
    assert (failed.check, failed.threshold, failed.field) == (
        "metadata.required",
        key,
        f"metadata.{key}",
    )
    assert "missing or blank" in failed.message


def test_grants_name_declared_domains_and_defined_sets_or_features() -> None:
    mesh = example_mesh()
    good = (
        "customers.profile",  # every feature of the set
        "customers.profile.birth_year",  # one output
        "payments.customer_spend.amount_sum",  # a base name: every window of it
        "payments.customer_spend.amount_sum_7d",
    )
    bad = {
        "customers.profil.birth_year": "feature set 'customers.profil' is not defined",
        "customers.profile.birthyear": "customers.profile has no feature 'birthyear'",
        "customers": "expected `domain.set` (every feature) or `domain.set.feature`",
    }
    access = mesh.standards.access.model_copy(
        update={"grants": {"risk": (*good, *bad), "riks": ("customers.profile",)}}
    )
    set_standards(mesh, access=access)
    report = validate_definitions(mesh)
    grants = [r for r in report.results if r.check == "access.grant"]
    assert {r.measured for r in grants if r.passed} == {"risk", *good}
    failed = {r.measured: r for r in report.failed}
    assert set(failed) == {*bad, "riks"}
    for ref, reason in bad.items():
        expected = f"mesh.yaml (access.grants.risk): grant {ref!r} grants nothing: {reason}"
        assert failed[ref].message.startswith(expected)
    assert "domain 'riks', which is not declared" in failed["riks"].message
    assert "or declare the domain under `domains:`" in failed["riks"].message
    assert all(r.subject == "mesh.yaml" for r in grants)
    assert {r.file for r in grants} == {f"{mesh.conf_dir}/mesh.yaml"}
    # A publish validates its own subject only: a platform typo does not block it.
    assert validate_definitions(mesh, subjects=["customers.profile"]).ok


def test_cases_are_distinct() -> None:
    keys = [(c[2], c[4], str(c[6])) for c in CASES]
    assert len(set(keys)) == len(keys) >= 30


def test_pii_in_public_set_is_a_warning_not_a_failure() -> None:
    mesh = example_mesh()
    report = validate_definitions(mesh, subjects=[PROFILE])
    assert report.ok
    (warning,) = report.warnings
    assert (warning.check, warning.severity, warning.measured) == ("pii.public", "warning", "pii")


def test_type_not_derivable_is_a_warning() -> None:
    mesh = example_mesh()
    edit_product(mesh, "support.tickets", lambda d: d.__setitem__("columns", {}))
    report = validate_definitions(mesh, subjects=[TICKETS])
    assert report.ok
    assert {(r.check, r.feature) for r in report.warnings} == {
        ("types.allowed", "csat_mean_90d"),
        ("types.allowed", "csat_min_90d"),
    }
    # count needs no column: its type (bigint) is known and checked
    assert report.find("types.allowed", "tickets_7d")[0].passed


def test_subjects_limit_the_report() -> None:
    report = validate_definitions(example_mesh(), subjects=[SPEND])
    assert {r.subject for r in report.results} == {SPEND}


def test_raise_if_failed_names_check_feature_and_values() -> None:
    mesh = example_mesh()
    edit_set(mesh, TX_AMOUNTS, set_feature("signed_amount", "type", "float"))
    report = validate_definitions(mesh, subjects=[TX_AMOUNTS])
    with pytest.raises(GovernanceError) as caught:
        report.raise_if_failed("publish")
    err = caught.value
    assert err.params["failed"] == ["types.allowed"]
    assert err.params["subjects"] == [TX_AMOUNTS]
    assert err.params["action"] == "publish"
    assert err.report is report
    first_line = str(err).splitlines()[0]
    assert "types.allowed on signed_amount (measured float" in first_line
    assert first_line.endswith("Fix the definitions or data.")  # no quality threshold failed


def test_raise_if_failed_passes_quietly_when_ok() -> None:
    validate_definitions(example_mesh()).raise_if_failed()


def test_render_text_and_records() -> None:
    mesh = example_mesh()
    edit_set(mesh, PROFILE, set_feature("country", "pii", None))
    report = validate_definitions(mesh)
    text = report.render_text()
    assert text.splitlines()[0].split() == [
        "status",
        "check",
        "subject",
        "/",
        "feature",
        "measured",
        "threshold",
    ]
    fail_lines = [line.split() for line in text.splitlines() if line.startswith("FAIL")]
    assert fail_lines == [
        ["FAIL", "pii.tagged", "customers.profile.country", "-", "[none,", "pii,", "sensitive]"]
    ]
    assert text.splitlines()[-1].endswith("1 failed, 1 warning(s)")
    records = report.to_records()
    assert len(records) == len(report)
    import json

    json.dumps(records)  # JSON-able
    bad = [r for r in records if not r["passed"] and r["severity"] == "error"]
    assert bad[0]["check"] == "pii.tagged" and bad[0]["field"] == "features[0].pii"


def test_merge_reports() -> None:
    a = validate_definitions(example_mesh(), subjects=[SPEND])
    b = validate_definitions(example_mesh(), subjects=[PROFILE])
    merged = a + b
    assert len(merged) == len(a) + len(b)
    assert isinstance(GovernanceReport.merge(a, b), GovernanceReport)


def test_type_spelling_with_spaces_is_the_same_type() -> None:
    # `decimal(10, 0)` in the registry and `decimal(10,0)` in the product are one type.
    mesh = example_mesh()
    entity = mesh.standards.entities["customer"].model_copy(
        update={"keys": {"customer_id": "decimal(10, 0)"}}
    )
    set_standards(mesh, entities={**mesh.standards.entities, "customer": entity})
    edit_product(mesh, "payments.transactions", source_column("customer_id", "decimal(10,0)"))
    report = validate_definitions(mesh)
    checked = [r for r in report.results if r.check == "entity.key_type" and r.subject == SPEND]
    assert checked and all(r.passed for r in checked), report.render_text()


def test_references_to_a_set_that_does_not_load_are_not_reported_as_undefined(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    spend = conf / "domains/payments/customer_spend.yaml"
    spend.write_text(spend.read_text().replace("ttl: 30d", "ttl: 0d"))
    report = validate_conf(conf)
    failed = {(r.check, r.subject) for r in report.failed}
    assert ("config.invalid", str(spend)) in failed, report.render_text()
    # Still failures (a set reading it cannot publish), but saying why: it does not load.
    refs = [r for r in report.failed if r.check in ("references.input", "references.training")]
    assert refs, report.render_text()
    for result in refs:
        assert "'payments.customer_spend' does not load" in result.message, result.message
        assert "is not defined" not in result.message


def test_a_missing_column_is_not_read_as_a_source_without_columns() -> None:
    mesh = example_mesh()
    edit_set(mesh, SPEND, set_feature("amount_max", "column", "amount_typo"))
    report = validate_definitions(mesh)
    (warning,) = [r for r in report.warnings if r.check == "types.allowed"][:1]
    assert "'amount_typo' is not among the source's columns" in warning.message
    assert "declares no columns" not in warning.message


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("Online-Count", "rename it, e.g. 'online_count'"),  # was 'online__count'
        ("HTTPErrors", "rename it, e.g. 'http_errors'"),  # was 'h_t_t_p_errors'
        ("SAmt", "rename it, e.g. 's_amt'"),
        ("7d_sum", "rename it to match"),  # no example that would fail the pattern too
    ],
)
def test_a_name_off_the_pattern_is_given_a_name_that_matches_it(name: str, suggested: str) -> None:
    mesh = example_mesh()
    edit_set(mesh, TX_AMOUNTS, set_feature("signed_amount", "name", name))
    (failed,) = validate_definitions(mesh, subjects=[TX_AMOUNTS]).failed
    assert failed.check == "naming.feature_pattern"
    assert failed.message.endswith(f"of mesh.yaml; {suggested}"), failed.message
