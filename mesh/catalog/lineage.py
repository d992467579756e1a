"""Lineage edges: data product -> domain feature set -> global feature set -> training set.

Edges are recorded with each publish (and each training-set manifest) in
``_catalog/lineage``; a node is ``<kind>:<domain>.<name>``. The edges into a node are those
of one record: a feature set's newest published version (or a version asked for), a
training set's newest build; edges of older versions are history, never mixed in. Upstream
of a training set or a global set, each input is followed at the version its build or
publish read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from mesh.catalog.paths import stored_path
from mesh.catalog.tables import Catalog, utc_now
from mesh.errors import CatalogError
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

    @property
    def ends(self) -> tuple[str, str]:
        return (self.source, self.target)


def node(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def hides(end: str, hidden: Collection[str]) -> bool:
    """Whether ``end`` (a node ``kind:domain.set`` or a set name) is a set ``hidden`` from the
    caller (set names, see ``mesh.catalog.access.hidden_sets``)."""
    kind, _, name = end.rpartition(":")
    return (not kind or kind in SET_KINDS) and name in hidden


def shown_edges(found: Iterable[Edge], hidden: Collection[str]) -> list[Edge]:
    """The edges of ``found`` a caller sees: those with no end in a ``hidden`` set.

    The one rule of lineage and exports for what was built from a hidden set: a global set
    or training set that read one stays visible by its own rule, with its other inputs;
    only the hidden set is left out, as a visible set's ``sources`` leave it out (README,
    Access). ``shown_manifest`` applies it to a training set's record.
    """
    return [e for e in found if not any(hides(n, hidden) for n in e.ends)]


def shown_manifest(manifest: Mapping[str, Any], hidden: Collection[str]) -> dict[str, Any]:
    """A training set's manifest as a caller sees it (``shown_edges``' rule): without the
    inputs read from ``hidden`` sets, nor the columns they gave the table."""
    inputs = manifest.get("inputs", [])
    gone = [i for i in inputs if hides(str(i.get("feature_set")), hidden)]
    if not gone:
        return dict(manifest)
    read = [i["features"] for i in gone if isinstance(i.get("features"), dict)]
    columns = {str(c) for features in read for c in features.values()}  # feature -> column
    shown = {**manifest, "inputs": [i for i in inputs if i not in gone]}
    if "columns" in manifest:
        shown["columns"] = [c for c in manifest["columns"] if c not in columns]
    return shown


def lineage_rows(
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    publish_id: str,
    at: datetime,
    inputs: Iterable[tuple[str, str]] = (),
) -> list[dict[str, Any]]:
    """The edges into ``fs``: its data product, or the feature sets a global set reads.

    ``inputs`` are the (feature set, semantic version) pairs a global set's publish read:
    each edge records its source's version (``from_version``; one edge per version read),
    so lineage follows the inputs as they were. An input without one has ``None``: lineage
    follows it at its newest published version.
    """
    read: dict[str, set[str]] = {}
    for name, version in inputs:
        read.setdefault(name, set()).add(version)
    sources: list[tuple[str, str, str | None]]
    if fs.kind == "feature_set":
        product = mesh.product(fs.source, fs.domain)
        sources = [("data_product", product.qualified_name if product else fs.source, None)]
    else:  # the inputs of the definition being published, not of the one conf/ holds now
        sources = []
        for name in sorted({ref.set_name for ref in fs.input_refs().values()}):
            versions: list[str | None] = [*sorted(read.get(name, ()))] or [None]
            sources += [(mesh.any_set(name).kind, name, v) for v in versions]
    return [
        {
            "publish_id": publish_id,
            "from_kind": kind,
            "from_name": name,
            "from_version": version,
            "to_kind": fs.kind,
            "to_name": fs.qualified_name,
            "to_version": fs.version,
            "recorded_at": at,
        }
        for kind, name, version in sources
    ]


def input_versions(catalog: Catalog, publish_id: str) -> list[tuple[str, str]]:
    """(feature set, semantic version) of every input the publish ``publish_id`` recorded
    as read (see ``lineage_rows``)."""
    return sorted(
        (row["from_name"], row["from_version"])
        for row in catalog.rows("lineage", publish_id=publish_id)
        if row["from_version"] is not None
    )


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
    ``table_path`` is recorded as its place in the warehouse when it lies there, else absolute
    (local paths resolved, URIs unchanged; see ``mesh.catalog.paths``). Returns the
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
                "from_version": None,  # the manifest pins them
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
                "table_path": stored_path(mesh.warehouse, table_path),
                "recorded_at": now,
                "recorder": recorder,
            }
        ],
        commit,
    )
    return record_id


@dataclass(frozen=True)
class _Record:
    """One landed record with edges: a publish (``version`` set) or a training-set build."""

    publish_id: str
    name: str
    version: str | None
    at: datetime


class _Graph:
    """The landed lineage edges, grouped by the record (publish or build) that wrote them."""

    def __init__(self, spark: SparkSession, mesh: MeshDefinition) -> None:
        catalog = Catalog(spark, mesh.warehouse)
        manifests = catalog.rows("manifests")
        records = [
            _Record(r["publish_id"], r["name"], r["semantic_version"], r["published_at"])
            for r in catalog.rows("versions")
        ] + [_Record(r["publish_id"], r["name"], None, r["recorded_at"]) for r in manifests]
        self.records = {r.publish_id: r for r in records}
        # Record -> feature set -> the semantic versions it read: a training-set build's
        # manifest pins, a global set's publish's edges.
        self.pins: dict[str, dict[str, set[str]]] = {
            r["publish_id"]: _pins(r["manifest_json"]) for r in manifests
        }
        self.by_record: dict[str, list[Edge]] = {}
        for row in catalog.rows("lineage"):
            if row["publish_id"] in self.records:
                edge = Edge(
                    node(row["from_kind"], row["from_name"]), node(row["to_kind"], row["to_name"])
                )
                found = self.by_record.setdefault(row["publish_id"], [])
                if edge not in found:
                    found.append(edge)
                if row["from_version"] is not None:
                    read = self.pins.setdefault(row["publish_id"], {})
                    read.setdefault(row["from_name"], set()).add(row["from_version"])
        # The record of each set and training set: its newest landed one; of each
        # (set, version) too. Sets and training sets are named apart.
        self.newest: dict[tuple[bool, str], _Record] = {}
        self.pinned: dict[tuple[str, str], _Record] = {}
        for record in sorted(records, key=lambda r: r.at):
            self.newest[(record.version is None, record.name)] = record
            if record.version is not None:
                self.pinned[(record.name, record.version)] = record

    def known(self, name: str) -> bool:
        """Whether a record or an edge names ``name`` (``domain.set``, without a kind)."""
        ends = {n.split(":", 1)[1] for es in self.by_record.values() for e in es for n in e.ends}
        return any(r.name == name for r in self.records.values()) or name in ends

    def into(
        self, target: str, version: str | None = None
    ) -> tuple[list[Edge], Mapping[str, set[str]]]:
        """Edges into node ``target`` from its record (newest, or of ``version``), and the
        versions that record read its inputs at."""
        kind, name = target.split(":", 1)
        if version is None:
            record = self.newest.get((kind == "training_set", name))
        else:
            record = self.pinned.get((name, version))
        if record is None:
            return [], {}
        edges = [e for e in self.by_record.get(record.publish_id, []) if e.target == target]
        return edges, self.pins.get(record.publish_id, {})

    def read_at(self, name: str, version: str) -> list[Edge]:
        """Edges out of set ``name`` from every name's newest record that read ``version``
        of it (a record that recorded no version read it at its newest)."""
        newest = self.newest.get((False, name))
        at_newest = newest is not None and newest.version == version
        found: set[Edge] = set()
        for record in self.newest.values():
            read = self.pins.get(record.publish_id, {}).get(name)
            if (version in read) if read else at_newest:
                edges = self.by_record.get(record.publish_id, [])
                found.update(e for e in edges if e.source.split(":", 1)[1] == name)
        return sorted(found, key=lambda e: (e.source, e.target))

    def current(self) -> list[Edge]:
        """The edges of every name's newest record."""
        found = {e for r in self.newest.values() for e in self.by_record.get(r.publish_id, [])}
        return sorted(found, key=lambda e: (e.source, e.target))


def _pins(manifest_json: str) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for pin in json.loads(manifest_json).get("inputs", []):
        if pin.get("feature_set") and pin.get("semantic_version"):
            pins.setdefault(str(pin["feature_set"]), set()).add(str(pin["semantic_version"]))
    return pins


def edges(spark: SparkSession, mesh: MeshDefinition) -> list[Edge]:
    """The landed lineage edges of every set's newest published version and every training
    set's newest build (a version's edges replace its predecessors')."""
    return _Graph(spark, mesh).current()


def lineage(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str,
    direction: Direction = "both",
    depth: int | None = None,
    *,
    identity: Identity | str | None = None,
    version: str | None = None,
) -> list[Edge]:
    """Edges reachable from ``name`` (``domain.set`` or a full node ``kind:domain.set``).

    ``upstream`` follows edges backwards (what ``name`` is built from), ``downstream``
    forwards (what is built from ``name``); ``depth`` limits the hops (``None``: all).
    Every node's edges are those of one record: upstream, the start set at ``version``
    (a published semantic version; default its newest), a training set's newest build, and
    the feature sets a training-set build or a global set's publish read at the versions it
    read (a global set's publish recorded before versions were: at their newest), any other
    set at its newest published version; downstream, the newest record of every consumer
    (with ``version``: of those consumers whose newest record read that version of ``name``).
    ``CatalogError`` when ``version`` of ``name`` was never published, and when no record
    names ``name`` and ``conf/`` does not define it (a typo).

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
    graph = _Graph(spark, mesh)
    if version is not None and (start_name, version) not in graph.pinned:
        raise CatalogError(
            f"lineage of {start_name}: version {version} was never published; see `mesh "
            f"catalog versions {start_name}` for its published versions",
            feature_set=start_name,
            version=version,
        )

    def shown(found: list[Edge]) -> list[Edge]:
        return shown_edges(found, denied)

    current = shown(graph.current())
    nodes = {e.source for e in current} | {e.target for e in current}
    if version is not None:
        nodes |= {e.target for e in shown(graph.into(node("feature_set", start_name), version)[0])}
        nodes |= {
            e.target for e in shown(graph.into(node("global_feature_set", start_name), version)[0])
        }
    seeds = {n for n in nodes if n == name or n.split(":", 1)[1] == name}
    defined = {*mesh.all_sets(), *mesh.products, *mesh.training_sets}
    if not seeds and start_name not in defined and not graph.known(start_name):
        raise CatalogError(
            f"lineage of {name}: no lineage record names it and conf/ does not define it; "
            "list the published sets with `mesh catalog search`",
            feature_set=start_name,
        )
    picked: set[Edge] = set()
    if direction in ("upstream", "both"):
        frontier = {(n, version) for n in seeds}
        seen, hops = set(frontier), 0
        while frontier and (depth is None or hops < depth):
            step: set[tuple[str, str | None]] = set()
            for target, at in frontier:
                into, pins = graph.into(target, at)
                for e in shown(into):
                    picked.add(e)
                    read: set[str | None] = {*pins.get(e.source.split(":", 1)[1], ())}
                    step.update((e.source, v) for v in read or {None})
            frontier, hops = step - seen, hops + 1
            seen |= frontier
    if direction in ("downstream", "both"):
        frontier_nodes, reached, hops = set(seeds), set(seeds), 0
        while frontier_nodes and (depth is None or hops < depth):
            pool = current if hops or version is None else shown(graph.read_at(start_name, version))
            out = [e for e in pool if e.source in frontier_nodes]
            picked.update(out)
            frontier_nodes = {e.target for e in out} - reached
            reached |= frontier_nodes
            hops += 1
    return sorted(picked, key=lambda e: (e.source, e.target))
