"""Concurrent writers: appends never lose a write; overlapping range replacements conflict."""

from __future__ import annotations

import multiprocessing

import pytest
from deltalake import DeltaTable
from storage_helpers import (
    SCHEMA,
    arrow_rows,
    commit,
    concurrent_writer,
    delta_rs_rows,
    frame,
    rows_of,
    ts,
)

from mesh.errors import CommitConflictError
from mesh.storage import commit as commit_mod
from mesh.storage import open_table


def _race(path: str, schema_json: str, mode: str) -> list[tuple]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [
        ctx.Process(target=concurrent_writer, args=(path, n, schema_json, mode, barrier, results))
        for n in ("writer-a", "writer-b")
    ]
    for w in workers:
        w.start()
    outcomes = sorted(results.get(timeout=120) for _ in workers)
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    return outcomes


def test_concurrent_appends_from_two_processes_both_land(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "base")]), commit("r0"))

    outcomes = _race(path, table.schema().json(), "append")

    assert [o[1] for o in outcomes] == ["ok", "ok"]
    assert sorted(o[2] for o in outcomes) == [1, 2]
    names = sorted(r[3] for r in rows_of(table.read()))
    assert names == ["base", "writer-a", "writer-b"]
    assert {h["mesh.runId"] for h in DeltaTable(path).history()[:2]} == {"writer-a", "writer-b"}


@pytest.mark.parametrize("existing_rows_in_range", [True, False])
def test_concurrent_replace_range_one_wins_other_conflicts(spark, tmp_path, existing_rows_in_range):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    rows = [(1, ts(1), 1.0, "outside")]
    if existing_rows_in_range:
        rows.append((2, ts(10, 1), 2.0, "old-in-range"))
    table.create(frame(spark, rows).coalesce(1), commit("r0"))
    if existing_rows_in_range:  # make the in-range row its own file, so both plan to remove it
        table.replace_range(
            frame(spark, [(2, ts(10, 1), 2.0, "old-in-range")]),
            commit("r1"),
            time_column="feature_ts",
            start=ts(10),
            end=ts(11),
        )
    before = table.latest_version()

    outcomes = _race(path, table.schema().json(), "replace")

    assert sorted(o[1] for o in outcomes) == ["conflict", "ok"]
    winner = next(o[0] for o in outcomes if o[1] == "ok")
    assert table.latest_version() == before + 1
    expected = sorted([(1, ts(1), 1.0, "outside"), (100, ts(10, 6), 1.0, winner)], key=repr)
    assert rows_of(table.read()) == expected
    assert arrow_rows(delta_rs_rows(path), SCHEMA.names) == expected


def test_replace_range_conflict_through_spark_path(spark, tmp_path, monkeypatch):
    """A replace_range that loses the race to an overlapping one commits nothing."""
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "outside")]), commit("r0"))
    real_commit = commit_mod.commit_files
    calls = []

    def commit_after_rival(*args, **kwargs):
        if not calls:  # first (outer) writer has staged its files; a rival commits first
            calls.append("rival")
            rival = open_table(spark, path, backend="embedded")
            rival.replace_range(
                frame(spark, [(3, ts(1, 12), 3.0, "rival")]),
                commit("rival"),
                time_column="feature_ts",
                start=ts(1, 6),
                end=ts(2),
            )
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(commit_mod, "commit_files", commit_after_rival)
    with pytest.raises(CommitConflictError) as exc:
        table.replace_range(
            frame(spark, [(2, ts(1, 12), 2.0, "loser")]),
            commit("loser"),
            time_column="feature_ts",
            start=ts(1, 6),
            end=ts(2),
        )
    assert exc.value.params["conflicting_version"] == 1
    assert table.latest_version() == 1
    assert sorted(r[3] for r in rows_of(table.read())) == ["outside", "rival"]


def test_a_commit_that_landed_but_reported_failure_is_not_committed_again(
    spark, tmp_path, monkeypatch
):
    """An object store may lose the answer to a put that succeeded: the retry must see it."""
    from deltalake.exceptions import CommitFailedError

    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("run-1"))
    real = DeltaTable.create_write_transaction
    calls = []

    def lost_answer(self, *args, **kwargs):
        calls.append(1)
        real(self, *args, **kwargs)
        if len(calls) == 1:
            raise CommitFailedError("lost response")

    monkeypatch.setattr(DeltaTable, "create_write_transaction", lost_answer)
    version = table.append(frame(spark, [(2, ts(2), 2.0, "b")]), commit("run-2"))
    assert (version, len(calls)) == (1, 1)
    assert DeltaTable(path).version() == 1
    assert sorted(r[0] for r in rows_of(table.read())) == [1, 2]
