"""Feature lookups: a feature set matched on spine columns of other names, in several roles."""

from __future__ import annotations

import shutil

import pytest
from chispa import assert_df_equality
from pydantic import ValidationError
from sets_data import CONF, jan

from mesh.definitions import FeatureLookup, TrainingSet, load_mesh
from mesh.errors import ConfigError
from mesh.sets import (
    SetBuildError,
    SpineError,
    UnknownReferenceError,
    build_inference_set,
    build_training_set,
    rebuild_training_set,
)
from mesh.storage import CommitInfo, open_table

PAYMENTS_SCHEMA = "payer_id bigint, payee_id bigint, label_ts timestamp"
PAYMENTS = [
    (1, 2, jan(2, 12)),  # payer 1: Jan 1 (10.0); payee 2: Jan 2 (20.0)
    (2, 1, jan(6)),  # payer 2: Jan 2; payee 1: Jan 3 (Jan 5's row is known on Jan 8)
    (1, 3, jan(9)),  # payer 1: Jan 5 (60.0); payee 3: nothing
    (2, 1, jan(20)),  # both past spend's 10-day TTL
    (3, 1, jan(12)),  # payer 3: nothing; payee 1: Jan 5, 7 days old
]
EXPECTED = [
    (1, 2, jan(2, 12), 10.0, 20.0),
    (2, 1, jan(6), 20.0, 30.0),
    (1, 3, jan(9), 60.0, None),
    (2, 1, jan(20), None, None),
    (3, 1, jan(12), None, 60.0),
]
OUT_SCHEMA = f"{PAYMENTS_SCHEMA}, payer_amount double, payee_amount double"


def _lookup(role: str, *refs: str, prefix: str | None = None) -> FeatureLookup:
    return FeatureLookup(
        features=refs or ("payments.spend.amount",),
        keys={"customer_id": f"{role}_id"},
        prefix=f"{role}_" if prefix is None else prefix,
    )


def _spec(*features: str | FeatureLookup) -> TrainingSet:
    return TrainingSet.model_validate(
        {
            "name": "payments_pairs",
            "domain": "risk",
            "spine": {"path": "products/risk/payments", "timestamp": "label_ts"},
            "features": features,
        }
    )


def _write_spine(wh) -> None:
    df = wh.spark.createDataFrame(PAYMENTS, PAYMENTS_SCHEMA)
    table = open_table(wh.spark, str(wh.root / "products/risk/payments"))
    table.append(df, CommitInfo(run_id="spine", operation="spine"))


def test_training_set_looks_one_set_up_in_two_roles_and_rebuilds(wh) -> None:
    _write_spine(wh)
    result = build_training_set(wh.spark, wh.mesh, _spec(_lookup("payer"), _lookup("payee")))
    expected = wh.spark.createDataFrame(EXPECTED, OUT_SCHEMA)
    built = open_table(wh.spark, result.path).read()
    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)

    pins = {p.prefix: p for p in result.manifest.inputs}
    assert pins["payer_"].spine_keys == ("payer_id",)
    assert pins["payee_"].features == {"amount": "payee_amount"}
    assert pins["payee_"].keys == ("customer_id",)

    with pytest.warns(RuntimeWarning, match="not among the mesh.s training sets"):  # made here
        rebuilt = rebuild_training_set(wh.spark, wh.mesh, result.manifest_path)
    again = open_table(wh.spark, rebuilt.path).read(version=rebuilt.delta_version)
    assert_df_equality(again, expected, ignore_row_order=True, ignore_nullable=True)


def test_lookups_and_plain_references_together(wh) -> None:
    """A plain reference needs the entity's own key column; a lookup does not."""
    _write_spine(wh)
    spec = _spec("support.tickets.tickets", _lookup("payer"))
    with pytest.raises(SpineError, match="keyed on customer_id but the spine lacks customer_id"):
        build_training_set(wh.spark, wh.mesh, spec)
    spine = wh.spark.createDataFrame(PAYMENTS, PAYMENTS_SCHEMA).withColumnRenamed(
        "payer_id", "customer_id"
    )
    got = build_inference_set(
        wh.spark,
        wh.mesh,
        ["support.tickets.tickets", _lookup("payee")],
        spine.drop("label_ts").limit(2),
        as_of=jan(6),
    )
    assert got.columns == ["customer_id", "payee_id", "as_of_ts", "tickets", "payee_amount"]
    rows = {(r.customer_id, r.payee_id): (r.tickets, r.payee_amount) for r in got.collect()}
    assert rows == {(1, 2): (2, 20.0), (2, 1): (4, 30.0)}


def test_inference_types_the_looked_up_keys_from_the_entity(wh) -> None:
    got = build_inference_set(
        wh.spark, wh.mesh, [_lookup("payer")], [{"payer_id": 1}, {"payer_id": 2}], as_of=jan(6)
    )
    assert got.schema["payer_id"].dataType.simpleString() == "bigint"
    assert {(r.payer_id, r.payer_amount) for r in got.collect()} == {(1, 30.0), (2, 20.0)}
    # No value to infer a type from: the entity's key type is what makes the key join.
    unknown = build_inference_set(wh.spark, wh.mesh, [_lookup("payer")], [{"payer_id": None}])
    assert [tuple(r) for r in unknown.drop("as_of_ts").collect()] == [(None, None)]
    with pytest.raises(SpineError, match="payer_id"):
        build_inference_set(wh.spark, wh.mesh, [_lookup("payer")], [{"customer_id": 1}])


def test_two_roles_need_their_own_prefixes(wh) -> None:
    _write_spine(wh)
    same = _spec(_lookup("payer", prefix=""), _lookup("payee", prefix=""))
    with pytest.raises(SetBuildError, match="give each lookup of the set its own prefix"):
        build_training_set(wh.spark, wh.mesh, same)


def test_lookup_keys_must_be_the_entitys(wh) -> None:
    _write_spine(wh)
    bad = FeatureLookup(features=("payments.spend.amount",), keys={"client_id": "payer_id"})
    with pytest.raises(UnknownReferenceError, match=r"keys \['client_id'\] are not its entity"):
        build_training_set(wh.spark, wh.mesh, _spec(bad))


def test_spec_validation() -> None:
    # The same reference in two roles is two inputs; twice in one role is a repeat.
    assert len(_spec(_lookup("payer"), _lookup("payee")).refs()) == 2
    with pytest.raises(ValidationError, match="features repeat"):
        _spec(_lookup("payer"), _lookup("payer"))
    with pytest.raises(ValidationError, match="features repeat"):
        _spec("payments.spend.amount", FeatureLookup(features=("payments.spend.amount",)))
    with pytest.raises(ValidationError, match="map to the same spine column"):
        FeatureLookup(features=("a.b.c",), keys={"x": "s", "y": "s"})
    with pytest.raises(ValidationError, match="not a feature reference"):
        FeatureLookup(features=("nope",))


def test_conf_lookup_keys_are_checked_on_load(tmp_path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "training" / "pairs.yaml").write_text(
        "kind: training_set\nname: pairs\ndomain: risk\n"
        "spine: {path: products/risk/payments, timestamp: label_ts}\n"
        "features:\n"
        "  - features: [payments.spend.amount]\n"
        "    keys: {customer_id: payer_id}\n"
        "    prefix: payer_\n"
        "  - features: [payments.spend.amount]\n"
        "    keys: {client_id: payee_id}\n"
        "    prefix: payee_\n"
    )
    with pytest.raises(ConfigError, match=r"lookup keys \['client_id'\] are not key columns"):
        load_mesh(conf)
    (conf / "training" / "pairs.yaml").write_text(
        (conf / "training" / "pairs.yaml").read_text().replace("client_id", "customer_id")
    )
    pairs = load_mesh(conf).training_sets["risk.pairs"]
    assert [r.prefix for r in pairs.refs()] == ["payer_", "payee_"]
