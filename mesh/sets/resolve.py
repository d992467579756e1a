"""From feature references to pinned inputs: which feature table, which Delta version.

A reference ``domain.feature_set[@pin].feature`` reads the feature table
``<warehouse>/features/<domain>/<feature_set>/v<major>``. The major comes from the pin, or from
the definition's current version when there is no pin. The Delta version read is the newest
commit of that table whose ``CommitInfo.extra["semantic_version"]`` matches the pin (``1``
matches 1.x.y, ``1.2`` matches 1.2.y, ``1.2.0`` only itself; no pin matches every version).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from mesh.definitions import FeatureLookup, FeatureRef, FeatureSet, MeshDefinition
from mesh.definitions.binding import split_published
from mesh.definitions.references import Role, expand_references
from mesh.errors import VersionFilesRemovedError
from mesh.sets.commits import commit_at, newest_commit, pin_matches, published_commit
from mesh.sets.errors import (
    InputChangedError,
    InputNotBuiltError,
    SetBuildError,
    UnknownReferenceError,
    VersionPinError,
)
from mesh.sets.manifest import InputPin
from mesh.storage import in_warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.search import VersionRecord
    from mesh.definitions import AnyFeatureSet
    from mesh.join import FeatureSource

FEATURE_TS = "feature_ts"
CREATED_TS = "created_ts"
_MAJOR_DIR = re.compile(r"^v(\d+)$")


def feature_table_location(domain: str, name: str, major: int) -> str:
    """Path of a feature table relative to the warehouse: ``features/<domain>/<name>/v<major>``."""
    return f"features/{domain}/{name}/v{major}"


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
    refs = _parse(references)
    # The catalog's versions, read once for every reference (one small Spark job), and only
    # when something asks for them: published reads, or pins.
    catalog = _catalog(spark, mesh) if published or any(r.version for r in refs) else {}
    groups: dict[tuple[str, str | None, Role], list[str]] = {}
    definitions: dict[tuple[str, str | None], AnyFeatureSet] = {}
    for ref in refs:
        key = (ref.set_name, ref.version)
        if key not in definitions:
            definitions[key] = definition_for(
                spark, mesh, _current(mesh, ref), ref.version, catalog, published=published
            )
        definition = _check_feature(definitions[key], ref)
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

    return _assign_columns(pins, taken, case_sensitive(spark))


def _catalog(spark: SparkSession, mesh: MeshDefinition) -> dict[str, list[VersionRecord]]:
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
        major = _major(pin or current.version)
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

        location = feature_table_location(current.domain, current.name, _major(pin))
        if not open_table(spark, in_warehouse(mesh, location)).exists():
            return current  # nothing to read with it: ``_pin`` says the major was never built
        raise VersionPinError(
            f"Feature set {current.qualified_name}@{pin}: conf/ defines version "
            f"{current.version}, and the catalog has no published version matching @{pin} to "
            "take that major's definition (TTL, late-data rule, features) from; publish it, or "
            f"pin major {_major(current.version)}.",
            feature_set=current.qualified_name,
            pin=pin,
            available=[current.version],
        )
    # The pinned version's own fields (TTL, features) are what its read takes.
    fields, _ = split_published(json.loads(record.definition_json))
    return type(current).model_validate(fields)


def _major(version: str) -> int:
    return int(version.split(".")[0])


def other_major(current: AnyFeatureSet, pin: str) -> bool:
    """``pin`` names another major version than ``conf/`` defines for ``current``."""
    return _major(pin) != _major(current.version)


def load_sources(
    spark: SparkSession, mesh: MeshDefinition, inputs: Sequence[InputPin]
) -> list[FeatureSource]:
    """One ``FeatureSource`` per pinned input, read at its pinned Delta version.

    Feature columns are renamed to their output names here, so the join never has to
    disambiguate.
    """
    from pyspark.sql import functions as F

    from mesh.join import FeatureSource
    from mesh.storage import open_table

    sources = []
    for pin in inputs:
        table = open_table(spark, in_warehouse(mesh, pin.table))
        try:
            df = table.read(version=pin.delta_version)
        except VersionFilesRemovedError as exc:
            raise InputChangedError(
                f"Feature set {pin.feature_set}: Delta version {pin.delta_version} of "
                f"{table.path} (semantic version {pin.semantic_version}) can no longer be "
                f"read: {len(exc.params['missing'])} of its data files were removed (e.g. by "
                "VACUUM, which removes the files only older versions reference), so its rows "
                "cannot be reproduced. Restore the files, or read a version whose files are "
                "there (for a manifest's rebuild: build the training set anew; for a build: "
                "publish the feature set again).",
                feature_set=pin.feature_set,
                path=table.path,
                delta_version=pin.delta_version,
                changed=["data_files"],
                missing=exc.params["missing"],
            ) from exc
        needed = [*pin.keys, FEATURE_TS, CREATED_TS, *pin.features]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise UnknownReferenceError(
                f"Feature set {pin.feature_set} (table {pin.table}, Delta version "
                f"{pin.delta_version}, semantic version {pin.semantic_version}) has no column(s) "
                f"{', '.join(missing)}; columns there: {', '.join(df.columns)}. Reference a "
                "feature that exists in that version or pin another version.",
                feature_set=pin.feature_set,
                missing=missing,
                available=list(df.columns),
            )
        df = df.select(
            *pin.keys,
            FEATURE_TS,
            CREATED_TS,
            *[F.col(name).alias(out) for name, out in pin.features.items()],
        )
        sources.append(
            FeatureSource(
                df,
                keys=list(pin.keys),
                timestamp=FEATURE_TS,
                created_timestamp=CREATED_TS,
                ttl=pin.ttl_seconds,
                features=list(pin.features.values()),
                name=pin.feature_set,
                exclude_not_yet_created=pin.exclude_late_data,
                spine_keys=pin.spine_keys,
            )
        )
    return sources


def access_requests(
    spark: SparkSession, mesh: MeshDefinition, inputs: Sequence[InputPin]
) -> list[tuple[AnyFeatureSet, list[str], AnyFeatureSet | None]]:
    """(definition, feature names, published definition) for every input, as the access
    check (``mesh.catalog.access.authorize_read``) expects them.

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
    currents = [mesh.any_set(pin.feature_set) for pin in inputs]
    catalog = _catalog(spark, mesh)
    requests = []
    for pin, current in zip(inputs, currents, strict=True):
        records = catalog.get(pin.feature_set, [])
        major = _major(pin.semantic_version)
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
        requests.append((definition, list(pin.features), published))
    return requests


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


def check_references(
    mesh: MeshDefinition,
    references: Sequence[str | FeatureRef | FeatureLookup],
    hidden: Collection[str] = (),
) -> list[FeatureRef]:
    """Refuse, without Spark, references that are malformed or name a set ``mesh`` does not
    define (``UnknownReferenceError``, as ``resolve_inputs`` would after reading the catalog;
    its list of defined sets leaves out ``hidden``, the sets the caller may not see).
    Features are checked by ``resolve_inputs``: a pinned version may have other ones.
    Returns the references, parsed."""
    refs = _parse(references)
    for ref in refs:
        _current(mesh, ref, hidden)
    return refs


def _parse(references: Sequence[str | FeatureRef | FeatureLookup]) -> list[FeatureRef]:
    refs = []
    for raw in references:
        try:
            refs.extend(expand_references([raw]))
        except ValueError as exc:
            raise UnknownReferenceError(str(exc), reference=str(raw)) from None
    return refs


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


def _current(mesh: MeshDefinition, ref: FeatureRef, hidden: Collection[str] = ()) -> AnyFeatureSet:
    known = mesh.all_sets()
    definition = known.get(ref.set_name)
    if definition is None:
        listed = sorted(n for n in known if n not in hidden)
        raise UnknownReferenceError(
            f"Feature reference `{ref}`: feature set {ref.set_name!r} is not defined "
            f"(defined: {', '.join(listed) or 'none'}); fix the reference or add the "
            "feature set under conf/.",
            reference=str(ref),
            feature_set=ref.set_name,
            available=listed,
        )
    return definition


def _check_feature(definition: AnyFeatureSet, ref: FeatureRef) -> AnyFeatureSet:
    outputs = definition.output_names()
    if ref.feature != "*" and ref.feature not in outputs:
        raise UnknownReferenceError(
            f"Feature reference `{ref}`: {ref.set_name} has no feature {ref.feature!r} "
            f"(features: {', '.join(outputs)}); use one of them or `{ref.set_name}.*`.",
            reference=str(ref),
            feature_set=ref.set_name,
            feature=ref.feature,
            available=outputs,
        )
    return definition


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

    major = _major(pin or definition.version)
    location = feature_table_location(definition.domain, definition.name, major)
    table = open_table(spark, in_warehouse(mesh, location))
    name = definition.qualified_name
    if not table.exists():
        majors = _existing_majors(mesh, definition)
        raise InputNotBuiltError(
            f"Feature set {name}{'@' + pin if pin else ''}: no feature table at {table.path} "
            f"(major versions computed: {', '.join(f'v{m}' for m in majors) or 'none'}); "
            f"compute and publish {name} first, or pin an existing major.",
            feature_set=name,
            pin=pin,
            path=table.path,
            majors=majors,
        )
    if published:
        record = published_commit(table, name, major, pin, versions, allow_unpublished)
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


def verify_inputs(spark: SparkSession, mesh: MeshDefinition, pins: Iterable[InputPin]) -> None:
    """Raise ``InputChangedError`` unless every pinned Delta version is still the pinned commit.

    The commit at ``delta_version`` must exist and carry the pinned semantic version,
    definition hash and run id (those a manifest recorded): a table deleted and written
    again has a version of the same number with other rows.
    """
    from mesh.storage import open_table

    for pin in pins:
        table = open_table(spark, in_warehouse(mesh, pin.table))
        record = commit_at(table, pin.delta_version) if table.exists() else None
        expected = {
            "semantic_version": pin.semantic_version,
            "definition_hash": pin.definition_hash,
            "run_id": pin.run_id,
        }
        info = record.info if record is not None else None
        found = {
            "semantic_version": str(info.extra.get("semantic_version")) if info else None,
            "definition_hash": info.definition_hash if info else None,
            "run_id": info.run_id if info else None,
        }
        changed = [k for k, v in expected.items() if v is not None and found[k] != v]
        if record is None or changed:
            what = (
                f"has no version {pin.delta_version}"
                if record is None
                else f"version {pin.delta_version}: {', '.join(changed)} differ"
            )
            raise InputChangedError(
                f"Feature set {pin.feature_set}: {table.path} {what} (the manifest pinned "
                f"{expected}; found {found}); a rebuild would not reproduce the training set. "
                "Restore the table the manifest pinned, or build a new training set instead.",
                feature_set=pin.feature_set,
                path=table.path,
                delta_version=pin.delta_version,
                changed=changed or ["delta_version"],
                expected=expected,
                found=found,
            )


def _existing_majors(mesh: MeshDefinition, definition: AnyFeatureSet) -> list[int]:
    from pyarrow import fs as pafs

    from mesh.errors import StorageError
    from mesh.storage.commit import filesystem_for

    root = in_warehouse(mesh, f"features/{definition.domain}/{definition.name}")
    try:
        filesystem, base = filesystem_for(root)
        entries = filesystem.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except (OSError, ValueError, StorageError):  # only for the message; never hide the real one
        return []
    return sorted(
        int(m.group(1)) for e in entries if (m := _MAJOR_DIR.match(e.base_name)) is not None
    )


def _assign_columns(pins: list[InputPin], taken: Iterable[str], sensitive: bool) -> list[InputPin]:
    """Output column per feature; names are compared as the session compares them
    (``sensitive``: ``spark.sql.caseSensitive``), so under Spark's default a feature
    ``amount`` next to a spine column ``Amount`` is renamed like an exact repeat."""
    from mesh.join.resolve import fold_name

    def fold(name: str) -> str:
        return fold_name(name, sensitive)

    counts: dict[str, int] = {}
    pins_of: dict[str, set[str | None]] = {}
    for pin in pins:
        pins_of.setdefault(pin.feature_set, set()).add(pin.pin)
        for feature in pin.features:
            name = fold(pin.prefix + feature)
            counts[name] = counts.get(name, 0) + 1
    result = []
    reserved = {fold(name) for name in taken}
    used = set(reserved)
    for pin in pins:
        mapping = {}
        prefix = qualified_prefix(pin.feature_set, pin.pin, len(pins_of[pin.feature_set]) > 1)
        for feature in pin.features:
            out = pin.prefix + feature
            if counts[fold(out)] > 1 or fold(out) in reserved:
                out = f"{prefix}__{out}"
            if fold(out) in used:
                raise SetBuildError(
                    f"Feature {pin.feature_set}.{feature}: output column {out!r} is already "
                    "used by another reference or a spine column; reference it once, give "
                    "each lookup of the set its own prefix, or rename the spine column.",
                    feature_set=pin.feature_set,
                    feature=feature,
                    column=out,
                )
            used.add(fold(out))
            mapping[feature] = out
        result.append(pin.model_copy(update={"features": mapping}))
    return result


def qualified_prefix(feature_set: str, pin: str | None, several: bool) -> str:
    """What an output name that repeats is qualified with: ``<domain>__<set>``, and
    ``__v<pin>`` after it (``__v1_0``) for a pinned read of a set read at ``several`` pins."""
    prefix = feature_set.replace(".", "__")
    if several and pin is not None:
        # One set read at several pins: each pin's columns say which.
        prefix = f"{prefix}__v{pin.replace('.', '_')}"
    return prefix
