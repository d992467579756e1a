"""Spine and entity column names as the point-in-time join reads them: names the join cannot
refer to are refused, naming what the caller passed, before any read is checked or any job
runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sets_data import SPINE, jan

from mesh.catalog.audit import audit_log
from mesh.sets import SpineError, build_inference_set, build_training_set
from mesh.storage import CommitInfo, open_table

FEATURES = ["payments.spend.amount", "support.tickets.tickets"]


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
