"""Refresh's change detection over hand-written Delta logs: which files' rows changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mesh.compute.changes import log_changes


def _log(root: Path, commits: list[list[dict[str, Any]]]) -> str:
    log = root / "_delta_log"
    log.mkdir(parents=True)
    for version, actions in enumerate(commits):
        (log / f"{version:020d}.json").write_text("\n".join(json.dumps(a) for a in actions))
    return str(root)


def _add(name: str, vector: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"path": name, "size": 1, "dataChange": True}
    if vector:
        body["deletionVector"] = {"storageType": "u", "pathOrInlineDv": vector, "offset": 1}
    return {"add": body}


def _remove(name: str, vector: str | None = None) -> dict[str, Any]:
    return {"remove": {**_add(name, vector)["add"], "deletionTimestamp": 1}}


def test_a_delete_with_a_deletion_vector_changes_its_file(tmp_path: Path) -> None:
    # DELETE with deletion vectors: the file is removed and added again, now with a vector.
    path = _log(
        tmp_path,
        [
            [_add("a.parquet"), _add("b.parquet")],
            [_remove("a.parquet"), _add("a.parquet", "dv1")],
            [_remove("a.parquet", "dv1"), _add("a.parquet", "dv2")],
        ],
    )
    for since in (0, 1):
        changes = log_changes(path, since, 2)
        assert (changes.added, changes.removed) == ({"a.parquet"}, {"a.parquet"})


def test_files_that_come_and_go_inside_the_span_cancel(tmp_path: Path) -> None:
    path = _log(
        tmp_path,
        [
            [_add("a.parquet")],
            [_add("c.parquet"), _remove("a.parquet")],
            [_remove("c.parquet"), _add("a.parquet"), _add("d%20e.parquet")],
        ],
    )
    changes = log_changes(path, 0, 2)
    assert (changes.added, changes.removed) == ({"d e.parquet"}, set())
    assert log_changes(path, 0, 1).removed == {"a.parquet"}


def test_changed_rows_of_a_source_that_gained_a_column(spark: Any, tmp_path: Path) -> None:
    # Rows of a removed file are read at the older version, which lacks the column an append
    # added since (schema merge): unioned with the added rows, it reads as null.
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from mesh.compute.changes import changed_rows
    from mesh.storage import open_table

    path = str(tmp_path / "source")
    write_deltalake(path, pa.table({"id": [1, 2]}))
    write_deltalake(path, pa.table({"id": [3], "note": ["x"]}), mode="append", schema_mode="merge")
    DeltaTable(path).delete("id = 1")
    table = open_table(spark, path, backend="embedded")
    rows = changed_rows(table, log_changes(path, 0, 2))
    assert rows is not None
    got = sorted((r["id"], r["note"]) for r in rows.collect())
    # Removed: the first file (ids 1, 2, read at version 0); added: the rewrite of id 2 and
    # id 3's file (read at version 2).
    assert got == [(1, None), (2, None), (2, None), (3, "x")]
