"""Spine and entity column names as the point-in-time join reads them: key columns resolved
as the session resolves names (``spark.sql.caseSensitive``), and names the join cannot refer
to refused, naming what the caller passed, before any read is checked or any job runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from chispa import assert_df_equality
from sets_data import SPINE, jan

from mesh.catalog.audit import audit_log
from mesh.sets import (
    SpineError,
    build_inference_set,
    build_training_set,
    entities_from_text,
    rebuild_training_set,
)
from mesh.storage import CommitInfo, open_table

FEATURES = ["payments.spend.amount", "support.tickets.tickets"]
AT_JAN_6 = [(1, jan(6), 30.0, 2), (2, jan(6), 20.0, 4), (3, jan(6), None, None)]
TRAINING = [
    (1, jan(2, 12), True, 10.0, 1, 1),
    (1, jan(6), False, 30.0, 3, 2),
    (1, jan(9), False, 60.0, 5, 2),
    (2, jan(20), True, None, None, 4),
    (3, jan(5), False, None, None, None),
]
TRAINING_COLUMNS = "label_ts timestamp, churned boolean, amount double, tx_count bigint"
HINT = "(spark.sql.caseSensitive is true: ['Customer_ID'] differ in case)"


@contextmanager
def case_sensitive(spark: Any) -> Iterator[None]:
    spark.conf.set("spark.sql.caseSensitive", "true")
    try:
        yield
    finally:
        spark.conf.unset("spark.sql.caseSensitive")


@contextmanager
def no_job(spark: Any, group: str) -> Iterator[None]:
    """Asserts that no Spark job ran inside the block."""
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup(group, "refused before any job")
    try:
        yield
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert tracker.getJobIdsForGroup(group) == []


def _spine(wh, location: str, schema: str, rows: list[tuple] = SPINE) -> Any:
    """The risk.train spec over a spine written at ``location``."""
    open_table(wh.spark, str(wh.root / location)).append(
        wh.spark.createDataFrame(rows, schema), CommitInfo(run_id="spine", operation="spine")
    )
    ts = wh.mesh.training_sets["risk.train"]
    return ts.model_copy(update={"spine": ts.spine.model_copy(update={"path": location})})


def test_inference_entity_keys_in_another_case(wh) -> None:
    # As the join resolves names: the entity column keeps its spelling in the output.
    entities = wh.spark.createDataFrame([(1,), (2,), (3,)], "Customer_ID bigint")
    got = build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=jan(6))
    schema = "Customer_ID bigint, as_of_ts timestamp, amount double, tickets bigint"
    expected = wh.spark.createDataFrame(AT_JAN_6, schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    # Rows given: the key takes its entity's type (bigint) in any case.
    rows = [{"CUSTOMER_ID": 1}, {"CUSTOMER_ID": 2}, {"CUSTOMER_ID": 3}]
    got = build_inference_set(wh.spark, wh.mesh, FEATURES, rows, as_of=jan(6))
    assert_df_equality(
        got,
        expected.withColumnRenamed("Customer_ID", "CUSTOMER_ID"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    with case_sensitive(wh.spark), pytest.raises(SpineError) as err:
        build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=jan(6))
    assert err.value.params["missing"] == ["customer_id"]
    assert HINT in err.value.message


def test_entities_as_text_type_keys_given_in_another_case(wh) -> None:
    # `mesh inference --key Customer_ID=...`: typed as the entity registers customer_id.
    entities = entities_from_text(wh.spark, wh.mesh, FEATURES, {"Customer_ID": ['"1"', "2"]})
    assert entities.schema.simpleString() == "struct<Customer_ID:bigint>"
    got = build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=jan(6))
    assert sorted((r.Customer_ID, r.amount) for r in got.collect()) == [(1, 30.0), (2, 20.0)]
    with pytest.raises(SpineError, match="CUSTOMER_ID is a key of entity customer"):
        entities_from_text(
            wh.spark, wh.mesh, FEATURES, {"CUSTOMER_ID": ["1"]}, {"CUSTOMER_ID": "string"}
        )


def test_training_spine_keys_in_another_case_rebuild_in_any_session(wh, monkeypatch) -> None:
    # The spine definition names customer_id and label_ts; the table spells them otherwise.
    spec = _spine(
        wh, "products/risk/upper", "Customer_ID bigint, LABEL_TS timestamp, churned boolean"
    )
    monkeypatch.setitem(wh.mesh.training_sets, "risk.train", spec)
    result = build_training_set(wh.spark, wh.mesh, "risk.train")
    expected = wh.spark.createDataFrame(
        TRAINING,
        f"Customer_ID bigint, {TRAINING_COLUMNS.replace('label_ts', 'LABEL_TS')}, tickets bigint",
    )
    built = open_table(wh.spark, result.path).read()
    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)
    # The manifest records the columns matched, as the table spells them...
    manifest = result.manifest
    assert (manifest.spine.timestamp, manifest.spine.keys) == ("LABEL_TS", ("Customer_ID",))
    assert {p.spine_keys for p in manifest.inputs} == {("Customer_ID",)}
    assert {p.keys for p in manifest.inputs} == {("customer_id",)}
    # ...so a rebuild (checked against the definition, whose hash is the manifest's) matches
    # them even in a session that compares names by case.
    with case_sensitive(wh.spark):
        rebuilt = rebuild_training_set(
            wh.spark, wh.mesh, result.manifest_path, output="training/risk/upper_again"
        )
    again = open_table(wh.spark, rebuilt.path).read()
    assert_df_equality(again, built, ignore_row_order=True)


def test_training_spine_keys_in_another_case_refused_by_case(wh) -> None:
    spec = _spine(
        wh, "products/risk/upper", "Customer_ID bigint, label_ts timestamp, churned boolean"
    )
    # The spine definition's own keys, then the feature sets' keys (a spine declaring none).
    with case_sensitive(wh.spark), pytest.raises(SpineError) as declared:
        build_training_set(wh.spark, wh.mesh, spec)
    assert declared.value.params["missing"] == ["customer_id"]
    assert HINT in declared.value.message
    undeclared = spec.model_copy(update={"spine": spec.spine.model_copy(update={"keys": ()})})
    with case_sensitive(wh.spark), pytest.raises(SpineError) as err:
        build_training_set(wh.spark, wh.mesh, undeclared)
    assert err.value.params["missing"] == ["customer_id"]
    assert "feature set payments.spend is keyed on customer_id but the spine lacks" in (
        err.value.message
    )
    assert HINT in err.value.message
    assert not (wh.root / "training/risk/train").exists()


@pytest.mark.parametrize(
    ("entities", "found"),
    [
        (("customer_id", "__mesh_row"), ["__mesh_row"]),
        (("customer_id", "Customer_ID"), ["Customer_ID", "customer_id"]),
        ([{"customer_id": 1}, {"__MESH_x": 2}], ["__MESH_x"]),
        ([{"customer_id": 1}, {"CUSTOMER_ID": 2}], ["CUSTOMER_ID", "customer_id"]),
    ],
)
def test_inference_refuses_entity_columns_the_join_cannot_name_first(wh, entities, found) -> None:
    if isinstance(entities, tuple):  # a DataFrame of those columns
        schema = ", ".join(f"`{c}` bigint" for c in entities)
        entities = wh.spark.createDataFrame([tuple(range(len(entities)))], schema)
    with no_job(wh.spark, "entities"), pytest.raises(SpineError) as err:
        build_inference_set(wh.spark, wh.mesh, FEATURES, entities, as_of=jan(6))
    assert (err.value.params["argument"], err.value.params["found"]) == ("entities", found)
    assert err.value.message.startswith("build_inference_set entities: ")
    # Refused before the access check: no read was audited.
    assert audit_log(wh.spark, wh.mesh, identity="alice@risk") == []


def test_training_refuses_spine_columns_the_join_cannot_name_first(wh) -> None:
    # (Two names differing only in case cannot be stored in Delta, nor read from Parquet by
    # a case-insensitive session: no spine table has them there.)
    schema = "customer_id bigint, label_ts timestamp, churned boolean, __mesh_n boolean"
    spec = _spine(wh, "products/risk/odd", schema, [(*r, r[-1]) for r in SPINE])
    with no_job(wh.spark, "spine"), pytest.raises(SpineError) as err:
        build_training_set(wh.spark, wh.mesh, spec)
    assert (err.value.params["argument"], err.value.params["found"]) == ("spine", ["__mesh_n"])
    assert err.value.message.startswith("Spine products/risk/odd: ")
    assert audit_log(wh.spark, wh.mesh, identity="alice@risk") == []
    assert not (wh.root / "training/risk/train").exists()
