"""replace_range: one commit, copy-on-write for straddling files, idempotent, validated input."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable
from storage_helpers import SCHEMA, arrow_rows, commit, delta_rs_rows, frame, rows_of, ts

from mesh.errors import StorageError
from mesh.storage import open_table
from mesh.storage.base import epoch_micros


def _live_files(path: str) -> set[str]:
    return set(DeltaTable(path).file_uris())


def test_replace_range_keeps_outside_rows_and_is_idempotent(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    # One file (coalesce) spanning days 1..5 straddles the range [day 2, day 4).
    base = [
        (1, ts(1), 1.0, "keep-before"),
        (2, ts(2), 2.0, "old-in-range"),
        (3, ts(3, 23, 999999), 3.0, "old-in-range"),
        (4, ts(4), 4.0, "keep-at-end-boundary"),
        (5, None, 5.0, "keep-null-time"),
    ]
    table.create(frame(spark, base).coalesce(1), commit("r0", "create"))
    # A second file entirely inside the range: removed without being rewritten.
    table.append(frame(spark, [(6, ts(2, 12), 6.0, "old-in-range")]).coalesce(1), commit("r1"))

    new = [(7, ts(2), 70.0, "new"), (8, ts(3, 12, 5), 80.0, "new")]
    expected = sorted([r for r in base if r[3].startswith("keep")] + new, key=repr)
    info = commit("r2", "replace_range", range_start=ts(2), range_end=ts(4))
    v2 = table.replace_range(
        frame(spark, new), info, time_column="feature_ts", start=ts(2), end=ts(4)
    )
    assert v2 == 2
    assert rows_of(table.read()) == expected
    assert arrow_rows(delta_rs_rows(path), SCHEMA.names) == expected
    assert table.history()[0].info == info
    files_after_first = _live_files(path)

    v3 = table.replace_range(
        frame(spark, new), info, time_column="feature_ts", start=ts(2), end=ts(4)
    )
    assert v3 == 3
    assert rows_of(table.read()) == expected
    # New in-range rows were written apart from the kept rows, so the second run only swaps
    # the in-range files and leaves the rewritten outside files alone.
    kept_files = {f for f in files_after_first if "/kept" in f}
    assert kept_files and kept_files <= _live_files(path)
    # Earlier versions are unchanged.
    assert len(rows_of(table.read(version=1))) == 6


def test_replace_range_rejects_rows_outside_range(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r0"))
    files_before = set((tmp_path / "t").rglob("*.parquet"))
    for bad in ([(2, ts(5), 2.0, "late")], [(3, None, 3.0, "null-time")]):
        with pytest.raises(StorageError) as exc:
            table.replace_range(
                frame(spark, bad), commit("r1"), time_column="feature_ts", start=ts(1), end=ts(2)
            )
        assert exc.value.params == {"path": path, "column": "feature_ts"}
    assert table.latest_version() == 0
    assert set((tmp_path / "t").rglob("*.parquet")) == files_before  # staged files removed


def test_replace_range_creates_missing_table_and_checks_arguments(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    rows = [(1, ts(1, 3), 1.0, "a")]
    version = table.replace_range(
        frame(spark, rows), commit("r0"), time_column="feature_ts", start=ts(1), end=ts(2)
    )
    assert version == 0 and rows_of(table.read()) == rows
    with pytest.raises(StorageError):
        table.replace_range(
            frame(spark, rows), commit("r1"), time_column="feature_ts", start=ts(2), end=ts(1)
        )
    with pytest.raises(StorageError) as wrong_type:
        table.replace_range(
            frame(spark, rows), commit("r1"), time_column="name", start=ts(1), end=ts(2)
        )
    assert wrong_type.value.params["found"] == "string"


def test_replace_range_with_merge_schema_adds_columns_in_the_same_commit(spark, tmp_path):
    import json

    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    base = [(1, ts(1), 1.0, "a"), (2, ts(2), 2.0, "b"), (3, ts(4), 3.0, "c"), (4, None, 4.0, "d")]
    table.create(frame(spark, base).coalesce(1), commit("r0", "create"))
    table.append(frame(spark, [(5, ts(5), 5.0, "e")]), commit("r1"))
    wider = frame(spark, [(6, ts(3), 6.0, "f")]).selectExpr("*", "id * 10 AS score")

    with pytest.raises(StorageError) as refused:
        table.replace_range(wider, commit("r2"), time_column="feature_ts", start=ts(2), end=ts(4))
    assert refused.value.params["extra"] == ["score"] and table.latest_version() == 1

    version = table.replace_range(
        wider,
        commit("r3", "replace_range"),
        time_column="feature_ts",
        start=ts(2),
        end=ts(4),
        merge_schema=True,
    )
    assert version == table.latest_version() == 2
    log = (tmp_path / "t" / "_delta_log" / f"{2:020d}.json").read_text()
    actions = [json.loads(line) for line in log.splitlines()]
    [meta] = [a["metaData"] for a in actions if "metaData" in a]
    assert [f["name"] for f in json.loads(meta["schemaString"])["fields"]] == [
        *SCHEMA.names,
        "score",
    ]
    assert any("add" in a for a in actions)
    kept = [(1, ts(1), 1.0, "a"), (3, ts(4), 3.0, "c"), (4, None, 4.0, "d"), (5, ts(5), 5.0, "e")]
    expected = sorted([*[(*r, None) for r in kept], (6, ts(3), 6.0, "f", 60)], key=repr)
    assert rows_of(table.read()) == expected
    assert arrow_rows(delta_rs_rows(path), table.schema().names) == expected
    assert rows_of(table.read(version=1)) == sorted([*base, (5, ts(5), 5.0, "e")], key=repr)

    retyped = wider.selectExpr("id", "feature_ts", "value", "name", "CAST(score AS string) score")
    with pytest.raises(StorageError) as changed:
        table.replace_range(
            retyped,
            commit("r4"),
            time_column="feature_ts",
            start=ts(2),
            end=ts(4),
            merge_schema=True,
        )
    assert changed.value.params["changed"][0].startswith("score ")
    assert table.latest_version() == 2


def test_a_widening_commit_conflicts_with_any_concurrent_commit(spark, tmp_path):
    from pyspark.sql.types import LongType, StructField, StructType

    from mesh.errors import CommitConflictError
    from mesh.storage import CommitInfo
    from mesh.storage.commit import commit_files

    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r0", "create"))
    table.append(frame(spark, [(2, ts(9), 2.0, "b")]), commit("r1"))  # lands after the plan
    wider = StructType([*SCHEMA.fields, StructField("score", LongType())])
    with pytest.raises(CommitConflictError) as conflict:
        commit_files(
            path,
            read_version=0,
            adds=[],
            removes=[],
            schema_json=wider.json(),
            commit=CommitInfo(run_id="r2", operation="append"),
            txn_id="t2",
            widen=True,
        )
    assert conflict.value.params["conflicting_version"] == 1
    assert table.latest_version() == 1 and table.schema() == SCHEMA


def test_replace_range_reads_millisecond_max_stats_as_upper_bounds(spark, tmp_path):
    # Delta writers (delta-rs here, delta-spark too) store a timestamp's max truncated to
    # milliseconds: the file's true max (.0027) is after the stat (.002) and inside the range.
    import pyarrow as pa
    from deltalake import write_deltalake

    path = str(tmp_path / "t")
    stamps = [ts(1, micro=1500), ts(1, micro=2700)]
    write_deltalake(
        path,
        pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "feature_ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                "value": pa.array([1.0, 2.0]),
                "name": pa.array(["keep", "old"]),
            }
        ),
    )
    table = open_table(spark, path, backend="embedded")
    new = [(2, stamps[1], 20.0, "new")]
    table.replace_range(
        frame(spark, new),
        commit("r1", "replace_range"),
        time_column="feature_ts",
        start=ts(1, micro=2500),
        end=ts(2),
    )
    assert rows_of(table.read()) == sorted([(1, stamps[0], 1.0, "keep"), *new], key=repr)


def test_a_concurrent_file_with_millisecond_max_stats_conflicts_with_its_range():
    from mesh.storage.commit import RangeGuard, _may_overlap

    # True max up to .002999 may be in [.0025, ...): the truncated stat must not prove otherwise.
    stats = (
        '{"numRecords":1,"minValues":{"feature_ts":"2024-01-01T00:00:00.002Z"},'
        '"maxValues":{"feature_ts":"2024-01-01T00:00:00.002Z"},"nullCount":{"feature_ts":0}}'
    )
    start = ts(1, micro=2500)
    guard = RangeGuard("feature_ts", epoch_micros(start), epoch_micros(ts(2)))
    assert _may_overlap({"path": "f.parquet", "stats": stats}, guard)
    later = RangeGuard("feature_ts", epoch_micros(ts(1, micro=3000)), epoch_micros(ts(2)))
    assert not _may_overlap({"path": "f.parquet", "stats": stats}, later)
