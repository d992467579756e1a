"""Reading the catalog: search, show, versions and statistics of published feature sets.

Only landed publishes are visible: rows of ``feature_sets`` and ``statistics`` count when
their ``publish_id`` has a ``versions`` row (the publish's commit point).

``search``, ``show`` and ``versions`` answer a caller (``identity``, else the variable named
by ``access.identity_env``; none is refused like a read): a set the caller may not see by
its visibility is left out of a search, and ``show``/``versions`` of it are refused and
audited. ``entries``, ``recorded_versions`` and ``latest_version`` are the engine's own
unchecked reads (publish, reference resolution, exports).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mesh.catalog.paths import recorded_path
from mesh.catalog.tables import LOOKUP_HINT, Catalog, require_warehouse
from mesh.errors import CatalogError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.access import Identity
    from mesh.definitions import AnyFeatureSet, MeshDefinition


@dataclass(frozen=True)
class VersionRecord:
    """One published version of a feature set (a row of ``_catalog/versions``)."""

    publish_id: str
    name: str
    domain: str
    semantic_version: str
    major: int
    delta_version: int
    table_path: str
    data_hash: str
    metadata_hash: str
    definition_json: str
    bump: str
    reasons: list[str]
    range_start: datetime | None
    range_end: datetime | None
    row_count: int
    published_at: datetime
    publisher: str
    run_id: str

    @classmethod
    def from_row(
        cls, row: dict[str, Any], warehouse: str | None = None, moved_from: Sequence[str] = ()
    ) -> VersionRecord:
        """A ``versions`` row; with the catalog's ``warehouse``, ``table_path`` is absolute,
        under that warehouse when the record places the table there (see ``recorded_path``:
        ``moved_from`` are the warehouse's earlier roots)."""
        path = row["table_path"]
        if warehouse is not None and path:
            set_name = row["name"].split(".", 1)[-1]
            inside = f"features/{row['domain']}/{set_name}/v{row['major']}"
            path = recorded_path(warehouse, path, inside, moved_from)
        return cls(**{**row, "table_path": path, "reasons": list(row.get("reasons") or [])})

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("range_start", "range_end", "published_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


@dataclass(frozen=True)
class CatalogEntry:
    """The current catalog view of a feature set (its latest published metadata)."""

    name: str
    domain: str
    kind: str
    entity: str
    owner: str | None
    description: str | None
    tags: list[str]
    visibility: str
    allowed_domains: list[str]
    sources: list[str]
    features: list[dict[str, Any]]
    semantic_version: str
    published_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CatalogEntry:
        return cls(
            name=row["name"],
            domain=row["domain"],
            kind=row["kind"],
            entity=row["entity"],
            owner=row["owner"],
            description=row["description"],
            tags=list(row["tags"] or []),
            visibility=row["visibility"],
            allowed_domains=list(row["allowed_domains"] or []),
            sources=list(row["sources"] or []),
            features=json.loads(row["features_json"]),
            semantic_version=row["semantic_version"],
            published_at=row["published_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["published_at"] = self.published_at.isoformat()
        return out


def versions(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str,
    *,
    identity: Identity | str | None = None,
) -> list[VersionRecord]:
    """Every published version of ``name`` (``domain.set``), newest first, for a caller.

    Raises ``AccessDeniedError`` (audited) when the caller may not see the set, and when no
    identity is given or set. A set ``conf/`` defines that was never published has no
    versions; a name neither published nor defined is a ``CatalogError``. As in
    ``show``, a stored definition names the inputs the caller may not see ``<hidden>``.
    """
    from mesh.catalog.access import authorize_metadata, current_identity, hidden_sets

    who = current_identity(mesh.standards, identity)
    every = entries(spark, mesh)
    entry = next((e for e in every if e.name == name), None)
    if entry is None:
        if name not in mesh.all_sets():  # a typo, not a set that was never published
            raise _unknown(name, [e.name for e in every], mesh)
        return []
    authorize_metadata(spark, mesh, who, entry, "catalog versions")
    hidden = set(hidden_sets(mesh, who, every))
    return [
        dataclasses.replace(
            v,
            definition_json=_hide_inputs(v.definition_json, hidden),
            reasons=_hide_references(v.reasons, hidden),
        )
        for v in recorded_versions(spark, mesh, name)
    ]


def _unknown(name: str, published: list[str], mesh: MeshDefinition) -> CatalogError:
    """The error for a name neither in the catalog nor defined in ``conf/`` as a feature
    set: a typo, or a training set (which the catalog does not list)."""
    if name in mesh.training_sets:
        return CatalogError(
            f"{name!r} is a training set, not a feature set: the catalog lists feature sets; "
            f"see what it reads with `mesh catalog lineage {name} --direction upstream`, or "
            f"build it with `mesh training build {name}`",
            training_set=name,
        )
    close = difflib.get_close_matches(name, sorted({*published, *mesh.all_sets()}), n=1, cutoff=0.8)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return CatalogError(
        f"feature set {name!r} is neither in the catalog nor defined in conf/; {hint}list "
        "the published sets with `mesh catalog search`",
        feature_set=name,
    )


def recorded_versions(spark: SparkSession, mesh: MeshDefinition, name: str) -> list[VersionRecord]:
    """Every published version of ``name``, newest first; no access check (engine use)."""
    rows = Catalog(spark, mesh.warehouse).rows("versions", name=name)
    moved = mesh.standards.storage.moved_from
    return _newest_first(VersionRecord.from_row(r, mesh.warehouse, moved) for r in rows)


def versions_by_name(spark: SparkSession, mesh: MeshDefinition) -> dict[str, list[VersionRecord]]:
    """Every published version of every set, newest first per name: one read of the catalog."""
    found: dict[str, list[VersionRecord]] = {}
    moved = mesh.standards.storage.moved_from
    for row in Catalog(spark, mesh.warehouse).rows("versions"):
        record = VersionRecord.from_row(row, mesh.warehouse, moved)
        found.setdefault(row["name"], []).append(record)
    return {name: _newest_first(records) for name, records in found.items()}


def _newest_first(records: Iterable[VersionRecord]) -> list[VersionRecord]:
    return sorted(records, key=lambda r: r.published_at, reverse=True)


def latest_version(
    spark: SparkSession, mesh: MeshDefinition, name: str, pin: str | None = None
) -> VersionRecord | None:
    """The newest published version of ``name``, optionally within ``pin`` (``1``, ``1.2``…).

    No access check (the engine's own reads: publish, exports); callers use ``versions``.
    """
    for record in recorded_versions(spark, mesh, name):
        if pin is None or record.semantic_version.split(".")[: len(pin.split("."))] == pin.split(
            "."
        ):
            return record
    return None


def entries(spark: SparkSession, mesh: MeshDefinition) -> list[CatalogEntry]:
    """The latest landed catalog entry of every published feature set, by name.

    ``CatalogError`` for a local warehouse folder that does not exist (a typo, a relative
    path after ``os.chdir``): every lookup starts here, and none answers "nothing
    published" for a catalog it could not find.
    """
    require_warehouse(mesh.warehouse_as_given, LOOKUP_HINT)
    return landed_entries(spark, mesh)


def landed_entries(spark: SparkSession, mesh: MeshDefinition) -> list[CatalogEntry]:
    """``entries`` without the check that the warehouse exists (none: no entries), for the
    reads, whose own errors name a missing feature table."""
    catalog = Catalog(spark, mesh.warehouse)
    landed = {r["publish_id"] for r in catalog.rows("versions")}
    latest: dict[str, dict[str, Any]] = {}
    for row in catalog.rows("feature_sets"):
        if row["publish_id"] not in landed:
            continue
        seen = latest.get(row["name"])
        if seen is None or row["published_at"] > seen["published_at"]:
            latest[row["name"]] = row
    return [CatalogEntry.from_row(latest[n]) for n in sorted(latest)]


def search(
    spark: SparkSession,
    mesh: MeshDefinition,
    text: str | None = None,
    *,
    domain: str | None = None,
    entity: str | None = None,
    owner: str | None = None,
    tag: str | None = None,
    identity: Identity | str | None = None,
) -> list[CatalogEntry]:
    """Published feature sets the caller may see matching every given filter, by name.

    ``text`` matches when each of its words appears (case-insensitively, in any order) in
    the name, description, tags or the names and descriptions of the features; ``owner``
    is a substring of the owner; ``tag`` matches a set tag or a feature tag exactly. Sets
    the caller (``identity``, else the identity variable) may not see by their visibility
    are left out: private sets of other domains, internal sets that do not name the
    caller's domain. Without an identity the search is
    refused (``AccessDeniedError``), like a read.
    """
    from mesh.catalog.access import current_identity, hidden_sets, metadata_denial

    who = current_identity(mesh.standards, identity)
    every = entries(spark, mesh)
    hidden = set(hidden_sets(mesh, who, every))
    found = []
    for entry in every:
        if domain and entry.domain != domain:
            continue
        if entity and entry.entity != entity:
            continue
        if owner and owner.lower() not in (entry.owner or "").lower():
            continue
        feature_tags = {t for f in entry.features for t in f.get("tags", [])}
        if tag and tag not in entry.tags and tag not in feature_tags:
            continue
        if metadata_denial(mesh, who, entry) is not None:
            continue
        if text and not all(word in _haystack(entry) for word in text.lower().split()):
            continue
        found.append(visible_sources(entry, hidden))
    return found


def visible_sources(entry: CatalogEntry, hidden: set[str]) -> CatalogEntry:
    """``entry`` without the sources (``kind:domain.set``) that name a ``hidden`` set."""
    kept = [s for s in entry.sources if s.split(":", 1)[-1] not in hidden]
    return entry if kept == entry.sources else dataclasses.replace(entry, sources=kept)


def _haystack(entry: CatalogEntry) -> str:
    parts = [entry.name, entry.description or "", *entry.tags]
    for feature in entry.features:
        parts += [feature["name"], feature.get("description") or "", *feature.get("tags", [])]
    return " ".join(parts).lower()


def show(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str,
    *,
    identity: Identity | str | None = None,
) -> dict[str, Any]:
    """Entry, versions, latest statistics and latest check results of one feature set.

    The caller (``identity``, else the identity variable) must be allowed to see the set by
    its visibility; otherwise ``AccessDeniedError`` names who, the set and the missing
    grant, and the refusal is audited. Seeing a set grants no PII features, so the
    statistics show no values of a text feature the entry or ``conf/`` now classes ``pii``
    or ``sensitive``, even when a publish stored them, and a caller without the feature's
    read grant (``decide``, the tighter of the published and the current classes) sees only
    count, nulls and distinct count of such a feature of any type (no min, max, mean,
    stddev, quantiles or histogram), nor the measurements of its data checks (a range
    check's min and max). ``CatalogError`` when
    ``name`` was never published.
    """
    from mesh.catalog.access import (
        authorize_metadata,
        current_identity,
        decide,
        hidden_sets,
        pii_of,
    )
    from mesh.definitions.feature_set import PROTECTED_PII
    from mesh.governance.statistics import redact, stats_to_dict

    who = current_identity(mesh.standards, identity)
    every = entries(spark, mesh)
    entry = next((e for e in every if e.name == name), None)
    if entry is None:
        if name not in mesh.all_sets():  # a typo: publishing that name cannot help
            raise _unknown(name, [e.name for e in every], mesh)
        from mesh.catalog.publish import first_publish

        step, command = first_publish(spark, mesh, mesh.all_sets()[name])
        raise CatalogError(
            f"feature set {name!r} is not in the catalog: no version of it was published; "
            f"{step}, or list published sets with `mesh catalog search`",
            feature_set=name,
            command=command,
        )
    authorize_metadata(spark, mesh, who, entry, "catalog show")
    history = recorded_versions(spark, mesh, name)
    latest = history[0]
    checks = Catalog(spark, mesh.warehouse).rows("checks", publish_id=latest.publish_id)
    personal = [f["name"] for f in entry.features if f.get("pii") in PROTECTED_PII]
    fs = mesh.all_sets().get(name)
    if fs is not None:
        # As for reads, the tighter of the published and the current classes applies: a
        # feature conf/ classes pii now is withheld before the next publish records it.
        personal += [
            o for o in fs.output_names() if pii_of(fs, o) in PROTECTED_PII and o not in personal
        ]
        published = published_definition_of(latest) or fs
        readable = {d.feature for d in decide(mesh, who, published, []) if d.allowed}
    else:  # no longer defined in conf: no grant to decide by, only the owner reads
        readable = {f["name"] for f in entry.features} if who.domain == entry.domain else set()
    withheld = [f for f in personal if f not in readable]
    stats = redact(redact(statistics_of(spark, mesh, latest), personal), withheld, every_kind=True)
    hidden = set(hidden_sets(mesh, who, every))
    return {
        "entry": visible_sources(entry, hidden).to_dict(),
        "versions": [_without_hidden_inputs(v.to_dict(), hidden) for v in history],
        "statistics": stats_to_dict(stats),
        "checks": [_withhold(json.loads(c["record_json"]), withheld) for c in checks],
    }


def _withhold(check: dict[str, Any], withheld: Sequence[str]) -> dict[str, Any]:
    """A data check's record without its measurement when the caller may not read its
    feature (a range check measures the feature's min and max)."""
    if not (str(check.get("check", "")).startswith("data.") and check.get("feature") in withheld):
        return check
    message = check.get("message")
    if message != "ok":
        message = f"{check['check']} on {check['feature']}: values withheld (no read grant)"
    return {**check, "measured": None, "message": message, "redacted": True}


def published_definition_of(record: VersionRecord) -> AnyFeatureSet | None:
    """The definition ``record`` was published with; ``None`` when it no longer validates."""
    from mesh.governance.contract import as_feature_set

    try:
        return as_feature_set(json.loads(record.definition_json))
    except CatalogError:
        return None


def _without_hidden_inputs(version: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
    """A version (``to_dict``) whose stored definition and reasons name no ``hidden`` set."""
    return {
        **version,
        "definition_json": _hide_inputs(version["definition_json"], hidden),
        "reasons": _hide_references(version["reasons"], hidden),
    }


def _hide_references(reasons: list[str], hidden: set[str]) -> list[str]:
    """``reasons`` (``input a: domain.set.feature -> ...``) with every reference to a
    ``hidden`` set, pin and feature included, written ``<hidden>``."""
    if not hidden:
        return reasons
    names = "|".join(re.escape(n) for n in sorted(hidden, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.])(?:{names})(?![\w])(?:@[\w.]+)?(?:\.\w+)?")
    return [pattern.sub("<hidden>", reason) for reason in reasons]


def _hide_inputs(definition_json: str, hidden: set[str]) -> str:
    """A stored definition whose inputs name no ``hidden`` set (a global set's ``inputs``
    map aliases to references ``domain.set[@pin].feature``), each one ``<hidden>``."""
    definition = json.loads(definition_json)
    inputs = definition.get("inputs")
    if not isinstance(inputs, dict):
        return definition_json
    from mesh.definitions import FeatureRef

    kept = {
        alias: ref for alias, ref in inputs.items() if FeatureRef.parse(ref).set_name not in hidden
    }
    if kept == inputs:
        return definition_json
    definition["inputs"] = {**kept, **{a: "<hidden>" for a in inputs if a not in kept}}
    return json.dumps(definition)


def statistics_of(
    spark: SparkSession, mesh: MeshDefinition, record: VersionRecord, *, as_dicts: bool = False
) -> dict[str, Any]:
    """Statistics stored with a version: feature -> ``FeatureStats`` (or plain dicts)."""
    rows = Catalog(spark, mesh.warehouse).rows("statistics", publish_id=record.publish_id)
    raw = {r["feature"]: json.loads(r["stats_json"]) for r in rows}
    if as_dicts:
        return raw
    from mesh.governance.statistics import FeatureStats

    return {feature: FeatureStats.from_dict(value) for feature, value in raw.items()}
