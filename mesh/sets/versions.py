"""The definition a read of a feature set's version takes: ``conf/``'s, or the published one.

A feature table holds what was published of its major, each commit written under the
definition of its own version. A read pinned to a version therefore takes that version's TTL,
late-data rule and features: the current definition (``conf/``) when it defines that version,
else the definition the catalog recorded when the version was published.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mesh.definitions import MeshDefinition
from mesh.definitions.binding import split_published
from mesh.sets.commits import pin_matches
from mesh.sets.errors import VersionPinError
from mesh.sets.tables import feature_table_location
from mesh.storage import in_warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.search import VersionRecord
    from mesh.definitions import AnyFeatureSet


def published_versions(spark: SparkSession, mesh: MeshDefinition) -> dict[str, list[VersionRecord]]:
    """The catalog's published versions by set name, newest first (one small Spark job)."""
    from mesh.catalog.search import versions_by_name

    return versions_by_name(spark, mesh)


def definition_for(
    spark: SparkSession,
    mesh: MeshDefinition,
    current: AnyFeatureSet,
    pin: str | None,
    catalog: Mapping[str, Sequence[VersionRecord]],
    *,
    published: bool = False,
) -> AnyFeatureSet:
    """The definition a reference pinned to ``pin`` reads with: TTL, late-data rule, features.

    The current definition (``conf/``) for its own major version; for a ``published`` read,
    the definition of the newest published version of that major matching the pin (a minor
    version in ``conf/`` not yet published adds features its table does not have yet; the
    current one when none is published: the read is refused later). An older (or other) major
    was published under its own definition, which the catalog keeps with every version:
    that one is used, and without it the reference is refused (``VersionPinError``) rather
    than read with the current TTL and features. ``catalog``: published versions by set name,
    newest first (``mesh.catalog.search.versions_by_name``).
    """
    records = catalog.get(current.qualified_name, [])
    if pin is None or not other_major(current, pin):
        major = major_of(pin or current.version)
        if published:
            own = [v for v in records if v.major == major and pin_matches(pin, v.semantic_version)]
            # conf/ edited under the published version number (not yet published): the
            # commit read is the published one, and so are its TTL and features.
            edited = own and mesh.match_data_hash(current, own[0].data_hash) is None
            if own and (own[0].semantic_version != current.version or edited):
                fields, _ = split_published(json.loads(own[0].definition_json))
                return type(current).model_validate(fields)
        return current
    record = next((v for v in records if pin_matches(pin, v.semantic_version)), None)
    if record is None:
        from mesh.storage import open_table

        location = feature_table_location(current.domain, current.name, major_of(pin))
        if not open_table(spark, in_warehouse(mesh, location)).exists():
            return current  # nothing to read with it: the resolve says the major was never built
        raise VersionPinError(
            f"Feature set {current.qualified_name}@{pin}: conf/ defines version "
            f"{current.version}, and the catalog has no published version matching @{pin} to "
            "take that major's definition (TTL, late-data rule, features) from; publish it, or "
            f"pin major {major_of(current.version)}.",
            feature_set=current.qualified_name,
            pin=pin,
            available=[current.version],
        )
    # The pinned version's own fields (TTL, features) are what its read takes.
    fields, _ = split_published(json.loads(record.definition_json))
    return type(current).model_validate(fields)


def major_of(version: str) -> int:
    """The major of a version or pin: ``1`` for ``1.2.3``, ``1.2`` and ``1``."""
    return int(version.split(".")[0])


def other_major(current: AnyFeatureSet, pin: str) -> bool:
    """``pin`` names another major version than ``conf/`` defines for ``current``."""
    return major_of(pin) != major_of(current.version)


def recorded_definition(
    records: Sequence[VersionRecord], major: int | None, delta_version: int | None = None
) -> AnyFeatureSet | None:
    """The definition the catalog recorded for a read of ``major`` of a set (``records``:
    its published versions, newest first; ``major`` None: any): that of the newest publish
    naming commit ``delta_version``, else that of the newest publish of the major; ``None``
    when the major was never published. ``CatalogError`` when it no longer validates."""
    from mesh.governance.contract import as_feature_set

    own = [v for v in records if major is None or v.major == major]
    read = [v for v in own if v.delta_version == delta_version] or own
    return as_feature_set(json.loads(read[0].definition_json)) if read else None
