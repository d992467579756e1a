"""A table after many commits: its log is checkpointed, a read of its many files looks them
up in a few Spark tasks, not one task per file, and delta-rs's compaction of them keeps its rows."""

from __future__ import annotations

import uuid

import pyarrow as pa
from deltalake import DeltaTable
from storage_helpers import arrow_rows, commit, delta_rs_rows, frame, rows_of, ts

from mesh.storage import open_table

COMMITS = 101  # delta-rs checkpoints every 100 versions (0-99): version 99 is one


def _row(i: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([i], pa.int64()),
            "feature_ts": pa.array([ts(1 + i % 28)], pa.timestamp("us", tz="UTC")),
            "value": pa.array([float(i)]),
        }
    )


def _max_tasks(spark, read) -> int:  # type: ignore[no-untyped-def]
    """The most tasks any stage of the Spark jobs ``read()`` ran had (0: no job)."""
    context = spark.sparkContext
    group = f"reads-{uuid.uuid4().hex}"
    context.setJobGroup(group, "reads of a table of many files")
    try:
        read()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    tracker = context.statusTracker()
    stages = [s for j in tracker.getJobIdsForGroup(group) for s in tracker.getJobInfo(j).stageIds]
    return max((tracker.getStageInfo(s).numTasks for s in stages), default=0)


def test_a_table_of_many_commits_is_checkpointed_and_read_in_few_tasks(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    for i in range(COMMITS):
        table.append_rows(_row(i), commit(f"r{i}"))

    checkpoint = tmp_path / "t" / "_delta_log" / f"{99:020d}.checkpoint.parquet"
    assert checkpoint.exists()
    assert table.latest_version() == COMMITS - 1

    # Every version reads as delta-rs reads it, across the checkpoint.
    for version in (0, 50, 99, COMMITS - 1):
        ours = rows_of(table.read(version=version))
        assert len(ours) == version + 1
        assert ours == arrow_rows(delta_rs_rows(path, version), ["id", "feature_ts", "value"])

    # Setting up the read of 101 files looks their paths up in a Spark job (more than 32
    # paths): of 2 tasks, not 101 (one per path, which took seconds at 300 files).
    assert _max_tasks(spark, table.read) == 2


def test_delta_rs_compaction_keeps_the_rows_and_the_engines_writes(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    for i in range(40):
        table.append_rows(_row(i), commit(f"r{i}"))
    before = rows_of(table.read())

    metrics = DeltaTable(path).optimize.compact()
    assert (metrics["numFilesRemoved"], metrics["numFilesAdded"]) == (40, 1)
    assert rows_of(table.read()) == before
    assert rows_of(table.read(version=39)) == before

    # The compacted file's stats (delta-rs's) plan a replace_range as the engine's own do.
    day = frame(spark, [(99, ts(1, 6), 9.0, None)]).drop("name")
    table.replace_range(
        day, commit("r", "replace_range"), time_column="feature_ts", start=ts(1), end=ts(2)
    )
    expected = sorted([r for r in before if r[1] != ts(1)] + [(99, ts(1, 6), 9.0)], key=repr)
    assert rows_of(table.read()) == expected
