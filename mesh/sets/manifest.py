"""Training-set manifests: every input pinned, so a training set can be rebuilt identically.

The manifest is JSON stored inside the training table's folder, as ``_manifest.json`` (the one
of the newest build) and ``_manifests/<delta version>.json`` (one per build, kept). Delta
readers and VACUUM ignore ``_``-prefixed entries, so the files travel with the table.

Table paths (the spine, the inputs, the output) are places in the warehouse when the tables
lie there (``training/risk/churn``), so a warehouse copied or moved elsewhere rebuilds from
its own tables; see :func:`located` for manifests an earlier engine wrote with absolute paths.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pyarrow import fs as pafs
from pydantic import ValidationError

from mesh.catalog.paths import place_in, recorded_path, stored_path
from mesh.definitions.base import StrictModel
from mesh.definitions.loader import validation_problems
from mesh.errors import ConfigProblem
from mesh.sets.errors import ManifestError
from mesh.storage import is_uri
from mesh.storage.commit import filesystem_for

MANIFEST_FORMAT: Literal["mesh.training-manifest/1"] = "mesh.training-manifest/1"
MANIFEST_FILE = "_manifest.json"
MANIFEST_DIR = "_manifests"
BUILD_OPERATION = "training_build"  # the training table commits of builds and rebuilds


class InputPin(StrictModel):
    """One feature set as read by a build: which table, which Delta version, which features.

    ``table`` is relative to the warehouse (absolute when the table lies outside it);
    ``features`` maps each feature column of the table to its column in the output;
    ``spine_keys`` are the spine columns ``keys`` are matched on, as the spine spells them
    (a lookup's, or the keys in the spine's case), where they differ (``None``: the same
    names), and ``prefix`` the lookup's output prefix.
    """

    feature_set: str
    pin: str | None = None
    semantic_version: str
    delta_version: int
    definition_hash: str | None = None
    run_id: str | None = None  # the run that wrote the pinned commit (None: older manifests)
    table: str
    keys: tuple[str, ...]
    spine_keys: tuple[str, ...] | None = None
    prefix: str = ""
    features: dict[str, str]
    ttl_seconds: float | None = None
    exclude_late_data: bool = True

    @property
    def spine_columns(self) -> tuple[str, ...]:
        """The spine columns this input is matched on: ``spine_keys``, else ``keys``."""
        return self.spine_keys or self.keys


class SpinePin(StrictModel):
    """The spine as read: where, which Delta version (``None`` for Parquet), and its content.

    ``checksum`` is the sum of ``xxhash64`` over every row (order-independent, as a decimal
    string) and ``columns`` the spine's ``name:type`` list, so any change of content is caught.
    """

    path: str
    format: Literal["delta", "parquet"]
    timestamp: str
    keys: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    delta_version: int | None = None
    row_count: int
    checksum: str
    columns: tuple[str, ...] = ()


class OutputPin(StrictModel):
    """Where the training rows were written and as which Delta version."""

    path: str
    delta_version: int
    row_count: int


class Manifest(StrictModel):
    """Everything needed to rebuild a training set: spine, inputs, options, engine version."""

    format: Literal["mesh.training-manifest/1"] = MANIFEST_FORMAT
    training_set: str
    definition_hash: str
    engine_version: str
    run_id: str
    built_at: datetime
    warehouse: str
    strict: bool = False
    spine: SpinePin
    inputs: tuple[InputPin, ...]
    columns: tuple[str, ...]
    output: OutputPin
    rebuilt_from: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def located(manifest: Manifest, warehouse: str, moved_from: Sequence[str] = ()) -> Manifest:
    """``manifest`` with every table path (spine, inputs, output) as a place in ``warehouse``
    where it lies there, read by ``recorded_path``'s rules.

    An absolute path under the manifest's own ``warehouse`` (an earlier engine's manifest of a
    warehouse since copied or moved) is that place in ``warehouse`` when ``moved_from`` names
    the manifest's warehouse; otherwise it stays as recorded, and one that no longer exists
    while its place in ``warehouse`` does is refused (``WarehouseMovedError`` naming both).
    Relative paths are places in the warehouse already; paths outside stay absolute.
    """

    def place(path: str) -> str:
        if not (os.path.isabs(path) or is_uri(path)):
            return path
        inside = place_in(manifest.warehouse, path)
        return stored_path(warehouse, recorded_path(warehouse, path, inside, moved_from))

    return manifest.model_copy(
        update={
            "spine": manifest.spine.model_copy(update={"path": place(manifest.spine.path)}),
            "inputs": tuple(
                pin.model_copy(update={"table": place(pin.table)}) for pin in manifest.inputs
            ),
            "output": manifest.output.model_copy(update={"path": place(manifest.output.path)}),
        }
    )


def write_manifest(manifest: Manifest, table_path: str) -> str:
    """Write the manifest into the training table's folder; return the ``_manifest.json`` path."""
    root = table_path.rstrip("/")
    text = manifest.to_json().encode()
    filesystem, base = filesystem_for(root)
    filesystem.create_dir(f"{base}/{MANIFEST_DIR}", recursive=True)
    for name in (f"{MANIFEST_DIR}/{manifest.output.delta_version}.json", MANIFEST_FILE):
        if name == MANIFEST_FILE and _described(filesystem, f"{base}/{name}") > (
            manifest.output.delta_version
        ):
            continue  # a later build's manifest got there first: it stays the newest
        # Written aside, then moved over: a reader never sees half a manifest.
        partial = f"{base}/{name}.{manifest.run_id}.partial"
        with filesystem.open_output_stream(partial) as out:
            out.write(text)
        filesystem.move(partial, f"{base}/{name}")
    return f"{root}/{MANIFEST_FILE}"


def _described(filesystem: pafs.FileSystem, path: str) -> int:
    """The Delta version the manifest at ``path`` describes; -1 when there is none to read."""
    try:
        with filesystem.open_input_stream(path) as stream:
            return int(json.loads(stream.read())["output"]["delta_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def read_manifest(path: str) -> Manifest:
    """Load a manifest from a JSON file, or from a training table folder (its newest build)."""
    filesystem, base = filesystem_for(path.rstrip("/"))
    info = filesystem.get_file_info(base)
    folder = info.type == pafs.FileType.Directory
    if folder:
        table = path.rstrip("/")
        base = f"{base}/{MANIFEST_FILE}"
        info = filesystem.get_file_info(base)
    if info.type != pafs.FileType.File:
        raise ManifestError(
            f"Manifest {path}: no manifest file there; pass the training table folder or its "
            f"{MANIFEST_FILE} (written by `mesh training build`).",
            path=path,
        )
    with filesystem.open_input_stream(base) as stream:
        text = stream.read().decode("utf-8")
    try:
        manifest = Manifest.model_validate(json.loads(text))
    except ValidationError as exc:
        problems = validation_problems(Manifest, exc, path)
        raise ManifestError(
            f"Manifest {path}: not a valid {MANIFEST_FORMAT} manifest: "
            f"{'; '.join(_problem_text(p) for p in problems)}; rebuild from the file the "
            "build wrote, unmodified.",
            path=path,
            problems=problems,
        ) from exc
    except ValueError as exc:  # not JSON
        raise ManifestError(
            f"Manifest {path}: not a valid {MANIFEST_FORMAT} manifest (not JSON: {exc}); "
            "rebuild from the file the build wrote, unmodified.",
            path=path,
            problems=[],
        ) from exc
    if folder:
        unlisted = _builds_after(table, manifest.output.delta_version)
        newest = f"{table}/{MANIFEST_DIR}/{unlisted[-1]}.json" if unlisted else None
        if newest and filesystem.get_file_info(filesystem_for(newest)[1]).is_file:
            # Two builds at once: the older one's manifest was moved over the newer's last.
            return read_manifest(newest)
        if unlisted:
            # A build committed after the one the manifest describes, and its manifest was
            # never written (it failed after the commit): "the newest build" is not this one.
            raise ManifestError(
                f"Manifest {path}: {MANIFEST_FILE} describes Delta version "
                f"{manifest.output.delta_version} but build(s) at version(s) {unlisted} came "
                f"later with no manifest; pass {MANIFEST_DIR}/<version>.json of the build you "
                "mean, or build again.",
                path=path,
                manifest_version=manifest.output.delta_version,
                later_builds=unlisted,
            )
    return manifest


def _problem_text(problem: ConfigProblem) -> str:
    hint = f" ({problem.hint})" if problem.hint else ""
    return f"{problem.field}: {problem.message}{hint}"


def _builds_after(table: str, version: int) -> list[int]:
    """Versions after ``version`` of the training table ``table`` that are mesh builds.

    Other commits (an ``OPTIMIZE``, say) change no rows a manifest describes.
    """
    from mesh.storage.base import CommitInfo
    from mesh.storage.commit import read_commit

    filesystem, root = filesystem_for(table)
    selector = pafs.FileSelector(f"{root}/_delta_log", allow_not_found=True)
    later = sorted(
        int(entry.base_name[:-5])
        for entry in filesystem.get_file_info(selector)
        if entry.base_name.endswith(".json")
        and entry.base_name[:-5].isdigit()
        and int(entry.base_name[:-5]) > version
    )
    builds = []
    for number in later:
        for action in read_commit(table, number):
            info = CommitInfo.from_json(action.get("commitInfo", {}).get("userMetadata"))
            if info is not None and info.operation == BUILD_OPERATION:
                builds.append(number)
    return builds
