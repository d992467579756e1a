"""Lineage edges: data product -> domain feature set -> global feature set -> training set.

Edges are recorded with each publish (and each training-set manifest) in
``_catalog/lineage``; a node is ``<kind>:<domain>.<name>``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from mesh.catalog.tables import Catalog, stored_path, utc_now
from mesh.storage import CommitInfo

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.access import Identity
    from mesh.definitions import AnyFeatureSet, MeshDefinition, TrainingSet

Direction = Literal["upstream", "downstream", "both"]
# Node kinds that are feature sets, whose visibility decides who sees them in lineage.
SET_KINDS = ("feature_set", "global_feature_set")


@dataclass(frozen=True)
class Edge:
    """``source`` feeds ``target`` (nodes are ``kind:domain.name``)."""

    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"


def node(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def lineage_rows(
    mesh: MeshDefinition, fs: AnyFeatureSet, publish_id: str, at: datetime
) -> list[dict[str, Any]]:
    """The edges into ``fs``: its data product, or the feature sets a global set reads."""
    if fs.kind == "feature_set":
        product = mesh.product(fs.source, fs.domain)
        sources = [("data_product", product.qualified_name if product else fs.source)]
    else:
        sources = [(mesh.any_set(n).kind, n) for n in mesh.upstream(fs.qualified_name)]
    return [
        {
            "publish_id": publish_id,
            "from_kind": kind,
            "from_name": name,
            "to_kind": fs.kind,
            "to_name": fs.qualified_name,
            "to_version": fs.version,
            "recorded_at": at,
        }
        for kind, name in sources
    ]


def record_training_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    training_set: TrainingSet,
    manifest: Mapping[str, Any],
    *,
    table_path: str,
    recorder: str,
) -> str:
    """Record a built training set: its manifest and an edge from every feature set it read.

    ``manifest`` is the JSON-able manifest (``inputs[*].feature_set`` names the sets read).
    Lineage rows go first and the manifest row last: the manifest row makes them visible.
    ``table_path`` is recorded absolute (local paths resolved, URIs unchanged). Returns the
    record's id.
    """
    catalog = Catalog(spark, mesh.warehouse)
    record_id = uuid.uuid4().hex
    now = utc_now()
    name = training_set.qualified_name
    read = sorted({str(pin["feature_set"]) for pin in manifest.get("inputs", [])})
    commit = CommitInfo(
        run_id=record_id, operation="catalog_training_set", extra={"training_set": name}
    )
    catalog.append(
        "lineage",
        [
            {
                "publish_id": record_id,
                "from_kind": mesh.any_set(s).kind,
                "from_name": s,
                "to_kind": "training_set",
                "to_name": name,
                "to_version": None,
                "recorded_at": now,
            }
            for s in read
        ],
        commit,
    )
    catalog.append(
        "manifests",
        [
            {
                "publish_id": record_id,
                "name": name,
                "domain": training_set.domain,
                "manifest_json": json.dumps(manifest, sort_keys=True, default=str),
                "table_path": stored_path(table_path),
                "recorded_at": now,
                "recorder": recorder,
            }
        ],
        commit,
    )
    return record_id


def edges(spark: SparkSession, mesh: MeshDefinition) -> list[Edge]:
    """Every landed lineage edge (deduplicated across versions)."""
    catalog = Catalog(spark, mesh.warehouse)
    landed = catalog.published_ids()
    found = {
        Edge(node(r["from_kind"], r["from_name"]), node(r["to_kind"], r["to_name"]))
        for r in catalog.rows("lineage")
        if r["publish_id"] in landed
    }
    return sorted(found, key=lambda e: (e.source, e.target))


def lineage(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str,
    direction: Direction = "both",
    depth: int | None = None,
    *,
    identity: Identity | str | None = None,
) -> list[Edge]:
    """Edges reachable from ``name`` (``domain.set`` or a full node ``kind:domain.set``).

    ``upstream`` follows edges backwards (what ``name`` is built from), ``downstream``
    forwards (what is built from ``name``); ``depth`` limits the hops (``None``: all).

    Answers a caller (``identity``, else the identity variable; none is refused): lineage
    of a set the caller may not see (published, or defined in ``conf/`` only) is refused
    with ``AccessDeniedError`` and audited, and edges to or from such sets are left out (nor
    followed).
    """
    from mesh.catalog.access import current_identity, hidden_sets, refuse_metadata
    from mesh.catalog.search import entries

    who = current_identity(mesh.standards, identity)
    denied = hidden_sets(mesh, who, entries(spark, mesh))
    start_name = name.split(":", 1)[-1]
    if start_name in denied and (":" not in name or name.split(":", 1)[0] in SET_KINDS):
        refuse_metadata(spark, mesh, who, denied[start_name], "catalog lineage")
    hidden = {node(kind, set_name) for set_name in denied for kind in SET_KINDS}
    all_edges = [e for e in edges(spark, mesh) if not {e.source, e.target} & hidden]
    start = {e.source for e in all_edges} | {e.target for e in all_edges}
    seeds = {n for n in start if n == name or n.split(":", 1)[1] == name}
    picked: set[Edge] = set()
    for forward in _directions(direction):
        frontier, seen, hops = set(seeds), set(seeds), 0
        while frontier and (depth is None or hops < depth):
            step = [e for e in all_edges if (e.source if forward else e.target) in frontier]
            picked.update(step)
            nxt = {(e.target if forward else e.source) for e in step} - seen
            seen |= nxt
            frontier, hops = nxt, hops + 1
    return sorted(picked, key=lambda e: (e.source, e.target))


def _directions(direction: Direction) -> list[bool]:
    return {"upstream": [False], "downstream": [True], "both": [False, True]}[direction]
