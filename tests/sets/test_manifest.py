"""Manifests without Spark: what an invalid one is refused with, and its inputs' options
checked against the definitions they pin (``mesh.sets.pinned``)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sets_data import CONF

from mesh.definitions import MeshDefinition, load_mesh
from mesh.errors import ConfigProblem
from mesh.sets import ManifestError, read_manifest
from mesh.sets.manifest import InputPin, Manifest, OutputPin, SpinePin
from mesh.sets.pinned import verify_options
from mesh.sets.training import training_definition_hash

TEN_DAYS = 10 * 86400.0


@pytest.fixture(scope="module")
def mesh() -> MeshDefinition:
    return load_mesh(CONF)


def manifest_of(mesh: MeshDefinition, **spend: object) -> Manifest:
    """A manifest of ``risk.train`` as a build writes it, ``payments.spend``'s pin updated."""
    pin = InputPin(
        feature_set="payments.spend",
        semantic_version="1.0.0",
        delta_version=0,
        definition_hash=mesh.data_hash(mesh.any_set("payments.spend")),
        run_id="r0",
        table="features/payments/spend/v1",
        keys=("customer_id",),
        features={"amount": "amount", "tx_count": "tx_count"},
        ttl_seconds=TEN_DAYS,
        exclude_late_data=True,
    )
    return Manifest(
        training_set="risk.train",
        definition_hash=training_definition_hash(mesh.training_sets["risk.train"]),
        engine_version="0.1.0",
        run_id="run-1",
        built_at=datetime(2024, 2, 1, tzinfo=timezone.utc),
        warehouse="/wh",
        spine=SpinePin(
            path="products/risk/labels",
            format="delta",
            timestamp="label_ts",
            delta_version=0,
            row_count=5,
            checksum="1",
        ),
        inputs=(pin.model_copy(update=spend),),
        columns=("customer_id", "label_ts", "churned", "amount", "tx_count"),
        output=OutputPin(path="training/risk/train", delta_version=0, row_count=5),
    )


def test_an_invalid_manifest_names_the_field_and_what_was_found(mesh, tmp_path: Path) -> None:
    doc = json.loads(manifest_of(mesh).to_json())
    doc["inputs"][0]["ttl_seconds"] = "30 days"
    doc["spine"]["row_countt"] = doc["spine"].pop("row_count")
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ManifestError) as err:
        read_manifest(str(path))
    problems = err.value.params["problems"]
    assert all(isinstance(p, ConfigProblem) for p in problems)
    assert {p.field: p.found for p in problems} == {
        "inputs[0].ttl_seconds": "30 days",
        "spine.row_count": None,
        "spine.row_countt": 5,
    }
    message = err.value.message
    assert "inputs[0].ttl_seconds: Input should be a valid number" in message
    assert "(found '30 days')" in message
    assert "spine.row_countt: unknown field `row_countt` (did you mean `row_count`?)" in message
    # Not JSON at all: said so, nothing to name.
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not JSON") as bad:
        read_manifest(str(path))
    assert bad.value.params["problems"] == []


def test_options_of_the_pinned_definition_pass(mesh) -> None:
    spec = mesh.training_sets["risk.train"]
    verify_options(mesh, manifest_of(mesh), {}, spec)
    # The training set may turn the late-data rule off; without its spec that is allowed.
    verify_options(mesh, manifest_of(mesh, exclude_late_data=False), {})


@pytest.mark.parametrize(
    ("edit", "field", "recorded"),
    [
        ({"ttl_seconds": 1.0}, "inputs[0].ttl_seconds", TEN_DAYS),
        ({"ttl_seconds": None}, "inputs[0].ttl_seconds", TEN_DAYS),
        ({"exclude_late_data": False}, "inputs[0].exclude_late_data", True),
        ({"features": {"amount": "amount", "amount_x": "tx_count"}}, "inputs[0].features", None),
    ],
)
def test_an_edited_option_is_refused_against_conf(mesh, edit, field, recorded) -> None:
    # Not in the catalog (built with allow_unpublished): conf/'s definition has the hash.
    spec = mesh.training_sets["risk.train"]
    with pytest.raises(ManifestError) as err:
        verify_options(mesh, manifest_of(mesh, **edit), {}, spec)
    params = err.value.params
    assert (params["feature_set"], params["field"]) == ("payments.spend", field)
    assert params["manifest_value"] == (
        ["amount_x"] if field.endswith("features") else next(iter(edit.values()))
    )
    if recorded is not None:
        assert params["recorded_value"] == recorded
    assert "the manifest was edited or is damaged" in err.value.message
    assert "as conf/ defines it" in err.value.message


def test_strict_is_checked_against_the_training_sets_definition(mesh) -> None:
    spec = mesh.training_sets["risk.train"]
    edited = manifest_of(mesh).model_copy(update={"strict": not spec.strict})
    with pytest.raises(ManifestError) as err:
        verify_options(mesh, edited, {}, spec)
    assert err.value.params["field"] == "strict"
    verify_options(mesh, edited, {})  # another definition of the training set: not compared


def test_inputs_whose_definition_is_unknown_are_not_compared(mesh) -> None:
    # An older manifest without definition_hash, and one whose definition is in neither the
    # catalog nor conf/ (conf/ changed since): nothing to compare with, so not refused.
    verify_options(mesh, manifest_of(mesh, ttl_seconds=1.0, definition_hash=None), {})
    verify_options(mesh, manifest_of(mesh, ttl_seconds=1.0, definition_hash="0" * 16), {})
