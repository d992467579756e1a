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

from mesh.errors import StorageError
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
