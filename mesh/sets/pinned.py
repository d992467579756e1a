"""A manifest's read options against the definitions its inputs pin.

An input of a manifest pins a feature-table commit (checked by ``verify_inputs``) and the data
hash of the definition that wrote it (``definition_hash``). Its read options (``ttl_seconds``,
``exclude_late_data``, ``features``) were taken from that definition when the build pinned it,
so a manifest whose options disagree with it was edited, and would rebuild other rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mesh.definitions import FeatureSet
from mesh.definitions.base import format_duration
from mesh.sets.errors import ManifestError

if TYPE_CHECKING:
    from mesh.catalog.search import VersionRecord
    from mesh.definitions import AnyFeatureSet, MeshDefinition, TrainingSet
    from mesh.sets.manifest import InputPin, Manifest


def verify_options(
    mesh: MeshDefinition,
    manifest: Manifest,
    catalog: Mapping[str, Sequence[VersionRecord]],
    spec: TrainingSet | None = None,
) -> None:
    """Raise ``ManifestError`` when an input's options are not those of its pinned definition.

    The definition is the one whose data hash is the input's ``definition_hash``: the one the
    catalog recorded with a publish of that hash (``catalog``: published versions by set name),
    else ``conf/``'s when its data hash is that one (a set built with ``allow_unpublished``).
    Compared: ``ttl_seconds`` (the definition's TTL), ``features`` (among its features) and
    ``exclude_late_data`` (true only when the definition excludes late data). ``spec``: the
    training set's definition when its hash is the manifest's ``definition_hash``; then
    ``strict`` must be its, and ``exclude_late_data`` exactly its and the set's together.
    An input without ``definition_hash`` (older manifests), or whose definition neither the
    catalog nor ``conf/`` holds, is not compared: there is nothing to compare it with.
    """
    training_late = spec.exclude_late_data if spec is not None else None
    if spec is not None and manifest.strict != spec.strict:
        raise ManifestError(
            f"Manifest of {manifest.training_set}: strict is {manifest.strict}, but the "
            f"training set's definition (definition_hash {manifest.definition_hash}, as conf/ "
            f"defines it) says {spec.strict}; the manifest was edited or is damaged: rebuild "
            "from another one (_manifests/<version>.json).",
            training_set=manifest.training_set,
            field="strict",
            manifest_value=manifest.strict,
            recorded_value=spec.strict,
        )
    for index, pin in enumerate(manifest.inputs):
        found = pinned_definition(mesh, pin, catalog.get(pin.feature_set, []))
        if found is None:
            continue
        definition, where = found
        ttl = definition.ttl.total_seconds() if definition.ttl else None
        late = definition.exclude_late_data if isinstance(definition, FeatureSet) else True
        if pin.ttl_seconds != ttl:
            shown = f"{ttl!r} (TTL {format_duration(definition.ttl)})" if definition.ttl else "None"
            _refuse(manifest, index, pin, where, "ttl_seconds", pin.ttl_seconds, ttl, shown)
        if training_late is None:
            # The training set's setting is not known: it may only have turned it off.
            expected = late
            wrong = pin.exclude_late_data and not late
            shown = f"{late} (the set's exclude_late_data)"
        else:
            expected = late and training_late
            wrong = pin.exclude_late_data != expected
            shown = f"{expected} (the set's {late} and the training set's {training_late})"
        if wrong:
            field = "exclude_late_data"
            _refuse(manifest, index, pin, where, field, pin.exclude_late_data, expected, shown)
        # Names as an earlier engine wrote them too (``_1y``), for tables it computed.
        names = [*definition.output_names(), *definition.legacy_output_names()]
        unknown = sorted(set(pin.features) - set(names))
        if unknown:
            shown = f"the features {', '.join(definition.output_names())}"
            _refuse(manifest, index, pin, where, "features", unknown, names, shown)


def pinned_definition(
    mesh: MeshDefinition, pin: InputPin, records: Sequence[VersionRecord]
) -> tuple[AnyFeatureSet, str] | None:
    """The definition of data hash ``pin.definition_hash`` and where it was found, if known."""
    from mesh.governance.contract import as_feature_set

    if pin.definition_hash is None:
        return None
    for record in records:
        if record.data_hash == pin.definition_hash:
            where = f"as the catalog recorded it with version {record.semantic_version}"
            return as_feature_set(json.loads(record.definition_json)), where
    current = mesh.all_sets().get(pin.feature_set)
    if current is not None and mesh.match_data_hash(current, pin.definition_hash) is not None:
        return current, "as conf/ defines it"
    return None


def _refuse(
    manifest: Manifest,
    index: int,
    pin: InputPin,
    where: str,
    field: str,
    value: Any,
    recorded: Any,
    shown: str,
) -> None:
    raise ManifestError(
        f"Manifest of {manifest.training_set}: inputs[{index}].{field} ({pin.feature_set}) is "
        f"{value!r}, but the definition it pins (definition_hash {pin.definition_hash}, "
        f"{where}) gives {shown}; the manifest was edited or is damaged: rebuild from another "
        "one (_manifests/<version>.json).",
        training_set=manifest.training_set,
        feature_set=pin.feature_set,
        field=f"inputs[{index}].{field}",
        manifest_value=value,
        recorded_value=recorded,
    )
