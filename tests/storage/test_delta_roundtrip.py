"""Embedded tables are standard Delta tables: rows, versions and metadata agree with delta-rs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from deltalake import DeltaTable
from storage_helpers import SCHEMA, arrow_rows, commit, delta_rs_rows, frame, rows_of, ts

from mesh.errors import (
    StorageError,
    TableNotFoundError,
    VersionFilesRemovedError,
    VersionNotFoundError,
)
from mesh.storage import CommitInfo, open_table


def test_every_version_matches_delta_rs_and_metadata_round_trips(spark, tmp_path):
    path = str(tmp_path / "features")
    table = open_table(spark, path, backend="embedded")
    assert table.backend == "embedded" and not table.exists()

    first = [
        (1, ts(1, 0, 123456), 1.5, "a"),
        (2, ts(1, 5, 1), None, None),  # nulls must round-trip
        (None, None, 3.0, "c"),
    ]
    info = commit(
        "run-1",
        "create",
        definition_hash="abc123",
        range_start=ts(1),
        range_end=ts(2),
        source_versions={"payments.tx": 7},
        extra={"rows": 3, "feature_set": "payments.tx_7d"},
    )
    assert table.create(frame(spark, first), info, time_column="feature_ts") == 0
    second = [(3, ts(2, 1, 999999), 4.0, "d")]
    assert table.append(frame(spark, second), commit("run-2")) == 1
    assert table.latest_version() == 1

    expected = {0: sorted(first, key=repr), 1: sorted(first + second, key=repr)}
    for version, rows in expected.items():
        ours = rows_of(table.read(version=version))
        theirs = arrow_rows(delta_rs_rows(path, version), SCHEMA.names)
        assert ours == theirs == rows, f"version {version}"
    assert rows_of(table.read()) == expected[1]

    history = DeltaTable(path).history()
    assert [h["version"] for h in history] == [1, 0]
    assert history[1]["mesh.runId"] == "run-1"
    assert CommitInfo.from_json(history[1]["userMetadata"]) == info

    records = table.history()
    assert [r.version for r in records] == [1, 0]
    assert records[1].info == info
    assert records[1].operation == "create" and records[0].info.run_id == "run-2"
    assert table.schema() == SCHEMA


def test_timestamps_written_as_int64_micros(spark, tmp_path):
    import pyarrow.parquet as pq

    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(3, 4, 5), 1.0, "x")]), commit("r"))
    (uri,) = DeltaTable(path).file_uris()
    column = pq.read_metadata(uri).schema.column(1)
    assert column.physical_type == "INT64"
    assert "MICROS" in column.logical_type.to_json().upper()


def test_timestamps_at_the_ends_of_the_range_are_written_with_stats_readers_can_use(
    spark, tmp_path
):
    from datetime import datetime, timezone

    utc = timezone.utc
    first, early = datetime(1, 1, 1, tzinfo=utc), datetime(999, 6, 1, 0, 0, 0, 1500, tzinfo=utc)
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=utc)  # an "open end" sentinel
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    rows = [(1, first, 1.0, "a"), (2, early, 2.0, "b"), (3, last, 3.0, "c")]
    table.create(frame(spark, rows).repartition(1), commit("r"))
    micros = table.read().selectExpr("id", "unix_micros(feature_ts)").collect()
    epoch = datetime(1970, 1, 1, tzinfo=utc)
    assert sorted(map(tuple, micros)) == [
        (i, (t - epoch) // timedelta(microseconds=1)) for i, t, *_ in rows
    ]
    delta = DeltaTable(path)
    log = (tmp_path / "t" / "_delta_log" / "00000000000000000000.json").read_text()
    (stats,) = [
        json.loads(a["add"]["stats"]) for a in map(json.loads, log.splitlines()) if "add" in a
    ]
    assert stats["minValues"]["feature_ts"] == "0001-01-01T00:00:00.000Z"
    assert stats["maxValues"]["feature_ts"] == "9999-12-31T23:59:59.999Z"  # as delta-rs has it
    # delta-rs skips files by these statistics: a file with a bad bound would lose rows.
    cut = datetime(2000, 1, 1, tzinfo=utc)
    assert delta.to_pyarrow_table(filters=[("feature_ts", "<", cut)]).num_rows == 2
    assert delta.to_pyarrow_table(filters=[("feature_ts", ">", cut)]).num_rows == 1


def test_a_file_where_a_table_should_be_is_one_storage_error(spark, tmp_path):
    # A Parquet file given where a Delta table is expected (its format forgotten).
    path = tmp_path / "entities.parquet"
    path.write_bytes(b"PAR1")
    table = open_table(spark, str(path), backend="embedded")
    for probe in (table.exists, table.read, table.latest_version):
        with pytest.raises(StorageError, match="cannot be read as a Delta table") as info:
            probe()
        message = str(info.value)
        assert "Not a directory" in message and "format: parquet" in message
        assert "\x1b" not in message and "↳" not in message  # delta-rs's colours, made plain
        assert info.value.params["path"] == str(path)


def test_time_travel_by_timestamp_and_errors(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    with pytest.raises(TableNotFoundError) as missing:
        table.read()
    assert missing.value.params["path"] == path
    with pytest.raises(TableNotFoundError):
        table.latest_version()

    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r1"))
    table.append(frame(spark, [(2, ts(2), 2.0, "b")]), commit("r2"))
    first, second = sorted(table.history(), key=lambda r: r.version)
    # Commits can land in the same millisecond; only a distinct stamp pins version 0.
    if first.timestamp < second.timestamp:
        assert [r[0] for r in rows_of(table.read(timestamp=first.timestamp))] == [1]
    assert [r[0] for r in rows_of(table.read(timestamp=second.timestamp))] == [1, 2]
    later = second.timestamp + timedelta(days=1)
    assert len(table.read(timestamp=later).collect()) == 2

    with pytest.raises(VersionNotFoundError) as bad_version:
        table.read(version=5)
    assert bad_version.value.params == {"path": path, "version": 5, "latest": 1}
    with pytest.raises(VersionNotFoundError):
        table.read(version=-1)
    with pytest.raises(VersionNotFoundError) as too_early:
        table.read(timestamp=first.timestamp - timedelta(seconds=1))
    assert too_early.value.params["path"] == path


def test_time_travel_to_a_version_whose_files_were_vacuumed_names_it(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r1"))
    table.create(frame(spark, [(2, ts(2), 2.0, "b")]), commit("r2"), overwrite=True)
    removed = DeltaTable(path).vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=False
    )
    assert removed  # the files only version 0 referenced
    with pytest.raises(VersionFilesRemovedError) as gone:
        table.read(version=0)
    assert (gone.value.params["path"], gone.value.params["version"]) == (path, 0)
    assert len(gone.value.params["missing"]) == len(removed)
    assert "were removed" in gone.value.message
    assert isinstance(gone.value, VersionNotFoundError)
    # The versions whose files are there read as before.
    assert [r[0] for r in rows_of(table.read(version=1))] == [2]
    assert [r[0] for r in rows_of(table.read())] == [2]


def test_schema_mismatch_names_columns_and_merge_schema_adds_them(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r1"))

    wider = frame(spark, [(2, ts(2), 2.0, "b")]).selectExpr("*", "id * 2 AS extra_col")
    with pytest.raises(StorageError) as exc:
        table.append(wider, commit("r2"))
    assert exc.value.params["extra"] == ["extra_col"] and exc.value.params["missing"] == []
    assert table.latest_version() == 0

    retyped = frame(spark, [(2, ts(2), 2.0, "b")]).selectExpr(
        "CAST(id AS string) AS id", "feature_ts", "value", "name"
    )
    with pytest.raises(StorageError) as changed:
        table.append(retyped, commit("r3"))
    assert changed.value.params["changed"][0].startswith("id ")

    # `VALUE` is `value` to Spark and Delta: neither a new column nor silently the old one.
    recased = frame(spark, [(2, ts(2), 2.0, "b")]).withColumnRenamed("value", "VALUE")
    for merge in (False, True):
        with pytest.raises(StorageError, match="only in case") as case:
            table.append(recased, commit("r4"), merge_schema=merge)
        assert case.value.params["recased"] == ["VALUE (table value)"]
    assert table.latest_version() == 0

    version = table.append(wider, commit("r4"), merge_schema=True)
    # One commit carries the new column and the rows: no version with the one but not the other.
    assert version == table.latest_version() == 1
    assert table.schema().names == [*SCHEMA.names, "extra_col"]
    rows = rows_of(table.read())
    assert rows == [(1, ts(1), 1.0, "a", None), (2, ts(2), 2.0, "b", 4)]
    theirs = arrow_rows(delta_rs_rows(path), table.schema().names)
    assert theirs == rows


def test_create_refuses_existing_table_unless_overwrite(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r1"))
    with pytest.raises(StorageError):
        table.create(frame(spark, [(2, ts(1), 1.0, "a")]), commit("r2"))
    other = spark.createDataFrame([(9, "z")], "k long, v string")
    assert table.create(other, commit("r3", "create"), overwrite=True) == 1
    assert rows_of(table.read()) == [(9, "z")]
    assert rows_of(table.read(version=0)) == [(1, ts(1), 1.0, "a")]
    assert arrow_rows(delta_rs_rows(path), ["k", "v"]) == [(9, "z")]


def test_empty_frame_and_append_creates_table(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    assert table.append(frame(spark, []), commit("r1")) == 0
    assert table.read().count() == 0 and table.schema() == SCHEMA
    assert delta_rs_rows(path).num_rows == 0


@pytest.mark.parametrize("folder", ["my warehouse", "entrepôt", "x#y"])
def test_a_table_under_any_folder_name_reads_back_after_each_kind_of_write(spark, tmp_path, folder):
    path = str(tmp_path / folder / "t")
    table = open_table(spark, path, backend="embedded")
    first = [(1, ts(1), 1.0, "a"), (2, ts(2), 2.0, "b")]
    table.create(frame(spark, first), commit("c"))
    table.append(frame(spark, [(3, ts(3), 3.0, "c")]), commit("a"))
    table.replace_range(
        frame(spark, [(4, ts(2, 5), 4.0, "d")]),
        commit("r"),
        time_column="feature_ts",
        start=ts(2),
        end=ts(3),
    )
    expected = [first[0], (3, ts(3), 3.0, "c"), (4, ts(2, 5), 4.0, "d")]
    assert rows_of(table.read()) == sorted(expected, key=repr)
    assert rows_of(table.read(version=0)) == sorted(first, key=repr)
    assert sorted(arrow_rows(delta_rs_rows(path), SCHEMA.names), key=repr) == rows_of(table.read())
