"""Delta storage for feature tables: one versioned Delta table per feature set.

``open_table`` picks the backend: ``native`` (delta-spark, when its jars are on the session's
classpath) or ``embedded`` (Spark writes Parquet, delta-rs commits). Both write standard Delta
tables, one commit per job run, with the run's :class:`CommitInfo` in the commit's
``userMetadata``.
"""

from __future__ import annotations

import os
import posixpath
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

    A ``file:`` URI (``file:///x``, ``file:/x``, ``file://localhost/x``) is the local path it
    names, so it compares with local paths and with other ``file:`` URIs; local paths are
    compared resolved (symbolic links, ``..``). Other URIs (``s3://``, ``dbfs:``) compare only
    with URIs of the same store and authority, by their normalised path: ``s3``, ``s3a`` and
    ``s3n`` are one store, as are ``abfs``/``abfss`` and ``wasb``/``wasbs``, and a local
    ``/dbfs/x`` is also ``dbfs:/x`` (Databricks' mount of it). A percent-encoded
    path is taken both as written (Hadoop reads ``%20`` literally) and decoded (as URL readers
    do): ``path`` lies below ``root`` when either reading puts it there, so a governance check
    cannot be walked around by spelling a path another way.
    """
    for base in _places(root):
        for target in _places(path):
            if base[:2] != target[:2]:
                continue
            parts = _local_parts(base[2], target[2]) if not base[0] else _uri_parts(base, target)
            if parts is not None:
                return parts
    return None


# Schemes that name the same store through another client or with TLS.
_SAME_STORE = {"s3a": "s3", "s3n": "s3", "abfss": "abfs", "wasbs": "wasb"}


def _places(path: str) -> list[tuple[str, str, str]]:
    """(scheme, authority, path) of each reading of ``path``; local ones as ("", "", realpath)."""
    from urllib.parse import unquote, urlsplit

    if not is_uri(path):
        found = [("", "", os.path.realpath(path))]
        mount = posixpath.normpath(path)
        if mount == "/dbfs" or mount.startswith("/dbfs/"):  # Databricks' FUSE view of dbfs:/
            found.append(("dbfs", "", "/" + mount[len("/dbfs") :].lstrip("/")))
        return found
    try:
        split = urlsplit(path)
    except ValueError:  # a malformed authority (``s3://[x``): its text is all there is
        return [(path.split(":", 1)[0].lower(), path, "/")]
    scheme, authority = split.scheme.lower(), split.netloc.lower()
    scheme = _SAME_STORE.get(scheme, scheme)
    readings = list(dict.fromkeys([split.path, unquote(split.path)]))
    if scheme != "file":
        return [(scheme, authority, posixpath.normpath("/" + p.lstrip("/"))) for p in readings]
    # A file: URI's path, also as ``normalize_path`` (so ``open_table``) makes it of the text,
    # whatever host it names: the engine reads it from this machine's files.
    local = [*readings, normalize_path(path)]
    return [("", "", os.path.realpath(p)) for p in dict.fromkeys(local)]


def _local_parts(base: str, target: str) -> list[str] | None:
    if target == base:
        return []
    if os.path.commonpath([base, target]) != base:
        return None
    return os.path.relpath(target, base).split(os.sep)


def _uri_parts(base: tuple[str, str, str], target: tuple[str, str, str]) -> list[str] | None:
    if target[2] == base[2]:
        return []
    prefix = base[2].rstrip("/") + "/"
    if not target[2].startswith(prefix):
        return None
    return [p for p in target[2][len(prefix) :].split("/") if p]
