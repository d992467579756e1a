"""Manifests without Spark: what an invalid one is refused with, and its inputs' options,
keys, lookups and column names checked against the definitions they pin and the spine
(``mesh.sets.pinned``)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sets_data import CONF

from mesh.catalog.search import VersionRecord
from mesh.definitions import FeatureLookup, MeshDefinition, TrainingSet, load_mesh
from mesh.definitions.binding import published_definition
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
    """A manifest of ``risk.train`` as a build writes it, ``payments.spend``'s pin (its first
    input) updated."""
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
    tickets = pin.model_copy(
        update={
            "feature_set": "support.tickets",
            "definition_hash": mesh.data_hash(mesh.any_set("support.tickets")),
            "table": "features/support/tickets/v1",
            "features": {"tickets": "tickets"},
            "ttl_seconds": None,
        }
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
            columns=("customer_id:bigint", "label_ts:timestamp", "churned:boolean"),
        ),
        inputs=(pin.model_copy(update=spend), tickets),
        columns=("customer_id", "label_ts", "churned", "amount", "tx_count", "tickets"),
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
        "spine.row_countt": 5,  # one problem: the misspelt field, not also a missing one
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


def _record(mesh: MeshDefinition, name: str, keys: dict[str, str]) -> VersionRecord:
    """The catalog's version row of ``name``, published with ``keys`` as its entity's keys."""
    definition = mesh.any_set(name)
    binding = mesh.binding(definition).model_copy(update={"keys": keys})
    return VersionRecord(
        publish_id="p1",
        name=name,
        domain=definition.domain,
        semantic_version="1.0.0",
        major=1,
        delta_version=0,
        table_path="features/payments/spend/v1",
        data_hash=mesh.data_hash(definition),
        metadata_hash=definition.metadata_hash(),
        definition_json=json.dumps(published_definition(definition, binding)),
        bump="major",
        reasons=[],
        range_start=None,
        range_end=None,
        row_count=4,
        published_at=datetime(2024, 1, 10, tzinfo=timezone.utc),
        publisher="etl@payments",
        run_id="r0",
    )


def test_keys_are_the_entitys_as_the_pinned_definition_was_published(mesh) -> None:
    spec = mesh.training_sets["risk.train"]
    edited = manifest_of(mesh, keys=("tx_count",))
    with pytest.raises(ManifestError) as err:
        verify_options(mesh, edited, {}, spec, "/wh/training/risk/train/_manifest.json")
    params = err.value.params
    assert (params["field"], params["manifest_value"], params["recorded_value"]) == (
        "inputs[0].keys",
        ["tx_count"],
        ["customer_id"],
    )
    assert params["path"] == "/wh/training/risk/train/_manifest.json"
    assert err.value.message.startswith(
        "Manifest /wh/training/risk/train/_manifest.json of risk.train: inputs[0].keys "
        "(payments.spend) is ['tx_count'], but the definition it pins (definition_hash "
    )
    assert "as conf/ defines it) gives the key columns customer_id" in err.value.message
    # The catalog's record of the pinned definition holds the keys it was published with.
    published = {"payments.spend": [_record(mesh, "payments.spend", {"client_id": "bigint"})]}
    with pytest.raises(ManifestError) as err:
        verify_options(mesh, manifest_of(mesh), published, spec)
    assert err.value.params["recorded_value"] == ["client_id"]
    assert "as the catalog recorded it with version 1.0.0" in err.value.message
    # Of several keys, the order pairs them with spine_keys; the table's has no meaning.
    two = {"customer_id": "bigint", "account_id": "bigint"}
    manifest = manifest_of(mesh, keys=("account_id", "customer_id"))
    spine = manifest.spine.model_copy(
        update={"columns": (*manifest.spine.columns, "account_id:int")}
    )
    published = {"payments.spend": [_record(mesh, "payments.spend", two)]}
    verify_options(mesh, manifest.model_copy(update={"spine": spine}), published)


@pytest.mark.parametrize(
    ("edit", "field", "recorded"),
    [
        # Matched on a column the spine does not have.
        ({"keys": ("client_id",), "definition_hash": None}, "inputs[0].keys", None),
        ({"spine_keys": ("payer_id",)}, "inputs[0].spine_keys", None),
        # One spine column per key.
        ({"spine_keys": ("customer_id", "label_ts")}, "inputs[0].spine_keys", ["customer_id"]),
        # An output column not named by the prefix.
        ({"features": {"amount": "spend", "tx_count": "tx_count"}}, "inputs[0].features", "amount"),
        ({"prefix": "payer_"}, "inputs[0].features", "payer_amount"),
    ],
)
def test_lookups_and_names_are_checked_against_the_spine_and_the_prefix(
    mesh, edit, field, recorded
) -> None:
    # Without the training set's definition (changed since): the manifest's own spine and
    # prefix still say how its inputs are matched and named.
    with pytest.raises(ManifestError) as err:
        verify_options(mesh, manifest_of(mesh, **edit), {})
    params = err.value.params
    assert (params["feature_set"], params["field"]) == ("payments.spend", field)
    if recorded is not None:
        assert params["recorded_value"] == recorded
    else:
        assert params["recorded_value"] == list(manifest_of(mesh).spine.columns)
    assert "the manifest was edited or is damaged" in err.value.message
    # A name qualified by the set, as a build names a repeated one, is the prefix's too.
    qualified = {"amount": "payments__spend__amount", "tx_count": "tx_count"}
    verify_options(mesh, manifest_of(mesh, features=qualified), {})


def _roles(mesh: MeshDefinition) -> tuple[TrainingSet, Manifest]:
    """A training set looking ``payments.spend`` up as payer and payee, and its manifest."""
    lookups = [
        FeatureLookup(
            features=("payments.spend.amount",),
            keys={"customer_id": f"{role}_id"},
            prefix=f"{role}_",
        )
        for role in ("payer", "payee")
    ]
    spec = TrainingSet.model_validate(
        {
            "name": "pairs",
            "domain": "risk",
            "spine": {"path": "products/risk/payments", "timestamp": "label_ts"},
            "features": lookups,
        }
    )
    base = manifest_of(mesh).inputs[0]
    inputs = tuple(
        base.model_copy(
            update={
                "spine_keys": (f"{role}_id",),
                "prefix": f"{role}_",
                "features": {"amount": f"{role}_amount"},
            }
        )
        for role in ("payer", "payee")
    )
    columns = ("payer_id:bigint", "payee_id:bigint", "label_ts:timestamp")
    manifest = manifest_of(mesh).model_copy(
        update={
            "training_set": "risk.pairs",
            "definition_hash": training_definition_hash(spec),
            "inputs": inputs,
            "spine": manifest_of(mesh).spine.model_copy(update={"columns": columns}),
        }
    )
    return spec, manifest


def _edited(manifest: Manifest, index: int, **update: object) -> Manifest:
    inputs = list(manifest.inputs)
    inputs[index] = inputs[index].model_copy(update=update)
    return manifest.model_copy(update={"inputs": tuple(inputs)})


@pytest.mark.parametrize(
    ("index", "edit", "field", "value", "recorded"),
    [
        # The payer's features looked up on the payee's column: other rows, silently.
        (0, {"spine_keys": ("payee_id",)}, "inputs[0].spine_keys", ["payee_id"], ["payer_id"]),
        (1, {"spine_keys": None}, "inputs[1].spine_keys", None, ["payee_id"]),
        # Named consistently with the prefix, yet not as the definition names it.
        (
            1,
            {"prefix": "to_", "features": {"amount": "to_amount"}},
            "inputs[1].prefix",
            "to_",
            "payee_",
        ),
    ],
)
def test_lookups_are_the_training_sets_definitions(
    mesh, index, edit, field, value, recorded
) -> None:
    spec, manifest = _roles(mesh)
    verify_options(mesh, manifest, {}, spec)
    # The inputs in another order are the same lookups.
    swapped = manifest.model_copy(update={"inputs": manifest.inputs[::-1]})
    verify_options(mesh, swapped, {}, spec)
    with pytest.raises(ManifestError) as err:
        verify_options(mesh, _edited(manifest, index, **edit), {}, spec)
    params = err.value.params
    assert (params["field"], params["manifest_value"], params["recorded_value"]) == (
        field,
        value,
        recorded,
    )
    assert "the training set's definition (definition_hash" in err.value.message


def test_inputs_are_one_per_lookup_of_the_training_sets_definition(mesh) -> None:
    spec, manifest = _roles(mesh)
    with pytest.raises(ManifestError) as err:
        verify_options(mesh, manifest.model_copy(update={"inputs": manifest.inputs[:1]}), {}, spec)
    assert (err.value.params["field"], err.value.params["recorded_value"]) == (
        "inputs",
        ["payments.spend"],
    )
    assert "inputs has no input for a lookup of payments.spend" in err.value.message
    doubled = manifest.model_copy(update={"inputs": (*manifest.inputs, manifest.inputs[0])})
    with pytest.raises(ManifestError) as err:
        verify_options(mesh, doubled, {}, spec)
    assert err.value.params["field"] == "inputs[2].feature_set"
