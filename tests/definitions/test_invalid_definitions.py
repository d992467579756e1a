"""Every invalid definition is reported as a ConfigError problem naming file, field and fix.

Each case copies the real conf/, makes one change, loads it and looks for the problem that
names the right file and field with the right explanation. No Spark needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mesh.definitions import load_mesh
from mesh.errors import ConfigError, ConfigProblem, MeshError

SPEND = "domains/payments/customer_spend.yaml"
EVENTS = "domains/payments/tx_events.yaml"
AMOUNTS = "domains/payments/tx_amounts.yaml"
PAY_PRODUCTS = "domains/payments/products.yaml"
PROFILE = "domains/customers/profile.yaml"
TICKETS = "domains/support/ticket_stats.yaml"
RISK = "global/customer_risk.yaml"
CHURN = "training/churn.yaml"


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[Path], None]
    file: str  # the problem's file must end with this
    field: str  # the problem's field, exactly
    fragment: str  # part of the problem text (message or hint)


def replace_once(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new``; it must occur exactly once (a no-op case tests nothing)."""
    text = path.read_text()
    count = text.count(old)
    assert count == 1, f"{old!r} occurs {count} times in {path}"
    path.write_text(text.replace(old, new))


def sub(rel: str, old: str, new: str) -> Callable[[Path], None]:
    return lambda conf: replace_once(conf / rel, old, new)


def write(rel: str, text: str) -> Callable[[Path], None]:
    def edit(conf: Path) -> None:
        (conf / rel).parent.mkdir(parents=True, exist_ok=True)
        (conf / rel).write_text(text)

    return edit


def both(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(conf: Path) -> None:
        for one in edits:
            one(conf)

    return edit


RISK_B = """kind: global_feature_set
name: risk_b
domain: risk
entity: customer
inputs: {x: risk.customer_risk.spend_per_ticket}
features:
  - {kind: expression, name: y, expr: "x * 2", type: double, pii: none}
metadata: {owner: risk-team@example.com, description: reads customer_risk}
"""

CASES = [
    Case(
        "bad-window",
        sub(
            SPEND,
            "windows: [1d, 7d, 30d], pii: none,\n     description: Number",
            "windows: [1d, 7days, 30d], pii: none,\n     description: Number",
        ),
        SPEND,
        "features[0].windows[1]",
        "'7days' is not a duration; write 7d: a number and one letter (s, m, h, d, w or y)",
    ),
    Case(
        "spelled-out-ttl",
        sub(SPEND, "ttl: 30d", "ttl: 30 days"),
        SPEND,
        "ttl",
        "'30 days' is not a duration; write 30d",
    ),
    Case(
        "spelled-out-month",
        sub(SPEND, "ttl: 30d", "ttl: 1 month"),
        SPEND,
        "ttl",
        "'1 month' is not a duration; months have no fixed length; use days (e.g. 30d)",
    ),
    Case(
        "window-not-in-a-list",
        sub(TICKETS, "windows: [7d, 30d, 90d]", "windows: 7d"),
        TICKETS,
        "features[0].windows",
        "expected a list (found '7d'); write it as a YAML list: [7d]",
    ),
    Case(
        "tags-not-in-a-list",
        sub(SPEND, "tags: [spend, daily]", "tags: spend"),
        SPEND,
        "metadata.tags",
        "expected a list (found 'spend'); write it as a YAML list: [spend]",
    ),
    Case(
        "misspelt-required-field",
        sub(SPEND, "function: max, column: amount", "funtion: max, column: amount"),
        SPEND,
        "features[3].funtion",
        "unknown field `funtion`; did you mean `function`?",
    ),
    Case("negative-ttl", sub(SPEND, "ttl: 30d", "ttl: -30d"), SPEND, "ttl", "not a duration"),
    Case(
        "bare-number-ttl",
        sub(SPEND, "ttl: 30d", "ttl: 7"),
        SPEND,
        "ttl",
        "7 is not a duration: a bare number has no unit; use forms like 1h, 7d, 30d",
    ),
    Case(
        "bare-number-window",
        sub(
            SPEND,
            "windows: [1d, 7d, 30d], pii: none,\n     description: Number",
            "windows: [1d, 604800, 30d], pii: none,\n     description: Number",
        ),
        SPEND,
        "features[0].windows[1]",
        "604800 is not a duration: a bare number has no unit",
    ),
    Case(
        "too-long-ttl",
        sub(SPEND, "ttl: 30d", "ttl: 9999999999d"),
        SPEND,
        "ttl",
        "'9999999999d' is too long for a duration",
    ),
    Case(
        "zero-interval",
        sub(SPEND, "interval: 1d", "interval: 0d"),
        SPEND,
        "interval",
        "not a positive duration",
    ),
    Case(
        "unknown-function",
        sub(SPEND, "function: max", "function: median"),
        SPEND,
        "features[3].function",
        "'median'",
    ),
    Case(
        "sum-without-column",
        sub(SPEND, "function: sum, column: amount,", "function: sum,"),
        SPEND,
        "features[1]",
        "function 'sum' needs a `column`",
    ),
    Case(
        "column-not-in-source",
        sub(SPEND, "function: max, column: amount", "function: max, column: amout"),
        SPEND,
        "features[3].column",
        "'amout' is not in source payments.transactions",
    ),
    Case(
        "unknown-field-did-you-mean",
        sub(
            TICKETS,
            "csat_min, function: min, column: csat, windows:",
            "csat_min, function: min, column: csat, windws:",
        ),
        TICKETS,
        "features[3].windws",
        "did you mean `windows`?",
    ),
    Case(
        "repeated-window",
        sub(TICKETS, "windows: [7d, 30d, 90d]", "windows: [7d, 30d, 7d]"),
        TICKETS,
        "features[0]",
        "windows repeat",
    ),
    Case(
        "wrong-kind",
        sub(TICKETS, "kind: feature_set", "kind: featureset"),
        TICKETS,
        "kind",
        "unknown kind 'featureset'; did you mean `feature_set`?",
    ),
    Case(
        "missing-kind",
        sub(TICKETS, "kind: feature_set\n", ""),
        TICKETS,
        "kind",
        "required field `kind` is missing; add `kind:` one of data_product, feature_set,",
    ),
    Case(
        "unknown-feature-kind",
        sub(PROFILE, "{kind: column, name: country", "{kind: columns, name: country"),
        PROFILE,
        "features[0].kind",
        "unknown kind 'columns'; did you mean `column`?",
    ),
    Case(
        "missing-required-field",
        sub(PROFILE, "entity: customer\n", ""),
        PROFILE,
        "entity",
        "required field `entity` is missing",
    ),
    Case(
        "unregistered-entity",
        sub(PROFILE, "entity: customer", "entity: custmer"),
        PROFILE,
        "entity",
        "did you mean 'customer'?",
    ),
    Case(
        "key-type-mismatch",
        sub(PAY_PRODUCTS, "  customer_id: bigint", "  customer_id: int"),
        SPEND,
        "entity",
        "key 'customer_id' is int in payments.transactions but bigint",
    ),
    Case(
        "key-missing-from-source",
        sub("domains/support/products.yaml", "  customer_id: bigint", "  client_id: bigint"),
        TICKETS,
        "entity",
        "key column 'customer_id' of entity 'customer' is missing from source support.tickets; "
        "add it to the data product's columns",
    ),
    Case(
        "undefined-source",
        sub(EVENTS, "source: transactions", "source: transaction"),
        EVENTS,
        "source",
        "data product 'transaction' is not defined",
    ),
    Case(
        "duplicate-feature-names",
        sub(AMOUNTS, "name: is_online", "name: signed_amount"),
        AMOUNTS,
        "features",
        "'signed_amount' appears more than once",
    ),
    Case(
        "duplicate-set-names",
        write(
            "domains/payments/copy.yaml",
            (Path(__file__).resolve().parents[2] / "conf" / SPEND).read_text(),
        ),
        SPEND,
        "name",
        "payments.customer_spend is defined twice (also in",
    ),
    Case(
        "domain-folder-mismatch",
        sub(EVENTS, "kind: feature_set\n", "kind: feature_set\ndomain: support\n"),
        EVENTS,
        "domain",
        "domain 'support' differs from the folder domains/payments/",
    ),
    Case(
        "undeclared-domain",
        sub(CHURN, "domain: risk", "domain: riskk"),
        CHURN,
        "domain",
        "domain 'riskk' is not declared in mesh.yaml",
    ),
    Case(
        "bad-semver",
        sub(PROFILE, "kind: feature_set\n", "kind: feature_set\nversion: '1.0'\n"),
        PROFILE,
        "version",
        "'1.0' is not a semantic version; use MAJOR.MINOR.PATCH",
    ),
    Case(
        "bad-feature-reference",
        sub(CHURN, "  - customers.profile.country\n", "  - customers.profile\n"),
        CHURN,
        "features",
        "'customers.profile' is not a feature reference",
    ),
    Case(
        "training-undefined-set",
        sub(CHURN, "support.ticket_stats.tickets_30d", "support.ticket_stat.tickets_30d"),
        CHURN,
        "features[3]",
        "feature set 'support.ticket_stat' is not defined; did you mean 'support.ticket_stats'?",
    ),
    Case(
        "training-unknown-feature",
        sub(
            CHURN, "payments.customer_spend.amount_sum_7d", "payments.customer_spend.amount_sum_90d"
        ),
        CHURN,
        "features[0]",
        "has no feature 'amount_sum_90d'",
    ),
    Case(
        "training-repeated-feature",
        sub(CHURN, "  - customers.profile.segment\n", "  - customers.profile.country\n"),
        CHURN,
        "features",
        "features repeat",
    ),
    Case(
        "global-undefined-set",
        sub(
            RISK,
            "payments.customer_spend.amount_sum_30d",
            "payments.customer_spendx.amount_sum_30d",
        ),
        RISK,
        "inputs.spend_30d",
        "'payments.customer_spendx' is not defined; did you mean 'payments.customer_spend'?",
    ),
    Case(
        "global-unknown-feature",
        sub(RISK, "support.ticket_stats.tickets_30d", "support.ticket_stats.tickets_31d"),
        RISK,
        "inputs.tickets_30d",
        "has no feature 'tickets_31d'",
    ),
    Case(
        "global-wildcard-input",
        sub(RISK, "customers.profile.credit_limit", "customers.profile.*"),
        RISK,
        "inputs",
        "name one feature, not `*`",
    ),
    Case(
        "global-bad-alias",
        sub(RISK, "  limit: customers", "  credit-limit: customers"),
        RISK,
        "inputs",
        "'credit-limit' is not a valid column name",
    ),
    Case(
        "global-entity-mismatch",
        sub(RISK, "entity: customer", "entity: merchant"),
        RISK,
        "inputs.spend_30d",
        "differs from the global set's entity 'merchant'",
    ),
    Case(
        "global-cycle",
        both(
            write("global/risk_b.yaml", RISK_B),
            sub(
                RISK,
                "  limit: customers.profile.credit_limit",
                "  limit: customers.profile.credit_limit\n  loop: risk.risk_b.y",
            ),
        ),
        RISK,
        "inputs",
        "global feature sets form a cycle: risk.customer_risk, risk.risk_b",
    ),
    Case(
        "bad-visibility",
        sub(PROFILE, "visibility: public", "visibility: secret"),
        PROFILE,
        "metadata.visibility",
        "'secret'",
    ),
    Case(
        "expression-unknown-type",
        sub(AMOUNTS, "type: double", "type: money"),
        AMOUNTS,
        "features[0].type",
        "'money' is not a Spark SQL type",
    ),
    Case(
        "product-unknown-type",
        sub(PAY_PRODUCTS, "amount: double", "amount: dubble"),
        PAY_PRODUCTS,
        "columns",
        "'dubble' is not a Spark SQL type",
    ),
    Case(
        "product-timestamp-not-a-column",
        sub(PAY_PRODUCTS, "event_timestamp: event_ts", "event_timestamp: event_time"),
        PAY_PRODUCTS,
        "event_timestamp",
        "'event_time' is not among the product's columns",
    ),
    Case(
        "entity-key-unknown-type",
        sub("mesh.yaml", "keys: {customer_id: bigint}", "keys: {customer_id: bigints}"),
        "mesh.yaml",
        "entities.customer.keys",
        "'bigints' is not a Spark SQL type",
    ),
    Case(
        "mesh-extra-field",
        sub("mesh.yaml", "  warehouse: ./warehouse", "  warehous: ./warehouse"),
        "mesh.yaml",
        "storage.warehous",
        "did you mean `warehouse`?",
    ),
    Case(
        "mesh-bad-threshold",
        sub("mesh.yaml", "max_null_rate: 0.6", "max_null_rate: 1.6"),
        "mesh.yaml",
        "quality.max_null_rate",
        "1.6",
    ),
    Case(
        "bad-yaml-syntax",
        sub(TICKETS, "name: ticket_stats", "name: [ticket_stats"),
        TICKETS,
        "line 3, column 7",
        "not valid YAML: expected ',' or ']'",
    ),
    Case(
        "duplicate-yaml-key",
        sub(TICKETS, "name: ticket_stats", "name: ticket_stats\nname: ticket_stats_again"),
        TICKETS,
        "line 3, column 1",
        "not valid YAML: found duplicate key 'name'",
    ),
    Case(
        "document-not-a-mapping",
        write("domains/support/list.yaml", "- a\n- b\n"),
        "domains/support/list.yaml",
        "-",
        "expected a mapping, found list",
    ),
    Case(
        "not-utf8",
        lambda conf: (conf / "domains/support/latin.yaml").write_bytes(b"name: caf\xe9\n"),
        "domains/support/latin.yaml",
        "byte 9",
        "not UTF-8 text",
    ),
    Case(
        "empty-definition-file",
        write(TICKETS, ""),
        TICKETS,
        "-",
        "the file holds no definition",
    ),
    Case(
        "feature-names-differing-in-case",
        sub(AMOUNTS, "name: is_online,", "name: Signed_Amount,"),
        AMOUNTS,
        "features",
        "Spark ignores letter case",
    ),
    Case(
        "naming-pattern-not-a-regex",
        sub("mesh.yaml", 'feature_pattern: "^[a-z][a-z0-9_]*$"', 'feature_pattern: "^[a-z(*$"'),
        "mesh.yaml",
        "naming.feature_pattern",
        "is not a regular expression",
    ),
    Case(
        "mesh-yaml-second-document",
        lambda conf: (conf / "mesh.yaml").write_text(
            (conf / "mesh.yaml").read_text() + "---\nrequired_metadata: [owner, tags]\n"
        ),
        "mesh.yaml#2",
        "-",
        "the standards are one document",
    ),
    Case(
        "feature-kind-misspelt",
        sub(SPEND, "- {kind: aggregation, name: tx_count,", "- {kind: aggregaton, name: tx_count,"),
        SPEND,
        "features[0].kind",
        "did you mean `aggregation`? (kinds: aggregation, expression, column)",
    ),
    Case(
        "feature-kind-missing",
        sub(SPEND, "- {kind: aggregation, name: tx_count,", "- {name: tx_count,"),
        SPEND,
        "features[0].kind",
        "required field `kind` is missing; add `kind:` one of aggregation, expression, column",
    ),
    Case(
        "domain-name-with-a-dot",
        sub(
            "mesh.yaml",
            "\n  support: {",
            "\n  fraud.team: {owner: fraud@example.com}\n  support: {",
        ),
        "mesh.yaml",
        "domains.fraud.team.[key]",
        "domain name 'fraud.team' cannot be referred to",
    ),
    Case(
        "data-product-name-with-a-space",
        sub(PAY_PRODUCTS, "name: transactions", "name: all transactions"),
        PAY_PRODUCTS,
        "name",
        "data product name 'all transactions' cannot be referred to",
    ),
    Case(
        "months-are-not-a-duration",
        sub(SPEND, "ttl: 30d", "ttl: 1M"),
        SPEND,
        "ttl",
        "months have no fixed length; use days (e.g. 30d); `m` is minutes",
    ),
    Case(
        # A domain's set outside its folder would escape its owners' review of that folder.
        "feature-set-outside-its-domain-folder",
        lambda conf: (conf / TICKETS).rename(conf / "global" / "ticket_stats.yaml"),
        "global/ticket_stats.yaml",
        "kind",
        "a feature_set lives in its domain's folder domains/<domain>/, not in global/",
    ),
    Case(
        "data-product-at-the-conf-root",
        lambda conf: (conf / PAY_PRODUCTS).rename(conf / "products.yaml"),
        "conf/products.yaml",
        "kind",
        "a data_product lives in its domain's folder domains/<domain>/, not in the conf folder",
    ),
    Case(
        "training-set-under-global",
        lambda conf: (conf / CHURN).rename(conf / "global" / "churn.yaml"),
        "global/churn.yaml",
        "kind",
        "move it to training/",
    ),
    Case(
        "global-set-under-a-domain",
        lambda conf: (conf / RISK).rename(conf / "domains" / "payments" / "risk.yaml"),
        "domains/payments/risk.yaml",
        "kind",
        "a global_feature_set lives in global/, not in domains/payments/",
    ),
    Case(
        "missing-mesh-yaml",
        lambda conf: (conf / "mesh.yaml").unlink(),
        "mesh.yaml",
        "-",
        "point to the conf folder that holds mesh.yaml",
    ),
]


def problems_of(conf: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_mesh(conf)
    error = info.value
    assert isinstance(error, MeshError)
    assert error.params["problems"] is error.problems
    assert error.problems, "a ConfigError must list at least one problem"
    return error.problems


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_definition_is_reported_with_file_and_field(conf: Path, case: Case) -> None:
    case.edit(conf)
    problems = problems_of(conf)
    matching = [p for p in problems if p.file.endswith(case.file) and p.field == case.field]
    assert matching, f"no problem at {case.file} ({case.field}); got: {problems}"
    assert any(case.fragment in str(p) for p in matching), (
        f"no problem at {case.file} ({case.field}) says {case.fragment!r}; got: {matching}"
    )
    message = str(ConfigError(problems))
    assert "Traceback" not in message and case.field in message


def test_the_case_list_covers_at_least_25_distinct_problems() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 25


def test_every_problem_is_collected_not_just_the_first(conf: Path) -> None:
    sub(PROFILE, "entity: customer", "entity: custmer")(conf)
    sub(SPEND, "ttl: 30d", "ttl: -30d")(conf)
    sub(CHURN, "domain: risk", "domain: riskk")(conf)
    where = {(Path(p.file).name, p.field) for p in problems_of(conf)}
    assert {
        ("profile.yaml", "entity"),
        ("customer_spend.yaml", "ttl"),
        ("churn.yaml", "domain"),
    } <= where


def test_invalid_items_do_not_also_read_as_an_empty_list(conf: Path) -> None:
    # pydantic counts only valid items: every feature (or window) invalid would also say
    # "at least 1 item, not 0" although they were given.
    sub(
        SPEND,
        "windows: [30d], pii: none, description: Distinct",
        "windows: [0d], pii: none, description: Distinct",
    )(conf)
    write(
        "domains/payments/only_bad.yaml",
        "kind: feature_set\nname: only_bad\nentity: customer\nsource: transactions\n"
        "features:\n  - {kind: aggregaton, name: n, function: count, windows: [1d]}\n",
    )(conf)
    problems = problems_of(conf)
    assert not [p for p in problems if "at least 1 item" in p.message], problems
    assert {p.field for p in problems} >= {"features[0].kind", "features[4].windows[0]"}


def test_mixed_kinds_name_the_features_field(conf: Path) -> None:
    sub(
        AMOUNTS,
        "  - {kind: expression, name: is_online,",
        "  - {kind: aggregation, name: n, function: count, windows: [1d], pii: none}\n"
        "  - {kind: expression, name: is_online,",
    )(conf)
    problems = problems_of(conf)
    assert any(p.field == "features" and "cannot be mixed" in p.message for p in problems)


def test_aggregation_unknown_type_is_reported(conf: Path) -> None:
    sub(SPEND, "function: max, column: amount,", "function: max, column: amount, type: money,")(
        conf
    )
    problems = problems_of(conf)
    assert any(p.field == "features[3].type" and "'money'" in str(p) for p in problems)


def test_a_misspelt_required_field_is_one_problem(conf: Path) -> None:
    # `funtion:` for `function:` is one mistake: the unknown field says "did you mean
    # `function`?", and `function` is not reported missing on top of it.
    sub(SPEND, "function: max, column: amount", "funtion: max, column: amount")(conf)
    sub(PROFILE, "entity: customer\n", "entty: customer\n")(conf)
    problems = problems_of(conf)
    spend = [(p.field, p.message) for p in problems if p.file.endswith(SPEND)]
    assert spend == [("features[3].funtion", "unknown field `funtion`")], spend
    profile = [(p.field, p.hint) for p in problems if p.file.endswith(PROFILE)]
    assert profile == [("entty", "did you mean `entity`?")], profile


def test_a_misspelt_field_beside_a_missing_one_leaves_it_missing(conf: Path) -> None:
    # Only the field the typo is closest to is taken as given: another missing field is
    # still reported.
    sub(PROFILE, "entity: customer\n", "")(conf)
    sub(PROFILE, "source: ", "sourc: ")(conf)
    fields = {p.field for p in problems_of(conf) if p.file.endswith(PROFILE)}
    assert fields == {"entity", "sourc"}, fields
