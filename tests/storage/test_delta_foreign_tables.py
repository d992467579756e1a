"""Tables written by other Delta writers: partitioned ones read with their partition values;
what the embedded backend cannot apply (column mapping, writes into partitions) is refused."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from storage_helpers import commit, delta_rs_rows

from mesh.errors import CommitConflictError, StorageError
from mesh.storage import open_table

ROWS = {
    "customer_id": pa.array([1, 2, 3, 4, 5], pa.int64()),
    "region": ["eu", "us", "eu west", None, "eu"],  # a space (percent-encoded path), a null
    "day": pa.array([date(2024, 1, 1), date(2024, 1, 1), None, date(2024, 1, 2), date(2024, 1, 2)]),
    "amount": [1.0, 2.0, 3.0, 4.0, None],
}


def _partitioned(tmp_path: Path) -> str:
    path = str(tmp_path / "product")
    write_deltalake(path, pa.table(ROWS), partition_by=["region", "day"])
    return path


def test_partitioned_table_reads_its_partition_values(spark, tmp_path):
    path = _partitioned(tmp_path)
    df = open_table(spark, path, backend="embedded").read()
    assert [f.name for f in df.schema] == ["customer_id", "region", "day", "amount"]
    got = sorted(tuple(r) for r in df.collect())
    expected = sorted(
        zip(
            *[
                ROWS[c] if isinstance(ROWS[c], list) else ROWS[c].to_pylist()
                for c in ("customer_id", "region", "day", "amount")
            ],
            strict=True,
        )
    )
    theirs = delta_rs_rows(path).to_pylist()
    assert got == expected == sorted(tuple(r[c] for c in df.columns) for r in theirs)


def test_writes_into_a_partitioned_table_are_refused(spark, tmp_path):
    path = _partitioned(tmp_path)
    table = open_table(spark, path, backend="embedded")
    more = table.read().limit(1)
    with pytest.raises(StorageError) as err:
        table.append(more, commit("run-x"))
    assert err.value.params["partition_columns"] == ["region", "day"]
    assert DeltaTable(path).version() == 0


def test_column_mapping_without_reader_features_is_refused(spark, tmp_path):
    path = str(tmp_path / "mapped")
    write_deltalake(path, pa.table({"id": pa.array([1], pa.int64())}))
    # Column mapping as enabled on reader version 2 (no reader features list).
    log = Path(path) / "_delta_log" / "00000000000000000000.json"
    actions = [json.loads(line) for line in log.read_text().splitlines()]
    for action in actions:
        if "protocol" in action:
            action["protocol"] = {"minReaderVersion": 2, "minWriterVersion": 5}
        if "metaData" in action:
            meta = action["metaData"]
            meta["configuration"] = {
                "delta.columnMapping.mode": "name",
                "delta.columnMapping.maxColumnId": "1",
            }
            schema = json.loads(meta["schemaString"])
            schema["fields"][0]["metadata"] = {
                "delta.columnMapping.id": 1,
                "delta.columnMapping.physicalName": "col-1",
            }
            meta["schemaString"] = json.dumps(schema)
    log.write_text("\n".join(json.dumps(a) for a in actions) + "\n")
    with pytest.raises(StorageError) as err:
        open_table(spark, path, backend="embedded").read()
    assert err.value.params["features"] == ["columnMapping"]


def _one_row(i: int) -> pa.Table:
    return pa.table({"customer_id": pa.array([i], pa.int64()), "amount": [float(i)]})


def test_a_writer_feature_delta_rs_cannot_write_is_refused_at_once(tmp_path):
    from deltalake.table import TableFeatures

    path = str(tmp_path / "t")
    table = open_table(None, path, backend="embedded")
    table.append_rows(_one_row(1), commit("a"))
    DeltaTable(path).alter.add_feature(
        [TableFeatures.RowTracking], allow_protocol_versions_increase=True
    )
    # It used to be retried 50 times and reported as other writers winning the race.
    with pytest.raises(StorageError, match=r"the commit was refused.*RowTracking") as err:
        table.append_rows(_one_row(2), commit("b"))
    assert not isinstance(err.value, CommitConflictError)
    assert DeltaTable(path).version() == 1


def test_replacing_rows_of_an_append_only_table_is_refused_at_once(spark, tmp_path):
    from datetime import datetime, timezone

    utc = timezone.utc
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    rows = spark.createDataFrame([(1, datetime(2024, 1, 1, tzinfo=utc))], "id bigint, ts timestamp")
    table.append(rows, commit("a"))
    DeltaTable(path).alter.set_table_properties({"delta.appendOnly": "true"})
    with pytest.raises(StorageError, match=r"the commit was refused.*append-only") as err:
        table.replace_range(
            rows,
            commit("b"),
            time_column="ts",
            start=datetime(2024, 1, 1, tzinfo=utc),
            end=datetime(2024, 1, 2, tzinfo=utc),
        )
    assert not isinstance(err.value, CommitConflictError)
    assert DeltaTable(path).version() == 1
    assert sorted(p.name for p in Path(path).rglob("*.parquet")) == sorted(
        Path(u).name for u in DeltaTable(path).file_uris()
    )  # the refused run's staged files are gone


def _constrained_table(tmp_path: Path) -> str:
    """A table another writer made with a NOT NULL column and a CHECK constraint."""
    import deltalake

    path = str(tmp_path / "t")
    fields = [deltalake.Field("id", "long", nullable=False), deltalake.Field("x", "double")]
    DeltaTable.create(path, schema=deltalake.Schema(fields))
    DeltaTable(path).alter.add_constraint({"x_positive": "x > 0"})
    return path


@pytest.mark.parametrize(
    ("row", "violated"),
    [((None, 1.0), "id NOT NULL"), ((1, -1.0), "x_positive"), ((2, None), "x_positive")],
    ids=["null in a NOT NULL column", "CHECK false", "CHECK null"],
)
def test_rows_violating_the_tables_constraints_are_refused(spark, tmp_path, row, violated):
    # They used to be committed: delta-rs refuses the same rows, and so does delta-spark.
    path = _constrained_table(tmp_path)
    table = open_table(spark, path, backend="embedded")
    table.append(spark.createDataFrame([(3, 2.0)], "id bigint, x double"), commit("ok"))
    bad = spark.createDataFrame([row, (4, 3.0)], "id bigint, x double")
    with pytest.raises(StorageError, match=f"violate the table's constraint {violated}"):
        table.append(bad, commit("bad"))
    with pytest.raises(StorageError, match=f"violate the table's constraint {violated}"):
        table.append_rows(bad.toArrow(), commit("bad rows"))
    assert DeltaTable(path).version() == 2  # create, add constraint, the valid append
    assert delta_rs_rows(path).to_pylist() == [{"id": 3, "x": 2.0}]
