"""Exports of the catalog to formats other catalogs ingest.

Each format is a pure function of an :class:`ExportInput` (what the catalog holds), so the
output is deterministic and testable without Spark; :func:`export_catalog` reads the catalog
and writes the files.

* ``atlas``: Apache Atlas / Microsoft Purview type definitions and entities (JSON);
* ``openlineage``: one OpenLineage ``RunEvent`` per published version and training set;
* ``datahub``: DataHub metadata change proposals for ML feature tables (JSON);
* ``odcs``: one Open Data Contract Standard (v3.0.2) YAML per feature set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh.errors import CatalogError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.access import Identity
    from mesh.catalog.lineage import Edge
    from mesh.catalog.search import CatalogEntry, VersionRecord
    from mesh.definitions import MeshDefinition

FORMATS = ("atlas", "openlineage", "datahub", "odcs")


@dataclass(frozen=True)
class ExportInput:
    """What an export needs: the latest entry and version of every set, and the lineage.

    ``keys`` maps each entity to its key columns and types; ``trainings`` holds one
    ``(name, recorded_at, manifest)`` per recorded training set.
    """

    mesh_name: str
    entries: list[CatalogEntry]
    versions: dict[str, VersionRecord]
    edges: list[Edge]
    keys: dict[str, dict[str, str]]
    quality: dict[str, Any] = field(default_factory=dict)
    trainings: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)


def collect(
    spark: SparkSession, mesh: MeshDefinition, identity: Identity | str | None = None
) -> ExportInput:
    """Read what every export needs from the catalog tables, as the caller may see it.

    Sets the caller (``identity``, else the identity variable; none is refused) may not see
    are left out, like ``mesh catalog search`` leaves them out, and so are the lineage edges
    that name them and, from recorded training sets, the inputs read from them: by the rule
    ``mesh catalog lineage`` follows (``shown_edges``), a training set that read a hidden set
    is exported with its other inputs.
    """
    from mesh.catalog.access import current_identity, hidden_sets
    from mesh.catalog.lineage import edges, shown_edges, shown_manifest
    from mesh.catalog.search import entries, latest_version, visible_sources
    from mesh.catalog.tables import Catalog

    who = current_identity(mesh.standards, identity)
    every = entries(spark, mesh)
    hidden = set(hidden_sets(mesh, who, every))
    found = [visible_sources(e, hidden) for e in every if e.name not in hidden]
    latest = {e.name: latest_version(spark, mesh, e.name) for e in found}
    trainings = [
        (r["name"], r["recorded_at"], shown_manifest(json.loads(r["manifest_json"]), hidden))
        for r in Catalog(spark, mesh.warehouse).rows("manifests")
    ]
    std = mesh.standards
    return ExportInput(
        mesh_name=std.name,
        entries=found,
        versions={k: v for k, v in latest.items() if v is not None},
        edges=shown_edges(edges(spark, mesh), hidden),
        keys={name: dict(entity.keys) for name, entity in std.entities.items()},
        quality={"min_rows": std.quality.min_rows, "max_null_rate": std.quality.max_null_rate},
        trainings=sorted(trainings, key=lambda t: (t[0], t[1])),
    )


def render(data: ExportInput, fmt: str) -> dict[str, str]:
    """The files of one format: relative file name -> text."""
    fn: Callable[[ExportInput], dict[str, str]]
    if fmt == "atlas":
        from mesh.catalog.export.atlas import render_atlas as fn
    elif fmt == "openlineage":
        from mesh.catalog.export.openlineage import render_openlineage as fn
    elif fmt == "datahub":
        from mesh.catalog.export.datahub import render_datahub as fn
    elif fmt == "odcs":
        from mesh.catalog.export.odcs import render_odcs as fn
    else:
        raise CatalogError(
            f"export format {fmt!r} is not supported; use one of {', '.join(FORMATS)}",
            format=fmt,
        )
    return fn(data)


def export_catalog(
    spark: SparkSession,
    mesh: MeshDefinition,
    fmt: str,
    out_dir: str | Path,
    *,
    identity: Identity | str | None = None,
) -> list[Path]:
    """Write the files of ``fmt`` (one of ``FORMATS``) under ``out_dir``; return their paths.

    The export holds what ``identity`` may see in the catalog (see :func:`collect`).
    ``CatalogError`` (params ``out``, ``path``) when ``out_dir`` is not a folder that can be
    written: checked before the catalog is read when it (or a folder above it) is a file.
    """
    root = Path(out_dir)
    blocking = next((p for p in (root, *root.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        _refuse_out(root, blocking, "it is a file, not a folder")
    files = render(collect(spark, mesh, identity), fmt)
    written = []
    for name, text in sorted(files.items()):
        path = root / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as exc:
            _refuse_out(root, path, exc.strerror or str(exc))
        written.append(path)
    return written


def _refuse_out(root: Path, path: Path, reason: str) -> None:
    raise CatalogError(
        f"export: cannot write under {root} ({path}: {reason}); pass --out a folder you can "
        "write (it is created when missing)",
        out=str(root),
        path=str(path),
    )


def dumps(payload: Any) -> str:
    """Stable JSON text of an export (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
