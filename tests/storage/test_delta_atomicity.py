"""A failed write leaves the table at its previous version and no staged files behind; a
killed one leaves staged files that only a full VACUUM removes."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType
from storage_helpers import commit, frame, rows_of, ts

from mesh.storage import commit as commit_mod
from mesh.storage import open_table


class Interrupted(BaseException):
    """Stands in for KeyboardInterrupt/SystemExit without disturbing pytest."""


def _staged(tmp_path) -> list:
    return [p for p in (tmp_path / "t" / "data").rglob("*.parquet")]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), Interrupted()])
def test_failure_between_write_and_commit(spark, tmp_path, monkeypatch, error):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r0"))
    before = rows_of(table.read())
    files_before = set(_staged(tmp_path))
    seen = {}

    def failing_commit(*args, **kwargs):
        seen["adds"] = kwargs["adds"]  # the parquet files were written before the failure
        raise error

    monkeypatch.setattr(commit_mod, "commit_files", failing_commit)
    with pytest.raises(type(error)):
        table.append(frame(spark, [(2, ts(2), 2.0, "b")]), commit("r1"))
    assert seen["adds"]
    assert table.latest_version() == 0
    assert rows_of(table.read()) == before
    assert set(_staged(tmp_path)) == files_before


def test_failing_spark_job_leaves_table_unchanged(spark, tmp_path):
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r0"))
    files_before = set(_staged(tmp_path))

    @F.udf(DoubleType())
    def explode_on_three(value: float) -> float:
        if value == 3.0:
            raise ValueError("boom")
        return value

    rows = [(2, ts(2), 2.0, "b"), (3, ts(3), 3.0, "c")]
    bad = frame(spark, rows).withColumn("value", explode_on_three("value"))
    with pytest.raises(Exception, match="boom"):
        table.append(bad, commit("r1"))
    assert table.latest_version() == 0
    assert rows_of(table.read()) == [(1, ts(1), 1.0, "a")]
    assert set(_staged(tmp_path)) == files_before


def test_a_killed_runs_staged_files_are_removed_by_a_full_vacuum_only(spark, tmp_path, monkeypatch):
    """A process killed between staging and commit cannot delete its staged files: invisible
    to every reader, they stay until delta-rs's full VACUUM (the README's command) removes
    them; its default (lite) VACUUM only removes files the log once referenced."""
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="embedded")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), commit("r0"))
    committed = set(_staged(tmp_path))
    (tmp_path / "t" / "_catalog").mkdir()
    (tmp_path / "t" / "_catalog" / "manifest.json").write_text("{}")

    def killed(*args, **kwargs):
        raise Interrupted()

    monkeypatch.setattr(commit_mod, "commit_files", killed)
    monkeypatch.setattr(type(table), "_discard", lambda self, relative_dir: None)  # no cleanup
    with pytest.raises(Interrupted):
        table.append(frame(spark, [(2, ts(2), 2.0, "b")]), commit("r1"))
    orphans = set(_staged(tmp_path)) - committed
    assert orphans
    assert rows_of(table.read()) == [(1, ts(1), 1.0, "a")]

    delta = DeltaTable(path)
    assert delta.vacuum(retention_hours=0, enforce_retention_duration=False) == []  # lite
    # The default retention (7 days) keeps files as young as a running write's.
    assert delta.vacuum(full=True) == []
    delta.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False, full=True)
    assert set(_staged(tmp_path)) == committed
    assert (tmp_path / "t" / "_catalog" / "manifest.json").exists()
    assert rows_of(table.read()) == [(1, ts(1), 1.0, "a")]
    assert table.latest_version() == 2  # VACUUM START and END are commits of their own
