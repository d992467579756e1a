"""Contract comparison: the breaking-change matrix, version checks, catalog JSON input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from governance_helpers import example_mesh, feature

from mesh.definitions import FeatureSet, GlobalFeatureSet
from mesh.definitions.binding import Binding, published_definition
from mesh.errors import CatalogError
from mesh.governance import compare

SPEND = "payments.customer_spend"
TX_AMOUNTS = "payments.tx_amounts"
RISK = "risk.customer_risk"

MESH = example_mesh()


def edited(qualified: str, change: Callable[[dict[str, Any]], None]) -> tuple[Any, Any]:
    old = MESH.all_sets()[qualified]
    data = old.model_dump(mode="json")
    change(data)
    return old, type(old).model_validate(data)


def drop(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.__setitem__("features", [f for f in d["features"] if f["name"] != name])


def set_feature(target: str, **values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: feature(d, target).update(values)


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def run(d: dict[str, Any]) -> None:
        for change in changes:
            change(d)

    return run


def add_feature(spec: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["features"].append(spec)


NEW_AGG = {
    "kind": "aggregation",
    "name": "amount_min",
    "function": "min",
    "column": "amount",
    "windows": ["7d"],
    "pii": "none",
}
NEW_EXPR = {
    "kind": "expression",
    "name": "is_large",
    "expr": "amount > 1000",
    "type": "boolean",
    "pii": "none",
}

# id, set, change, expected bump, expected change kinds (of the data contract)
MATRIX: list[tuple[str, str, Callable[[dict[str, Any]], None], str, set[str]]] = [
    ("nothing", SPEND, lambda d: None, "none", set()),
    ("feature removed", SPEND, drop("amount_max"), "major", {"removed"}),
    (
        "window removed",
        SPEND,
        set_feature("amount_sum", windows=["7d", "30d"]),
        "major",
        {"removed"},
    ),
    ("feature renamed", SPEND, set_feature("amount_max", name="amount_peak"), "major", {"renamed"}),
    (
        "expression renamed",
        TX_AMOUNTS,
        set_feature("is_online", name="online"),
        "major",
        {"renamed"},
    ),
    (
        "expression type changed",
        TX_AMOUNTS,
        set_feature("signed_amount", type="bigint"),
        "major",
        {"type_changed"},
    ),
    (
        "aggregation type set",
        SPEND,
        set_feature("amount_sum", type="bigint"),
        "major",
        {"type_changed"},
    ),
    (
        "expression changed",
        TX_AMOUNTS,
        set_feature("signed_amount", expr="amount"),
        "major",
        {"definition_changed"},
    ),
    (
        "aggregation filter changed",
        SPEND,
        set_feature("refund_count", filter="NOT is_refund"),
        "major",
        {"definition_changed"},
    ),
    (
        "aggregated column changed",
        SPEND,
        set_feature("merchants", column="tx_id"),
        "major",
        {"definition_changed"},
    ),
    (
        "entity changed",
        SPEND,
        lambda d: d.__setitem__("entity", "merchant"),
        "major",
        {"entity_changed"},
    ),
    (
        "source changed",
        SPEND,
        lambda d: d.__setitem__("source", "payments.tx_v2"),
        "major",
        {"source_changed"},
    ),
    (
        "accuracy changed",
        SPEND,
        lambda d: d.__setitem__("accuracy", "event"),
        "major",
        {"timestamp_semantics"},
    ),
    (
        "interval changed",
        SPEND,
        lambda d: d.__setitem__("interval", "1h"),
        "major",
        {"timestamp_semantics"},
    ),
    (
        "late data included",
        SPEND,
        lambda d: d.__setitem__("exclude_late_data", False),
        "major",
        {"timestamp_semantics"},
    ),
    ("ttl changed", SPEND, lambda d: d.__setitem__("ttl", "60d"), "major", {"timestamp_semantics"}),
    (
        "global input changed",
        RISK,
        lambda d: d["inputs"].__setitem__("spend_30d", "payments.customer_spend.amount_sum_7d"),
        "major",
        {"inputs_changed"},
    ),
    (
        "global ttl changed",
        RISK,
        lambda d: d.__setitem__("ttl", "7d"),
        "major",
        {"timestamp_semantics"},
    ),
    (
        "removed and added",
        SPEND,
        both(drop("merchants"), add_feature(NEW_AGG)),
        "major",
        {"removed", "added"},
    ),
    ("feature added", SPEND, add_feature(NEW_AGG), "minor", {"added"}),
    (
        "window added",
        SPEND,
        set_feature("amount_max", windows=["1d", "7d", "30d"]),
        "minor",
        {"added"},
    ),
    ("expression added", TX_AMOUNTS, add_feature(NEW_EXPR), "minor", {"added"}),
    ("features reordered", TX_AMOUNTS, lambda d: d["features"].reverse(), "minor", {"reordered"}),
    (
        "added with metadata",
        SPEND,
        both(add_feature(NEW_AGG), lambda d: d["metadata"].__setitem__("owner", "x@example.com")),
        "minor",
        {"added", "metadata"},
    ),
    (
        "owner changed",
        SPEND,
        lambda d: d["metadata"].__setitem__("owner", "x@example.com"),
        "patch",
        {"metadata"},
    ),
    (
        "visibility changed",
        SPEND,
        lambda d: d["metadata"].__setitem__("visibility", "private"),
        "patch",
        {"metadata"},
    ),
    (
        "tags changed",
        SPEND,
        lambda d: d["metadata"].__setitem__("tags", ["spend"]),
        "patch",
        {"metadata"},
    ),
    (
        "feature description changed",
        SPEND,
        set_feature("amount_sum", description="Sum"),
        "patch",
        {"metadata"},
    ),
    ("pii class changed", SPEND, set_feature("amount_sum", pii="sensitive"), "patch", {"metadata"}),
    (
        "quality thresholds changed",
        SPEND,
        lambda d: d["quality"].__setitem__("max_psi", 0.5),
        "patch",
        {"metadata"},
    ),
    (
        "global description changed",
        RISK,
        lambda d: d["metadata"].__setitem__("description", "Risk"),
        "patch",
        {"metadata"},
    ),
]


@pytest.mark.parametrize(
    ("subject", "change", "bump", "kinds"), [m[1:] for m in MATRIX], ids=[m[0] for m in MATRIX]
)
def test_breaking_change_matrix(subject, change, bump, kinds) -> None:
    old, new = edited(subject, change)
    decision = compare(old, new)
    assert decision.bump == bump, decision.summary()
    assert {c.kind for c in decision.changes} == kinds
    assert all(
        c.breaking == (c.kind not in {"added", "reordered", "metadata"}) for c in decision.changes
    )
    # Only a data-hash change can make a major (or minor) version; metadata never does.
    assert decision.data_hash_changed == (bump in {"major", "minor"})
    assert decision.summary().startswith(bump)


def test_rename_names_both_sides() -> None:
    old, new = edited(SPEND, set_feature("amount_max", name="amount_peak"))
    decision = compare(old, new)
    assert sorted((c.feature, c.detail) for c in decision.changes) == [
        ("amount_max_30d", "renamed amount_max_30d -> amount_peak_30d"),
        ("amount_max_7d", "renamed amount_max_7d -> amount_peak_7d"),
    ]


def test_initial_publish() -> None:
    decision = compare(None, MESH.feature_sets[SPEND])
    assert (decision.bump, decision.changes, decision.required_version()) == (
        "initial",
        (),
        "1.0.0",
    )
    assert decision.check_version(None, "0.1.0").passed


def test_previous_as_catalog_json() -> None:
    old, new = edited(SPEND, drop("amount_max"))
    from_json = compare(old.model_dump(mode="json"), new.model_dump(mode="json"))
    assert from_json == compare(old, new)
    glob = MESH.global_sets[RISK]
    assert compare(glob.model_dump(mode="json"), glob).bump == "none"


def test_kind_change_is_breaking() -> None:
    spend = MESH.feature_sets[SPEND]
    glob = GlobalFeatureSet.model_validate(
        {
            "name": spend.name,
            "domain": spend.domain,
            "entity": "customer",
            "inputs": {"a": "payments.customer_spend.amount_sum_7d"},
            "features": [
                {"kind": "expression", "name": "x", "expr": "a", "type": "double", "pii": "none"}
            ],
        }
    )
    decision = compare(spend, glob)
    assert decision.bump == "major" and "kind_changed" in {c.kind for c in decision.changes}


@pytest.mark.parametrize(
    ("payload", "param", "value"),
    [
        ({"kind": "training_set", "name": "x"}, "kind", "training_set"),
        ({"kind": "feature_set", "name": "x", "domain": "d"}, "kind", "feature_set"),
    ],
)
def test_bad_catalog_json_is_a_catalog_error(payload, param, value) -> None:
    with pytest.raises(CatalogError) as caught:
        compare(payload, MESH.feature_sets[SPEND])
    assert caught.value.params[param] == value


def test_comparing_different_sets_is_refused() -> None:
    with pytest.raises(CatalogError) as caught:
        compare(MESH.feature_sets[SPEND], MESH.feature_sets[TX_AMOUNTS])
    assert caught.value.params == {"previous": SPEND, "current": TX_AMOUNTS}


def _decision(bump: str) -> Any:
    change = {
        "major": drop("amount_max"),
        "minor": add_feature(NEW_AGG),
        "patch": lambda d: d["metadata"].__setitem__("owner", "x@example.com"),
        "none": lambda d: None,
    }[bump]
    old, new = edited(SPEND, change)
    decision = compare(old, new)
    assert decision.bump == bump
    return decision


# bump, previous, proposed, passes
VERSIONS = [
    ("major", "1.2.3", "2.0.0", True),
    ("major", "1.2.3", "3.0.0", True),
    ("major", "1.2.3", "1.3.0", False),
    ("major", "1.2.3", "1.2.3", False),
    ("minor", "1.2.3", "1.3.0", True),
    ("minor", "1.2.3", "2.0.0", True),
    ("minor", "1.2.3", "1.2.4", False),
    ("patch", "1.2.3", "1.2.4", True),
    ("patch", "1.2.3", "1.3.0", True),
    ("patch", "1.2.3", "2.0.0", False),
    ("patch", "1.2.3", "1.2.2", False),
    ("none", "1.2.3", "1.2.3", True),
    ("none", "1.2.3", "1.2.4", False),
    ("major", "1.2.3", "2.0", False),
]
REQUIRED = {"major": "2.0.0", "minor": "1.3.0", "patch": "1.2.4", "none": "1.2.3"}


@pytest.mark.parametrize(("bump", "previous", "proposed", "passes"), VERSIONS)
def test_check_version(bump, previous, proposed, passes) -> None:
    decision = _decision(bump)
    assert decision.required_version(previous) == REQUIRED[bump]
    result = decision.check_version(previous, proposed)
    assert (result.check, result.subject, result.passed, result.measured) == (
        "contract.version",
        SPEND,
        passes,
        proposed,
    )
    expected = f"== {previous}" if bump == "none" else f">= {REQUIRED[bump]}"
    assert result.threshold == expected
    if not passes:
        assert result.message.startswith(f"{SPEND}: version {proposed} is refused")


def test_breaking_change_without_major_is_refused_with_reasons() -> None:
    decision = _decision("major")
    result = decision.check_version("1.0.0", "1.1.0")
    assert not result.passed
    assert "removed amount_max_7d" in result.message and "use 2.0.0" in result.message
    record = decision.to_record()
    assert record["bump"] == "major" and {c["kind"] for c in record["changes"]} == {"removed"}


def test_a_refused_version_says_why_on_the_errors_first_line() -> None:
    from mesh.errors import GovernanceError
    from mesh.governance import GovernanceReport

    report = GovernanceReport([_decision("major").check_version("1.0.0", "1.1.0")])
    with pytest.raises(GovernanceError) as caught:
        report.raise_if_failed("publish")
    assert caught.value.params["failed"] == ["contract.version"]
    first_line = str(caught.value).splitlines()[0]  # all the command line prints
    assert "contract.version (measured 1.1.0, threshold >= 2.0.0)" in first_line
    assert "removed amount_max_7d" in first_line and "use 2.0.0" in first_line
    # No quality threshold is involved: the hint is the version's, not the thresholds'.
    assert first_line.endswith("Set the definition's `version:` to the version named above.")
    assert "threshold in conf/mesh.yaml" not in first_line


def test_defaults_come_from_the_definitions() -> None:
    old = MESH.feature_sets[SPEND]
    new = FeatureSet.model_validate(
        {
            **old.model_dump(mode="json"),
            "version": "1.0.1",
            "metadata": {**old.metadata.model_dump(mode="json"), "owner": "y@example.com"},
        }
    )
    decision = compare(old, new)
    assert decision.bump == "patch"
    assert decision.check_version().passed  # 1.0.0 -> 1.0.1


@pytest.mark.parametrize(
    ("subject", "change"),
    [
        ("customers.profile", set_feature("country", column="country")),
        ("payments.tx_events", set_feature("tx_count", type="bigint")),
        (SPEND, lambda d: d.__setitem__("source", "payments.transactions")),
        ("payments.tx_events", lambda d: d.__setitem__("interval", "1h")),
    ],
    ids=[
        "column-named-as-itself",
        "count-typed-bigint",
        "source-with-its-domain",
        "event-interval",
    ],
)
def test_spelling_the_same_definition_changes_nothing(subject, change) -> None:
    old, new = edited(subject, change)
    assert new != old  # the definition did change, as written
    binding = MESH.binding(old)
    assert new.data_hash(binding) == old.data_hash(binding)
    assert compare(old, new).bump in {"none", "patch"}, compare(old, new).summary()


SPEND_BINDING = Binding(
    keys={"customer_id": "bigint"},
    location="products/payments/transactions",
    event_timestamp="event_ts",
    created_timestamp="ingested_ts",
)


@pytest.mark.parametrize(
    ("update", "kind", "detail"),
    [
        (
            {"location": "products/payments/tx_v2"},
            "source_location_changed",
            "source location products/payments/transactions -> products/payments/tx_v2",
        ),
        (
            {"event_timestamp": "ingested_ts"},
            "timestamp_semantics",
            "event_timestamp event_ts -> ingested_ts",
        ),
        (
            {"created_timestamp": None},
            "timestamp_semantics",
            "created_timestamp ingested_ts -> -",
        ),
        (
            {"keys": {"customer_id": "string"}},
            "keys_changed",
            "keys of entity customer {customer_id: bigint} -> {customer_id: string}",
        ),
    ],
    ids=["location", "event-timestamp", "created-timestamp", "key-type"],
)
def test_a_changed_binding_is_breaking(update, kind, detail) -> None:
    spend = MESH.feature_sets[SPEND]
    assert MESH.binding(spend) == SPEND_BINDING
    stored = published_definition(spend, SPEND_BINDING)  # as the catalog keeps it
    decision = compare(stored, spend, binding=SPEND_BINDING.model_copy(update=update))
    assert decision.bump == "major", decision.summary()
    assert [(c.kind, c.detail, c.breaking) for c in decision.changes] == [(kind, detail, True)]
    assert decision.data_hash_changed and not decision.warnings()
    assert not decision.check_version("1.0.0", "1.1.0").passed
    assert decision.check_version("1.0.0", "2.0.0").passed
    unchanged = compare(stored, spend, binding=SPEND_BINDING)
    assert (unchanged.bump, unchanged.changes, unchanged.warnings()) == ("none", (), [])


def test_global_set_keys_are_its_binding() -> None:
    risk = MESH.global_sets[RISK]
    stored = published_definition(risk, MESH.binding(risk))
    decision = compare(stored, risk, binding=Binding(keys={"customer_id": "string"}))
    assert decision.bump == "major"
    assert [c.kind for c in decision.changes] == ["keys_changed"]


def test_previous_published_without_a_binding_is_compared_by_its_own_fields() -> None:
    # A catalog entry written before bindings were recorded: the definition's JSON only.
    spend = MESH.feature_sets[SPEND]
    legacy = spend.model_dump(mode="json")
    decision = compare(legacy, spend, binding=SPEND_BINDING)
    assert (decision.bump, decision.changes, decision.data_hash_changed) == ("none", (), False)
    assert decision.check_version("1.0.0", "1.0.0").passed
    (warning,) = decision.warnings()
    assert (warning.check, warning.severity, warning.passed, warning.measured) == (
        "contract.binding",
        "warning",
        False,
        "not recorded",
    )
    # Its own fields are still compared.
    old, new = edited(SPEND, drop("amount_max"))
    changed = compare(old.model_dump(mode="json"), new, binding=SPEND_BINDING)
    assert changed.bump == "major" and {c.kind for c in changed.changes} == {"removed"}


def test_a_window_an_earlier_engine_named_1y_is_renamed() -> None:
    # Published before bindings were recorded, a 365-day window was named `_1y`; the same
    # definition now writes `_365d`, a rename for every consumer of the table.
    history = MESH.feature_sets["customers.profile_history"]
    binding = MESH.binding(history)
    decision = compare(history.model_dump(mode="json"), history, binding=binding)
    assert decision.bump == "major" and decision.data_hash_changed
    assert sorted(c.detail for c in decision.changes) == [
        "renamed countries_1y -> countries_365d",
        "renamed max_credit_limit_1y -> max_credit_limit_365d",
        "renamed profile_changes_1y -> profile_changes_365d",
    ]
    assert compare(published_definition(history, binding), history, binding=binding).bump == (
        "none"
    )
    assert compare(history.model_dump(mode="json"), history).bump == "none"
    # A model is this engine's definition (as a Python caller of publish passes it): no rename.
    assert compare(history, history, binding=binding).bump == "none"


def test_an_aggregation_typed_by_its_source_column_changes_type_as_written() -> None:
    # amount_max has no `type:`: its type follows the data product's `amount` column,
    # which the definition does not pin; the tables say what changed.
    fs = MESH.feature_sets[SPEND]
    previous = published_definition(fs, SPEND_BINDING)
    before = {"amount_max_7d": "double", "tx_count_1d": "bigint"}
    after = {"amount_max_7d": "bigint", "tx_count_1d": "bigint"}
    decision = compare(previous, fs, binding=SPEND_BINDING, written=(before, after))
    assert decision.bump == "major"
    assert [(c.kind, c.feature, c.detail) for c in decision.changes] == [
        ("type_changed", "amount_max_7d", "type of amount_max_7d double -> bigint")
    ]
    assert not decision.check_version("1.0.0", "1.0.0").passed
    assert decision.check_version("1.0.0", "2.0.0").passed
    # Unknown on either side (a table type not recorded): no change is claimed.
    unknown = compare(previous, fs, binding=SPEND_BINDING, written=(before, {}))
    assert unknown.bump == "none"
    same = compare(previous, fs, binding=SPEND_BINDING, written=(before, dict(before)))
    assert same.bump == "none"


def test_a_function_change_that_changes_the_typing_names_the_function() -> None:
    # A sum is typed by its column (unknown here, no table written), a mean is double: the
    # reason is the function's change, not a type "None -> double".
    for old_fn, new_fn in [("sum", "mean"), ("mean", "sum")]:
        target = f"amount_{old_fn}"
        old, new = edited(SPEND, set_feature(target, function=new_fn))
        decision = compare(published_definition(old, SPEND_BINDING), new, binding=SPEND_BINDING)
        assert decision.bump == "major"
        details = [c.detail for c in decision.changes]
        assert details and all(
            d.startswith("definition of amount_") and f"(function '{old_fn}' -> '{new_fn}')" in d
            for d in details
        ), details


def test_spelling_out_the_type_a_column_gives_an_aggregation_changes_nothing() -> None:
    # amount_sum sums the double column `amount`: its table holds doubles with or without
    # `type: double`; only a type other than the column's is a change.
    fs = MESH.feature_sets[SPEND]
    sums = [n for n in fs.output_names() if n.startswith("amount_sum_")]
    doubles = {n: "double" for n in sums}
    _, typed = edited(SPEND, set_feature("amount_sum", type="double"))
    for before, after in [(fs, typed), (typed, fs)]:
        previous = published_definition(before, SPEND_BINDING)
        decision = compare(previous, after, binding=SPEND_BINDING, written=(doubles, doubles))
        assert (decision.bump, decision.changes, decision.data_hash_changed) == ("none", (), False)
        assert decision.check_version("1.0.0", "1.0.0").passed
    _, cast = edited(SPEND, set_feature("amount_sum", type="bigint"))
    bigints = {n: "bigint" for n in sums}
    previous = published_definition(fs, SPEND_BINDING)
    decision = compare(previous, cast, binding=SPEND_BINDING, written=(doubles, bigints))
    assert decision.bump == "major"
    assert [(c.kind, c.detail) for c in decision.changes] == [
        ("type_changed", f"type of {n} double -> bigint") for n in sums
    ]


@pytest.mark.parametrize(
    ("before", "now", "bump", "reasons"),
    [
        ({SPEND: {1}}, {SPEND: {2}}, "major", [f"input {SPEND} read at major 2 (was 1)"]),
        ({SPEND: {1}}, {SPEND: {1, 2}}, "major", [f"input {SPEND} read at majors 1, 2 (was 1)"]),
        ({SPEND: {2}}, {SPEND: {2}}, "none", []),  # a minor or patch of the input: same major
        ({}, {SPEND: {2}}, "none", []),  # an earlier engine recorded no input version
        ({"payments.gone": {1}}, {SPEND: {2}}, "none", []),  # the definitions' change, if any
    ],
)
def test_a_global_sets_input_read_at_another_major_is_breaking(
    before: dict[str, set[int]], now: dict[str, set[int]], bump: str, reasons: list[str]
) -> None:
    risk = MESH.global_sets[RISK]
    decision = compare(risk.model_dump(mode="json"), risk, inputs=(before, now))
    assert decision.bump == bump
    assert [c.detail for c in decision.changes] == reasons
    assert all(c.breaking and c.kind == "input_major" for c in decision.changes)
    if reasons:
        assert not decision.check_version("1.0.0", "1.0.0").passed
        assert decision.check_version("1.0.0", "2.0.0").passed
