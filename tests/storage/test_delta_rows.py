"""Small tables (the catalog's records) written and read as Arrow rows on the driver."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from storage_helpers import SCHEMA, arrow_rows, commit, delta_rs_rows, frame, rows_of, ts

from mesh.errors import StorageError
from mesh.storage import CommitInfo, open_table

ARROW = pa.schema(
    [
        ("id", pa.int64()),
        ("feature_ts", pa.timestamp("us", tz="UTC")),
        ("value", pa.float64()),
        ("name", pa.string()),
    ]
)


def _rows(*records: tuple[object, ...], schema: pa.Schema = ARROW) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in records], schema)


def _jobs(spark) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(None))


def test_rows_round_trip_as_one_commit_each_and_read_as_spark_reads_them(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    first = [(1, ts(1, 0, 123456), 1.5, "a"), (None, None, None, None)]
    info = commit("run-1", "catalog", extra={"table": "t"})
    assert table.append_rows(_rows(*first), info) == 0
    # Columns in another order: written in the table's.
    second = _rows((2, ts(2, 3, 999999), 2.0, "b")).select(["name", "value", "id", "feature_ts"])
    assert table.append_rows(second, commit("run-2")) == 1

    expected = sorted([*first, (2, ts(2, 3, 999999), 2.0, "b")], key=repr)
    assert arrow_rows(table.read_rows(), SCHEMA.names) == expected
    assert rows_of(table.read()) == expected
    assert arrow_rows(delta_rs_rows(path), SCHEMA.names) == expected
    assert table.schema() == SCHEMA
    assert table.history()[1].info == info
    for uri in DeltaTable(path).file_uris():
        column = pq.read_metadata(uri).schema.column(1)
        assert column.physical_type == "INT64" and "MICROS" in column.logical_type.to_json().upper()


@pytest.mark.skipif(
    os.environ.get("SPARK_API_MODE", "").lower() == "connect",
    reason="counts the jobs of this process's SparkContext",
)
def test_rows_need_no_spark_job_when_their_columns_are_the_tables(spark, tmp_path):
    table = open_table(spark, str(tmp_path / "t"), backend="embedded")
    before = _jobs(spark)
    table.append_rows(_rows((1, ts(1), 1.0, "a")), commit("r1"))
    table.append_rows(_rows((2, ts(2), 2.0, "b")), commit("r2"))
    assert table.read_rows().num_rows == 2
    assert _jobs(spark) == before


def test_rows_with_new_columns_widen_only_when_asked_and_other_types_are_refused(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r1"))
    wider_schema = ARROW.append(pa.field("extra", pa.string()))
    wider = _rows((2, ts(2), 2.0, "b", "x"), schema=wider_schema)

    with pytest.raises(StorageError) as exc:
        table.append_rows(wider, commit("r2"))
    assert exc.value.params["extra"] == ["extra"]
    retyped = _rows(("2", ts(2), 2.0, "b"), schema=ARROW.set(0, pa.field("id", pa.string())))
    with pytest.raises(StorageError) as changed:
        table.append_rows(retyped, commit("r3"))
    assert changed.value.params["changed"][0].startswith("id ")
    assert table.latest_version() == 0

    assert table.append_rows(wider, commit("r4"), merge_schema=True) == 1
    assert table.schema().names == [*SCHEMA.names, "extra"]
    assert arrow_rows(table.read_rows(), table.schema().names) == [
        (1, ts(1), 1.0, "a", None),
        (2, ts(2), 2.0, "b", "x"),
    ]


def test_a_failed_commit_of_rows_leaves_the_table_and_its_folder_as_they_were(
    spark, tmp_path, monkeypatch
):
    from mesh.storage import commit as commit_mod

    path = tmp_path / "t"
    table = open_table(spark, str(path), backend="embedded")
    table.append_rows(_rows((1, ts(1), 1.0, "a")), commit("r1"))
    files = sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file())

    def refuse(*args: object, **kwargs: object) -> int:
        raise RuntimeError("commit refused")

    monkeypatch.setattr(commit_mod, "commit_files", refuse)
    with pytest.raises(RuntimeError, match="commit refused"):
        table.append_rows(_rows((2, ts(2), 2.0, "b")), CommitInfo(run_id="r2", operation="x"))
    assert sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file()) == files
    assert table.latest_version() == 0 and table.read_rows().num_rows == 1
