"""One Delta transaction over files that are already written: the embedded backend's commit path.

Spark-free on purpose: it only needs the table URI, the staged files and their stats, so it can
be exercised (and raced) from plain processes.

Concurrency is optimistic. Each attempt commits at exactly ``snapshot + 1`` (delta-rs with
``max_commit_retries=0``: the log entry is created with put-if-absent, so two writers can never
both get the same version). When another writer got there first, this module reads the winning
commits itself and decides:

* a schema or protocol change -> conflict;
* a winner removed a file this transaction removes (or rewrites) -> conflict;
* with a :class:`RangeGuard` (``replace_range``): a winner added a file whose statistics may
  hold rows in the guarded range -> conflict (committing would leave duplicates);
* anything else (plain appends elsewhere) -> rebase on the new snapshot and try again.

A transaction that widens the schema (``widen``) is an overwrite commit: delta-rs writes a new
schema only in a commit that also removes every live file, so the caller rewrites the rows the
table keeps, and any winner is a conflict (its files would be removed without being rewritten).

A conflict raises ``CommitConflictError``; nothing of the transaction is visible then.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    create_table_with_add_actions,
)
from pyarrow import fs as pafs

from mesh.errors import CommitConflictError, StorageError
from mesh.storage.base import CommitInfo, epoch_micros

MAX_ATTEMPTS = 50
# Delta writers (delta-spark, delta-rs) store a timestamp's max statistic truncated to
# milliseconds: the file's true max may be up to 999 µs later than the stat.
STATS_MAX_SLACK_US = 999


@dataclass(frozen=True)
class StagedFile:
    """A Parquet file already in the table directory, not yet referenced by the log."""

    path: str  # relative to the table root, as Delta add actions store it
    size: int
    modification_time: int  # epoch milliseconds
    stats: str  # Delta stats JSON


@dataclass(frozen=True)
class RemovedFile:
    """A live file of the read snapshot that this transaction removes."""

    path: str
    size: int | None = None


@dataclass(frozen=True)
class RangeGuard:
    """The time range a ``replace_range`` owns: concurrent additions inside it conflict."""

    column: str
    start_us: int
    end_us: int


def arrow_location(uri: str) -> str:
    """``uri`` as pyarrow's filesystems name it: Hadoop's ``s3a://``/``s3n://`` are ``s3://``;
    ``dbfs:/x`` is the driver's FUSE mount ``/dbfs/x`` (Databricks); ``file://`` is dropped."""
    scheme, sep, rest = uri.partition("://")
    if sep and scheme.lower() in ("s3a", "s3n"):
        return f"s3://{rest}"
    if uri.startswith("dbfs:/"):
        return "/dbfs/" + uri.removeprefix("dbfs:").lstrip("/")
    return uri.removeprefix("file://")


def filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it for a local path or a URI."""
    location = arrow_location(uri)
    if "://" not in location:
        return pafs.LocalFileSystem(), location
    try:
        return pafs.FileSystem.from_uri(location)
    except pa.ArrowInvalid as exc:
        raise StorageError(
            f"{uri}: no filesystem for this scheme ({exc}); use a local path, file://, dbfs:/ or "
            "a URI pyarrow opens (s3:// or s3a://, gs://, abfs://, hdfs://).",
            path=uri,
        ) from exc


def read_commit(uri: str, version: int) -> list[dict[str, Any]]:
    """The actions of one commit JSON file of the log."""
    filesystem, root = filesystem_for(uri)
    with filesystem.open_input_stream(f"{root.rstrip('/')}/_delta_log/{version:020d}.json") as f:
        text = f.read().decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def find_committed_version(uri: str, txn_id: str, after: int) -> int | None:
    """Version > ``after`` whose commitInfo carries ``txn_id``; tells "did my commit land?"."""
    try:
        latest = DeltaTable(uri).version()
    except Exception:
        return None
    for version in range(max(after + 1, 0), latest + 1):
        for action in read_commit(uri, version):
            info = action.get("commitInfo")
            if info and info.get("mesh.txnId") == txn_id:
                return version
    return None


def commit_files(
    uri: str,
    *,
    read_version: int | None,
    adds: Sequence[StagedFile],
    removes: Sequence[RemovedFile],
    schema_json: str,
    commit: CommitInfo,
    txn_id: str,
    guard: RangeGuard | None = None,
    overwrite: bool = False,
    widen: bool = False,
) -> int:
    """Commit ``adds`` and ``removes`` as one Delta transaction; return the new version.

    ``read_version`` is the snapshot the caller planned against (``None`` when the table did not
    exist then: the first commit creates it). ``overwrite`` replaces the whole table content and
    schema (last writer wins). ``widen`` commits ``schema_json`` (the table's columns plus new
    ones) together with ``adds``, replacing every file of ``read_version``: ``adds`` must hold
    all the rows the table keeps and ``removes`` must be empty. Raises ``CommitConflictError``
    as described in the module doc.
    """
    schema = _delta_schema(uri, schema_json)
    metadata: dict[str, Any] = {"userMetadata": commit.to_json(), "mesh.txnId": txn_id}
    metadata.update(commit.top_level_keys())
    props = CommitProperties(custom_metadata=metadata, max_commit_retries=0)
    add_actions = [AddAction(f.path, f.size, {}, f.modification_time, True, f.stats) for f in adds]
    if read_version is None or overwrite:
        try:
            create_table_with_add_actions(
                uri,
                schema,
                add_actions,
                mode="overwrite" if overwrite else "error",
                commit_properties=props,
            )
        except DeltaError as exc:
            if overwrite or "already exists" not in str(exc):
                raise StorageError(
                    f"Delta table {uri}: creating the table failed ({exc}).", path=uri
                ) from exc
            read_version = -1  # another writer created it first: rebase on its commits
        else:
            found = find_committed_version(uri, txn_id, after=-1)
            return found if found is not None else DeltaTable(uri).version()

    if widen and removes:
        raise StorageError(
            f"Delta table {uri}: a schema-widening commit replaces every live file; pass the "
            "kept rows as adds instead of removes.",
            path=uri,
        )
    now_ms = int(time.time() * 1000)
    actions: list[AddAction | RemoveAction] = [
        RemoveAction(r.path, True, now_ms, r.size) for r in removes
    ]
    actions += add_actions
    removed_paths = {r.path for r in removes}
    checked = read_version
    for attempt in range(MAX_ATTEMPTS):
        table = DeltaTable(uri)
        snapshot = table.version()
        if snapshot > checked:
            winners = range(checked + 1, snapshot + 1)
            if widen:
                raise CommitConflictError(
                    f"Delta table {uri}: a concurrent commit (version {checked + 1}) landed "
                    "while this run adds columns to the table, which rewrites every row; "
                    "nothing of this run was committed. Re-run it on the new version.",
                    path=uri,
                    conflicting_version=checked + 1,
                    reason="committed while the schema was widened",
                )
            _check_winners(uri, winners, schema_json, removed_paths, guard)
            checked = snapshot
        # Overwrite without partition filters removes every file of ``snapshot``, which is
        # ``read_version`` here: exactly the files whose rows the caller rewrote into ``adds``.
        mode = "overwrite" if widen else "append"
        try:
            table.create_write_transaction(actions, mode, schema, commit_properties=props)
        except CommitFailedError as exc:
            # Someone committed snapshot + 1 meanwhile -- or this very commit did, and only
            # the answer was lost (object stores): then it must not be committed again.
            landed = find_committed_version(uri, txn_id, after=snapshot)
            if landed is not None:
                return landed
            if DeltaTable(uri).version() == snapshot:
                # No commit won the race: delta-rs refused this one (an append-only table, a
                # writer feature it does not support). Retrying cannot help.
                raise StorageError(
                    f"Delta table {uri}: the commit was refused ({delta_rs_detail(exc)}); "
                    "nothing of this run was committed.",
                    path=uri,
                ) from exc
            time.sleep(min(0.01 * (attempt + 1), 0.2))  # re-check and rebase, a little later
            continue
        except DeltaError as exc:
            raise StorageError(f"Delta table {uri}: commit failed ({exc}).", path=uri) from exc
        return snapshot + 1
    raise CommitConflictError(
        f"Delta table {uri}: gave up after {MAX_ATTEMPTS} attempts because other writers kept "
        "committing first; nothing of this run was committed. Retry the run.",
        path=uri,
        attempts=MAX_ATTEMPTS,
    )


def _delta_schema(uri: str, schema_json: str) -> Schema:
    try:
        return Schema.from_json(schema_json)
    except Exception as exc:
        raise StorageError(
            f"Delta table {uri}: the frame's schema cannot be stored in Delta ({exc}); "
            "cast unsupported columns (e.g. NullType, intervals) to a supported type.",
            path=uri,
        ) from exc


def _fields(schema_json: str) -> list[tuple[str, str]]:
    fields = json.loads(schema_json)["fields"]
    return [(f["name"], json.dumps(f["type"], sort_keys=True)) for f in fields]


def _check_winners(
    uri: str,
    versions: Iterable[int],
    schema_json: str,
    removed_paths: set[str],
    guard: RangeGuard | None,
) -> None:
    for version in versions:
        for action in read_commit(uri, version):
            reason = _conflict_reason(action, version, schema_json, removed_paths, guard)
            if reason:
                raise CommitConflictError(
                    f"Delta table {uri}: a concurrent commit (version {version}) {reason}; "
                    "nothing of this run was committed. Re-run it on the new version.",
                    path=uri,
                    conflicting_version=version,
                    reason=reason,
                )


def _conflict_reason(
    action: dict[str, Any],
    version: int,
    schema_json: str,
    removed: set[str],
    guard: RangeGuard | None,
) -> str | None:
    if "metaData" in action:
        if _fields(action["metaData"]["schemaString"]) != _fields(schema_json):
            return "changed the table schema"
    elif "protocol" in action and version > 0:  # version 0 is a concurrent create
        return "changed the table protocol"
    elif "remove" in action and action["remove"]["path"] in removed:
        return f"removed file {action['remove']['path']} that this run also replaces"
    elif "add" in action and guard is not None and _may_overlap(action["add"], guard):
        return (
            f"added rows with {guard.column} in the range this run replaces "
            f"(file {action['add']['path']})"
        )
    return None


def _may_overlap(add: dict[str, Any], guard: RangeGuard) -> bool:
    """False only when the file's stats prove it has no row in the guarded range."""
    try:
        stats = json.loads(add.get("stats") or "{}")
        if stats.get("numRecords") == 0:
            return False
        low = stats["minValues"][guard.column]
        high = stats["maxValues"][guard.column]
        low_us = epoch_micros(datetime.fromisoformat(low.replace("Z", "+00:00")))
        high_us = epoch_micros(datetime.fromisoformat(high.replace("Z", "+00:00")))
    except (KeyError, TypeError, ValueError, AttributeError):
        # No usable stats (all-null column, other writer): assume the worst.
        return not _all_null(add, guard.column)
    return high_us + STATS_MAX_SLACK_US >= guard.start_us and low_us < guard.end_us


def _all_null(add: dict[str, Any], column: str) -> bool:
    try:
        stats = json.loads(add.get("stats") or "{}")
        return bool(stats["nullCount"][column] == stats["numRecords"])
    except (KeyError, TypeError, ValueError):
        return False


def delta_rs_detail(exc: BaseException) -> str:
    """delta-rs's message on one plain line: it colours its cause chain, one cause a line
    (``error \x1b[31m↳\x1b[0m cause``); this gives ``error: cause``."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    return ": ".join(" ".join(part.split()) for part in plain.split("↳") if part.strip())
