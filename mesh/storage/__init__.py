"""Delta storage for feature tables: one versioned Delta table per feature set.

``open_table`` picks the backend: ``native`` (delta-spark, when its jars are on the session's
classpath) or ``embedded`` (Spark writes Parquet, delta-rs commits). Both write standard Delta
tables, one commit per job run, with the run's :class:`CommitInfo` in the commit's
``userMetadata``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mesh.errors import StorageError
from mesh.storage.base import CommitInfo, CommitRecord, DeltaFeatureTable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.definitions import MeshDefinition

__all__ = [
    "BACKENDS",
    "CommitInfo",
    "CommitRecord",
    "DeltaFeatureTable",
    "in_warehouse",
    "is_uri",
    "normalize_path",
    "open_table",
    "parts_below",
]

BACKENDS = ("auto", "native", "embedded")
BACKEND_ENV = "MESH_STORAGE_BACKEND"


def open_table(spark: SparkSession, path: str, backend: str = "auto") -> DeltaFeatureTable:
    """Handle on the Delta table at ``path`` (local path or URI); nothing is read or created yet.

    ``backend="auto"`` uses ``MESH_STORAGE_BACKEND`` when set, else ``native`` if the session
    has the Delta extension loaded and ``embedded`` otherwise. Forcing ``native`` without the
    Delta jars raises ``StorageError``.
    """
    from mesh.session import native_delta_enabled

    choice = backend
    source = "backend argument"
    if choice == "auto" and os.environ.get(BACKEND_ENV):
        choice, source = os.environ[BACKEND_ENV].strip().lower(), BACKEND_ENV
    if choice not in BACKENDS:
        raise StorageError(
            f"Storage backend for {path}: {source} is {choice!r}, expected one of "
            f"{', '.join(BACKENDS)}.",
            path=path,
            backend=choice,
        )
    location = normalize_path(path)
    if choice == "auto":
        choice = "native" if native_delta_enabled(spark) else "embedded"
    if choice == "native":
        if not native_delta_enabled(spark):
            raise StorageError(
                f"Storage backend for {location}: native was requested ({source}) but the "
                "Spark session has no Delta Lake extension; run on Databricks or a cluster "
                "with Delta, start Spark with --packages io.delta:delta-spark_2.13:<version> "
                "(and the DeltaSparkSessionExtension), or use backend='embedded'.",
                path=location,
                backend="native",
            )
        from mesh.storage.native import NativeDeltaTable

        return NativeDeltaTable(spark, location)
    from mesh.storage.embedded import EmbeddedDeltaTable

    return EmbeddedDeltaTable(spark, location)


def is_uri(path: str) -> bool:
    """Whether ``path`` starts with a scheme (``s3://``, ``dbfs:/``, ``file:``...)."""
    return ":" in path.split("/", 1)[0]


def normalize_path(path: str) -> str:
    """Absolute local path (``file:`` URIs unwrapped) or the URI unchanged (s3://, dbfs:/...)."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    elif path.startswith("file:"):
        path = path[len("file:") :]
    elif is_uri(path):
        return path.rstrip("/")
    return os.path.abspath(path)


def in_warehouse(mesh: MeshDefinition, location: str) -> str:
    """``location`` under the warehouse root unless it is absolute or a URI."""
    if os.path.isabs(location) or is_uri(location):
        return location
    return os.path.join(mesh.warehouse, location)


def parts_below(root: str, path: str) -> list[str] | None:
    """``path``'s parts below ``root`` (``[]`` for ``root`` itself); None when it lies outside.

    Local paths are compared resolved (symbolic links, ``..``); URIs (``s3://``, ``dbfs:``)
    by their text, a local path and a URI never being one inside the other.
    """
    uri = is_uri(root)
    if uri != is_uri(path):
        return None
    if uri:
        base, target = root.rstrip("/"), path.rstrip("/")
        if target == base:
            return []
        if not target.startswith(base + "/"):
            return None
        return [p for p in target[len(base) + 1 :].split("/") if p]
    base, target = os.path.realpath(root), os.path.realpath(path)
    if target == base:
        return []
    if os.path.commonpath([base, target]) != base:
        return None
    return os.path.relpath(target, base).split(os.sep)
