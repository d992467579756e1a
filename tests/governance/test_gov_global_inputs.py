"""A global set republishes its inputs: it may be no easier to read, and no less PII, than them."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from governance_helpers import add_global, edit_set, example_mesh, feature

from mesh.catalog.access import Identity, decide
from mesh.definitions import MeshDefinition
from mesh.governance import validate_definitions

PROFILE = "customers.profile"
TX_EVENTS = "payments.tx_events"
RISK = "risk.customer_risk"
LAUNDER = "risk.launder"

VISIBILITIES = (None, "private", "internal", "public")  # None: access.default_visibility
ALLOWED = ((), ("risk",), ("support",), ("risk", "support"))
READERS = ("customers", "payments", "risk", "support", "marketing")  # marketing: undeclared


def one_input_global(
    domain: str, visibility: str | None, allowed: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "name": "velocity",
        "domain": domain,
        "entity": "customer",
        "inputs": {"v": "payments.tx_events.tx_count_1h"},
        "features": [
            {"kind": "expression", "name": "v_copy", "expr": "v", "type": "bigint", "pii": "none"}
        ],
        "metadata": {
            "owner": "o@example.com",
            "description": "copy",
            "visibility": visibility,
            "allowed_domains": list(allowed),
        },
    }


def set_metadata(visibility: str | None, allowed: tuple[str, ...]) -> Any:
    return lambda d: d["metadata"].update(visibility=visibility, allowed_domains=list(allowed))


def reads_all(mesh: MeshDefinition, reader: str, name: str) -> bool:
    fs = mesh.all_sets()[name]
    return all(d.allowed for d in decide(mesh, Identity(reader, reader), fs, []))


def test_review_reproduction_public_global_over_internal_and_renamed_pii_input() -> None:
    """The reviewer's ``risk.launder``: validated OK, then let bob@support read tx_events."""
    mesh = example_mesh()
    add_global(
        mesh,
        {
            "name": "launder",
            "domain": "risk",
            "entity": "customer",
            "inputs": {
                "velocity": "payments.tx_events.tx_count_1h",
                "BIRTH": "customers.profile.birth_year",
            },
            "features": [
                {
                    "kind": "expression",
                    "name": "velocity_copy",
                    "expr": "velocity",
                    "type": "bigint",
                    "pii": "none",
                    "description": "copy",
                },
                {
                    "kind": "expression",
                    "name": "birth_copy",
                    "expr": "birth + 0",
                    "type": "int",
                    "pii": "none",
                    "description": "copy",
                },
            ],
            "metadata": {
                "owner": "risk-team@example.com",
                "description": "launders",
                "visibility": "public",
            },
        },
    )
    report = validate_definitions(mesh, subjects=[LAUNDER])
    assert {(r.check, r.feature, r.severity) for r in report.failed} == {
        ("visibility.input", "velocity", "error"),
        ("pii.lineage", "birth_copy", "error"),
    }, report.render_text()
    (vis,) = report.find("visibility.input", "velocity")
    assert (vis.measured, vis.threshold, vis.field) == (
        "public",
        ["payments", "risk"],
        "inputs.velocity",
    )
    assert "payments.tx_events (internal) only by domains payments, risk" in vis.message
    assert vis.file == "conf/global/launder.yaml"
    (pii,) = report.find("pii.lineage", "birth_copy")
    assert (pii.measured, pii.threshold) == ("none", ["pii", "sensitive"])


def test_visibility_rule_agrees_with_access_decisions() -> None:
    """Exhaustively: the rule passes iff no reader of the global set is refused its input."""
    mesh = example_mesh()
    configs = list(itertools.product(VISIBILITIES, ALLOWED))
    seen = set()
    for (in_vis, in_allowed), owner, (g_vis, g_allowed) in itertools.product(
        configs, ("risk", "payments"), configs
    ):
        edit_set(mesh, TX_EVENTS, set_metadata(in_vis, in_allowed))
        mesh.global_sets.clear()
        add_global(mesh, one_input_global(owner, g_vis, g_allowed))
        name = f"{owner}.velocity"
        widened = [
            r for r in READERS if reads_all(mesh, r, name) and not reads_all(mesh, r, TX_EVENTS)
        ]
        (result,) = validate_definitions(mesh, subjects=[name]).find("visibility.input", "v")
        case = (in_vis, in_allowed, owner, g_vis, g_allowed, widened)
        assert result.passed == (not widened), case
        assert result.severity == "error"
        seen.add(result.passed)
    assert seen == {True, False}


def test_private_input_of_another_domain_fails_even_for_a_private_global() -> None:
    mesh = example_mesh()
    edit_set(mesh, TX_EVENTS, set_metadata("private", ()))
    add_global(mesh, one_input_global("risk", "private", ()))
    (result,) = validate_definitions(mesh).find("visibility.input", "v")
    assert not result.passed
    assert (result.measured, result.threshold) == (["risk"], ["payments"])
    assert "its own domain risk may not read payments.tx_events" in result.message


def test_global_no_wider_than_its_inputs_passes() -> None:
    mesh = example_mesh()
    add_global(mesh, one_input_global("risk", "internal", ("payments",)))
    report = validate_definitions(mesh, subjects=["risk.velocity"])
    assert report.ok, report.render_text()
    (result,) = report.find("visibility.input", "v")
    assert (result.measured, result.threshold) == (["payments", "risk"], ["payments", "risk"])


def sensitive_birth_year(mesh: MeshDefinition, profile_visibility: dict[str, Any]) -> None:
    def change(d: dict[str, Any]) -> None:
        feature(d, "birth_year")["pii"] = "sensitive"
        d["metadata"].update(profile_visibility)

    edit_set(mesh, PROFILE, change)


def risk_reads_birth_year(pii: str, **metadata: Any) -> Any:
    def change(d: dict[str, Any]) -> None:
        d["inputs"]["born"] = "customers.profile.birth_year"
        d["features"].append(
            {
                "kind": "expression",
                "name": "spend_by_age",
                "expr": "spend_30d / (2025 - born)",
                "type": "double",
                "pii": pii,
            }
        )
        d["metadata"].update(metadata)

    return change


@pytest.mark.parametrize(("pii", "ok"), [("none", False), ("pii", False), ("sensitive", True)])
def test_sensitive_input_needs_a_sensitive_global_feature(pii: str, ok: bool) -> None:
    mesh = example_mesh()
    sensitive_birth_year(mesh, {"visibility": "internal", "allowed_domains": ["payments", "risk"]})
    edit_set(mesh, RISK, risk_reads_birth_year(pii))
    report = validate_definitions(mesh)
    failed = [(r.check, r.subject, r.feature) for r in report.failed]
    assert failed == ([] if ok else [("pii.lineage", RISK, "spend_by_age")]), report.render_text()
    (result,) = report.find("pii.lineage", "spend_by_age")
    assert (result.measured, result.threshold) == (pii, ["sensitive"])
    if not ok:
        assert "computed from sensitive inputs" in result.message
        assert "classify it `sensitive`" in result.message


def test_sensitive_input_cannot_become_a_public_pii_feature_with_only_a_warning() -> None:
    """A public global reading a sensitive input: `pii` is refused, `sensitive` is not public."""
    mesh = example_mesh()
    sensitive_birth_year(mesh, {})  # profile stays public (it fails pii.public itself)
    public = {"visibility": "public", "allowed_domains": []}
    edit_set(mesh, RISK, risk_reads_birth_year("pii", **public))
    report = validate_definitions(mesh, subjects=[RISK])
    assert [(r.check, r.feature) for r in report.failed] == [("pii.lineage", "spend_by_age")]
    assert [(r.check, r.feature) for r in report.warnings] == [("pii.public", "spend_by_age")]

    mesh = example_mesh()
    sensitive_birth_year(mesh, {})
    edit_set(mesh, RISK, risk_reads_birth_year("sensitive", **public))
    report = validate_definitions(mesh, subjects=[RISK])
    assert [(r.check, r.feature) for r in report.failed] == [("pii.public", "spend_by_age")]


@pytest.mark.parametrize(
    ("expr", "reads_birth"),
    [
        ("spend_30d * 2", False),  # `*` between operands is a product
        ("spend_30d * (2025 - Born)", True),
        ("`BORN` + 0", True),
        ("size(array(*))", True),
        ("to_json(struct(spend_30d, *))", True),
        ("spend_30d / 2 * tx_30d", False),
        ("unborn_30d", False),  # a word containing the alias is not the alias
    ],
)
def test_which_expressions_read_an_input(expr: str, reads_birth: bool) -> None:
    mesh = example_mesh()

    def change(d: dict[str, Any]) -> None:
        d["inputs"]["born"] = "customers.profile.birth_year"
        d["inputs"]["unborn_30d"] = "payments.customer_spend.amount_sum_30d"
        d["features"].append(
            {"kind": "expression", "name": "probe", "expr": expr, "type": "double", "pii": "none"}
        )

    edit_set(mesh, RISK, change)
    report = validate_definitions(mesh, subjects=[RISK])
    assert [r.feature for r in report.failed] == (["probe"] if reads_birth else [])


@pytest.mark.parametrize(
    ("expr", "type_", "check", "measured"),
    [
        ("cast(velocity AS float)", "float", "types.allowed", "float"),  # not allowed_types
        ("velocty * 2", "bigint", "references.sql", ["velocty"]),  # a misspelt alias
        ("velocity * rand()", "double", "globals.row_level", ["rand"]),
        ("velocity - avg(velocity) over ()", "double", "globals.row_level", ["avg", "over"]),
        ("sum(velocity)", "bigint", "globals.row_level", ["sum"]),
        ("datediff(current_date, feature_ts)", "int", "globals.row_level", ["current_date"]),
    ],
)
def test_a_global_expression_its_build_would_refuse_fails_validation(
    expr: str, type_: str, check: str, measured: Any
) -> None:
    mesh = example_mesh()
    data = one_input_global("risk", "internal", ("risk",))
    data["inputs"] = {"velocity": data["inputs"]["v"]}
    data["features"][0].update(expr=expr, type=type_)
    add_global(mesh, data)
    report = validate_definitions(mesh, subjects=["risk.velocity"])
    (result,) = report.failed
    assert (result.check, result.feature, result.measured, result.field) == (
        check,
        "v_copy",
        measured,
        "features[0].type" if check == "types.allowed" else "features[0].expr",
    ), report.render_text()
    assert result.file == "conf/global/velocity.yaml"


def test_a_row_level_global_expression_over_its_aliases_passes() -> None:
    mesh = example_mesh()
    data = one_input_global("risk", "internal", ("risk",))
    data["features"][0].update(expr="v * 2 + datediff(feature_ts, feature_ts)")
    add_global(mesh, data)
    report = validate_definitions(mesh, subjects=["risk.velocity"])
    assert not report.failed, report.render_text()
