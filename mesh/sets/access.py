"""The one place where set builds ask the catalog whether the caller may read features.

A build checks the references it was given (the sets named exist and the caller may see
them) before anything is resolved, and, once its inputs are pinned, the grants on every
feature read under the rules of the version read (``access_requests``, ``authorize``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mesh.sets.errors import VersionPinError
from mesh.sets.references import check_references
from mesh.sets.versions import (
    definition_for,
    major_of,
    other_major,
    published_versions,
    recorded_definition,
)
from mesh.storage import parts_below

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.access import Identity, ReadVersion, Request
    from mesh.definitions import AnyFeatureSet, FeatureLookup, FeatureRef, MeshDefinition
    from mesh.sets.manifest import InputPin


def authorize(
    spark: SparkSession,
    mesh: MeshDefinition,
    requests: Sequence[Request],
    purpose: str,
    identity: str | Identity | None = None,
) -> Identity:
    """Check (and audit) that the caller may read ``requests`` before any feature is read.

    ``requests`` pairs each feature set definition with the feature names read from it;
    ``identity`` (``user@domain`` or ``domain``) defaults to the variable named by
    ``access.identity_env`` in the standards. Raises ``AccessDeniedError`` when a grant is
    missing; the attempt is audited either way. Returns the caller's identity.
    """
    # Imported here: the catalog pulls in Spark-side modules the definitions must not need.
    from mesh.catalog.access import authorize_read, current_identity

    who = current_identity(mesh.standards, identity)
    authorize_read(spark, mesh, who, list(requests), purpose)
    return who


def check_visible_references(
    spark: SparkSession,
    mesh: MeshDefinition,
    references: Sequence[str | FeatureRef | FeatureLookup],
    purpose: str,
    identity: str | Identity | None = None,
) -> Identity:
    """Before anything is resolved: the sets ``references`` name exist and the caller may see them.

    A set ``conf/`` does not define is ``UnknownReferenceError`` listing only the sets the
    caller may see; a set the catalog hides from the caller (the visibility ``conf/``'s major
    of it was published with or the one ``conf/`` defines now refuses it) is refused and
    audited like any
    read (``AccessDeniedError``), whatever features, versions or pins the reference names, so
    no later error describes a set the catalog hides from the caller. Returns the caller's
    identity. Grants on single features are checked by ``authorize`` once the inputs are
    resolved.
    """
    from mesh.catalog.access import current_identity, enforce, hidden_sets
    from mesh.catalog.search import landed_entries

    who = current_identity(mesh.standards, identity)
    known = mesh.all_sets()
    # Hidden as the catalog hides it: by the visibility its major defined in conf/ was
    # published with, or conf/'s. A new major never published (an ``allow_unpublished`` read)
    # has conf/'s alone; a pin to an older major is checked with that major's record once
    # resolved (``authorize``).
    entries = [
        e
        for e in landed_entries(spark, mesh)
        if e.name not in known or not other_major(known[e.name], e.semantic_version)
    ]
    hidden = hidden_sets(mesh, who, entries)
    refs = check_references(mesh, references, hidden)
    refused: dict[str, list[str]] = {}
    for ref in refs:
        if ref.set_name in hidden:
            # As named: `*` stays `*`, so the refusal lists none of the set's features.
            wanted = refused.setdefault(ref.set_name, [])
            if ref.feature not in wanted:
                wanted.append(ref.feature)
    if refused:
        decisions = [
            (known[n], [dataclasses.replace(hidden[n], feature=f) for f in features])
            for n, features in refused.items()
        ]
        enforce(spark, mesh, who, decisions, purpose)
    return who


def authorize_table_path(
    spark: SparkSession,
    mesh: MeshDefinition,
    path: str,
    columns: Sequence[str],
    purpose: str,
    identity: str | Identity | None = None,
) -> None:
    """Check (and audit) a spine or entity table the caller names by path, before it is read.

    A table inside the warehouse's managed areas is data the engine governs: a feature table
    (``features/<domain>/<set>/v<major>``) is read as that set's features among ``columns``
    (all of them when none is), a training table (``training/<domain>/...``) only by its
    domain, the catalog (``_catalog``) by nobody; every refusal is audited. Other paths (data
    products, the caller's own files) are the caller's. This governs reads through the
    engine; storage permissions are what protect the files themselves.
    """
    from mesh.catalog.access import current_identity, refuse_path
    from mesh.catalog.search import recorded_versions
    from mesh.errors import MeshError

    parts = parts_below(mesh.warehouse, path)
    if not parts:  # outside the warehouse (or its root, which is no table)
        return
    who = current_identity(mesh.standards, identity)

    def refuse(reason: str, owner: str | None = None) -> None:
        refuse_path(spark, mesh, who, path, reason, purpose, owner)  # audited, like reads

    if parts[0].startswith("_catalog"):
        refuse("it is the catalog's own table")
    elif parts[0] == "training" and len(parts) > 1 and parts[1] != who.domain:
        refuse(f"it is a training table of domain {parts[1]}; only that domain reads it", parts[1])
    elif parts[0] == "features" and len(parts) > 2:
        try:
            fs = mesh.any_set(f"{parts[1]}.{parts[2]}")
        except MeshError:
            refuse("it is a feature table of no feature set defined in conf/")
            return
        features = [c for c in columns if c in fs.output_names()]
        # The table holds what was published of its major, under the classes published then.
        major = parts[3][1:] if len(parts) > 3 and parts[3][:1] == "v" else ""
        records = recorded_versions(spark, mesh, fs.qualified_name)
        published = recorded_definition(records, int(major) if major.isdigit() else None)
        authorize(spark, mesh, [(fs, features, published)], purpose, who)


def access_requests(
    spark: SparkSession, mesh: MeshDefinition, inputs: Sequence[InputPin]
) -> list[tuple[AnyFeatureSet, list[str], AnyFeatureSet | None, ReadVersion]]:
    """(definition, feature names, published definition, version read) for every input, as
    the access check (``mesh.catalog.access.authorize_read``) expects them; the version read
    (the pin's semantic and Delta versions) is audited with the decision.

    The definition is the one of the pinned version's major: the current one, or the one
    the catalog published with that version (a manifest read after a newer major removed a
    feature, or a commit older than its major's newest publish: the read is kept at that
    version, and a refusal speaks of its rules, ``mesh.catalog.refusals``); the current one
    when the catalog has none. The published definition is the
    one the catalog recorded for the commit read: its newest publish naming that commit (a
    metadata-only publish describes the commit before it), else, for a commit no publish
    names (a producer's read of newer commits), the newest publish of that major
    (``recorded_definition``). Its
    visibility and PII classes apply with ``conf/``'s, the tighter winning, so a ``conf/``
    loosened but not published opens nothing. ``None`` when that major was never published
    (an ``allow_unpublished`` read): ``conf/`` alone decides. ``CatalogError`` when the
    recorded definition no longer validates: the read cannot be checked against it.
    """
    from mesh.catalog.access import ReadVersion

    currents = [mesh.any_set(pin.feature_set) for pin in inputs]
    catalog = published_versions(spark, mesh)
    requests = []
    for pin, current in zip(inputs, currents, strict=True):
        records = catalog.get(pin.feature_set, [])
        major = major_of(pin.semantic_version)
        # A commit older than its major's newest publish (a pin, a manifest rebuild) is read
        # with its own version's definition: no publish of conf/ changes its record.
        own = [v for v in records if v.major == major]
        older = bool(own) and pin.delta_version < own[0].delta_version
        try:
            definition = definition_for(
                spark, mesh, current, pin.semantic_version, catalog, published=older
            )
        except VersionPinError:
            definition = current
        published = recorded_definition(records, major, pin.delta_version)
        read = ReadVersion(pin.semantic_version, pin.delta_version)
        requests.append((definition, list(pin.features), published, read))
    return requests
