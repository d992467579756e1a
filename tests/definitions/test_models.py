"""The real conf/ loads; fingerprints, durations and feature references behave as documented."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mesh.definitions import (
    AggregationFeature,
    FeatureRef,
    FeatureSet,
    MeshDefinition,
    format_duration,
    load_mesh,
    parse_duration,
)
from mesh.definitions.base import legacy_format_duration
from mesh.definitions.binding import Binding

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_the_example_conf_loads() -> None:
    mesh = load_mesh(CONF)
    assert set(mesh.products) == {
        "customers.customer_profiles",
        "payments.transactions",
        "support.tickets",
    }
    assert {
        "customers.profile",
        "customers.profile_history",
        "payments.customer_spend",
        "payments.tx_amounts",
        "payments.tx_events",
        "support.ticket_events",
        "support.ticket_stats",
    } == set(mesh.feature_sets)
    assert set(mesh.global_sets) == {"risk.customer_risk"}
    assert set(mesh.training_sets) == {"risk.churn"}
    order = mesh.build_order()
    assert order.index("risk.customer_risk") > max(
        order.index(u) for u in mesh.upstream("risk.customer_risk")
    )
    assert all(Path(f).is_file() for f in mesh.files.values())


def _spend() -> FeatureSet:
    return load_mesh(CONF).feature_sets["payments.customer_spend"]


def _with_feature(fs: FeatureSet, index: int, **changes: object) -> FeatureSet:
    features = list(fs.features)
    features[index] = features[index].model_copy(update=changes)
    return fs.model_copy(update={"features": tuple(features)})


def test_data_hash_follows_values_metadata_hash_follows_descriptions() -> None:
    fs = _spend()
    binding = load_mesh(CONF).binding(fs)
    window = _with_feature(fs, 0, windows=(timedelta(days=1), timedelta(days=14)))
    assert window.data_hash(binding) != fs.data_hash(binding)
    assert window.metadata_hash() == fs.metadata_hash()
    described = _with_feature(fs, 0, description="Something else")
    owner = fs.model_copy(update={"metadata": fs.metadata.model_copy(update={"owner": "x@y"})})
    for changed in (described, owner):
        assert changed.data_hash(binding) == fs.data_hash(binding)
        assert changed.metadata_hash() != fs.metadata_hash()
    assert fs.data_hash(binding) == _spend().data_hash(binding)  # stable across loads


def test_binding_resolves_keys_location_and_timestamps() -> None:
    mesh = load_mesh(CONF)
    assert mesh.binding(mesh.feature_sets["payments.customer_spend"]) == Binding(
        keys={"customer_id": "bigint"},
        location="products/payments/transactions",
        event_timestamp="event_ts",
        created_timestamp="ingested_ts",
    )
    # A global set reads feature sets (whose bindings cover their sources): keys only.
    assert mesh.binding(mesh.global_sets["risk.customer_risk"]) == Binding(
        keys={"customer_id": "bigint"}
    )


def _edit_product(mesh: MeshDefinition, **update: object) -> None:
    name = "payments.transactions"
    mesh.products[name] = mesh.products[name].model_copy(update=update)


def _edit_keys(mesh: MeshDefinition, keys: dict[str, str]) -> None:
    customer = mesh.standards.entities["customer"].model_copy(update={"keys": keys})
    entities = {**mesh.standards.entities, "customer": customer}
    mesh.standards = mesh.standards.model_copy(update={"entities": entities})


@pytest.mark.parametrize(
    "change",
    [
        lambda m: _edit_product(m, path="products/payments/transactions_v2"),
        lambda m: _edit_product(m, event_timestamp="ingested_ts"),
        lambda m: _edit_product(m, created_timestamp=None),
        lambda m: _edit_keys(m, {"customer_id": "string"}),
        lambda m: _edit_keys(m, {"customer_id": "bigint", "region": "string"}),
    ],
    ids=["location", "event-timestamp", "created-timestamp", "key-type", "key-added"],
)
def test_data_hash_covers_the_binding(change: Any) -> None:
    mesh = load_mesh(CONF)
    spend, risk = (
        mesh.feature_sets["payments.customer_spend"],
        mesh.global_sets["risk.customer_risk"],
    )
    before = {name: mesh.data_hash(s) for name, s in [("spend", spend), ("risk", risk)]}
    change(mesh)
    assert mesh.data_hash(spend) != before["spend"]
    # The set's own fields did not change: the hash recorded by earlier engines is the same.
    assert mesh.match_data_hash(spend, before["spend"]) is None
    assert mesh.match_data_hash(spend, spend.legacy_data_hash()) == "legacy"
    keys_changed = mesh.binding(risk).keys != {"customer_id": "bigint"}
    assert (mesh.data_hash(risk) != before["risk"]) == keys_changed


def test_spelling_out_the_default_location_changes_nothing() -> None:
    mesh = load_mesh(CONF)
    spend = mesh.feature_sets["payments.customer_spend"]
    before = mesh.data_hash(spend)
    _edit_product(mesh, path="products/payments/transactions")
    assert mesh.match_data_hash(spend, before) == "current"
    assert mesh.match_data_hash(spend, "0123456789abcdef") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
        ("1y", timedelta(days=365)),
        (" 90D ", timedelta(days=90)),
        ("45s", timedelta(seconds=45)),
        (timedelta(days=2), timedelta(days=2)),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["7dd", "-7d", "0d", "d", "", True, None, "1.5h"])
def test_parse_duration_refuses(text: object) -> None:
    with pytest.raises(ValueError, match="duration; use forms like 1h, 7d, 30d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("7days", "7d"),
        ("7 days", "7d"),
        ("1 Hour", "1h"),
        ("30 mins", "30m"),
        ("90 minutes", "90m"),
        ("2 weeks", "2w"),
        ("1 year", "1y"),
        ("10 secs", "10s"),
    ],
)
def test_a_unit_written_out_is_refused_with_its_short_form(text: str, short: str) -> None:
    with pytest.raises(ValueError, match=f"is not a duration; write {short}: a number and one"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1 month", "3 Months"])
def test_months_written_out_are_refused_as_months(text: str) -> None:
    with pytest.raises(ValueError, match="months have no fixed length; use days"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1M", " 3M ", "12 M"])
def test_upper_case_m_is_refused_as_months(text: str) -> None:
    with pytest.raises(ValueError, match="months have no fixed length; use days"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("upper", "lower"), [("7D", "7d"), ("1Y", "1y"), ("2W", "2w"), ("9H", "9h")]
)
def test_other_upper_case_units_still_read_as_before(upper: str, lower: str) -> None:
    # Published definitions may spell units in upper case: same duration, same data hash.
    fs = _spend()
    binding = load_mesh(CONF).binding(fs)
    spelled = _with_feature(fs, 0, windows=(parse_duration(upper),))
    plain = _with_feature(fs, 0, windows=(parse_duration(lower),))
    assert spelled.data_hash(binding) == plain.data_hash(binding)


def test_global_metadata_hash_covers_quality_and_is_unchanged_without_it() -> None:
    gs = load_mesh(CONF).global_sets["risk.customer_risk"]
    assert gs.metadata_hash() == "7bf0a8a9fc4d58ef"  # as recorded by published versions
    stricter = gs.model_copy(
        update={"quality": gs.quality.model_copy(update={"max_null_rate": {"spend_7d": 0.1}})}
    )
    assert stricter.metadata_hash() != gs.metadata_hash()
    assert stricter.data_hash(Binding.of(load_mesh(CONF).entity(gs.entity))) == gs.data_hash(
        Binding.of(load_mesh(CONF).entity(gs.entity))
    )


@pytest.mark.parametrize("number", [7, 3600, 7.0, 0.5])
def test_a_bare_number_is_not_a_duration(number: object) -> None:
    with pytest.raises(ValueError, match="a bare number has no unit; use forms like 1h, 7d, 30d"):
        parse_duration(number)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=7), "7d"),
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=48), "2d"),
        (timedelta(seconds=45), "45s"),
        (timedelta(days=365), "365d"),
        (timedelta(days=14), "14d"),
    ],
)
def test_format_duration_is_shortest_and_round_trips(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


@pytest.mark.parametrize("written", ["365d", "1y", "52w"])
def test_window_names_are_in_days(written: str) -> None:
    feature = AggregationFeature(name="changes", function="count", windows=(written, "30d"))
    expected = "changes_364d" if written == "52w" else "changes_365d"
    assert feature.output_names() == [expected, "changes_30d"]
    assert parse_duration(expected.removeprefix("changes_")) == feature.windows[0]
    assert legacy_format_duration(timedelta(days=365)) == "1y"


def test_a_set_named_otherwise_by_an_earlier_engine_does_not_match_its_old_hash() -> None:
    mesh = load_mesh(CONF)
    history = mesh.feature_sets["customers.profile_history"]
    assert history.output_names() == [
        "profile_changes_30d",
        "profile_changes_365d",
        "max_credit_limit_365d",
        "countries_365d",
    ]
    assert history.legacy_output_names() == [
        "profile_changes_30d",
        "profile_changes_1y",
        "max_credit_limit_1y",
        "countries_1y",
    ]
    # Its table written then has `_1y` columns: the old hash is not this definition's.
    assert mesh.match_data_hash(history, history.legacy_data_hash()) is None
    spend = mesh.feature_sets["payments.customer_spend"]
    assert mesh.match_data_hash(spend, spend.legacy_data_hash()) == "legacy"


@pytest.mark.parametrize(
    ("text", "domain", "fs", "version", "feature"),
    [
        (
            "payments.customer_spend.amount_sum_7d",
            "payments",
            "customer_spend",
            None,
            "amount_sum_7d",
        ),
        (
            "payments.customer_spend@1.tx_count_30d",
            "payments",
            "customer_spend",
            "1",
            "tx_count_30d",
        ),
        (
            "payments.customer_spend@1.2.0.tx_count_30d",
            "payments",
            "customer_spend",
            "1.2.0",
            "tx_count_30d",
        ),
        ("support.ticket_stats.*", "support", "ticket_stats", None, "*"),
    ],
)
def test_feature_ref_parses_and_prints_back(
    text: str, domain: str, fs: str, version: str | None, feature: str
) -> None:
    ref = FeatureRef.parse(text)
    assert (ref.domain, ref.feature_set, ref.version, ref.feature) == (domain, fs, version, feature)
    assert ref.set_name == f"{domain}.{fs}" and str(ref) == text


@pytest.mark.parametrize(
    "text", ["payments.customer_spend", "Payments.x.y", "a.b@v1.c", "a.b.c.d", "a..c"]
)
def test_feature_ref_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a feature reference"):
        FeatureRef.parse(text)


def test_feature_ref_in_another_case_names_the_lower_case_one() -> None:
    with pytest.raises(ValueError) as err:
        FeatureRef.parse("customers.profile.Birth_Year")
    assert "(names in a reference are lower case: did you mean " in str(err.value)
    assert "'customers.profile.birth_year'?)" in str(err.value)
    with pytest.raises(ValueError) as other:
        FeatureRef.parse("a.b@v1.c")
    assert "lower case" not in str(other.value)


def test_models_are_frozen() -> None:
    fs = _spend()
    with pytest.raises(ValidationError):
        fs.name = "other"  # type: ignore[misc]


def test_visibility_can_be_required_metadata() -> None:
    from mesh.definitions import Standards

    standards = Standards.model_validate({"required_metadata": ["owner", "visibility"]})
    assert standards.required_metadata == ("owner", "visibility")


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("./wh", "{cwd}/wh"),
        ("wh/../lake", "{cwd}/lake"),
        ("/data/wh", "/data/wh"),
        ("s3://bucket/wh", "s3://bucket/wh"),
        ("dbfs:/mnt/wh", "dbfs:/mnt/wh"),
        ("file:/tmp/wh", "file:/tmp/wh"),
    ],
)
def test_a_local_warehouse_is_absolute_and_a_uri_as_written(
    configured: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths derived from the warehouse are shown to users (tables, reports, manifests): a
    relative one would name a file only from the directory the command ran in."""
    from mesh.definitions import MeshDefinition, Standards
    from mesh.definitions.mesh import WAREHOUSE_ENV

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    standards = Standards.model_validate({"storage": {"warehouse": configured}})
    assert MeshDefinition(standards).warehouse == expected.format(cwd=tmp_path)
    monkeypatch.setenv(WAREHOUSE_ENV, configured)
    assert MeshDefinition(Standards()).warehouse == expected.format(cwd=tmp_path)
