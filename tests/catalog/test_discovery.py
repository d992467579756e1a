"""Search, show, versions, lineage, exports from a real catalog, duplicates and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    AMOUNTS_SCHEMA,
    END,
    PROFILE_SCHEMA,
    START,
    amounts_rows,
    frame,
    make_mesh,
    profile_rows,
)

from mesh.catalog.access import Identity
from mesh.catalog.audit import audit_log
from mesh.catalog.duplicates import definition_duplicates, value_duplicates
from mesh.catalog.export import export_catalog
from mesh.catalog.lineage import edges as lineage_edges
from mesh.catalog.lineage import lineage, record_training_set, shown_manifest
from mesh.catalog.publish import publish_definition, publish_feature_set
from mesh.catalog.search import _withhold, search, show, versions
from mesh.cli import main
from mesh.errors import AccessDeniedError, CatalogError

RISK_SCHEMA = (
    "customer_id bigint, feature_ts timestamp, created_ts timestamp, "
    "spend_per_ticket double, limit_utilisation double, unhappy_spender boolean"
)
# risk.customer_risk is internal to risk and payments; the other two sets are public.
ANN = "ann@risk"
CONF = str(Path(__file__).resolve().parents[2] / "conf")


@pytest.fixture(scope="module")
def world(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    mesh = make_mesh(tmp_path_factory.mktemp("discovery") / "wh")
    publish_feature_set(
        spark,
        mesh,
        mesh.feature_sets["customers.profile"],
        frame(spark, profile_rows(), PROFILE_SCHEMA),
        start=START,
        end=END,
        identity="etl@customers",
        as_of=END,
    )
    publish_feature_set(
        spark,
        mesh,
        mesh.feature_sets["payments.tx_amounts"],
        frame(spark, amounts_rows(), AMOUNTS_SCHEMA),
        start=START,
        end=END,
        identity="etl@payments",
        as_of=END,
    )
    # risk.customer_risk.spend_per_ticket copies tx_amounts.signed_amount: a value duplicate.
    risk_rows = [
        (cid, ts, ts, amount, float(cid) / 7, False) for cid, ts, _, amount, _ in amounts_rows()
    ]
    publish_feature_set(
        spark,
        mesh,
        mesh.global_sets["risk.customer_risk"],
        frame(spark, risk_rows, RISK_SCHEMA),
        start=START,
        end=END,
        identity="job@risk",
        as_of=END,
    )
    record_training_set(
        spark,
        mesh,
        mesh.training_sets["risk.churn"],
        {"inputs": [{"feature_set": "risk.customer_risk"}, {"feature_set": "customers.profile"}]},
        table_path="training/risk/churn",
        recorder="ann@risk",
    )
    return mesh


def test_search_by_text_domain_entity_owner_and_tag(
    spark: Any, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_IDENTITY", ANN)
    names = lambda found: [e.name for e in found]  # noqa: E731
    assert names(search(spark, world)) == [
        "customers.profile",
        "payments.tx_amounts",
        "risk.customer_risk",
    ]
    assert names(search(spark, world, "chargeback")) == []
    assert names(search(spark, world, "refunds")) == ["payments.tx_amounts"]
    assert names(search(spark, world, domain="risk")) == ["risk.customer_risk"]
    assert names(search(spark, world, entity="merchant")) == []
    assert names(search(spark, world, owner="customers-team")) == ["customers.profile"]
    assert names(search(spark, world, tag="global")) == ["risk.customer_risk"]
    assert names(search(spark, world, "year of birth")) == ["customers.profile"]
    # Words, in any order and field: the set's description and a feature's.
    assert names(search(spark, world, "birth  PROFILE")) == ["customers.profile"]
    assert names(search(spark, world, "birth refunds")) == []


def test_show_and_versions(spark: Any, world: Any) -> None:
    shown = show(spark, world, "payments.tx_amounts", identity=ANN)
    assert shown["entry"]["visibility"] == "public"
    assert [v["semantic_version"] for v in shown["versions"]] == ["1.0.0"]
    assert set(shown["statistics"]) == {"signed_amount", "is_online"}
    assert shown["checks"] and {c["subject"] for c in shown["checks"]} == {"payments.tx_amounts"}
    assert [v.bump for v in versions(spark, world, "risk.customer_risk", identity=ANN)] == [
        "initial"
    ]
    with pytest.raises(CatalogError) as info:
        show(spark, world, "payments.nope", identity=ANN)
    assert info.value.params["feature_set"] == "payments.nope"


def test_lineage_upstream_and_downstream(spark: Any, world: Any) -> None:
    up = [
        str(e)
        for e in lineage(spark, world, "risk.customer_risk", "upstream", depth=1, identity=ANN)
    ]
    assert up == [
        "feature_set:customers.profile -> global_feature_set:risk.customer_risk",
        "feature_set:payments.customer_spend -> global_feature_set:risk.customer_risk",
        "feature_set:support.ticket_stats -> global_feature_set:risk.customer_risk",
    ]
    down = [str(e) for e in lineage(spark, world, "customers.profile", "downstream", identity=ANN)]
    assert down == [
        "feature_set:customers.profile -> global_feature_set:risk.customer_risk",
        "feature_set:customers.profile -> training_set:risk.churn",
        "global_feature_set:risk.customer_risk -> training_set:risk.churn",
    ]
    full_up = lineage(spark, world, "risk.churn", "upstream", identity=ANN)
    assert "data_product:customers.customer_profiles" in {e.source for e in full_up}


def test_lineage_is_each_sets_published_version_or_the_one_a_build_pinned(
    spark: Any, mesh: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = mesh.feature_sets["customers.profile"]
    risk = mesh.global_sets["risk.customer_risk"]
    publish_feature_set(
        spark,
        mesh,
        profile,
        frame(spark, profile_rows(), PROFILE_SCHEMA),
        start=START,
        end=END,
        identity="etl@customers",
        as_of=END,
    )
    risk_rows = [(cid, ts, ts, amount, 0.5, False) for cid, ts, _, amount, _ in amounts_rows()]
    risk_frame = frame(spark, risk_rows, RISK_SCHEMA)
    publish_feature_set(
        spark, mesh, risk, risk_frame, start=START, end=END, identity="job@risk", as_of=END
    )
    pins = [("risk.customer_risk", "1.0.0"), ("customers.profile", "1.0.0")]
    record_training_set(
        spark,
        mesh,
        mesh.training_sets["risk.churn"],
        {"inputs": [{"feature_set": s, "semantic_version": v} for s, v in pins]},
        table_path="training/risk/churn",
        recorder=ANN,
    )
    # 2.0.0 reads no support features; conf/ still defines 1.0.0, which does.
    data = risk.model_dump(mode="json")
    data["inputs"] = {k: v for k, v in data["inputs"].items() if not v.startswith("support.")}
    data["features"][0]["expr"] = "spend_30d"
    data["features"][2]["expr"] = "coalesce(tx_30d, 0) > 10"
    risk_2 = type(risk).model_validate({**data, "version": "2.0.0"})
    publish_feature_set(
        spark, mesh, risk_2, risk_frame, start=START, end=END, identity="job@risk", as_of=END
    )

    def upstream(name: str, depth: int | None = None, version: str | None = None) -> list[str]:
        pinned = {"version": version} if version else {}
        found = lineage(spark, mesh, name, "upstream", depth, identity=ANN, **pinned)
        return [str(e) for e in found]

    into_risk = [
        f"feature_set:{s} -> global_feature_set:risk.customer_risk"
        for s in ("customers.profile", "payments.customer_spend", "support.ticket_stats")
    ]
    assert upstream("risk.customer_risk", 1) == [into_risk[0], into_risk[1]]
    assert upstream("risk.customer_risk", 1, version="1.0.0") == into_risk
    # The build read risk.customer_risk 1.0.0: upstream of it, that version's inputs.
    assert upstream("training_set:risk.churn") == sorted(
        [
            "data_product:customers.customer_profiles -> feature_set:customers.profile",
            "feature_set:customers.profile -> training_set:risk.churn",
            *into_risk,
            "global_feature_set:risk.customer_risk -> training_set:risk.churn",
        ]
    )
    assert "support.ticket_stats" not in " ".join(map(str, lineage_edges(spark, mesh)))
    # Downstream of a version: the consumers whose newest record read it.
    into_churn = ["global_feature_set:risk.customer_risk -> training_set:risk.churn"]
    for version, expected in ((None, into_churn), ("1.0.0", into_churn), ("2.0.0", [])):
        pinned = {"version": version} if version else {}
        found = lineage(spark, mesh, "risk.customer_risk", "downstream", identity=ANN, **pinned)
        assert [str(e) for e in found] == expected, version
    with pytest.raises(CatalogError) as info:
        upstream("risk.customer_risk", version="1.1.0")
    assert info.value.params == {"feature_set": "risk.customer_risk", "version": "1.1.0"}
    monkeypatch.setenv("MESH_WAREHOUSE", mesh.warehouse)
    argv = ["catalog", "lineage", "risk.customer_risk", "--direction", "upstream", "--depth", "1"]
    argv += ["--identity", ANN]
    assert main(["--conf", CONF, *argv, "--version", "1.0.0"]) == 0
    assert capsys.readouterr().out.splitlines() == into_risk


def test_export_from_the_catalog_writes_every_format(
    spark: Any, world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for fmt in ("atlas", "openlineage", "datahub", "odcs"):
        paths = export_catalog(spark, world, fmt, tmp_path, identity=ANN)
        assert paths and all(p.stat().st_size > 0 for p in paths)
    events = json.loads((tmp_path / "openlineage/events.json").read_text())
    assert len(events) == 4  # three publishes and one training set
    assert sorted(p.name for p in (tmp_path / "odcs").iterdir()) == [
        "customers.profile.odcs.yaml",
        "payments.tx_amounts.odcs.yaml",
        "risk.customer_risk.odcs.yaml",
    ]
    # bob@support may not see risk.customer_risk; the training set reading it stays, without it.
    bob = tmp_path / "bob"
    for fmt in ("openlineage", "odcs", "atlas"):
        export_catalog(spark, world, fmt, bob, identity="bob@support")
    events = json.loads((bob / "openlineage/events.json").read_text())
    assert len(events) == 3
    assert "customer_risk" not in (bob / "openlineage/events.json").read_text()
    assert sorted(p.name for p in (bob / "odcs").iterdir()) == [
        "customers.profile.odcs.yaml",
        "payments.tx_amounts.odcs.yaml",
    ]
    assert "customer_risk" not in (bob / "atlas" / "entities.json").read_text()
    monkeypatch.delenv("MESH_IDENTITY", raising=False)
    with pytest.raises(AccessDeniedError):  # exports are never anonymous
        export_catalog(spark, world, "odcs", bob)


def test_export_and_lineage_agree_on_a_training_set_that_read_a_hidden_set(
    spark: Any, world: Any, tmp_path: Path
) -> None:
    # risk.churn read risk.customer_risk (hidden from bob@support) and customers.profile.
    for who, hidden in (("bob@support", True), (ANN, False)):
        up = lineage(spark, world, "risk.churn", "upstream", depth=1, identity=who)
        export_catalog(spark, world, "openlineage", tmp_path / who, identity=who)
        events = json.loads((tmp_path / who / "openlineage/events.json").read_text())
        (built,) = [e for e in events if e["job"]["name"] == "build_training_set.risk.churn"]
        exported = sorted(i["name"] for i in built["inputs"])
        assert exported == sorted(e.source.split(":", 1)[1] for e in up)
        assert ("risk.customer_risk" not in exported) is hidden
        assert "customers.profile" in exported


def test_a_training_manifest_shows_no_input_or_column_of_a_hidden_set() -> None:
    manifest = {
        "columns": ["customer_id", "label_ts", "country", "risk__score", "spend_per_ticket"],
        "inputs": [
            {"feature_set": "customers.profile", "features": {"country": "country"}},
            {
                "feature_set": "risk.customer_risk",
                "features": {"score": "risk__score", "spend_per_ticket": "spend_per_ticket"},
            },
        ],
        "definition_hash": "abc",
    }
    shown = shown_manifest(manifest, {"risk.customer_risk"})
    assert shown == {
        "columns": ["customer_id", "label_ts", "country"],
        "inputs": [{"feature_set": "customers.profile", "features": {"country": "country"}}],
        "definition_hash": "abc",
    }
    assert shown_manifest(manifest, {"payments.tx_events"}) == manifest
    assert "risk.customer_risk" in json.dumps(manifest)  # the record itself is unchanged


def test_value_duplicates_are_flagged_and_distinct_features_are_not(
    spark: Any, world: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    found = value_duplicates(spark, world, threshold=0.99, min_overlap=5, identity=ANN)
    pairs = {(d.left, d.right, d.measure) for d in found}
    assert (
        "payments.tx_amounts.signed_amount",
        "risk.customer_risk.spend_per_ticket",
        "equality_rate",
    ) in pairs
    assert not any("credit_limit" in d.left or "credit_limit" in d.right for d in found)
    # Compared only among the features the caller may read: bob@support may not see the
    # risk set (internal to risk and payments).
    hidden = value_duplicates(
        spark, world, threshold=0.99, min_overlap=5, identity=Identity("bob", "support")
    )
    assert not any("customer_risk" in d.left or "customer_risk" in d.right for d in hidden)
    monkeypatch.setenv("MESH_WAREHOUSE", world.warehouse)
    options = ["--threshold", "0.99", "--min-overlap", "5", "--identity", ANN, "--json"]
    assert main(["--conf", CONF, "catalog", "duplicates", *options]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [d for d in printed if d["kind"] == "values"] == [asdict(d) for d in found]


def test_value_duplicates_of_a_constant_feature_have_no_correlation(
    spark: Any, tmp_path: Path
) -> None:
    # Spark 4's ANSI mode (on in the tests) made F.corr raise DIVIDE_BY_ZERO here.
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    mesh = make_mesh(tmp_path / "wh")
    publish_feature_set(
        spark,
        mesh,
        mesh.feature_sets["payments.tx_amounts"],
        frame(spark, amounts_rows(), AMOUNTS_SCHEMA),
        start=START,
        end=END,
        identity="etl@payments",
        as_of=END,
    )
    # limit_utilisation is constant; spend_per_ticket still copies signed_amount.
    risk_rows = [(cid, ts, ts, amount, 0.5, False) for cid, ts, _, amount, _ in amounts_rows()]
    publish_feature_set(
        spark,
        mesh,
        mesh.global_sets["risk.customer_risk"],
        frame(spark, risk_rows, RISK_SCHEMA),
        start=START,
        end=END,
        identity="job@risk",
        as_of=END,
    )
    found = value_duplicates(spark, mesh, threshold=0.5, min_overlap=5, identity=ANN)
    pairs = {(d.left, d.right, d.measure) for d in found}
    assert (
        "payments.tx_amounts.signed_amount",
        "risk.customer_risk.spend_per_ticket",
        "equality_rate",
    ) in pairs
    assert not any("limit_utilisation" in d.left + d.right for d in found)


def test_value_duplicates_audit_the_feature_tables_they_read(spark: Any, world: Any) -> None:
    def reads() -> list[dict[str, Any]]:
        rows = audit_log(spark, world, identity=ANN)
        return [r for r in rows if r["purpose"] == "duplicates" and r["user"] == "ann"]

    before = len(reads())
    value_duplicates(spark, world, threshold=0.99, min_overlap=5, identity=ANN)
    rows = reads()[: len(reads()) - before]
    assert sorted(r["feature_set"] for r in rows) == [
        "customers.profile",
        "payments.tx_amounts",
        "risk.customer_risk",
    ]
    assert all(r["action"] == "read" and r["decision"] == "allowed" for r in rows)
    assert all(r["domain"] == "risk" for r in rows)
    by_set = {r["feature_set"]: set(r["features"]) for r in rows}
    assert by_set["payments.tx_amounts"] == {"signed_amount", "is_online"}
    assert "spend_per_ticket" in by_set["risk.customer_risk"]
    # Each row names the version whose table was read: the newest published one.
    from mesh.catalog.search import latest_version

    for row in rows:
        record = latest_version(spark, world, row["feature_set"])
        assert record is not None
        expected = (record.semantic_version, record.delta_version)
        assert (row["semantic_version"], row["delta_version"]) == expected


def test_show_withholds_numeric_pii_statistics_from_callers_without_a_grant(
    spark: Any, world: Any
) -> None:
    # birth_year (int, pii): support has no grant, risk has one, customers owns the set.
    hidden = show(spark, world, "customers.profile", identity="bob@support")["statistics"]
    year = hidden["birth_year"]
    assert year["redacted"] is True
    assert (year["min"], year["max"], year["mean"], year["stddev"]) == (None, None, None, None)
    assert (year["quantiles"], year["histogram"]) == ({}, None)
    assert (year["count"], year["nulls"]) == (12, 0)
    assert hidden["credit_limit"]["max"] is not None  # not personal: kept
    for who in (ANN, "etl@customers"):
        shown = show(spark, world, "customers.profile", identity=who)["statistics"]
        assert shown["birth_year"]["redacted"] is False
        assert shown["birth_year"]["min"] is not None and shown["birth_year"]["histogram"]


def test_show_withholds_the_measurements_of_data_checks_on_withheld_features(
    spark: Any, world: Any
) -> None:
    def data_checks(who: str) -> list[dict[str, Any]]:
        checks = show(spark, world, "customers.profile", identity=who)["checks"]
        return [
            c for c in checks if c["check"].startswith("data.") and c["feature"] == "birth_year"
        ]

    hidden, shown = data_checks("bob@support"), data_checks(ANN)
    assert [c["check"] for c in hidden] == [c["check"] for c in shown] != []
    assert all(c["measured"] is None and c["redacted"] for c in hidden)
    assert all(c["measured"] is not None and "redacted" not in c for c in shown)
    # A range check measures the feature's min and max, which the statistics withhold.
    assert _withhold(
        {
            "check": "data.range",
            "feature": "birth_year",
            "measured": [1945.0, 2004.0],
            "message": "data.range on birth_year (measured [1945.0, 2004.0])",
        },
        ["birth_year"],
    ) == {
        "check": "data.range",
        "feature": "birth_year",
        "measured": None,
        "message": "data.range on birth_year: values withheld (no read grant)",
        "redacted": True,
    }


def test_definition_duplicates_across_domains(world: Any) -> None:
    assert definition_duplicates(world) == []  # the example mesh has none
    spend = world.feature_sets["payments.customer_spend"]
    copy = spend.model_copy(update={"name": "spend_copy", "domain": "payments"})
    world.feature_sets["payments.spend_copy"] = copy
    try:
        found = definition_duplicates(world)
    finally:
        del world.feature_sets["payments.spend_copy"]
    assert ("payments.customer_spend.amount_sum_7d", "payments.spend_copy.amount_sum_7d") in {
        (d.left, d.right) for d in found
    }
    assert len(found) == len(spend.output_names())


def test_cli_catalog_commands(
    spark: Any, world: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_WAREHOUSE", world.warehouse)
    monkeypatch.setenv("MESH_IDENTITY", ANN)
    conf = CONF
    assert main(["--conf", conf, "catalog", "search", "--tag", "profile"]) == 0
    assert "customers.profile" in capsys.readouterr().out
    # A misspelt domain finds nothing, and says so.
    assert main(["--conf", conf, "catalog", "search", "--domain", "paymnts"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "0 feature set(s)",
        "note: --domain 'paymnts' is not declared in conf/mesh.yaml; did you mean 'payments'?",
    ]
    assert main(["--conf", conf, "catalog", "search", "--domain", "payments", "--tag", "x"]) == 0
    assert capsys.readouterr().out == "0 feature set(s)\n"  # a declared domain: no note
    assert main(["--conf", conf, "catalog", "versions", "payments.tx_amounts", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["semantic_version"] == "1.0.0"
    assert (
        main(
            [
                "--conf",
                conf,
                "catalog",
                "lineage",
                "risk.churn",
                "--direction",
                "upstream",
                "--depth",
                "1",
            ]
        )
        == 0
    )
    assert "-> training_set:risk.churn" in capsys.readouterr().out
    lineage_json = ["catalog", "lineage", "risk.churn", "--direction", "upstream", "--json"]
    assert main(["--conf", conf, *lineage_json, "--depth", "1"]) == 0
    assert sorted(e["source"] for e in json.loads(capsys.readouterr().out)) == [
        "feature_set:customers.profile",
        "global_feature_set:risk.customer_risk",
    ]
    assert main(["--conf", conf, "catalog", "show", "payments.nope"]) == 1
    assert "neither in the catalog nor defined in conf/; list" in capsys.readouterr().err


def _command_line(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from mesh.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, "--conf", CONF, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_catalog_lookups_on_the_command_line_start_no_spark(world: Any, tmp_path: Path) -> None:
    """Each command runs in a process of its own where Java cannot start: a lookup that
    started Spark would fail. Each also exits 0 or 1 as it should: reading the records
    through delta-rs's own filesystem could abort the process at exit (code 134)."""
    warehouse = tmp_path / "wh"  # a copy: the refusal below adds to the audit log
    shutil.copytree(world.warehouse, warehouse)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
    env.pop("MESH_DELTA_JARS", None)
    env |= {"MESH_WAREHOUSE": str(warehouse), "MESH_IDENTITY": ANN, "JAVA_HOME": "/nowhere"}
    lookups = {
        "search": (["catalog", "search", "--tag", "profile"], "customers.profile"),
        "versions": (["catalog", "versions", "payments.tx_amounts"], "1.0.0"),
        "show": (["catalog", "show", "payments.tx_amounts"], '"payments.tx_amounts"'),
        "lineage": (
            ["catalog", "lineage", "risk.churn", "--direction", "upstream"],
            "-> training_set:risk.churn",
        ),
    }
    for name, (args, expected) in lookups.items():
        done = _command_line(args, env)
        assert (name, done.returncode) == (name, 0), done.stderr[-2000:]
        assert expected in done.stdout, name
    # A refusal is recorded in the audit log, also without Spark.
    refused = ["catalog", "show", "risk.customer_risk", "--identity", "x@nowhere"]
    denied = _command_line(refused, env)
    assert denied.returncode == 1, denied.stderr[-2000:]
    assert "access denied: x@nowhere" in denied.stderr
    audit = _command_line(["catalog", "audit", "--decision", "denied"], env)
    assert audit.returncode == 0, audit.stderr[-2000:]
    assert "x@nowhere denied  risk.customer_risk" in audit.stdout
    as_json = _command_line(["catalog", "audit", "--decision", "denied", "--json"], env)
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    [logged] = [r for r in json.loads(as_json.stdout) if r["user"] == "x"]
    assert (logged["user"], logged["domain"], logged["feature_set"]) == (
        "x",
        "nowhere",
        "risk.customer_risk",
    )
    assert datetime.fromisoformat(logged["at"]).tzinfo is not None
    # A command that needs Spark starts it, and fails here: Java is out of reach.
    needs_spark = _command_line(["catalog", "duplicates"], env)
    assert needs_spark.returncode != 0
    assert "/nowhere" in needs_spark.stderr or "JAVA" in needs_spark.stderr


def test_a_metadata_only_publish_on_the_command_line_starts_no_spark(
    world: Any, tmp_path: Path
) -> None:
    """It computes nothing: the records it reads and appends go through delta-rs, as a
    lookup's do. Java is out of reach in its process, so starting Spark would fail it."""
    warehouse = tmp_path / "wh"
    shutil.copytree(world.warehouse, warehouse)
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    definition = conf / "domains" / "payments" / "tx_amounts.yaml"
    text = definition.read_text()
    old = "  description: Row-level attributes of each customer's latest transaction"
    assert old in text
    text = text.replace(old, old + " (EUR)").replace("ttl: 30d\n", "ttl: 30d\nversion: 1.0.1\n")
    definition.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
    env.pop("MESH_DELTA_JARS", None)
    env |= {"MESH_WAREHOUSE": str(warehouse), "MESH_IDENTITY": "etl@payments"}
    env["JAVA_HOME"] = "/nowhere"
    code = "import sys; from mesh.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["--conf", str(conf), "publish", "payments.tx_amounts", "--metadata-only"]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "published payments.tx_amounts 1.0.1 (patch: metadata.description" in done.stdout
    versions = _command_line(["catalog", "versions", "payments.tx_amounts"], env)
    assert versions.returncode == 0, versions.stderr[-2000:]
    assert [line.split()[:3] for line in versions.stdout.splitlines()[:2]] == [
        ["1.0.1", "delta", "v0"],
        ["1.0.0", "delta", "v0"],
    ]


def test_search_leaves_out_sets_the_caller_may_not_see(spark: Any, world: Any) -> None:
    def names(who: str) -> list[str]:
        return [e.name for e in search(spark, world, identity=who)]

    assert names("bob@support") == ["customers.profile", "payments.tx_amounts"]
    everything = ["customers.profile", "payments.tx_amounts", "risk.customer_risk"]
    assert names("pat@payments") == everything  # named in allowed_domains
    assert names(ANN) == everything  # the owning domain


def test_show_versions_and_lineage_of_a_hidden_set_are_denied_and_audited(
    spark: Any, world: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = "bob@support"
    calls = {
        "catalog show": lambda: show(spark, world, "risk.customer_risk", identity=bob),
        "catalog versions": lambda: versions(spark, world, "risk.customer_risk", identity=bob),
        "catalog lineage": lambda: lineage(spark, world, "risk.customer_risk", identity=bob),
    }
    for call in calls.values():
        with pytest.raises(AccessDeniedError) as info:
            call()
        assert info.value.params == {
            "identity": bob,
            "feature_set": "risk.customer_risk",
            "feature": None,
            "missing_grant": "risk.customer_risk metadata.allowed_domains: support",
        }
    denied = audit_log(
        spark, world, feature_set="risk.customer_risk", decision="denied", identity=ANN
    )
    assert sorted((r["user"], r["domain"], r["action"], r["purpose"]) for r in denied) == [
        ("bob", "support", "metadata", purpose) for purpose in sorted(calls)
    ]
    assert {tuple(r["missing_grants"]) for r in denied} == {
        ("risk.customer_risk metadata.allowed_domains: support",)
    }
    # Lineage of a set bob may see leaves the hidden set out and does not walk through it.
    down = lineage(spark, world, "customers.profile", "downstream", identity=bob)
    assert [str(e) for e in down] == ["feature_set:customers.profile -> training_set:risk.churn"]
    monkeypatch.setenv("MESH_WAREHOUSE", world.warehouse)
    show_risk = ["--conf", CONF, "catalog", "show", "risk.customer_risk"]
    assert main([*show_risk, "--identity", bob]) == 1
    assert "access denied: bob@support may not see risk.customer_risk" in capsys.readouterr().err
    assert main([*show_risk, "--identity", "pat@payments"]) == 0
    assert json.loads(capsys.readouterr().out)["entry"]["name"] == "risk.customer_risk"


def test_catalog_lookups_need_an_identity(
    spark: Any, world: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MESH_IDENTITY", raising=False)
    calls = [
        lambda: search(spark, world),
        lambda: show(spark, world, "payments.tx_amounts"),
        lambda: versions(spark, world, "payments.tx_amounts"),
        lambda: lineage(spark, world, "payments.tx_amounts"),
    ]
    for call in calls:
        with pytest.raises(AccessDeniedError) as info:
            call()
        assert (info.value.params["identity"], info.value.params["missing_grant"]) == (
            None,
            "MESH_IDENTITY",
        )
    monkeypatch.setenv("MESH_WAREHOUSE", world.warehouse)
    assert main(["--conf", CONF, "catalog", "search"]) == 1
    assert "no caller identity: MESH_IDENTITY is not set" in capsys.readouterr().err


def test_private_sets_are_hidden_from_other_domains_in_search(spark: Any, world: Any) -> None:
    # Runs last: makes customers.profile private with a metadata-only (patch) publish.
    fs = world.feature_sets["customers.profile"]
    meta = fs.metadata.model_copy(update={"visibility": "private"})
    publish_definition(
        spark,
        world,
        fs.model_copy(update={"metadata": meta, "version": "1.0.1"}),
        identity="etl@customers",
    )
    outsider = [e.name for e in search(spark, world, identity=Identity("bob", "support"))]
    owner = [e.name for e in search(spark, world, identity=Identity("cus", "customers"))]
    assert "customers.profile" not in outsider and "payments.tx_amounts" in outsider
    assert "customers.profile" in owner


def test_show_keeps_no_values_of_personal_text_features(
    spark: Any,
    mesh: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mesh.catalog.tables import Catalog
    from mesh.governance import gate

    # A publish that stored the values (as before they were withheld at publish).
    monkeypatch.setattr(gate, "protected_columns", lambda fs: [])
    fs = mesh.feature_sets["customers.profile"]
    features = [
        f.model_copy(update={"pii": "pii"}) if f.name == "country" else f for f in fs.features
    ]
    personal = fs.model_copy(update={"features": features})
    df = frame(spark, profile_rows(), PROFILE_SCHEMA)
    publish_feature_set(
        spark, mesh, personal, df, start=START, end=END, identity="etl@customers", as_of=END
    )
    (row,) = Catalog(spark, mesh.warehouse).rows("statistics", feature="country")
    assert '"NL"' in row["stats_json"]

    shown = show(spark, mesh, "customers.profile", identity="bob@support")["statistics"]
    assert (shown["country"]["histogram"], shown["country"]["redacted"]) == (None, True)
    assert (shown["country"]["count"], shown["country"]["distinct"]) == (12, 3)
    assert shown["segment"]["histogram"]["values"] == ["a", "b"]  # a `none` feature
    monkeypatch.setenv("MESH_WAREHOUSE", mesh.warehouse)
    assert main(["--conf", CONF, "catalog", "show", "customers.profile"]) == 0
    out = capsys.readouterr().out
    assert '"NL"' not in out and '"DE"' not in out and json.loads(out)["statistics"]["segment"]


def test_sets_never_published_are_hidden_too(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # payments.tx_events is internal to payments and risk in conf/ and never published; risk
    # built a training set over it (allow_unpublished), so lineage records it.
    mesh = make_mesh(tmp_path / "wh")
    publish_feature_set(
        spark,
        mesh,
        mesh.feature_sets["customers.profile"],
        frame(spark, profile_rows(), PROFILE_SCHEMA),
        start=START,
        end=END,
        identity="etl@customers",
        as_of=END,
    )
    manifest = {
        "inputs": [{"feature_set": "payments.tx_events"}, {"feature_set": "customers.profile"}]
    }
    record_training_set(
        spark,
        mesh,
        mesh.training_sets["risk.churn"],
        manifest,
        table_path="training/risk/churn",
        recorder=ANN,
    )
    bob = "bob@support"
    with pytest.raises(AccessDeniedError) as info:
        lineage(spark, mesh, "payments.tx_events", identity=bob)
    assert info.value.params["feature_set"] == "payments.tx_events"
    up = [str(e) for e in lineage(spark, mesh, "training_set:risk.churn", "upstream", identity=bob)]
    assert not any("tx_events" in e for e in up) and up
    assert any(
        "tx_events" in str(e) for e in lineage(spark, mesh, "payments.tx_events", identity=ANN)
    )
    export_catalog(spark, mesh, "openlineage", tmp_path / "out", identity=bob)
    assert "tx_events" not in (tmp_path / "out/openlineage/events.json").read_text()


def test_sources_of_a_visible_set_leave_out_hidden_ones(spark: Any, world: Any) -> None:
    carol = "carol@payments"  # may see risk.customer_risk (internal to risk and payments)
    source = "feature_set:support.ticket_stats"
    assert source in show(spark, world, "risk.customer_risk", identity=carol)["entry"]["sources"]
    stats = world.feature_sets["support.ticket_stats"]
    meta = stats.metadata.model_copy(update={"visibility": "private"})
    world.feature_sets["support.ticket_stats"] = stats.model_copy(update={"metadata": meta})
    try:
        shown = show(spark, world, "risk.customer_risk", identity=carol)
        entry = shown["entry"]
        (found,) = [e for e in search(spark, world, identity=carol) if e.domain == "risk"]
        listed = versions(spark, world, "risk.customer_risk", identity=carol)
    finally:
        world.feature_sets["support.ticket_stats"] = stats
    assert source not in entry["sources"] and source not in found.sources
    # Nor does the stored definition of its versions name them (show, or versions).
    for definition in (shown["versions"][0]["definition_json"], listed[0].definition_json):
        inputs = json.loads(definition)["inputs"]
        assert (inputs["tickets_30d"], inputs["csat"]) == ("<hidden>", "<hidden>")
        assert inputs["spend_30d"] == "payments.customer_spend.amount_sum_30d"
    assert "feature_set:payments.customer_spend" in entry["sources"]


def test_show_withholds_statistics_of_features_conf_now_classifies_personal(
    spark: Any, mesh: Any
) -> None:
    # Published with country and credit_limit classed `none`; conf/ classes them `pii` now,
    # so a caller without a grant may no longer read them, nor see their values here. The
    # published class of birth_year (`pii`) still applies while conf/ says `none`.
    fs = mesh.feature_sets["customers.profile"]
    df = frame(spark, profile_rows(), PROFILE_SCHEMA)
    publish_feature_set(
        spark, mesh, fs, df, start=START, end=END, identity="etl@customers", as_of=END
    )
    classes = {"country": "pii", "credit_limit": "pii", "birth_year": "none"}
    features = [
        f.model_copy(update={"pii": classes[f.name]}) if f.name in classes else f
        for f in fs.features
    ]
    mesh.feature_sets["customers.profile"] = fs.model_copy(update={"features": features})

    shown = show(spark, mesh, "customers.profile", identity="bob@support")["statistics"]
    limit, country = shown["credit_limit"], shown["country"]
    assert (limit["redacted"], limit["min"], limit["max"], limit["histogram"]) == (
        True,
        None,
        None,
        None,
    )
    assert (country["redacted"], country["histogram"]) == (True, None)
    assert (limit["count"], country["distinct"]) == (12, 3)
    assert (shown["birth_year"]["redacted"], shown["birth_year"]["max"]) == (True, None)
    assert shown["segment"]["histogram"]["values"] == ["a", "b"]  # still `none`
    owner = show(spark, mesh, "customers.profile", identity="etl@customers")["statistics"]
    assert owner["credit_limit"]["max"] is not None


def test_value_duplicates_read_no_feature_published_as_pii_without_a_grant(
    spark: Any, mesh: Any
) -> None:
    # birth_year was published `pii`; conf/ declassifying it does not open the values the
    # table already holds to a domain without a grant (support has none).
    for name, rows, schema, owner in (
        ("customers.profile", profile_rows(), PROFILE_SCHEMA, "etl@customers"),
        ("payments.tx_amounts", amounts_rows(), AMOUNTS_SCHEMA, "etl@payments"),
    ):
        publish_feature_set(
            spark,
            mesh,
            mesh.feature_sets[name],
            frame(spark, rows, schema),
            start=START,
            end=END,
            identity=owner,
            as_of=END,
        )
    fs = mesh.feature_sets["customers.profile"]
    features = [f.model_copy(update={"pii": "none"}) for f in fs.features]
    mesh.feature_sets["customers.profile"] = fs.model_copy(update={"features": features})

    value_duplicates(spark, mesh, threshold=0.99, min_overlap=1, identity="bob@support")
    rows = audit_log(spark, mesh, feature_set="customers.profile", identity="bob@support")
    (read,) = [r for r in rows if r["purpose"] == "duplicates"]
    assert sorted(read["features"]) == ["country", "credit_limit", "segment"]


def test_version_reasons_name_no_input_set_the_caller_may_not_see(spark: Any, mesh: Any) -> None:
    risk = mesh.global_sets["risk.customer_risk"]
    rows = [
        (cid, ts, ts, amount, float(cid) / 7, False) for cid, ts, _, amount, _ in amounts_rows()
    ]
    for fs in (
        risk,
        risk.model_copy(
            update={
                "version": "2.0.0",
                "inputs": {**risk.inputs, "tickets_30d": "support.ticket_stats.tickets_7d"},
            }
        ),
    ):
        mesh.global_sets[fs.qualified_name] = fs
        publish_feature_set(
            spark,
            mesh,
            fs,
            frame(spark, rows, RISK_SCHEMA),
            start=START,
            end=END,
            identity="job@risk",
            as_of=END,
        )
    carol = "carol@payments"  # may see risk.customer_risk and, at first, support.ticket_stats
    (seen, _) = [v.reasons for v in versions(spark, mesh, "risk.customer_risk", identity=carol)]
    assert seen == [
        "input tickets_30d: support.ticket_stats.tickets_30d -> support.ticket_stats.tickets_7d"
    ]
    stats = mesh.feature_sets["support.ticket_stats"]
    meta = stats.metadata.model_copy(update={"visibility": "private"})
    mesh.feature_sets["support.ticket_stats"] = stats.model_copy(update={"metadata": meta})
    listed = versions(spark, mesh, "risk.customer_risk", identity=carol)
    shown = show(spark, mesh, "risk.customer_risk", identity=carol)["versions"]
    for reasons in (listed[0].reasons, shown[0]["reasons"]):
        assert reasons == ["input tickets_30d: <hidden> -> <hidden>"]


def _profile_and_limits(spark: Any, mesh: Any, **fields: Any) -> tuple[Any, Any, Any]:
    """customers.profile published over [START, END) (the set, its rows) and risk.limits,
    half its credit limit, defined (with ``fields``) but not published."""
    from mesh.definitions import GlobalFeatureSet

    profile = mesh.feature_sets["customers.profile"]
    rows = frame(spark, profile_rows(), PROFILE_SCHEMA)
    publish_feature_set(
        spark, mesh, profile, rows, start=START, end=END, identity="etl@customers", as_of=END
    )
    feature = {"kind": "expression", "name": "half_limit", "expr": "limit / 2", "type": "double"}
    limits = GlobalFeatureSet.model_validate(
        {
            "name": "limits",
            "domain": "risk",
            "entity": "customer",
            "inputs": {"limit": "customers.profile.credit_limit"},
            "features": [{**feature, "pii": "none", "description": "Half the credit limit"}],
            "metadata": {
                "owner": "risk-team@example.com",
                "description": "Credit limits",
                "visibility": "internal",
                "allowed_domains": ["risk"],
            },
            **fields,
        }
    )
    mesh.global_sets[limits.qualified_name] = limits
    return profile, limits, rows


def test_lineage_follows_a_global_sets_inputs_at_the_versions_its_publish_read(
    spark: Any, mesh: Any
) -> None:
    from mesh.catalog.run import publish_range
    from mesh.catalog.tables import Catalog

    profile, limits, rows = _profile_and_limits(spark, mesh)
    published = publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    read = Catalog(spark, mesh.warehouse).rows("lineage", publish_id=published.publish_id)
    assert [(r["from_name"], r["from_version"]) for r in read] == [("customers.profile", "1.0.0")]
    # customers.profile 2.0.0 is computed from another data product; risk.limits still
    # holds what profile 1.0.0 gave, and so does a metadata-only publish of it.
    product = mesh.products["customers.customer_profiles"]
    mesh.products["customers.profiles_v2"] = product.model_copy(update={"name": "profiles_v2"})
    profile_2 = profile.model_copy(update={"source": "profiles_v2", "version": "2.0.0"})
    mesh.feature_sets[profile.qualified_name] = profile_2
    publish_feature_set(
        spark, mesh, profile_2, rows, start=START, end=END, identity="etl@customers", as_of=END
    )
    meta = limits.metadata.model_copy(update={"description": "Credit limits, halved"})
    documented = limits.model_copy(update={"metadata": meta, "version": "1.0.1"})
    mesh.global_sets[limits.qualified_name] = documented
    assert publish_definition(spark, mesh, documented, identity="job@risk").bump == "patch"
    into_profile = "data_product:customers.{} -> feature_set:customers.profile"
    into_limits = "feature_set:customers.profile -> global_feature_set:risk.limits"
    for version in ("1.0.0", "1.0.1", None):
        found = lineage(spark, mesh, "risk.limits", "upstream", identity=ANN, version=version)
        assert [str(e) for e in found] == [into_profile.format("customer_profiles"), into_limits]
    found = lineage(spark, mesh, "customers.profile", "upstream", identity=ANN)
    assert [str(e) for e in found] == [into_profile.format("profiles_v2")]


def test_a_global_sets_publish_over_part_of_its_table_names_the_inputs_of_the_rows_it_keeps(
    spark: Any, mesh: Any
) -> None:
    from datetime import timedelta

    from mesh.catalog.run import publish_range
    from mesh.catalog.tables import Catalog

    # Its last days differ from all of them (new values, fewer rows): no drift check.
    profile, _, _ = _profile_and_limits(spark, mesh, quality={"max_psi": 100.0})
    publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    # profile 1.0.1 (new values) lands; risk.limits recomputes its last days only.
    meta = profile.metadata.model_copy(update={"description": "Profiles, corrected"})
    profile_1 = profile.model_copy(update={"version": "1.0.1", "metadata": meta})
    mesh.feature_sets[profile.qualified_name] = profile_1
    changed = frame(spark, profile_rows(shift=3), PROFILE_SCHEMA)
    publish_feature_set(
        spark, mesh, profile_1, changed, start=START, end=END, identity="etl@customers", as_of=END
    )
    cut = START + timedelta(days=5)
    partial = publish_range(
        spark, mesh, "risk.limits", start=cut, end=END, identity="job@risk", as_of=END
    )
    read = Catalog(spark, mesh.warehouse).rows("lineage", publish_id=partial.publish_id)
    assert sorted((r["from_name"], r["from_version"]) for r in read) == [
        ("customers.profile", "1.0.0"),
        ("customers.profile", "1.0.1"),
    ]
    # Over the whole table, no row of an earlier publish stays: only what it read now.
    whole = publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    read = Catalog(spark, mesh.warehouse).rows("lineage", publish_id=whole.publish_id)
    assert [(r["from_name"], r["from_version"]) for r in read] == [("customers.profile", "1.0.1")]


def test_a_lineage_table_an_earlier_engine_created_takes_the_source_versions(
    spark: Any, tmp_path: Path
) -> None:
    from datetime import datetime, timezone

    from mesh.catalog.tables import SCHEMAS, Catalog
    from mesh.storage import CommitInfo, open_table

    catalog = Catalog(spark, str(tmp_path / "wh"))
    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    old = [(n, t) for n, t in SCHEMAS["lineage"] if n != "from_version"]
    edge = {"publish_id": "p1", "from_kind": "feature_set", "from_name": "customers.profile"}
    edge |= {"to_kind": "global_feature_set", "to_name": "risk.limits", "to_version": "1.0.0"}
    earlier = spark.createDataFrame(
        [tuple({**edge, "recorded_at": at}[n] for n, _ in old)],
        ", ".join(f"`{n}` {t}" for n, t in old),
    )
    open_table(spark, catalog.path("lineage")).append(
        earlier, CommitInfo(run_id="p1", operation="catalog_publish")
    )
    newer = {**edge, "publish_id": "p2", "from_version": "1.0.0", "recorded_at": at}
    catalog.append("lineage", [newer], CommitInfo(run_id="p2", operation="catalog_publish"))
    got = sorted((r["publish_id"], r["from_version"]) for r in catalog.rows("lineage"))
    assert got == [("p1", None), ("p2", "1.0.0")]
