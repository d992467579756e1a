"""Exports: golden files for each format, validated with the ecosystem's own libraries.

Regenerate the golden files with ``MESH_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from mesh.catalog.export import ExportInput, render
from mesh.catalog.export.atlas import entities, typedefs
from mesh.catalog.export.datahub import proposals
from mesh.catalog.export.odcs import contract
from mesh.catalog.lineage import Edge
from mesh.catalog.search import CatalogEntry, VersionRecord
from mesh.errors import CatalogError

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "catalog"
AT = datetime(2024, 2, 1, 12, 0, tzinfo=timezone.utc)


def _input() -> ExportInput:
    spend = CatalogEntry(
        name="payments.spend",
        domain="payments",
        kind="feature_set",
        entity="customer",
        owner="payments-team@example.com",
        description="Daily spend",
        tags=["spend"],
        visibility="public",
        allowed_domains=[],
        sources=["data_product:payments.transactions"],
        features=[
            {
                "name": "amount_sum_7d",
                "feature": "amount_sum",
                "kind": "aggregation",
                "type": "double",
                "pii": "none",
                "description": "Total amount",
                "tags": [],
            },
            {
                "name": "tx_count_7d",
                "feature": "tx_count",
                "kind": "aggregation",
                "type": "bigint",
                "pii": "none",
                "description": "Transactions",
                "tags": [],
            },
        ],
        semantic_version="1.1.0",
        published_at=AT,
    )
    profile = CatalogEntry(
        name="customers.profile",
        domain="customers",
        kind="feature_set",
        entity="customer",
        owner="customers-team@example.com",
        description="Profile",
        tags=["profile"],
        visibility="internal",
        allowed_domains=["risk"],
        sources=["data_product:customers.customer_profiles"],
        features=[
            {
                "name": "birth_year",
                "feature": "birth_year",
                "kind": "column",
                "type": "int",
                "pii": "pii",
                "description": "Year of birth",
                "tags": [],
            }
        ],
        semantic_version="1.0.0",
        published_at=AT,
    )
    risk = CatalogEntry(
        name="risk.score",
        domain="risk",
        kind="global_feature_set",
        entity="customer",
        owner=None,
        description="Risk",
        tags=[],
        visibility="internal",
        allowed_domains=[],
        sources=["feature_set:payments.spend", "feature_set:customers.profile"],
        features=[
            {
                "name": "score",
                "feature": "score",
                "kind": "expression",
                "type": "double",
                "pii": "none",
                "description": "",
                "tags": [],
            }
        ],
        semantic_version="2.0.0",
        published_at=AT,
    )

    def version(entry: CatalogEntry, n: int) -> VersionRecord:
        return VersionRecord(
            publish_id=uuid.UUID(int=n).hex,
            name=entry.name,
            domain=entry.domain,
            semantic_version=entry.semantic_version,
            major=int(entry.semantic_version[0]),
            delta_version=n,
            table_path=f"/wh/features/{entry.name.replace('.', '/')}/v1",
            data_hash=f"hash{n}",
            metadata_hash=f"meta{n}",
            definition_json="{}",
            bump="initial",
            reasons=[],
            range_start=None,
            range_end=None,
            row_count=10,
            published_at=AT,
            publisher="etl",
            run_id="r",
        )

    entries = [profile, spend, risk]
    return ExportInput(
        mesh_name="example-mesh",
        entries=entries,
        versions={e.name: version(e, i + 1) for i, e in enumerate(entries)},
        edges=[
            Edge("data_product:customers.customer_profiles", "feature_set:customers.profile"),
            Edge("data_product:payments.transactions", "feature_set:payments.spend"),
            Edge("feature_set:customers.profile", "global_feature_set:risk.score"),
            Edge("feature_set:payments.spend", "global_feature_set:risk.score"),
            Edge("global_feature_set:risk.score", "training_set:risk.churn"),
        ],
        keys={"customer": {"customer_id": "bigint"}},
        quality={"min_rows": 1, "max_null_rate": 0.6},
        trainings=[("risk.churn", AT, {"inputs": [{"feature_set": "risk.score"}]})],
    )


@pytest.mark.parametrize("fmt", ["atlas", "openlineage", "datahub", "odcs"])
def test_exports_match_golden_files(fmt: str) -> None:
    files = render(_input(), fmt)
    assert files
    for name, text in files.items():
        golden = GOLDEN / name
        if os.environ.get("MESH_UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text)
        assert golden.is_file(), f"missing golden file {golden}; run with MESH_UPDATE_GOLDEN=1"
        assert text == golden.read_text(), f"{name} differs from its golden file"


def test_atlas_entities_validate_against_the_typedefs_with_pyapacheatlas() -> None:
    from pyapacheatlas.core.whatif import WhatIfValidator

    validator = WhatIfValidator(type_defs=typedefs())
    found = entities(_input())["entities"]
    assert validator.validate_entities(found)["total"] == 0
    broken = [dict(found[0], attributes={"qualifiedName": "x", "name": "x"})]  # no domain
    report = validator.validate_entities(broken)
    assert report["counts"]["MissingRequiredAttributes"] == 1


def test_atlas_marks_pii_features_and_builds_lineage_processes() -> None:
    found = entities(_input())["entities"]
    birth = next(e for e in found if e["attributes"]["name"] == "birth_year")
    assert birth["classifications"] == [{"typeName": "PII"}]
    process = next(
        e for e in found if e["attributes"]["qualifiedName"] == "build:risk.score@example-mesh"
    )
    assert sorted(
        i["uniqueAttributes"]["qualifiedName"] for i in process["attributes"]["inputs"]
    ) == ["customers.profile@example-mesh", "payments.spend@example-mesh"]


def test_openlineage_events_are_built_by_the_openlineage_client() -> None:
    from dateutil import parser

    events = json.loads(render(_input(), "openlineage")["openlineage/events.json"])
    assert [e["job"]["name"] for e in events] == [
        "publish.customers.profile",
        "publish.payments.spend",
        "publish.risk.score",
        "build_training_set.risk.churn",
    ]
    for event in events:
        assert event["schemaURL"].startswith("https://openlineage.io/spec/")
        assert event["eventType"] == "COMPLETE"
        uuid.UUID(event["run"]["runId"])
        parser.isoparse(event["eventTime"])
    facets = events[2]["outputs"][0]["facets"]
    assert facets["version"]["datasetVersion"] == "3"
    assert [i["name"] for i in events[2]["inputs"]] == ["customers.profile", "payments.spend"]


def test_datahub_proposals_match_the_mcp_schema() -> None:
    schema = json.loads((GOLDEN / "datahub_mcp.schema.json").read_text())
    found = proposals(_input())
    jsonschema.validate(found, schema)
    broken = [dict(found[0], changeType="MERGE")]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_odcs_contracts_validate_with_the_standards_own_schema_and_model() -> None:
    from open_data_contract_standard.model import OpenDataContractStandard

    schema = json.loads(
        resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    )
    for name, text in render(_input(), "odcs").items():
        doc = yaml.safe_load(text)
        jsonschema.validate(doc, schema)
        OpenDataContractStandard.model_validate(doc)
        assert doc["apiVersion"] == "v3.0.2", name
    doc = contract(_input(), "customers.profile")
    props = {p["name"]: p for p in doc["schema"][0]["properties"]}
    assert props["customer_id"]["primaryKey"] is True
    assert props["birth_year"]["classification"] == "pii"
    del doc["kind"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_odcs_states_the_sets_own_thresholds() -> None:
    data = _input()
    quality = {"max_null_rate": {"birth_year": 0.95}, "ranges": {"birth_year": [1900, 2020]}}
    data.versions["customers.profile"] = dataclasses.replace(
        data.versions["customers.profile"], definition_json=json.dumps({"quality": quality})
    )
    doc = contract(data, "customers.profile")
    schema = json.loads(
        resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    )
    jsonschema.validate(doc, schema)
    props = {p["name"]: p for p in doc["schema"][0]["properties"]}
    rules = props["birth_year"]["quality"]
    assert [r.get("mustBeLessOrEqualTo", r.get("mustBe")) for r in rules] == [0.95, 0]
    assert "birth_year < 1900 OR birth_year > 2020" in rules[1]["query"]
    spend = contract(data, "payments.spend")["schema"][0]["properties"]
    (amount,) = [p for p in spend if p["name"] == "amount_sum_7d"]
    assert amount["quality"] == [dict(amount["quality"][0], mustBeLessOrEqualTo=0.6)]  # default


def test_an_export_out_folder_that_is_a_file_is_one_catalog_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mesh.catalog.export as export

    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    # Refused before the catalog is read (no Spark, no mesh needed).
    with pytest.raises(CatalogError) as err:
        export.export_catalog(None, None, "odcs", taken / "out")  # type: ignore[arg-type]
    assert err.value.params["out"] == str(taken / "out")
    assert err.value.params["path"] == str(taken)
    # A file where the format's folder goes is found only when writing.
    monkeypatch.setattr(export, "collect", lambda *args, **kwargs: _input())
    (tmp_path / "odcs").write_text("")
    with pytest.raises(CatalogError) as err:
        export.export_catalog(None, None, "odcs", tmp_path)  # type: ignore[arg-type]
    assert err.value.params["out"] == str(tmp_path)
    assert err.value.params["path"].startswith(str(tmp_path / "odcs"))


def test_odcs_range_rules_of_one_sided_bounds_check_only_the_bound_given() -> None:
    expected = {
        (1900, None): ("birth_year < 1900", "values at least 1900"),
        (None, 2020): ("birth_year > 2020", "values at most 2020"),
    }
    for (low, high), (where, description) in expected.items():
        data = _input()
        quality = {"ranges": {"birth_year": [low, high]}}
        data.versions["customers.profile"] = dataclasses.replace(
            data.versions["customers.profile"], definition_json=json.dumps({"quality": quality})
        )
        doc = contract(data, "customers.profile")
        (year,) = [p for p in doc["schema"][0]["properties"] if p["name"] == "birth_year"]
        rule = year["quality"][-1]
        assert rule["query"] == f"SELECT COUNT(*) FROM customers__profile WHERE {where}"
        assert (rule["description"], rule["mustBe"]) == (description, 0)
        assert "None" not in yaml.safe_dump(doc)
