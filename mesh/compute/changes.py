"""What changed in a Delta data product between two versions: the rows of added/removed files.

Read from the Delta log (``_delta_log/<version>.json``): ``add`` and ``remove`` actions of
every commit after the recorded version. Added rows are read from the newer version, removed
rows from the older one (time travel), both through ``mesh.storage`` and restricted to the
files the log names, so partitioned tables keep their partition columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from mesh.errors import ComputeError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from mesh.storage import DeltaFeatureTable


@dataclass(frozen=True)
class LogChanges:
    """File names (no folders) added and removed by the commits ``(since, until]``."""

    since: int
    until: int
    added: frozenset[str]
    removed: frozenset[str]


def log_changes(path: str, since: int, until: int) -> LogChanges:
    """Files added and removed by the commits after ``since`` up to ``until`` (inclusive)."""
    from mesh.storage.commit import filesystem_for

    filesystem, root = filesystem_for(path)
    # Net count of every (file, deletion vector) pair over the span: +1 added, -1 removed. A
    # DELETE with deletion vectors removes a file and adds the same file with a vector in one
    # commit, so the file name alone would cancel out and hide the deleted rows.
    net: dict[tuple[str, tuple[object, ...] | None], int] = {}
    for version in range(since + 1, until + 1):
        entry = f"{root.rstrip('/')}/_delta_log/{version:020d}.json"
        try:
            with filesystem.open_input_stream(entry) as stream:
                text = stream.read().decode("utf-8")
        except (FileNotFoundError, OSError) as exc:
            raise ComputeError(
                f"Data product at {path}: Delta log entry {version} is gone ({exc}); the log "
                "was cleaned up since the last run, so changes cannot be found. Run `mesh "
                "compute` for the range you need instead of `mesh refresh`.",
                path=path,
                version=version,
            ) from exc
        for line in text.splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            for kind, step in (("add", 1), ("remove", -1)):
                if kind in action:
                    key = (_name(action[kind]["path"]), _vector(action[kind]))
                    net[key] = net.get(key, 0) + step
    # A file added and removed again inside the span never held visible rows; one removed and
    # added again with the same deletion vector holds the same rows.
    added = frozenset(name for (name, _), count in net.items() if count > 0)
    removed = frozenset(name for (name, _), count in net.items() if count < 0)
    return LogChanges(since, until, added, removed)


def changed_rows(table: DeltaFeatureTable, changes: LogChanges) -> DataFrame | None:
    """Rows of the added files (as of ``until``) and removed files (as of ``since``)."""
    frames = []
    if changes.added:
        frames.append(_rows_in(table.read(version=changes.until), changes.added))
    if changes.removed:
        frames.append(_rows_in(table.read(version=changes.since), changes.removed))
    if not frames:
        return None
    out = frames[0]
    for frame in frames[1:]:
        # A column the source gained since: null in the rows read at the older version.
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def rows_in_files(
    table: DeltaFeatureTable, version: int, names: frozenset[str]
) -> DataFrame | None:
    """Rows of ``table`` at ``version`` that the files ``names`` hold (``None`` for none)."""
    return _rows_in(table.read(version=version), names) if names else None


def _rows_in(df: DataFrame, names: frozenset[str]) -> DataFrame:
    from pyspark.sql import functions as F

    file_name = F.element_at(F.split(F.col("_metadata.file_path"), "/"), -1)
    return df.where(file_name.isin(sorted(names)))


def _vector(action: dict[str, object]) -> tuple[object, ...] | None:
    """Identity of a file action's deletion vector (``None`` without one)."""
    vector = action.get("deletionVector")
    if not isinstance(vector, dict):
        return None
    return (vector.get("storageType"), vector.get("pathOrInlineDv"), vector.get("offset"))


def _name(path: str) -> str:
    return unquote(path).rsplit("/", 1)[-1]
