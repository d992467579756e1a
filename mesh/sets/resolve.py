"""From feature references to pinned inputs: which feature table, which Delta version.

A reference ``domain.feature_set[@pin].feature`` reads the feature table
``<warehouse>/features/<domain>/<feature_set>/v<major>``. The major comes from the pin, or from
the definition's current version when there is no pin. The Delta version read is the newest
commit of that table whose ``CommitInfo.extra["semantic_version"]`` matches the pin (``1``
matches 1.x.y, ``1.2`` matches 1.2.y, ``1.2.0`` only itself; no pin matches every version).

Each step has its module: the references are checked against the definitions
(:mod:`mesh.sets.references`), each pin takes its version's definition
(:mod:`mesh.sets.versions`) and commit (:mod:`mesh.sets.commits`), and the features their
output columns (:mod:`mesh.sets.naming`); :mod:`mesh.sets.sources` reads the pinned inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from mesh.definitions import FeatureLookup, FeatureRef, FeatureSet, MeshDefinition
from mesh.definitions.references import Role
from mesh.sets.commits import newest_commit, published_commit, range_publish_command
from mesh.sets.errors import InputNotBuiltError, UnknownReferenceError
from mesh.sets.manifest import InputPin
from mesh.sets.naming import assign_columns
from mesh.sets.references import check_feature, defined_set, parse_references
from mesh.sets.tables import existing_majors, feature_table_location
from mesh.sets.versions import definition_for, major_of, published_versions
from mesh.storage import in_warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.search import VersionRecord
    from mesh.definitions import AnyFeatureSet


def resolve_inputs(
    spark: SparkSession,
    mesh: MeshDefinition,
    references: Sequence[str | FeatureRef | FeatureLookup],
    *,
    exclude_late_data: bool = True,
    taken: Iterable[str] = (),
    published: bool = True,
    allow_unpublished: bool = False,
) -> list[InputPin]:
    """Pin every referenced feature set to a Delta version of its feature table.

    References to the same feature set with the same pin and lookup (spine keys and prefix,
    see ``FeatureLookup``) are read together (one join input). Output columns are the
    feature names, after the lookup's prefix; a name that repeats across inputs or clashes
    with ``taken`` (e.g. spine columns) becomes ``<domain>__<feature_set>__<name>``, and
    ``<domain>__<feature_set>__v<pin>__<name>`` for a set read at several pins (``v1_0``).
    Raises ``UnknownReferenceError``, ``InputNotBuiltError``, ``VersionPinError`` or
    ``NotPublishedError``.

    ``published``: read each set at its newest *published* version matching the pin (the
    feature-table commit its catalog version row names), as consumers do. A set with no
    published version of the pinned major is refused (``NotPublishedError``: no governance
    check has passed it), unless ``allow_unpublished``, which reads its newest commit with a
    ``RuntimeWarning`` (development against data not yet published). ``False``: the newest
    commit matching the pin, as a producer's pipeline does (``mesh global build``,
    ``refresh``); a pin that only a metadata-only (patch) publish carries, such as ``@1.0.1``,
    resolves to the commit that publish named.
    """
    refs = parse_references(references)
    # The catalog's versions, read once for every reference (one small Spark job), and only
    # when something asks for them: published reads, or pins.
    catalog = published_versions(spark, mesh) if published or any(r.version for r in refs) else {}
    groups: dict[tuple[str, str | None, Role], list[str]] = {}
    definitions: dict[tuple[str, str | None], AnyFeatureSet] = {}
    for ref in refs:
        key = (ref.set_name, ref.version)
        if key not in definitions:
            definitions[key] = definition_for(
                spark, mesh, defined_set(mesh, ref), ref.version, catalog, published=published
            )
        definition = check_feature(definitions[key], ref)
        names = definition.output_names() if ref.feature == "*" else [ref.feature]
        selected = groups.setdefault((*key, ref.role), [])
        selected.extend(n for n in names if n not in selected)
    pins = []
    for (set_name, pin, role), features in groups.items():
        definition = definitions[(set_name, pin)]
        looked_up = _pin(
            spark,
            mesh,
            definition,
            pin,
            features,
            exclude_late_data,
            catalog.get(set_name, []),
            published=published,
            allow_unpublished=allow_unpublished,
        )
        pins.append(_with_role(looked_up, role))
    from mesh.join.resolve import case_sensitive

    return assign_columns(pins, taken, case_sensitive(spark))


def _with_role(pin: InputPin, role: Role) -> InputPin:
    """``pin`` looked up on the role's spine columns, its outputs named with its prefix.

    Every pair's entity key must be one of the set's keys.
    """
    pairs, prefix = role
    renamed = dict(pairs)
    unknown = sorted(set(renamed) - set(pin.keys))
    if unknown:
        raise UnknownReferenceError(
            f"Feature set {pin.feature_set}: keys {unknown} are not its entity's key columns "
            f"({', '.join(pin.keys)}); a lookup's keys map those to spine columns.",
            feature_set=pin.feature_set,
            reference=pin.feature_set,
            available=list(pin.keys),
        )
    spine_keys = tuple(renamed.get(k, k) for k in pin.keys) if renamed else None
    return pin.model_copy(update={"spine_keys": spine_keys, "prefix": prefix})


def _how_to_build(definition: AnyFeatureSet, major: int) -> str:
    """What writes the missing table of ``definition`` at ``major``: a publish (which
    computes what it publishes) when ``conf/`` defines that major, else only another pin."""
    name = definition.qualified_name
    if major != major_of(definition.version):
        return (
            f"conf/ defines {name} at {definition.version}, so no publish writes v{major}; "
            "pin an existing major."
        )
    command = range_publish_command(name, None, domain=isinstance(definition, FeatureSet))
    return f"compute and publish it first (`{command}`), or pin an existing major."


def _pin(
    spark: SparkSession,
    mesh: MeshDefinition,
    definition: AnyFeatureSet,
    pin: str | None,
    features: list[str],
    exclude_late_data: bool,
    versions: Sequence[VersionRecord],
    *,
    published: bool,
    allow_unpublished: bool,
) -> InputPin:
    from mesh.storage import open_table

    major = major_of(pin or definition.version)
    location = feature_table_location(definition.domain, definition.name, major)
    table = open_table(spark, in_warehouse(mesh, location))
    name = definition.qualified_name
    if not table.exists():
        majors = existing_majors(mesh, definition)
        raise InputNotBuiltError(
            f"Feature set {name}{'@' + pin if pin else ''}: no feature table at {table.path} "
            f"(major versions computed: {', '.join(f'v{m}' for m in majors) or 'none'}); "
            f"{_how_to_build(definition, major)}",
            feature_set=name,
            pin=pin,
            path=table.path,
            majors=majors,
        )
    if published:
        record = published_commit(
            table,
            name,
            major,
            pin,
            versions,
            allow_unpublished,
            domain=isinstance(definition, FeatureSet),
        )
    else:
        record = newest_commit(table, name, major, pin, versions)
    info = record.info
    assert info is not None  # only mesh commits are returned
    entity = mesh.entity(definition.entity)
    late = definition.exclude_late_data if isinstance(definition, FeatureSet) else True
    return InputPin(
        feature_set=name,
        pin=pin,
        semantic_version=str(info.extra["semantic_version"]),
        delta_version=record.version,
        definition_hash=info.definition_hash,
        run_id=info.run_id,
        table=location,
        keys=tuple(entity.key_columns),
        features={f: f for f in features},
        ttl_seconds=definition.ttl.total_seconds() if definition.ttl else None,
        exclude_late_data=exclude_late_data and late,
    )
