"""The native backend reports the version its own save committed, not the table's latest.

delta-spark's save does not return a version. These tests replace the Delta table and the
writer with stand-ins (no Delta jars needed): another writer commits right after ours.
"""

from __future__ import annotations

from typing import Any

import pytest

from mesh.errors import StorageError
from mesh.storage import CommitInfo
from mesh.storage.native import NativeDeltaTable


class _History:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def select(self, *columns: str) -> _History:
        return _History([{c: r.get(c) for c in columns} for r in self.rows])

    def collect(self) -> list[dict[str, Any]]:
        return self.rows


class _Log:
    """A Delta log whose save lands our commit, then ``others`` commits of other writers."""

    def __init__(self, others: int) -> None:
        self.entries: list[dict[str, Any]] = [{"version": 0, "userMetadata": None}]
        self.others = others
        self.metadata: str | None = None

    def history(self, limit: int | None = None) -> _History:
        newest = sorted(self.entries, key=lambda e: -e["version"])
        return _History(newest[:limit] if limit else newest)

    def option(self, key: str, value: str) -> _Log:
        if key == "userMetadata":
            self.metadata = value
        return self

    def save(self, path: str) -> None:
        for metadata in [self.metadata, *[None] * self.others]:
            self.entries.append({"version": len(self.entries), "userMetadata": metadata})


def _table(log: _Log, monkeypatch: pytest.MonkeyPatch) -> NativeDeltaTable:
    table = NativeDeltaTable(None, "/tmp/native-stand-in")  # type: ignore[arg-type]
    monkeypatch.setattr(table, "_delta", lambda: log)
    return table


@pytest.mark.parametrize("others", [0, 1, 40])
def test_save_returns_its_own_version_when_others_commit_after(
    monkeypatch: pytest.MonkeyPatch, others: int
) -> None:
    log = _Log(others)
    table = _table(log, monkeypatch)
    info = CommitInfo(run_id="r1", operation="append", extra={"n": 1})
    assert table._save(log, info) == 1  # type: ignore[arg-type]
    assert len(log.entries) == 2 + others
    stored = CommitInfo.from_json(log.entries[1]["userMetadata"])
    assert stored == info  # the nonce does not change what the commit records


def test_a_save_whose_commit_is_not_in_the_history_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = _Log(0)
    monkeypatch.setattr(log, "save", lambda path: None)  # "succeeded" but nothing landed
    with pytest.raises(StorageError) as err:
        _table(log, monkeypatch)._save(log, CommitInfo(run_id="r1", operation="append"))  # type: ignore[arg-type]
    assert "txn_id" in err.value.params
