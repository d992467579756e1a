"""A manifest against the definitions its inputs pin: read options, keys and names.

An input of a manifest pins a feature-table commit (checked by ``verify_inputs``) and the data
hash of the definition that wrote it (``definition_hash``). Its read options (``ttl_seconds``,
``exclude_late_data``, ``features``) and its ``keys`` (the entity's key columns, as the
definition was published with them) were taken from that definition when the build pinned it;
how it is looked up (``spine_keys``) and named (``prefix``, the output columns of
``features``) from the training set's definition and the spine. A manifest that disagrees with
them was edited, and would rebuild other rows, or fail inside Spark.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from mesh.definitions import FeatureSet
from mesh.definitions.base import format_duration
from mesh.definitions.binding import split_published
from mesh.definitions.references import Role, expand_references
from mesh.sets.errors import ManifestError
from mesh.sets.naming import qualified_prefix

if TYPE_CHECKING:
    from mesh.catalog.search import VersionRecord
    from mesh.definitions import AnyFeatureSet, MeshDefinition, TrainingSet
    from mesh.sets.manifest import InputPin, Manifest


class Pinned(NamedTuple):
    """The definition an input pins, its entity's key columns (``None``: not recorded) and
    where it was found (for messages)."""

    definition: AnyFeatureSet
    keys: tuple[str, ...] | None
    where: str


def verify_options(
    mesh: MeshDefinition,
    manifest: Manifest,
    catalog: Mapping[str, Sequence[VersionRecord]],
    spec: TrainingSet | None = None,
    path: str | None = None,
) -> None:
    """Raise ``ManifestError`` when an input is not read, looked up or named as its pinned
    definition, the training set's definition and the spine say.

    The definition is the one whose data hash is the input's ``definition_hash``: the one the
    catalog recorded with a publish of that hash (``catalog``: published versions by set name),
    else ``conf/``'s when its data hash is that one (a set built with ``allow_unpublished``).
    Compared: ``ttl_seconds`` (the definition's TTL), ``features`` (among its features),
    ``exclude_late_data`` (true only when the definition excludes late data) and ``keys``
    (its entity's key columns as the catalog recorded them with it, or as ``conf/`` binds
    them). ``spec``: the training set's definition when its hash is the manifest's
    ``definition_hash``; then ``strict`` must be its, ``exclude_late_data`` exactly its and
    the set's together, and each input's ``spine_keys`` and ``prefix`` those of one of its
    references (``FeatureLookup``). Whatever the definitions: ``spine_keys`` name one spine
    column per key, the columns an input is matched on are the spine's (``spine.columns``),
    and each output column of ``features`` is the feature's name after ``prefix`` (or that
    name qualified by the set, as a build names a repeated one). An input without
    ``definition_hash`` (older manifests), or whose definition neither the catalog nor
    ``conf/`` holds, is not compared with a definition: there is nothing to compare it with.
    ``path``: the manifest's file or folder, named in the message.
    """
    check = _Refusal(manifest, path)
    training_late = spec.exclude_late_data if spec is not None else None
    if spec is not None and manifest.strict != spec.strict:
        raise ManifestError(
            f"{check.label}: strict is {manifest.strict}, but the "
            f"training set's definition (definition_hash {manifest.definition_hash}, as conf/ "
            f"defines it) says {spec.strict}; the manifest was edited or is damaged: rebuild "
            "from another one (_manifests/<version>.json).",
            training_set=manifest.training_set,
            path=path,
            field="strict",
            manifest_value=manifest.strict,
            recorded_value=spec.strict,
        )
    if spec is not None:
        _verify_lookups(check, manifest, spec)
    for index, pin in enumerate(manifest.inputs):
        found = pinned_definition(mesh, pin, catalog.get(pin.feature_set, []))
        if found is not None:
            _verify_pinned(check, index, pin, found, training_late)
        _verify_spine_columns(check, index, pin)
        _verify_names(check, index, pin)


def _verify_pinned(
    check: _Refusal, index: int, pin: InputPin, found: Pinned, training_late: bool | None
) -> None:
    definition, keys, where = found
    pinned = f"the definition it pins (definition_hash {pin.definition_hash}, {where})"
    if keys is not None and sorted(pin.keys) != sorted(keys):
        shown = f"the key columns {', '.join(keys)} (its entity's)"
        check.refuse(index, pin, "keys", list(pin.keys), list(keys), pinned, shown)
    ttl = definition.ttl.total_seconds() if definition.ttl else None
    late = definition.exclude_late_data if isinstance(definition, FeatureSet) else True
    if pin.ttl_seconds != ttl:
        shown = f"{ttl!r} (TTL {format_duration(definition.ttl)})" if definition.ttl else "None"
        check.refuse(index, pin, "ttl_seconds", pin.ttl_seconds, ttl, pinned, shown)
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
        check.refuse(index, pin, field, pin.exclude_late_data, expected, pinned, shown)
    # Names as an earlier engine wrote them too (``_1y``), for tables it computed.
    names = [*definition.output_names(), *definition.legacy_output_names()]
    unknown = sorted(set(pin.features) - set(names))
    if unknown:
        shown = f"the features {', '.join(definition.output_names())}"
        check.refuse(index, pin, "features", unknown, names, pinned, shown)


def _verify_lookups(check: _Refusal, manifest: Manifest, spec: TrainingSet) -> None:
    """Each input is looked up (``spine_keys``) and named (``prefix``) as a reference of
    ``spec`` to its set and pin is: the build made one input per set, pin and lookup."""
    expected: dict[tuple[str, str | None], list[Role]] = {}
    for ref in expand_references(spec.features):
        roles = expected.setdefault((ref.set_name, ref.version), [])
        if ref.role not in roles:
            roles.append(ref.role)
    where = (
        f"the training set's definition (definition_hash {manifest.definition_hash}, as "
        "conf/ defines it)"
    )
    spine = manifest.spine.columns
    unmatched: dict[tuple[str, str | None], list[int]] = {}
    for index, pin in enumerate(manifest.inputs):
        roles = expected.get((pin.feature_set, pin.pin), [])
        role = next((r for r in roles if _matches(pin, r, spine)), None)
        if role is None:
            unmatched.setdefault((pin.feature_set, pin.pin), []).append(index)
        else:
            roles.remove(role)
    for (name, version), indexes in unmatched.items():
        roles = expected.get((name, version), [])
        for index, role in zip(indexes, roles, strict=False):
            pin = manifest.inputs[index]
            looked_up = _spine_columns(pin.keys, role, spine)
            if pin.spine_columns != looked_up:
                shown = f"a lookup on the spine column(s) {', '.join(looked_up)}"
                spine_keys = list(pin.spine_keys) if pin.spine_keys is not None else None
                check.refuse(index, pin, "spine_keys", spine_keys, list(looked_up), where, shown)
            shown = f"the prefix {role[1]!r}"
            check.refuse(index, pin, "prefix", pin.prefix, role[1], where, shown)
        if len(indexes) > len(roles):
            index = indexes[len(roles)]
            pin = manifest.inputs[index]
            shown = f"no further lookup of {_reference(name, version)}"
            check.refuse(index, pin, "feature_set", pin.feature_set, None, where, shown)
    left = [_reference(*key) for key, roles in expected.items() if roles]
    if left:
        raise ManifestError(
            f"{check.label}: inputs has no input for a lookup of {', '.join(left)} that "
            f"{where} makes; the manifest was edited or is damaged: rebuild from another one "
            "(_manifests/<version>.json).",
            training_set=manifest.training_set,
            path=check.path,
            field="inputs",
            manifest_value=sorted({p.feature_set for p in manifest.inputs}),
            recorded_value=left,
        )


def _reference(name: str, version: str | None) -> str:
    return f"{name}@{version}" if version else name


def _matches(pin: InputPin, role: Role, spine: Sequence[str]) -> bool:
    return pin.prefix == role[1] and pin.spine_columns == _spine_columns(pin.keys, role, spine)


def _spine_columns(keys: Sequence[str], role: Role, spine: Sequence[str]) -> tuple[str, ...]:
    """The spine columns ``keys`` are matched on in a lookup of role ``role``, as the spine
    the manifest pins spells them (``spine``: its ``name:type`` columns)."""
    renamed = dict(role[0])
    return tuple(_spelled(renamed.get(k, k), spine) for k in keys)


def _spelled(name: str, spine: Sequence[str]) -> str:
    """The spine column a build matched ``name`` on: ``name`` when the spine has it, else the
    one column equal to it in another case, which a session resolving names without regard
    to case matched (``spine_spelling``); ``name`` when there is none (older manifests
    record no columns)."""
    from mesh.join.resolve import columns_named

    size = len(name) + 1
    names = [c[: size - 1] for c in spine if c[:size].lower() == f"{name}:".lower()]
    matches = columns_named(names, name, sensitive=False)
    return matches[0] if len(matches) == 1 else name


def _verify_spine_columns(check: _Refusal, index: int, pin: InputPin) -> None:
    columns = check.manifest.spine.columns
    field = "keys" if pin.spine_keys is None else "spine_keys"
    value = list(pin.spine_columns)
    if pin.spine_keys is not None and len(pin.spine_keys) != len(pin.keys):
        shown = f"one spine column per key ({', '.join(pin.keys)})"
        check.refuse(index, pin, field, value, list(pin.keys), "its keys", shown)
    # ``name:type``, as ``spine_columns`` wrote them; none recorded by older manifests.
    missing = [c for c in value if columns and not any(s.startswith(f"{c}:") for s in columns)]
    if missing:
        shown = f"the columns {', '.join(columns)}, without {', '.join(missing)}"
        check.refuse(index, pin, field, value, list(columns), "the spine it pins", shown)


def _verify_names(check: _Refusal, index: int, pin: InputPin) -> None:
    several = len({p.pin for p in check.manifest.inputs if p.feature_set == pin.feature_set}) > 1
    qualifier = qualified_prefix(pin.feature_set, pin.pin, several)
    for feature, out in pin.features.items():
        plain = pin.prefix + feature
        if out not in (plain, f"{qualifier}__{plain}"):
            shown = (
                f"the column {plain} for {feature} (or {qualifier}__{plain} when that name repeats)"
            )
            where = f"its prefix {pin.prefix!r}"
            check.refuse(index, pin, "features", {feature: out}, plain, where, shown)


def pinned_definition(
    mesh: MeshDefinition, pin: InputPin, records: Sequence[VersionRecord]
) -> Pinned | None:
    """The definition of data hash ``pin.definition_hash``, its key columns and where it was
    found, if known."""
    from mesh.governance.contract import as_feature_set

    if pin.definition_hash is None:
        return None
    for record in records:
        if record.data_hash == pin.definition_hash:
            where = f"as the catalog recorded it with version {record.semantic_version}"
            document = json.loads(record.definition_json)
            _, binding = split_published(document)
            keys = tuple(binding.keys) if binding is not None else None
            return Pinned(as_feature_set(document), keys, where)
    current = mesh.all_sets().get(pin.feature_set)
    if current is None:
        return None
    match = mesh.match_data_hash(current, pin.definition_hash)
    if match is None:
        return None
    # A legacy hash did not cover the entity's keys: those the table was written with are
    # not known.
    keys = tuple(mesh.binding(current).keys) if match == "current" else None
    return Pinned(current, keys, "as conf/ defines it")


class _Refusal:
    """The ``ManifestError`` of one manifest: its path (or training set) and the input."""

    def __init__(self, manifest: Manifest, path: str | None) -> None:
        self.manifest = manifest
        self.path = path
        self.label = (
            f"Manifest {path} of {manifest.training_set}"
            if path
            else f"Manifest of {manifest.training_set}"
        )

    def refuse(
        self,
        index: int,
        pin: InputPin,
        field: str,
        value: Any,
        recorded: Any,
        where: str,
        shown: str,
    ) -> None:
        raise ManifestError(
            f"{self.label}: inputs[{index}].{field} ({pin.feature_set}) is {value!r}, but "
            f"{where} gives {shown}; the manifest was edited or is damaged: rebuild from "
            "another one (_manifests/<version>.json).",
            training_set=self.manifest.training_set,
            path=self.path,
            feature_set=pin.feature_set,
            field=f"inputs[{index}].{field}",
            manifest_value=value,
            recorded_value=recorded,
        )
