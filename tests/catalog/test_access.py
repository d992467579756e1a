"""Access rules: visibility, PII grants, identity; denials are errors with params, audited."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import CONF, END, START

from mesh.catalog.access import (
    Identity,
    authorize_publish,
    authorize_read,
    current_identity,
    decide,
    metadata_denial,
)
from mesh.catalog.audit import audit_log
from mesh.catalog.search import CatalogEntry, VersionRecord
from mesh.catalog.tables import Catalog
from mesh.cli import main
from mesh.definitions import MeshDefinition
from mesh.errors import AccessDeniedError
from mesh.sets.access import access_requests
from mesh.sets.errors import UnknownReferenceError
from mesh.sets.manifest import InputPin


def _private(mesh: MeshDefinition, name: str) -> object:
    fs = mesh.feature_sets[name]
    return fs.model_copy(
        update={"metadata": fs.metadata.model_copy(update={"visibility": "private"})}
    )


def test_identity_parses_user_and_domain() -> None:
    assert Identity.parse("alice@risk") == Identity("alice", "risk")
    assert Identity.parse("risk") == Identity("risk", "risk")
    assert str(Identity.parse("alice@risk")) == "alice@risk"


@pytest.mark.parametrize(
    "text", ["alice@", "", "  ", "@risk", "bob@ support", "bob @support", "bo b@risk", "risk\n"]
)
def test_identity_refuses_malformed_text(text: str) -> None:
    with pytest.raises(AccessDeniedError) as info:
        Identity.parse(text)
    assert info.value.params["identity"] == text
    assert info.value.params["feature_set"] is None


def test_an_identity_with_a_space_is_refused_before_any_lookup(mesh: MeshDefinition) -> None:
    with pytest.raises(AccessDeniedError) as info:
        current_identity(mesh.standards, "bob@ support")
    assert "no spaces" in str(info.value)


@pytest.mark.parametrize(("text", "meant"), [("ann@RISK", "ann@risk"), ("Payments", "payments")])
def test_an_identity_of_a_declared_domain_but_for_case_is_refused(
    mesh: MeshDefinition, text: str, meant: str
) -> None:
    # It would act for an undeclared domain: refused reads, a grant hint mesh validate
    # refuses.
    with pytest.raises(AccessDeniedError) as info:
        current_identity(mesh.standards, text)
    assert f"did you mean {meant}?" in str(info.value)
    assert info.value.params["identity"] == text


def test_a_domain_mesh_yaml_does_not_declare_reads_public_sets_only(
    mesh: MeshDefinition,
) -> None:
    """By design (README, Access): consumers outside the declared domains read public sets."""
    assert "marketing" not in mesh.standards.domains
    who = current_identity(mesh.standards, "analyst@marketing")
    assert who == Identity("analyst", "marketing")
    public = mesh.feature_sets["customers.profile"]
    assert all(d.allowed for d in decide(mesh, who, public, ["country", "credit_limit"]))
    assert not any(d.allowed for d in decide(mesh, who, public, ["birth_year"]))  # pii
    internal = mesh.feature_sets["payments.tx_events"]
    assert not any(d.allowed for d in decide(mesh, who, internal, []))


def test_current_identity_from_environment(
    mesh: MeshDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_IDENTITY", "bob@support")
    assert current_identity(mesh.standards) == Identity("bob", "support")
    assert current_identity(mesh.standards, "carol@risk") == Identity("carol", "risk")
    # An empty identity given is refused, and said to be that (the variable is set).
    with pytest.raises(AccessDeniedError, match="the identity given is empty") as empty:
        current_identity(mesh.standards, "")
    assert "MESH_IDENTITY is not set" not in str(empty.value)
    assert "identity= in Python" in str(empty.value)
    monkeypatch.delenv("MESH_IDENTITY")
    with pytest.raises(AccessDeniedError) as info:
        current_identity(mesh.standards)
    assert info.value.params["identity"] is None
    assert info.value.params["missing_grant"] == "MESH_IDENTITY"


def test_public_non_pii_features_are_readable_by_any_domain(mesh: MeshDefinition) -> None:
    fs = mesh.feature_sets["customers.profile"]
    decisions = decide(mesh, Identity("bob", "support"), fs, ["country", "credit_limit"])
    assert [d.allowed for d in decisions] == [True, True]


def test_pii_feature_needs_a_grant(mesh: MeshDefinition) -> None:
    fs = mesh.feature_sets["customers.profile"]
    denied = decide(mesh, Identity("bob", "support"), fs, ["birth_year"])[0]
    assert not denied.allowed
    assert denied.missing_grant == "customers.profile.birth_year"
    # risk holds the grant in conf/mesh.yaml; the owner needs none.
    assert decide(mesh, Identity("ann", "risk"), fs, ["birth_year"])[0].allowed
    assert decide(mesh, Identity("cus", "customers"), fs, ["birth_year"])[0].allowed


def test_set_level_grant_covers_every_pii_feature(mesh: MeshDefinition) -> None:
    grants = {"support": ("customers.profile",)}
    access = mesh.standards.access.model_copy(update={"grants": grants})
    mesh.standards = mesh.standards.model_copy(update={"access": access})
    fs = mesh.feature_sets["customers.profile"]
    assert decide(mesh, Identity("bob", "support"), fs, [])[2].allowed  # birth_year


def test_internal_set_is_read_by_listed_domains_only(mesh: MeshDefinition) -> None:
    fs = mesh.feature_sets["payments.tx_events"]  # internal, allowed_domains [risk]
    assert all(d.allowed for d in decide(mesh, Identity("ann", "risk"), fs, []))
    denied = decide(mesh, Identity("bob", "support"), fs, ["tx_count_1h"])[0]
    assert not denied.allowed
    assert denied.missing_grant == "payments.tx_events metadata.allowed_domains: support"


def test_private_set_is_refused_outside_its_domain_even_with_a_grant(
    mesh: MeshDefinition,
) -> None:
    fs = _private(mesh, "customers.profile")
    denied = decide(mesh, Identity("ann", "risk"), fs, ["birth_year", "country"])  # type: ignore[arg-type]
    assert [d.allowed for d in denied] == [False, False]
    assert denied[0].missing_grant == "visibility of customers.profile (private)"
    assert decide(mesh, Identity("cus", "customers"), fs, ["birth_year"])[0].allowed  # type: ignore[arg-type]


def test_a_feature_the_set_does_not_have_is_an_unknown_reference(mesh: MeshDefinition) -> None:
    fs = mesh.feature_sets["customers.profile"]
    with pytest.raises(UnknownReferenceError) as info:
        decide(mesh, Identity("ann", "risk"), fs, ["country", "nope", "gone"])
    params = info.value.params
    assert (params["feature_set"], params["feature"], params["missing"]) == (
        "customers.profile",
        "nope",
        ["nope", "gone"],
    )
    assert params["available"] == fs.output_names()
    assert "customers.profile (version 1.0.0) has no feature(s) 'nope', 'gone'" in str(info.value)


def test_a_read_of_a_feature_the_set_does_not_have_is_no_refusal_to_audit(
    spark: Any, mesh: MeshDefinition
) -> None:
    profile = mesh.feature_sets["customers.profile"]
    Path(mesh.warehouse).mkdir(parents=True, exist_ok=True)  # the catalog reads it
    with pytest.raises(UnknownReferenceError) as info:
        authorize_read(
            spark, mesh, Identity("bob", "support"), [(profile, ["nope"])], "training set x"
        )
    assert not isinstance(info.value, AccessDeniedError)
    assert info.value.params["reference"] == "customers.profile.nope"
    assert audit_log(spark, mesh, identity="etl@customers") == []


def test_only_the_owning_domain_publishes(mesh: MeshDefinition) -> None:
    fs = mesh.feature_sets["customers.profile"]
    authorize_publish(Identity("etl", "customers"), fs)
    with pytest.raises(AccessDeniedError) as info:
        authorize_publish(Identity("eve", "risk"), fs)
    assert info.value.params["feature_set"] == "customers.profile"
    assert info.value.params["identity"] == "eve@risk"


@pytest.mark.parametrize("name", ["customers.profile", "risk.customer_risk"])
def test_a_publish_by_another_domain_is_refused_before_any_data_is_read(
    spark: Any, mesh: MeshDefinition, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from mesh.catalog.run import publish_range

    def read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("data was read before the publish was refused")

    # The domain compute engine's source read and computation, a global set's inputs.
    monkeypatch.setattr("mesh.compute.sources.read_source", read)
    monkeypatch.setattr("mesh.compute.feature_rows", read)
    monkeypatch.setattr("mesh.sets.resolve.resolve_inputs", read)
    with pytest.raises(AccessDeniedError) as info:
        publish_range(spark, mesh, name, start=START, end=END, identity="eve@support")
    owner = name.split(".")[0]
    assert info.value.params == {
        "identity": "eve@support",
        "feature_set": name,
        "feature": None,
        "missing_grant": f"publish {name} (owner domain {owner})",
    }
    assert not Path(mesh.warehouse).exists()  # nothing audited, written or created


def test_catalog_metadata_follows_the_stricter_of_published_and_defined_visibility(
    mesh: MeshDefinition,
) -> None:
    published = CatalogEntry(
        name="customers.profile",
        domain="customers",
        kind="feature_set",
        entity="customer",
        owner=None,
        description=None,
        tags=[],
        visibility="public",
        allowed_domains=[],
        sources=[],
        features=[],
        semantic_version="1.0.0",
        published_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
    )
    bob = Identity("bob", "support")
    assert metadata_denial(mesh, bob, published) is None
    # Made private in conf, not yet republished: hidden already, as reads are refused.
    mesh.feature_sets["customers.profile"] = _private(mesh, "customers.profile")
    denial = metadata_denial(mesh, bob, published)
    assert denial is not None
    assert denial.missing_grant == "visibility of customers.profile (private)"
    assert metadata_denial(mesh, Identity("etl", "customers"), published) is None
    # A set conf no longer defines: the visibility it was published with decides.
    gone = dataclasses.replace(
        published, name="customers.gone", visibility="internal", allowed_domains=["support"]
    )
    assert metadata_denial(mesh, bob, gone) is None
    denial = metadata_denial(mesh, Identity("eve", "risk"), gone)
    assert denial is not None
    assert denial.missing_grant == "customers.gone metadata.allowed_domains: risk"
    assert (denial.decided_by, denial.hint) == (
        "as published in 1.0.0",
        "ask the customers team to add risk to metadata.allowed_domains",
    )


def test_denied_reads_raise_and_every_read_is_audited(spark, mesh: MeshDefinition) -> None:
    profile = mesh.feature_sets["customers.profile"]
    private = _private(mesh, "payments.tx_amounts")
    who = Identity("bob", "support")
    authorize_read(spark, mesh, who, [(profile, ["country"])], "training set x")
    with pytest.raises(AccessDeniedError) as info:
        authorize_read(
            spark,
            mesh,
            who,
            [(profile, ["country", "birth_year"]), (private, ["signed_amount"])],
            "training set y",
        )
    params = info.value.params
    assert (
        params["identity"],
        params["feature_set"],
        params["feature"],
        params["missing_grant"],
    ) == ("bob@support", "customers.profile", "birth_year", "customers.profile.birth_year")
    assert (
        "payments.tx_amounts",
        "signed_amount",
        "visibility of payments.tx_amounts (private)",
    ) in params["denials"]
    assert "bob@support may not read customers.profile.birth_year" in str(info.value)
    rows = audit_log(spark, mesh, identity="bob@support")  # the reader's domain sees its reads
    # The owning domain sees the reads of its own sets; another domain sees none of them.
    owners = audit_log(spark, mesh, identity="etl@customers")
    assert {r["feature_set"] for r in owners} == {"customers.profile"} and len(owners) == 2
    assert audit_log(spark, mesh, identity="eve@risk") == []
    got = sorted(
        (
            r["purpose"],
            r["feature_set"],
            r["decision"],
            tuple(r["denied_features"]),
            tuple(r["missing_grants"]),
        )
        for r in rows
    )
    assert got == [
        ("training set x", "customers.profile", "allowed", (), ()),
        (
            "training set y",
            "customers.profile",
            "denied",
            ("birth_year",),
            ("customers.profile.birth_year",),
        ),
        (
            "training set y",
            "payments.tx_amounts",
            "denied",
            ("signed_amount",),
            ("visibility of payments.tx_amounts (private)",),
        ),
    ]
    assert {(r["user"], r["domain"]) for r in rows} == {("bob", "support")}
    assert Catalog(spark, mesh.warehouse).version("audit") == 1  # two reads, two commits


def test_an_older_definition_is_read_under_the_tighter_rules_conf_defines_now(
    mesh: MeshDefinition,
) -> None:
    # The definition a pinned older major was published with, while conf/ now defines the
    # set private, then with `country` reclassified as PII.
    published = mesh.feature_sets["customers.profile"].model_copy(deep=True)
    who = Identity("bob", "support")
    assert decide(mesh, who, published, ["country"])[0].allowed
    mesh.feature_sets["customers.profile"] = _private(mesh, "customers.profile")  # type: ignore[assignment]
    denied = decide(mesh, who, published, ["country"])[0]
    assert not denied.allowed and "private" in denied.reason
    features = [
        f.model_copy(update={"pii": "pii"}) if f.name == "country" else f
        for f in published.features
    ]
    mesh.feature_sets["customers.profile"] = published.model_copy(update={"features": features})
    denied = decide(mesh, who, published, ["country"])[0]
    assert not denied.allowed and denied.missing_grant == "customers.profile.country"


def test_an_internal_denial_names_each_domain_once(mesh: MeshDefinition) -> None:
    fs = mesh.feature_sets["customers.profile"]
    internal = fs.model_copy(
        update={
            "metadata": fs.metadata.model_copy(
                update={"visibility": "internal", "allowed_domains": ["customers", "risk"]}
            )
        }
    )
    denied = decide(mesh, Identity("bob", "support"), internal, ["country"])[0]
    assert "internal to customers, risk" in denied.reason


@pytest.mark.parametrize(
    ("inside", "reason", "owner"),
    [
        ("_catalog/versions", "it is the catalog's own table", None),
        ("training/support/tickets_train", "it is a training table of domain support", "support"),
        (
            "features/nobody/nothing/v1",
            "it is a feature table of no feature set defined in conf/",
            None,
        ),
    ],
)
def test_a_refused_read_of_a_warehouse_path_without_a_feature_set_is_audited(
    spark: Any,
    mesh: MeshDefinition,
    inside: str,
    reason: str,
    owner: str | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mesh.sets.access import authorize_table_path

    path = str(Path(mesh.warehouse, inside))
    with pytest.raises(AccessDeniedError) as info:
        authorize_table_path(spark, mesh, path, (), "training set risk.x (spine)", "bob@risk")
    assert info.value.params == {
        "identity": "bob@risk",
        "feature_set": None,
        "feature": None,
        "missing_grant": None,
        "path": path,
    }
    assert reason in info.value.message
    (row,) = audit_log(spark, mesh, identity="bob@risk")
    assert {k: row[k] for k in ("user", "domain", "action", "purpose", "decision")} == {
        "user": "bob",
        "domain": "risk",
        "action": "read",
        "purpose": "training set risk.x (spine)",
        "decision": "denied",
    }
    assert (row["feature_set"], row["features"], row["missing_grants"]) == (None, [], [])
    assert row["reason"].startswith(f"{path}: {reason}")
    assert row["owner_domain"] == owner
    # The domain owning a training table sees the refused read of it too; others do not.
    assert audit_log(spark, mesh, identity="eve@support") == ([row] if owner else [])
    monkeypatch.setenv("MESH_WAREHOUSE", mesh.warehouse)
    argv = ["catalog", "audit", "--identity", "bob@risk", "--conf", str(CONF)]
    assert main(argv) == 0
    assert f"bob@risk denied  {path}: {reason}" in capsys.readouterr().out
    assert main([*argv, "--decision", "allowed", "--feature-set", "payments.tx_events"]) == 0
    assert capsys.readouterr().out == "no audit entries match these filters\n"
    # A name conf/ does not define finds nothing too, which a note says (a typo, most likely).
    assert main([*argv, "--feature-set", "payments.tx_event"]) == 0
    assert capsys.readouterr().out == (
        "no audit entries match these filters\nnote: --feature-set 'payments.tx_event' is not "
        "defined in conf/; did you mean 'payments.tx_events'?\n"
    )


@pytest.mark.parametrize(
    "spelling",
    ["file://{table}", "file:{table}", "file://localhost{table}", "file://{quoted}", "file:{up}"],
)
def test_a_feature_table_named_by_a_file_uri_is_read_as_its_features(
    spark: Any, mesh: MeshDefinition, spelling: str
) -> None:
    from mesh.sets.access import authorize_table_path

    # payments.tx_events is internal to payments and risk: support may not read it, however
    # its table's path is spelt (only the path decides; the folder need not exist).
    table = f"{Path(mesh.warehouse).resolve()}/features/payments/tx_events/v1"
    quoted, up = table.replace("_", "%5F"), f"{table}/../v1"
    path = spelling.format(table=table, quoted=quoted, up=up)
    with pytest.raises(AccessDeniedError) as info:
        authorize_table_path(spark, mesh, path, (), "inference set (entities)", "bob@support")
    assert info.value.params["feature_set"] == "payments.tx_events"
    (row,) = audit_log(spark, mesh, identity="bob@support")
    assert (row["feature_set"], row["decision"]) == ("payments.tx_events", "denied")


def _with_metadata(mesh: MeshDefinition, name: str, **update: Any) -> Any:
    fs = mesh.feature_sets[name]
    return fs.model_copy(update={"metadata": fs.metadata.model_copy(update=update)})


def _with_pii(mesh: MeshDefinition, name: str, feature: str, pii: str) -> Any:
    fs = mesh.feature_sets[name]
    features = [f.model_copy(update={"pii": pii}) if f.name == feature else f for f in fs.features]
    return fs.model_copy(update={"features": features})


def test_a_visibility_loosened_in_conf_but_not_published_asks_for_the_publish(
    spark: Any, mesh: MeshDefinition
) -> None:
    # 1.0.0 was published internal to payments, risk; conf/ now makes it public.
    published = mesh.feature_sets["payments.tx_events"].model_copy(deep=True)
    conf = _with_metadata(mesh, "payments.tx_events", visibility="public", allowed_domains=[])
    mesh.feature_sets["payments.tx_events"] = conf
    bob = Identity("bob", "support")
    denied = decide(mesh, bob, conf, ["tx_count_1d"], published)[0]
    # The refusal itself is unchanged: outcome, reason (audited) and missing grant.
    assert not denied.allowed
    assert denied.reason == "payments.tx_events is internal to payments, risk"
    assert denied.missing_grant == "payments.tx_events metadata.allowed_domains: support"
    assert "allowed_domains" not in denied.hint
    assert denied.hint == (
        "the payments team (MESH_IDENTITY=<user>@payments) publishes the loosened definition: "
        "version 1.0.1 (a patch) in conf/, then `mesh publish payments.tx_events --metadata-only`"
    )
    assert (
        denied.decided_by == "as published in 1.0.0; conf/ now makes it public, not published yet"
    )
    # conf/ at a later patch already: publish that one. The newest published commit is read
    # with conf/'s definition (``access_requests``); a published one would keep the read at
    # its version (see the older-version tests below).
    later = conf.model_copy(update={"version": "1.0.1"})
    mesh.feature_sets["payments.tx_events"] = later
    hint = decide(mesh, bob, later, ["tx_count_1d"], published)[0].hint
    assert "publishes conf/'s version 1.0.1: `mesh publish payments.tx_events" in hint
    mesh.feature_sets["payments.tx_events"] = conf
    # The catalog's refusal (metadata) says the same, from the entry's record.
    entry = CatalogEntry(
        name="payments.tx_events",
        domain="payments",
        kind="feature_set",
        entity="customer",
        owner=None,
        description=None,
        tags=[],
        visibility="internal",
        allowed_domains=["risk"],
        sources=[],
        features=[],
        semantic_version="1.0.0",
        published_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
    )
    shown = metadata_denial(mesh, bob, entry)
    assert shown is not None and shown.decided_by == denied.decided_by
    assert shown.hint == denied.hint
    # conf/ at a new major: its publish computes the set, so a domain set's takes a range.
    mesh.feature_sets["payments.tx_events"] = conf.model_copy(update={"version": "2.0.0"})
    major = metadata_denial(mesh, bob, entry)
    assert major is not None and major.hint == (
        "1.0.0 keeps the rules it was published with; read major 2, which conf/ defines, once "
        "the payments team (MESH_IDENTITY=<user>@payments) publishes it with "
        "`mesh publish payments.tx_events --start START --end END`"
    )
    mesh.feature_sets["payments.tx_events"] = conf
    # The error names the rule and the publish; the audit row is the refusal's as before.
    with pytest.raises(AccessDeniedError) as info:
        authorize_read(spark, mesh, bob, [(conf, ["tx_count_1d"], published)], "inference set")
    message = str(info.value)
    assert (
        "payments.tx_events is internal to payments, risk (as published in 1.0.0; conf/ now "
        "makes it public, not published yet); missing grant: payments.tx_events "
        "metadata.allowed_domains: support; the payments team" in message
    )
    assert "mesh publish payments.tx_events --metadata-only" in message
    assert info.value.params["missing_grant"] == denied.missing_grant
    (row,) = audit_log(spark, mesh, identity="bob@support")
    assert (row["decision"], row["reason"], list(row["missing_grants"])) == (
        "denied",
        "payments.tx_events is internal to payments, risk",
        ["payments.tx_events metadata.allowed_domains: support"],
    )


def test_a_refusal_conf_makes_too_keeps_its_hint_and_names_its_rule(mesh: MeshDefinition) -> None:
    bob = Identity("bob", "support")
    published = mesh.feature_sets["payments.tx_events"].model_copy(deep=True)
    before = "ask the payments team to add support to metadata.allowed_domains"
    # conf/ refuses as the record does.
    denied = decide(mesh, bob, published, ["tx_count_1d"], published.model_copy())[0]
    assert denied.hint == before
    assert denied.decided_by == "as published in 1.0.0 and as conf/ defines it now"
    # conf/ alone refuses: published public, made private since.
    public = _with_metadata(mesh, "payments.tx_events", visibility="public", allowed_domains=[])
    private = _with_metadata(mesh, "payments.tx_events", visibility="private")
    mesh.feature_sets["payments.tx_events"] = private
    denied = decide(mesh, bob, private, ["tx_count_1d"], public)[0]
    assert (
        denied.hint == "ask the payments team to make it internal with allowed_domains: [support]"
    )
    assert denied.decided_by == "as conf/ defines it now, tighter than 1.0.0 as published"
    # Never published (an allow_unpublished read): conf/ is the only rule, nothing to name.
    denied = decide(mesh, bob, private, ["tx_count_1d"])[0]
    assert (denied.decided_by, denied.hint) == (
        "",
        "ask the payments team to make it internal with allowed_domains: [support]",
    )


def test_a_pii_class_lowered_in_conf_but_not_published_asks_for_the_publish(
    mesh: MeshDefinition,
) -> None:
    bob = Identity("bob", "support")
    published = mesh.feature_sets["customers.profile"].model_copy(deep=True)  # birth_year pii
    grant_hint = (
        "add `customers.profile.birth_year` (or `customers.profile`) under access.grants.support "
        "in mesh.yaml, or drop the feature"
    )
    conf = _with_pii(mesh, "customers.profile", "birth_year", "none")
    mesh.feature_sets["customers.profile"] = conf
    denied = decide(mesh, bob, conf, ["birth_year", "country"], published)
    assert [d.allowed for d in denied] == [False, True]
    assert denied[0].reason == "customers.profile.birth_year is classified pii"
    assert denied[0].missing_grant == "customers.profile.birth_year"
    assert denied[0].hint == (
        "the customers team (MESH_IDENTITY=<user>@customers) publishes the loosened definition: "
        "version 1.0.1 (a patch) in conf/, then `mesh publish customers.profile --metadata-only`"
    )
    assert (
        denied[0].decided_by
        == "as published in 1.0.0; conf/ now classes it none, not published yet"
    )
    # conf/ classes it pii too: the grant is what is missing, as before.
    mesh.feature_sets["customers.profile"] = published
    denied = decide(mesh, bob, published, ["birth_year"], published.model_copy())
    assert denied[0].hint == grant_hint
    assert denied[0].decided_by == "as published in 1.0.0 and as conf/ defines it now"
    # conf/ alone classes country pii (published none): the grant, by conf/'s rule.
    tighter = _with_pii(mesh, "customers.profile", "country", "pii")
    mesh.feature_sets["customers.profile"] = tighter
    denied = decide(mesh, bob, tighter, ["country"], published)
    assert denied[0].missing_grant == "customers.profile.country"
    assert denied[0].hint.startswith("add `customers.profile.country` (or `customers.profile`)")
    assert denied[0].decided_by == "as conf/ defines it now, tighter than 1.0.0 as published"


def _record(fs: Any, delta_version: int, day: int) -> VersionRecord:
    """The catalog's row of a publish of ``fs`` (at its version) naming ``delta_version``."""
    return VersionRecord(
        publish_id=f"p-{fs.version}",
        name=fs.qualified_name,
        domain=fs.domain,
        semantic_version=fs.version,
        major=int(fs.version.split(".")[0]),
        delta_version=delta_version,
        table_path="features/payments/tx_events/v1",
        data_hash="0" * 16,
        metadata_hash=fs.metadata_hash(),
        definition_json=fs.model_dump_json(),
        bump="minor",
        reasons=[],
        range_start=None,
        range_end=None,
        row_count=1,
        published_at=datetime(2024, 1, day, tzinfo=timezone.utc),
        publisher="etl@payments",
        run_id="r",
    )


KEPT_HINT = (
    "1.0.0 keeps the visibility it was published with (internal to payments, risk): no "
    "change or publish of conf/ opens it; read a version published with a visibility that "
    "includes support (a build reads the newest published version; a manifest rebuild only "
    "the one it pinned)"
)


def test_a_read_of_an_older_major_speaks_of_the_rules_of_the_version_read(
    mesh: MeshDefinition,
) -> None:
    # 1.0.0 was published internal to payments, risk; conf/ now defines 2.0.0, public.
    bob = Identity("bob", "support")
    old = mesh.feature_sets["payments.tx_events"].model_copy(deep=True)
    new = _with_metadata(mesh, "payments.tx_events", visibility="public", allowed_domains=[])
    mesh.feature_sets["payments.tx_events"] = new.model_copy(update={"version": "2.0.0"})
    denied = decide(mesh, bob, old, ["tx_count_1d"], old.model_copy())[0]
    assert not denied.allowed
    assert denied.reason == "payments.tx_events is internal to payments, risk"
    assert denied.missing_grant == "payments.tx_events metadata.allowed_domains: support"
    # Not 2.0.0's rule, nor a publish: no publish changes what 1.0.0 was published with.
    assert denied.decided_by == "as published in 1.0.0, the version read"
    assert denied.hint == KEPT_HINT
    # conf/ refuses too: the version read is still the one to name.
    mesh.feature_sets["payments.tx_events"] = old.model_copy(update={"version": "2.0.0"})
    denied = decide(mesh, bob, old, ["tx_count_1d"], old.model_copy())[0]
    assert (
        denied.decided_by == "as published in 1.0.0, the version read and as conf/ defines it now"
    )
    assert denied.hint == KEPT_HINT


def test_a_pii_class_of_an_older_major_asks_for_the_grant(mesh: MeshDefinition) -> None:
    # birth_year was published pii with 1.0.0; conf/'s 2.0.0 classes it none.
    bob = Identity("bob", "support")
    old = mesh.feature_sets["customers.profile"].model_copy(deep=True)
    lowered = _with_pii(mesh, "customers.profile", "birth_year", "none")
    mesh.feature_sets["customers.profile"] = lowered.model_copy(update={"version": "2.0.0"})
    denied = decide(mesh, bob, old, ["birth_year"], old.model_copy())[0]
    assert denied.decided_by == "as published in 1.0.0, the version read"
    # A grant opens every version; a publish of 2.x none of 1.0.0.
    assert denied.hint == (
        "add `customers.profile.birth_year` (or `customers.profile`) under access.grants.support "
        "in mesh.yaml, or drop the feature"
    )


def _two_publishes(mesh: MeshDefinition, monkeypatch: pytest.MonkeyPatch) -> Any:
    """payments.tx_events 1.0.0 (commit 0) published internal, 1.1.0 (commit 1) public, as
    conf/ now defines it; returns conf/'s definition."""
    old = mesh.feature_sets["payments.tx_events"].model_copy(deep=True)
    new = _with_metadata(
        mesh, "payments.tx_events", visibility="public", allowed_domains=[]
    ).model_copy(update={"version": "1.1.0"})
    mesh.feature_sets["payments.tx_events"] = new
    records = {"payments.tx_events": [_record(new, 1, 2), _record(old, 0, 1)]}
    monkeypatch.setattr("mesh.sets.access.published_versions", lambda spark, mesh: records)
    return new


def _pinned(version: str, delta_version: int) -> InputPin:
    """A read of payments.tx_events.tx_count_1d pinned to one commit."""
    return InputPin(
        feature_set="payments.tx_events",
        semantic_version=version,
        delta_version=delta_version,
        table="features/payments/tx_events/v1",
        keys=("customer_id",),
        features={"tx_count_1d": "tx_count_1d"},
    )


def test_a_pinned_older_version_is_refused_by_its_own_record(
    spark: Any, mesh: MeshDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1.0.0 (commit 0) published internal; 1.1.0 (commit 1) published public, as conf/ is.
    # A manifest rebuild pinned to 1.0.0 keeps 1.0.0's rule: publishing opens nothing.
    bob = Identity("bob", "support")
    new = _two_publishes(mesh, monkeypatch)
    ((fs, features, published, read),) = access_requests(spark, mesh, [_pinned("1.0.0", 0)])
    assert (fs.version, published.version, read) == ("1.0.0", "1.0.0", ("1.0.0", 0))
    denied = decide(mesh, bob, fs, features, published)[0]
    assert denied.decided_by == "as published in 1.0.0, the version read"
    assert denied.hint == KEPT_HINT
    # The newest published commit is read with conf/'s definition: 1.1.0 allows it.
    ((fs, features, published, read),) = access_requests(spark, mesh, [_pinned("1.1.0", 1)])
    assert (fs, read) == (new, ("1.1.0", 1))
    assert decide(mesh, bob, fs, features, published)[0].allowed


def test_the_audit_names_the_version_each_read_resolved(
    spark: Any,
    mesh: MeshDefinition,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 1.0.0 (commit 0) published internal, 1.1.0 (commit 1) public. A rebuild pinned to
    # 1.0.0 is refused, a read of the newest allowed: the audit tells which version each read.
    bob = Identity("bob", "support")
    new = _two_publishes(mesh, monkeypatch)
    with pytest.raises(AccessDeniedError):
        authorize_read(
            spark, mesh, bob, access_requests(spark, mesh, [_pinned("1.0.0", 0)]), "training set a"
        )
    authorize_read(spark, mesh, bob, access_requests(spark, mesh, [_pinned("1.1.0", 1)]), "b")
    # A request that names no version (none was resolved, as for a table read by path)
    # records none.
    authorize_read(spark, mesh, bob, [(new, ["tx_count_1d"])], "c")
    rows = audit_log(spark, mesh, identity="bob@support")
    got = sorted(
        (r["purpose"], r["decision"], r["semantic_version"], r["delta_version"]) for r in rows
    )
    assert got == [
        ("b", "allowed", "1.1.0", 1),
        ("c", "allowed", None, None),
        ("training set a", "denied", "1.0.0", 0),
    ]
    monkeypatch.setenv("MESH_WAREHOUSE", mesh.warehouse)
    argv = ["catalog", "audit", "--identity", "bob@support", "--conf", str(CONF)]
    assert main([*argv, "--decision", "denied"]) == 0
    out = capsys.readouterr().out
    assert "bob@support denied  payments.tx_events@1.0.0#0 [tx_count_1d] training set a" in out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "payments.tx_events@1.1.0#1 [tx_count_1d] b" in out
    assert "allowed payments.tx_events [tx_count_1d] c" in out
    assert main([*argv, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted((r["purpose"], r["semantic_version"], r["delta_version"]) for r in shown) == [
        ("b", "1.1.0", 1),
        ("c", None, None),
        ("training set a", "1.0.0", 0),
    ]


def test_an_audit_table_an_earlier_engine_created_takes_the_version_read(
    spark: Any, mesh: MeshDefinition
) -> None:
    from mesh.catalog.access import ReadVersion
    from mesh.catalog.tables import SCHEMAS
    from mesh.storage import CommitInfo, open_table

    catalog = Catalog(spark, mesh.warehouse)
    old = [(n, t) for n, t in SCHEMAS["audit"] if n not in ("semantic_version", "delta_version")]
    assert len(old) == len(SCHEMAS["audit"]) - 2
    earlier = {"event_id": "e1", "at": datetime(2024, 1, 1, tzinfo=timezone.utc)}
    earlier |= {"user": "bob", "domain": "support", "action": "read", "purpose": "before"}
    earlier |= {"feature_set": "customers.profile", "features": ["country"]}
    earlier |= {"decision": "allowed", "denied_features": [], "missing_grants": []}
    earlier |= {"reason": "allowed", "owner_domain": None}
    frame = spark.createDataFrame(
        [tuple(earlier[n] for n, _ in old)], ", ".join(f"`{n}` {t}" for n, t in old)
    )
    open_table(spark, catalog.path("audit")).append(
        frame, CommitInfo(run_id="e1", operation="catalog_audit")
    )
    profile = mesh.feature_sets["customers.profile"]
    request = (profile, ["country"], None, ReadVersion("1.0.0", 3))
    authorize_read(spark, mesh, Identity("bob", "support"), [request], "after")
    rows = audit_log(spark, mesh, identity="bob@support")
    got = sorted((r["purpose"], r["semantic_version"], r["delta_version"]) for r in rows)
    assert got == [("after", "1.0.0", 3), ("before", None, None)]
