"""Inference sets as of a time; global feature sets point-in-time correct, with lineage;
version pins and reference errors."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date, timedelta

import pytest
from chispa import assert_df_equality
from sets_data import SPEND_SCHEMA, SPEND_V1, jan

from mesh.errors import AccessDeniedError
from mesh.sets import (
    InputNotBuiltError,
    NotPublishedError,
    SetBuildError,
    SpineError,
    UnknownReferenceError,
    VersionPinError,
    build_global_feature_set,
    build_inference_set,
    build_training_set,
    resolve_inputs,
)
from mesh.sets.commits import pin_matches
from mesh.storage import open_table

INFER_SCHEMA = "customer_id bigint, as_of_ts timestamp, amount double, tickets bigint"
FEATURES = ["payments.spend.amount", "support.tickets.tickets"]
# FEATURES of customers 1, 2 and 3 as of Jan 6: late data excluded, 3 has no history.
AT_JAN_6 = [(1, jan(6), 30.0, 2), (2, jan(6), 20.0, 4), (3, jan(6), None, None)]


def test_inference_as_of_applies_late_data_and_ttl(wh) -> None:
    rows = [{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 3}]
    got = build_inference_set(wh.spark, wh.mesh, FEATURES, rows, as_of=jan(6))
    assert_df_equality(
        got,
        wh.spark.createDataFrame(AT_JAN_6, INFER_SCHEMA),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # Later, from a DataFrame of entities: customer 2's spend (Jan 2) is past its 10-day TTL.
    entities = wh.spark.createDataFrame([(2,)], "customer_id bigint")
    later = build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=jan(20))
    assert_df_equality(
        later, wh.spark.createDataFrame([(2, jan(20), None, 4)], INFER_SCHEMA), ignore_nullable=True
    )
    # The time as an ISO string or a date, as a notebook passes it: the same rows.
    for as_of in ("2024-01-20", "2024-01-20T01:00:00+01:00", date(2024, 1, 20)):
        same = build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=as_of)
        assert_df_equality(same, later)
    with pytest.raises(SetBuildError, match=r"as_of: 'Jan 20' is not an ISO date or time"):
        build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of="Jan 20")


def test_inference_denied_and_missing_keys(wh) -> None:
    with pytest.raises(AccessDeniedError) as err:
        build_inference_set(
            wh.spark, wh.mesh, FEATURES, [{"customer_id": 1}], identity="bob@marketing"
        )
    assert err.value.params["feature_set"] == "support.tickets"
    with pytest.raises(SetBuildError) as missing:
        build_inference_set(wh.spark, wh.mesh, FEATURES, [{"client": 1}])
    assert missing.value.params["missing"] == ["customer_id"]


def test_inference_flags_and_row_values_are_checked(wh) -> None:
    import numpy as np

    rows = [{"customer_id": 1}]
    for flag in ("exclude_late_data", "allow_unpublished"):
        with pytest.raises(SetBuildError, match=f"{flag}: expected True or False, found 'no'"):
            build_inference_set(wh.spark, wh.mesh, FEATURES, rows, **{flag: "no"})
    with pytest.raises(SetBuildError, match="allow_unpublished: expected True or False"):
        build_training_set(wh.spark, wh.mesh, "risk.train", allow_unpublished="yes")
    # A key value Spark cannot take as the entity's bigint: the types, not PySpark's error.
    for bad in ("1", 1.0):
        with pytest.raises(SpineError, match=r"do not fit the columns' types \{'customer_id'"):
            build_inference_set(wh.spark, wh.mesh, FEATURES, [{"customer_id": bad}])
    # numpy integers (a pandas column's to_dict("records") on some versions) are ints.
    got = build_inference_set(
        wh.spark, wh.mesh, FEATURES, [{"customer_id": np.int64(1)}], as_of=jan(7)
    )
    same = build_inference_set(wh.spark, wh.mesh, FEATURES, rows, as_of=jan(7))
    assert_df_equality(got, same)


def test_a_hidden_set_is_refused_before_its_features_or_name_are_told(wh) -> None:
    from mesh.catalog.audit import audit_log

    # A feature support.tickets lacks, asked by a domain that may not see the set: an audited
    # refusal, not an error listing the set's features.
    for features in (["support.tickets.nosuch"], ["support.tickets@9.9.9.tickets"]):
        with pytest.raises(AccessDeniedError) as err:
            build_inference_set(
                wh.spark, wh.mesh, features, [{"customer_id": 1}], identity="bob@marketing"
            )
        assert err.value.params["feature_set"] == "support.tickets"
        assert "features:" not in str(err.value)
    rows = audit_log(wh.spark, wh.mesh, identity="bob@marketing")
    assert [(r["feature_set"], r["decision"], r["features"]) for r in rows[:2]] == [
        ("support.tickets", "denied", ["tickets"]),
        ("support.tickets", "denied", ["nosuch"]),
    ]
    # Refused before any version was resolved (the pin's too): none is audited.
    assert {(r["semantic_version"], r["delta_version"]) for r in rows} == {(None, None)}
    # An undefined set: the sets listed as defined leave the hidden one out.
    with pytest.raises(UnknownReferenceError) as unknown:
        build_inference_set(
            wh.spark, wh.mesh, ["support.nosuch.x"], [{"customer_id": 1}], identity="bob@marketing"
        )
    assert "support.tickets" not in unknown.value.params["available"]
    assert "payments.spend" in unknown.value.params["available"]
    # The owning domain is told which features the set has.
    with pytest.raises(UnknownReferenceError, match=r"features: tickets"):
        build_inference_set(
            wh.spark,
            wh.mesh,
            ["support.tickets.nosuch"],
            [{"customer_id": 1}],
            identity="x@support",
        )


def test_a_conf_loosened_but_not_published_opens_no_read(wh) -> None:
    from mesh.catalog.audit import audit_log
    from mesh.catalog.search import recorded_versions
    from mesh.sets.access import authorize_table_path

    # Published: support.tickets internal to risk (the template's publish) and, by a later
    # publish of the same commit, payments.spend.amount classed pii.
    spend = wh.mesh.feature_sets["payments.spend"]
    amount = spend.features[0].model_copy(update={"pii": "pii"})
    wh.mesh.feature_sets["payments.spend"] = spend.model_copy(
        update={"features": (amount, *spend.features[1:])}
    )
    (record,) = recorded_versions(wh.spark, wh.mesh, "payments.spend")
    wh.publish_record("payments.spend", "1.0.0", record.delta_version)
    # conf/ now loosens both, not published: tickets public, amount not PII.
    tickets = wh.mesh.feature_sets["support.tickets"]
    public = tickets.metadata.model_copy(update={"visibility": "public", "allowed_domains": ()})
    wh.mesh.feature_sets["support.tickets"] = tickets.model_copy(update={"metadata": public})
    wh.mesh.feature_sets["payments.spend"] = spend
    bob, rows = "bob@marketing", [{"customer_id": 1}]
    reads = [
        lambda: build_inference_set(wh.spark, wh.mesh, FEATURES, rows, identity=bob),
        lambda: build_training_set(wh.spark, wh.mesh, "risk.train", identity=bob),
        lambda: build_global_feature_set(wh.spark, wh.mesh, "risk.combo", identity=bob),
        lambda: authorize_table_path(
            wh.spark, wh.mesh, str(wh.root / "features/support/tickets/v1"), (), "spine", bob
        ),
    ]
    for read in reads:
        with pytest.raises(AccessDeniedError) as err:
            read()
        grant = "support.tickets metadata.allowed_domains: marketing"
        assert ("support.tickets", "tickets", grant) in err.value.params["denials"]
    with pytest.raises(AccessDeniedError) as pii:
        build_inference_set(wh.spark, wh.mesh, ["payments.spend.amount"], rows, identity=bob)
    assert pii.value.params["missing_grant"] == "payments.spend.amount"
    # What both allow is read; the refusals are audited.
    got = build_inference_set(wh.spark, wh.mesh, ["payments.spend.tx_count"], rows, identity=bob)
    assert got.columns[-1] == "tx_count"
    audit = audit_log(wh.spark, wh.mesh, identity=bob)
    # Allowed or denied, each read of a resolved input names the version it read.
    read = ("1.0.0", record.delta_version)
    assert [
        (r["feature_set"], r["decision"], r["semantic_version"], r["delta_version"])
        for r in audit[:2]
    ] == [
        ("payments.spend", "allowed", *read),
        ("payments.spend", "denied", *read),
    ]
    assert (
        sum(r["feature_set"] == "support.tickets" and r["decision"] == "denied" for r in audit) == 4
    )


def test_a_new_major_never_published_is_checked_by_conf_alone(wh) -> None:
    from mesh.catalog.search import recorded_versions
    from mesh.catalog.tables import Catalog
    from mesh.sets.access import check_visible_references
    from mesh.storage import CommitInfo

    # support.tickets 1.0.0 was published internal to risk (its catalog entry, as a publish
    # writes it); conf/ now defines 2.0.0, public, never published: an allow_unpublished
    # read of it has conf/'s rule alone.
    tickets = wh.mesh.feature_sets["support.tickets"]
    (record,) = recorded_versions(wh.spark, wh.mesh, "support.tickets")
    entry = {
        "publish_id": record.publish_id,
        "name": "support.tickets",
        "domain": "support",
        "set_name": "tickets",
        "kind": "feature_set",
        "entity": tickets.entity,
        "owner": tickets.metadata.owner,
        "description": tickets.metadata.description,
        "tags": [],
        "visibility": "internal",
        "allowed_domains": ["risk"],
        "sources": [],
        "features_json": "[]",
        "semantic_version": "1.0.0",
        "published_at": record.published_at,
    }
    catalog = Catalog(wh.spark, str(wh.root))
    catalog.append("feature_sets", [entry], CommitInfo(run_id="r1", operation="catalog_publish"))
    public = tickets.metadata.model_copy(update={"visibility": "public", "allowed_domains": ()})
    wh.mesh.feature_sets["support.tickets"] = tickets.model_copy(
        update={"metadata": public, "version": "2.0.0"}
    )
    bob = "bob@marketing"
    who = check_visible_references(wh.spark, wh.mesh, ["support.tickets.tickets"], "test", bob)
    assert str(who) == bob
    # The published major's record still applies to its own major's conf/ definition.
    wh.mesh.feature_sets["support.tickets"] = tickets.model_copy(update={"metadata": public})
    with pytest.raises(AccessDeniedError):
        check_visible_references(wh.spark, wh.mesh, ["support.tickets.tickets"], "test", bob)


def test_global_values_use_inputs_as_of_each_time(wh) -> None:
    result = build_global_feature_set(wh.spark, wh.mesh, "risk.combo", run_id="g1")
    table = open_table(wh.spark, result.path)
    schema = (
        "customer_id bigint, feature_ts timestamp, created_ts timestamp, ratio double, big boolean"
    )
    # ratio = spend / (tickets + 1); the Jan 5 spend row (60.0) only counts from Jan 8.
    # Spend has a 10-day TTL: a row's expiry is a new value when it changes the outputs
    # (customer 1's Jan 5 row, customer 2's Jan 2 row), not when a newer row hides it (the
    # Jan 1 and Jan 3 rows of customer 1, expiring Jan 11 and 13).
    expired = timedelta(days=10, microseconds=1)
    expected = [
        (1, jan(1), jan(1), 10.0, False),
        (1, jan(2), jan(2), 5.0, False),
        (1, jan(3), jan(3), 15.0, True),
        (1, jan(6), jan(6), 10.0, True),
        (1, jan(8), jan(8), 20.0, True),
        (1, jan(5) + expired, jan(5) + expired, None, None),
        (2, jan(1), jan(1), None, None),
        (2, jan(2), jan(2), 4.0, False),
        (2, jan(2) + expired, jan(2) + expired, None, None),
    ]
    assert_df_equality(
        table.read(),
        wh.spark.createDataFrame(expected, schema),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert result.row_count == len(expected)
    assert result.path == str(wh.root / "features/risk/combo/v1")
    info = table.history()[0].info
    assert info is not None
    assert info.definition_hash == wh.mesh.data_hash(wh.mesh.global_sets["risk.combo"])
    assert dict(info.source_versions) == {
        "features/payments/spend/v1": 0,
        "features/support/tickets/v1": 0,
    }
    assert (info.extra["feature_set"], info.extra["semantic_version"]) == ("risk.combo", "1.0.0")
    assert info.extra["identity"] == "alice@risk"  # the builder, as MESH_IDENTITY gives it
    edges = {e.alias: e for e in result.lineage}
    assert set(edges) == {"spend", "tickets"}
    assert (
        edges["spend"].source,
        edges["spend"].source_feature,
        edges["spend"].source_delta_version,
    ) == ("payments.spend", "amount", 0)
    assert edges["spend"].target_features == ("ratio", "big")
    assert edges["tickets"].target_features == ("ratio",)
    assert {e.target_delta_version for e in result.lineage} == {result.delta_version}


@pytest.mark.slow
def test_global_output_is_readable_as_an_input(wh) -> None:
    from mesh.catalog.run import publish_range

    publish_range(wh.spark, wh.mesh, "risk.combo", identity="etl@risk")
    got = build_inference_set(
        wh.spark, wh.mesh, ["risk.combo.ratio"], [{"customer_id": 1}], as_of=jan(7)
    )
    assert got.first()["ratio"] == 10.0


def test_global_bad_expression_names_the_feature(wh) -> None:
    spec = wh.mesh.global_sets["risk.combo"]
    bad = spec.model_copy(
        update={"features": (spec.features[0].model_copy(update={"expr": "spend / nope"}),)}
    )
    with pytest.raises(SetBuildError) as err:
        build_global_feature_set(wh.spark, wh.mesh, bad)
    assert (err.value.params["feature"], err.value.params["aliases"]) == (
        "ratio",
        ["spend", "tickets"],
    )
    assert f"feature 'ratio' ({wh.mesh.files['risk.combo']}: features[0].expr)" in str(err.value)


def test_global_syntax_error_gives_sparks_reason(wh) -> None:
    spec = wh.mesh.global_sets["risk.combo"]
    bad = spec.model_copy(
        update={"features": (spec.features[0].model_copy(update={"expr": "spend / (1"}),)}
    )
    with pytest.raises(SetBuildError, match=r"over the inputs \(\[PARSE_SYNTAX_ERROR\]"):
        build_global_feature_set(wh.spark, wh.mesh, bad)


@pytest.mark.parametrize(
    ("expr", "found"),
    [
        ("spend * rand()", ["rand"]),  # built, old: another value in every build
        ("datediff(current_date, feature_ts)", ["current_date"]),  # old: changes with the clock
        ("spend - avg(spend) over ()", ["avg", "over"]),  # old: built from every row and time
        ("sum(spend)", ["sum"]),  # old: Spark's raw [MISSING_GROUP_BY]
    ],
)
def test_a_global_expression_not_row_level_is_refused_before_anything_is_read(
    wh, monkeypatch, expr: str, found: list[str]
) -> None:
    from mesh.catalog.audit import audit_log
    from mesh.catalog.run import publish_range

    spec = wh.mesh.global_sets["risk.combo"]
    bad = spec.model_copy(
        update={"features": (spec.features[0].model_copy(update={"expr": expr}),)}
    )
    with pytest.raises(SetBuildError, match=r"features\[0\]\.expr\): `") as err:
        build_global_feature_set(wh.spark, wh.mesh, bad, identity="etl@risk")
    assert (err.value.params["feature"], err.value.params["found"]) == ("ratio", found)
    assert "use `feature_ts`" in str(err.value)
    assert not (wh.root / "features/risk/combo").exists()  # nothing written
    assert audit_log(wh.spark, wh.mesh, identity="etl@risk") == []  # nor read
    monkeypatch.setitem(wh.mesh.global_sets, "risk.combo", bad)
    with pytest.raises(SetBuildError, match="would not be a function of the inputs"):
        publish_range(wh.spark, wh.mesh, "risk.combo", identity="etl@risk")


def test_global_expression_failing_on_the_data_names_the_set(wh, monkeypatch) -> None:
    from mesh.catalog.run import publish_range

    spec = wh.mesh.global_sets["risk.combo"]
    zero = spec.features[0].model_copy(update={"expr": "spend / (coalesce(tickets, 0) * 0)"})
    bad = spec.model_copy(update={"features": (zero, spec.features[1])})
    table = wh.root / "features/risk/combo/v1/_delta_log"
    commits = sorted(table.glob("*.json")) if table.exists() else []
    with pytest.raises(
        SetBuildError, match=r"an expression failed on the data \(\[DIVIDE_BY_ZERO\]"
    ):
        build_global_feature_set(wh.spark, wh.mesh, bad)
    assert (sorted(table.glob("*.json")) if table.exists() else []) == commits  # nothing written
    monkeypatch.setitem(wh.mesh.global_sets, "risk.combo", bad)
    with pytest.raises(SetBuildError) as err:
        publish_range(wh.spark, wh.mesh, "risk.combo")
    assert err.value.params["feature_set"] == "risk.combo"
    assert err.value.params["error_class"] == "DIVIDE_BY_ZERO"
    assert err.value.params["expressions"]["ratio"] == zero.expr


def test_version_pins_resolve_to_delta_versions(wh) -> None:
    wh.write_features(
        "payments.spend", [(1, jan(9), jan(9), 1.0, 1)], SPEND_SCHEMA, "1.1.0", append=True
    )
    cases = {
        "@1.0": (0, "1.0.0"),
        "@1.0.0": (0, "1.0.0"),
        "@1": (1, "1.1.0"),
        "@1.1": (1, "1.1.0"),
        "": (1, "1.1.0"),
    }
    for pin, expected in cases.items():
        (resolved,) = resolve_inputs(wh.spark, wh.mesh, [f"payments.spend{pin}.amount"])
        assert (resolved.delta_version, resolved.semantic_version) == expected, pin
    assert not pin_matches("1", "10.0.0")


def test_bad_pins_list_what_exists(wh) -> None:
    wh.write_features(
        "payments.spend", [(1, jan(9), jan(9), 1.0, 1)], SPEND_SCHEMA, "1.1.0", append=True
    )
    with pytest.raises(VersionPinError) as err:
        resolve_inputs(wh.spark, wh.mesh, ["payments.spend@1.2.amount"])
    assert (err.value.params["pin"], err.value.params["available"]) == ("1.2", ["1.1.0", "1.0.0"])
    with pytest.raises(InputNotBuiltError) as major:
        resolve_inputs(wh.spark, wh.mesh, ["payments.spend@2.amount"])
    assert major.value.params["majors"] == [1]
    assert "so no publish writes v2; pin an existing major" in str(major.value)


@pytest.mark.parametrize(
    ("reference", "param", "value"),
    [
        ("payments.nope.amount", "feature_set", "payments.nope"),
        ("payments.spend.nope", "feature", "nope"),
        ("not a reference", "reference", "not a reference"),
    ],
)
def test_unknown_references(wh, reference: str, param: str, value: str) -> None:
    with pytest.raises(UnknownReferenceError) as err:
        resolve_inputs(wh.spark, wh.mesh, [reference])
    assert err.value.params[param] == value


def test_defined_but_not_computed(wh) -> None:
    with pytest.raises(InputNotBuiltError) as err:
        resolve_inputs(wh.spark, wh.mesh, ["support.unbuilt.tickets"])
    assert (err.value.params["feature_set"], err.value.params["majors"]) == ("support.unbuilt", [])
    assert "(`mesh publish support.unbuilt --start START --end END`)" in str(err.value)


def test_older_major_is_read_with_its_published_definition(wh) -> None:
    # conf/ moves on to 2.0.0: a 1-day TTL, tx_count removed. The v1 table is untouched.
    old = wh.mesh.feature_sets["payments.spend"]
    new = old.model_copy(
        update={"version": "2.0.0", "ttl": timedelta(days=1), "features": old.features[:1]}
    )
    moved = dataclasses.replace(
        wh.mesh, feature_sets={**wh.mesh.feature_sets, old.qualified_name: new}
    )
    refs = ["payments.spend@1.amount", "payments.spend@1.tx_count"]
    (pin,) = resolve_inputs(wh.spark, moved, refs)
    assert (pin.semantic_version, pin.ttl_seconds) == ("1.0.0", 10 * 86400.0)
    got = build_inference_set(wh.spark, moved, refs, [{"customer_id": 1}], as_of=jan(5, 12)).first()
    assert (got["amount"], got["tx_count"]) == (30.0, 3)  # 2.5 days old: within v1's 10 days
    shutil.rmtree(wh.root / "_catalog")  # no catalog: v1's definition is nowhere to be found
    with pytest.raises(VersionPinError) as err:
        resolve_inputs(wh.spark, moved, refs, published=False)
    assert err.value.params["pin"] == "1"


def test_one_feature_at_two_pins_gets_two_columns(wh) -> None:
    wh.write_features(
        "payments.spend", [(1, jan(9), jan(9), 1.0, 1)], SPEND_SCHEMA, "1.1.0", append=True
    )
    refs = ["payments.spend@1.0.amount", "payments.spend@1.1.amount", "payments.spend.tx_count"]
    pins = resolve_inputs(wh.spark, wh.mesh, refs)
    assert [(p.pin, p.delta_version, p.features) for p in pins] == [
        ("1.0", 0, {"amount": "payments__spend__v1_0__amount"}),
        ("1.1", 1, {"amount": "payments__spend__v1_1__amount"}),
        (None, 1, {"tx_count": "tx_count"}),
    ]
    got = build_inference_set(wh.spark, wh.mesh, refs, [{"customer_id": 1}], as_of=jan(10))
    row = got.first()
    assert (row["payments__spend__v1_0__amount"], row["payments__spend__v1_1__amount"]) == (
        60.0,
        1.0,
    )


def test_publish_a_global_set_over_a_range(wh) -> None:
    from mesh.catalog.run import publish_range

    result = publish_range(wh.spark, wh.mesh, "risk.combo", start=jan(2), end=jan(7))
    rows = open_table(wh.spark, result.table_path).read()
    times = sorted(r["feature_ts"] for r in rows.select("feature_ts").collect())
    assert times[0] >= jan(2).replace(tzinfo=None) and times[-1] < jan(7).replace(tzinfo=None)
    assert len(times) == 4  # customer 1 on Jan 2, 3 and 6, customer 2 on Jan 2 (see above)


def _drift_allowed(wh) -> None:
    """risk.combo without the drift check: its values change with its input's on purpose."""
    combo = wh.mesh.global_sets["risk.combo"]
    quality = combo.quality.model_copy(update={"max_psi": 1e9})
    wh.mesh.global_sets["risk.combo"] = combo.model_copy(update={"quality": quality})


def _shorter_spend_history(wh) -> None:
    """payments.spend republished without customer 1's late Jan 5 row: risk.combo's history
    then ends on Jan 13 (the Jan 3 row's expiry) instead of Jan 15."""
    from mesh.storage import CommitInfo

    table = open_table(wh.spark, str(wh.root / "features/payments/spend/v1"))
    rows = wh.spark.createDataFrame([r for r in SPEND_V1 if r[1] != jan(5)], SPEND_SCHEMA)
    extra = {"feature_set": "payments.spend", "semantic_version": "1.0.0"}
    commit = CommitInfo(run_id="shorter", operation="compute", extra=extra)
    version = table.create(rows, commit, time_column="feature_ts", overwrite=True)
    wh.publish_record("payments.spend", "1.0.0", version)


@pytest.mark.parametrize("built", [True, False], ids=["after-a-build", "without-a-build"])
def test_a_global_publish_without_a_range_replaces_the_whole_history(wh, built) -> None:
    from pyspark.sql import functions as F

    from mesh.catalog.run import publish_range
    from mesh.catalog.search import recorded_versions

    _drift_allowed(wh)
    first = publish_range(wh.spark, wh.mesh, "risk.combo", identity="etl@risk")
    table = open_table(wh.spark, first.table_path)
    assert table.read().agg(F.max("feature_ts")).first()[0] == (
        jan(15) + timedelta(microseconds=1)
    ).replace(tzinfo=None)
    _shorter_spend_history(wh)
    if built:  # the build removes the Jan 15 row: no publish checked that removal
        build_global_feature_set(wh.spark, wh.mesh, "risk.combo")
    out = publish_range(wh.spark, wh.mesh, "risk.combo", identity="etl@risk")
    # The published version is the whole history as now computed, and nothing else.
    got = table.read(version=out.delta_version)
    expected = [
        (1, jan(1), 10.0),
        (1, jan(2), 5.0),
        (1, jan(3), 15.0),
        (1, jan(6), 10.0),
        (1, jan(3) + timedelta(days=10, microseconds=1), None),
        (2, jan(1), None),
        (2, jan(2), 4.0),
        (2, jan(2) + timedelta(days=10, microseconds=1), None),
    ]
    assert_df_equality(
        got.select("customer_id", "feature_ts", "ratio"),
        wh.spark.createDataFrame(
            expected, "customer_id bigint, feature_ts timestamp, ratio double"
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert out.row_count == len(expected)
    # The catalog and the commit record the range its rows cover (through customer 1's Jan 13
    # expiry), not the wider one it replaced (up to the Jan 15 row the table held before).
    versions = recorded_versions(wh.spark, wh.mesh, "risk.combo")
    (version,) = [v for v in versions if v.publish_id == out.publish_id]
    covered = (jan(1), jan(3) + timedelta(days=10, microseconds=2))
    assert (version.range_start, version.range_end) == covered
    (info,) = [h.info for h in table.history() if h.version == out.delta_version]
    assert (info.range_start, info.range_end) == covered


def test_a_global_publish_of_a_range_refuses_rows_a_build_removed_outside_it(wh) -> None:
    from mesh.catalog.run import publish_range
    from mesh.errors import CatalogError

    _drift_allowed(wh)
    first = publish_range(wh.spark, wh.mesh, "risk.combo", identity="etl@risk")
    _shorter_spend_history(wh)
    build = build_global_feature_set(wh.spark, wh.mesh, "risk.combo", run_id="shorter")
    # The build removed the Jan 15 row (and the late Jan 8 value): a publish of [Jan 1, Jan 14)
    # would leave that removal in place, unchecked. The table holds no row outside the range.
    with pytest.raises(CatalogError) as err:
        publish_range(
            wh.spark, wh.mesh, "risk.combo", start=jan(1), end=jan(14), identity="etl@risk"
        )
    message = str(err.value)
    assert "no longer holds rows outside this range that its last publish held" in message
    assert "holds rows outside this range that no publish checked" not in message
    assert (err.value.params["unchecked_rows"], err.value.params["removed_rows"]) == (False, True)
    assert err.value.params["writers"] == [
        f"global_build run shorter (version {build.delta_version})"
    ]
    assert open_table(wh.spark, first.table_path).latest_version() == build.delta_version


def test_a_global_build_reading_a_new_major_of_an_input_needs_the_sets_new_major(
    wh, monkeypatch
) -> None:
    from mesh.catalog.run import publish_range

    _drift_allowed(wh)
    first = publish_range(wh.spark, wh.mesh, "risk.combo", identity="etl@risk")
    published = open_table(wh.spark, first.table_path)
    wh.publish_spend_2()
    with monkeypatch.context() as patched:

        def read(*args, **kwargs):
            raise AssertionError("an input was read before the build was refused")

        patched.setattr("mesh.sets.global_features.resolve_inputs", read)
        with pytest.raises(SetBuildError) as err:
            build_global_feature_set(wh.spark, wh.mesh, "risk.combo")
    # Its values would come from spend 2.0.0, into the table of risk.combo's major 1.
    message = str(err.value)
    assert message.startswith(
        "Global feature set risk.combo 1.0.0: input payments.spend read at major 2 (was 1) "
        "since its last publish, 1.0.0."
    )
    assert "set risk.combo's `version:` in conf/ to 2.0.0" in message
    assert err.value.params["inputs"] == {"payments.spend": {"published": [1], "read": [2]}}
    assert err.value.params["required_version"] == "2.0.0"
    assert published.latest_version() == first.delta_version  # nothing written
    assert not (wh.root / "features/risk/combo/v2").exists()
    # With its major bumped in conf/, the build writes the new major's table from spend 2.0.0.
    combo = wh.mesh.global_sets["risk.combo"]
    wh.mesh.global_sets["risk.combo"] = combo.model_copy(update={"version": "2.0.0"})
    built = build_global_feature_set(wh.spark, wh.mesh, "risk.combo")
    assert built.path == str(wh.root / "features/risk/combo/v2")
    assert {(e.source, e.source_version) for e in built.lineage} == {
        ("payments.spend", "2.0.0"),
        ("support.tickets", "1.0.0"),
    }
    first_value = open_table(wh.spark, built.path).read().orderBy("customer_id", "feature_ts")
    assert first_value.first()["ratio"] == 20.0  # spend 2.0.0's doubled amount on Jan 1
    assert published.latest_version() == first.delta_version


def test_consumers_read_the_published_version(wh) -> None:
    # A later commit that no publish checked (a compute run): same version, other values.
    wh.write_features(
        "payments.spend", [(1, jan(9), jan(9), 999.0, 9)], SPEND_SCHEMA, append=True, publish=False
    )
    (pin,) = resolve_inputs(wh.spark, wh.mesh, ["payments.spend.amount"])
    assert (pin.delta_version, pin.semantic_version) == (0, "1.0.0")
    got = build_inference_set(
        wh.spark, wh.mesh, ["payments.spend.amount"], [{"customer_id": 1}], as_of=jan(10)
    )
    assert got.first()["amount"] == 60.0
    # A producer's pipeline (global build, refresh) reads the newest commit.
    (newest,) = resolve_inputs(wh.spark, wh.mesh, ["payments.spend.amount"], published=False)
    assert newest.delta_version == 1
    with pytest.raises(VersionPinError) as err:  # only published versions count now
        resolve_inputs(wh.spark, wh.mesh, ["payments.spend@1.1.amount"])
    assert err.value.params["available"] == ["1.0.0"]


def test_a_set_never_published_is_refused_unless_allowed(wh) -> None:
    build_global_feature_set(wh.spark, wh.mesh, "risk.combo")  # computed, not published
    with pytest.raises(NotPublishedError) as err:
        build_inference_set(wh.spark, wh.mesh, ["risk.combo.ratio"], [{"customer_id": 1}])
    assert (err.value.params["feature_set"], err.value.params["major"]) == ("risk.combo", 1)
    assert err.value.params["command"] == "mesh publish risk.combo"  # its whole history
    with pytest.warns(RuntimeWarning, match="no published version"):
        got = build_inference_set(
            wh.spark,
            wh.mesh,
            ["risk.combo.ratio"],
            [{"customer_id": 1}],
            as_of=jan(7),
            allow_unpublished=True,
        )
    assert got.first()["ratio"] == 10.0


def test_an_unpublished_domain_set_is_refused_with_a_publish_command_that_runs(wh) -> None:
    from mesh.storage import CommitInfo

    # `mesh publish` of a domain set needs --start and --end: the range its commits computed.
    spend = wh.mesh.feature_sets["payments.spend"]
    wh.mesh.feature_sets["payments.spend"] = spend.model_copy(update={"version": "2.0.0"})
    wh.write_features("payments.spend", SPEND_V1, SPEND_SCHEMA, "2.0.0", publish=False)
    with pytest.raises(NotPublishedError) as err:
        resolve_inputs(wh.spark, wh.mesh, ["payments.spend.amount"])
    assert err.value.params["command"] == "mesh publish payments.spend --start START --end END"
    table = open_table(wh.spark, str(wh.root / "features/payments/spend/v2"))
    for start, end in [(jan(3), jan(9, 12)), (jan(1), jan(5))]:
        ranged = CommitInfo(
            run_id="r2",
            operation="compute",
            definition_hash=wh.mesh.data_hash(wh.mesh.feature_sets["payments.spend"]),
            range_start=start,
            range_end=end,
            extra={"feature_set": "payments.spend", "semantic_version": "2.0.0"},
        )
        table.append(wh.spark.createDataFrame(SPEND_V1[:1], SPEND_SCHEMA), ranged)
    with pytest.raises(NotPublishedError) as err:
        resolve_inputs(wh.spark, wh.mesh, ["payments.spend.amount"])
    command = "mesh publish payments.spend --start 2024-01-01 --end 2024-01-09T12:00:00+00:00"
    assert err.value.params["command"] == command
    assert f"Publish it (`{command}`)" in err.value.message


def test_a_patch_version_can_be_pinned(wh) -> None:
    # A metadata-only publish (1.0.1) writes no feature-table commit: its version row names
    # the commit of 1.0.0, which consumers and producers read for @1.0.1.
    wh.write_features(
        "payments.spend", [(1, jan(9), jan(9), 1.0, 1)], SPEND_SCHEMA, append=True, publish=False
    )
    wh.publish_record("payments.spend", "1.0.1", 0)
    for published in (True, False):
        (pin,) = resolve_inputs(
            wh.spark, wh.mesh, ["payments.spend@1.0.1.amount"], published=published
        )
        assert (pin.pin, pin.delta_version, pin.semantic_version) == ("1.0.1", 0, "1.0.0")
    with pytest.raises(VersionPinError):  # a version nothing carries is still refused
        resolve_inputs(wh.spark, wh.mesh, ["payments.spend@1.0.2.amount"], published=False)


def test_a_minor_version_not_yet_published_reads_with_the_published_definition(wh) -> None:
    # conf/ moves on to 1.1.0 with a new feature; its table holds 1.0.0's columns only.
    old = wh.mesh.feature_sets["payments.spend"]
    extra = old.features[0].model_copy(update={"name": "amount_copy", "column": "amount"})
    new = old.model_copy(update={"version": "1.1.0", "features": (*old.features, extra)})
    moved = dataclasses.replace(
        wh.mesh, feature_sets={**wh.mesh.feature_sets, old.qualified_name: new}
    )
    (pin,) = resolve_inputs(wh.spark, moved, ["payments.spend.*"])
    assert (pin.semantic_version, list(pin.features)) == ("1.0.0", ["amount", "tx_count"])
    got = build_inference_set(
        wh.spark, moved, ["payments.spend.*"], [{"customer_id": 1}], as_of=jan(9)
    )
    assert got.first()["tx_count"] == 5
    with pytest.raises(UnknownReferenceError) as err:  # not published yet: not readable
        resolve_inputs(wh.spark, moved, ["payments.spend.amount_copy"])
    assert err.value.params["feature"] == "amount_copy"


@pytest.mark.parametrize("column", ["as_of_ts", "AS_OF_TS", "As_Of_Ts"])
def test_inference_refuses_the_lookup_time_column_in_any_case(wh, column) -> None:
    from mesh.sets import SpineError

    with pytest.raises(SpineError) as err:
        build_inference_set(wh.spark, wh.mesh, FEATURES, [{"customer_id": 1, column: 1.5}])
    assert err.value.params["column"] == column


def test_inference_rows_keep_their_values_types(wh) -> None:
    # Key columns take the entity's key type; other columns the type of their Python values.
    rows = [{"customer_id": 1, "score": 1.5, "n": 3, "tag": "a"}, {"customer_id": 2, "n": None}]
    got = build_inference_set(wh.spark, wh.mesh, ["payments.spend.amount"], rows, as_of=jan(6))
    assert [(f.name, f.dataType.simpleString()) for f in got.schema.fields] == [
        ("customer_id", "bigint"),
        ("score", "double"),
        ("n", "bigint"),
        ("tag", "string"),
        ("as_of_ts", "timestamp"),
        ("amount", "double"),
    ]
    from mesh.sets import SpineError

    with pytest.raises(SpineError) as err:
        build_inference_set(
            wh.spark, wh.mesh, FEATURES, [{"customer_id": 1, "x": 1}, {"customer_id": 2, "x": 1.5}]
        )
    assert err.value.params["column"] == "x"


def test_entity_column_differing_from_a_feature_in_case_only(wh) -> None:
    # Under Spark's case-insensitive default `Amount` and `amount` are one name: the feature
    # is renamed like an exact repeat; a case-sensitive session keeps both names.
    plain = build_inference_set(
        wh.spark, wh.mesh, ["payments.spend.amount"], [{"customer_id": 1}], as_of=jan(6)
    ).collect()[0]["amount"]
    assert plain is not None
    rows = [{"customer_id": 1, "Amount": 2.0}]
    out = build_inference_set(wh.spark, wh.mesh, ["payments.spend.amount"], rows, as_of=jan(6))
    row = out.collect()[0]
    assert "payments__spend__amount" in out.columns and "amount" not in out.columns
    assert (row["Amount"], row["payments__spend__amount"]) == (2.0, plain)
    wh.spark.conf.set("spark.sql.caseSensitive", "true")
    try:
        out = build_inference_set(wh.spark, wh.mesh, ["payments.spend.amount"], rows, as_of=jan(6))
        row, columns = out.collect()[0], out.columns  # Spark Connect analyzes on each use
    finally:
        wh.spark.conf.unset("spark.sql.caseSensitive")
    assert "payments__spend__amount" not in columns
    assert (row["Amount"], row["amount"]) == (2.0, plain)


def test_inference_entities_of_other_kinds(wh) -> None:
    # Rows given as an iterator are read once, not lost: one output row per entity.
    rows = ({"customer_id": c} for c in (1, 2, 3))
    got = build_inference_set(wh.spark, wh.mesh, FEATURES, rows, as_of=jan(6))
    assert_df_equality(
        got,
        wh.spark.createDataFrame(AT_JAN_6, INFER_SCHEMA),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # A pandas frame or a single mapping: refused, saying what to pass instead.
    import pandas as pd

    from mesh.sets import SpineError

    for entities, found in [
        (pd.DataFrame({"customer_id": [1]}), "pandas.core.frame.DataFrame"),
        ({"customer_id": 1}, "dict"),
    ]:
        with pytest.raises(SpineError) as err:
            build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=jan(6))
        assert err.value.params["argument"] == "entities"
        assert err.value.params["found"] == found


def test_inference_refuses_streaming_entities_before_reading_anything(wh) -> None:
    from mesh.catalog.audit import audit_log

    entities = wh.spark.readStream.format("rate").load().selectExpr("value AS customer_id")
    with pytest.raises(SpineError) as err:
        build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=jan(6))
    assert err.value.params["argument"] == "entities"
    assert err.value.params["found"] == "streaming DataFrame"
    assert err.value.message.startswith("build_inference_set entities: a streaming DataFrame")
    # Refused before the access check: no read was audited.
    assert audit_log(wh.spark, wh.mesh, identity="alice@risk") == []


def test_inference_entity_key_of_another_type_names_the_entities(wh) -> None:
    from mesh.sets import SpineError

    entities = wh.spark.createDataFrame([("1",)], "customer_id string")
    with pytest.raises(SpineError) as err:
        build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=jan(6))
    params = err.value.params
    assert (params["column"], params["expected"], params["found"]) == (
        "customer_id",
        "bigint",
        "string",
    )
    assert err.value.message.startswith("build_inference_set entities: key column customer_id")
    # Integers of another width match by value.
    narrow = wh.spark.createDataFrame([(1,)], "customer_id int")
    got = build_inference_set(wh.spark, wh.mesh, FEATURES, narrow, as_of=jan(6))
    expected = wh.spark.createDataFrame([(1, jan(6), 30.0, 2)], INFER_SCHEMA)
    assert_df_equality(
        got,
        expected.withColumn("customer_id", expected["customer_id"].cast("int")),
        ignore_nullable=True,
    )


def test_inference_keeps_the_entities_schema(wh) -> None:
    # Entity columns come back as given: a non-nullable struct, array or map (and their
    # non-nullable fields and elements) stays so, and column metadata is kept.
    from pyspark.sql.types import (
        ArrayType,
        LongType,
        MapType,
        StringType,
        StructField,
        StructType,
    )

    segment = StructType(
        [
            StructField("name", StringType(), nullable=False),
            StructField("scores", ArrayType(LongType(), containsNull=False), nullable=False),
        ]
    )
    schema = StructType(
        [
            StructField("customer_id", LongType(), nullable=False),
            StructField("segment", segment, nullable=False, metadata={"comment": "crm"}),
            StructField("flags", MapType(StringType(), LongType(), False), nullable=False),
        ]
    )
    entities = wh.spark.createDataFrame([(1, ("gold", [3]), {"vip": 1})], schema)
    got = build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=jan(6))
    assert StructType(got.schema.fields[:3]) == schema
    rows = [tuple(r) for r in got.drop("as_of_ts").collect()]
    assert rows == [(1, ("gold", [3]), {"vip": 1}, 30.0, 2)]


@pytest.mark.parametrize(
    ("features", "found"), [([], "list"), ((), "tuple"), ("payments.spend.amount", None)]
)
def test_inference_without_a_list_of_features_says_so(wh, features, found) -> None:
    # No reference, or one reference not in a list (read as its characters otherwise).
    with pytest.raises(SetBuildError) as err:
        build_inference_set(wh.spark, wh.mesh, features, [{"customer_id": 1}], as_of=jan(6))
    assert err.value.params["argument"] == "features"
    assert err.value.params["found"] == (found or repr(features))
    assert "build_inference_set features: expected a non-empty list" in err.value.message
