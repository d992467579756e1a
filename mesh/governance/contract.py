"""The contract of a feature set against its last published version: which bump, and why.

Features are compared by output column (``amount_sum_7d``), because consumers reference
output columns. Rules (the feature table lives under ``v<MAJOR>``, so a major version is a
new table recomputed from scratch):

* breaking -> ``major``: a removed output, a renamed output (removed + added with the same
  definition), a changed type, a changed definition of an existing output (expression,
  column, function, filter: old and new values would mix in one table), a changed entity,
  source, global inputs or kind, changed entity keys or data product location (the
  ``Binding`` the set was published with, stored in the catalog), a global set's input read
  at another major version than the previous publish read it (an unpinned input whose
  ``conf/`` moved to a new major: its values changed), and changed timestamp
  semantics (``accuracy``, ``interval``, ``exclude_late_data``, ``ttl``: ttl changes what
  every point-in-time join returns; the data product's event and created timestamp
  columns);
* ``minor``: added outputs, or outputs only reordered;
* ``patch``: metadata only (owner, description, tags, visibility, PII classes, quality
  thresholds) -- the data hash is unchanged, so it can never make a major version;
* ``none``: nothing changed; ``initial``: no previous version. Spelling out what is
  already meant is no change: an aggregation's ``type:`` added or dropped where the feature
  tables hold that type anyway.

A version published before the catalog recorded bindings has none to compare: its own
fields are compared (with the data hash of that time, ``legacy_data_hash``) and the decision
carries a ``contract.binding`` warning instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import ValidationError

from mesh.definitions.base import format_duration, parse_semver
from mesh.definitions.binding import Binding, split_published
from mesh.definitions.feature_set import AggregationFeature, ColumnFeature, FeatureSet
from mesh.definitions.global_set import GlobalFeatureSet
from mesh.definitions.mesh import AnyFeatureSet
from mesh.errors import CatalogError
from mesh.governance.contract_binding import binding_changes, binding_warning
from mesh.governance.data_types import spark_form
from mesh.governance.results import CheckResult

Bump = Literal["initial", "major", "minor", "patch", "none"]
_MODELS: dict[str, type[FeatureSet] | type[GlobalFeatureSet]] = {
    "feature_set": FeatureSet,
    "global_feature_set": GlobalFeatureSet,
}
_TIME_FIELDS = ("accuracy", "interval", "exclude_late_data", "ttl")


@dataclass(frozen=True)
class Change:
    """One difference between two versions; ``breaking`` ones need a major version."""

    kind: str
    feature: str | None
    detail: str
    breaking: bool

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "feature": self.feature,
            "detail": self.detail,
            "breaking": self.breaking,
        }


@dataclass(frozen=True)
class ContractDecision:
    """The bump a publish needs (``initial/major/minor/patch/none``) and the changes behind it."""

    subject: str
    bump: Bump
    changes: tuple[Change, ...]
    previous_version: str | None
    current_version: str
    data_hash_changed: bool
    metadata_hash_changed: bool
    binding_unverified: bool = False

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    def summary(self) -> str:
        """One line: the bump and every reason, e.g. ``major: removed amount_sum_1d``."""
        if not self.changes:
            return self.bump if self.bump != "none" else "none: no change"
        return f"{self.bump}: " + "; ".join(c.detail for c in self.changes)

    def required_version(self, previous_version: str | None = None) -> str:
        """The smallest version this change may be published as.

        ``previous_version`` defaults to the previous definition's version. ``initial``
        needs nothing (the proposed version is accepted as it is; ``1.0.0`` is returned).
        """
        previous = previous_version or self.previous_version
        if self.bump == "initial" or previous is None:
            return "1.0.0"
        major, minor, patch = parse_semver(previous)
        if self.bump == "major":
            return f"{major + 1}.0.0"
        if self.bump == "minor":
            return f"{major}.{minor + 1}.0"
        if self.bump == "patch":
            return f"{major}.{minor}.{patch + 1}"
        return previous

    def check_version(
        self, previous_version: str | None = None, proposed_version: str | None = None
    ) -> CheckResult:
        """Check ``contract.version``: may this change be published as ``proposed_version``?

        ``proposed_version`` defaults to the current definition's version. Refused: a
        version that does not increase (unless nothing changed, then it must stay equal);
        a breaking change without a new major; an added feature without a new minor or
        major; a new major without a data change (metadata only).
        """
        previous = previous_version or self.previous_version
        proposed = proposed_version or self.current_version
        required = self.required_version(previous)
        problem = _version_problem(self.bump, previous, proposed, required)
        threshold = (
            f"== {previous}"
            if self.bump == "none"
            else ("any" if self.bump == "initial" else f">= {required}")
        )
        message = (
            "ok"
            if problem is None
            else (
                f"{self.subject}: version {proposed} is refused for a {self.bump} change "
                f"({self.summary()}): {problem}"
            )
        )
        return CheckResult(
            check="contract.version",
            subject=self.subject,
            feature=None,
            passed=problem is None,
            measured=proposed,
            threshold=threshold,
            message=message,
            field="version",
        )

    def below_required(
        self, previous_version: str | None = None, proposed_version: str | None = None
    ) -> bool:
        """Whether ``proposed_version`` is below the version this change needs.

        Such a version is refused whatever more changes are found: another change only
        raises the bump, and so the version needed. ``check_version`` also refuses a
        version above what the change allows (a new major for metadata only, a new version
        when nothing changed), which a change found later (a type read from the computed
        rows) can justify. An unreadable version gives ``False``: ``check_version`` says why.
        """
        previous = previous_version or self.previous_version
        if self.bump == "initial" or previous is None:
            return False
        proposed = proposed_version or self.current_version
        try:
            return parse_semver(proposed) < parse_semver(self.required_version(previous))
        except ValueError:
            return False

    def warnings(self) -> list[CheckResult]:
        """Non-blocking results: ``contract.binding`` when the previous version recorded no
        binding, so changes of keys, location or timestamp columns could not be seen."""
        return [binding_warning(self)] if self.binding_unverified else []

    def to_record(self) -> dict[str, Any]:
        """JSON-able form for the catalog (why this version got its number)."""
        return {
            "subject": self.subject,
            "bump": self.bump,
            "previous_version": self.previous_version,
            "current_version": self.current_version,
            "data_hash_changed": self.data_hash_changed,
            "metadata_hash_changed": self.metadata_hash_changed,
            "summary": self.summary(),
            "changes": [c.to_record() for c in self.changes],
        }


def as_feature_set(value: AnyFeatureSet | Mapping[str, Any]) -> AnyFeatureSet:
    """A definition as a model; a dict (``model_dump`` or the catalog's ``definition_json``,
    whose binding is set aside) is re-validated with the model its ``kind`` names."""
    return _definition(value)[0]


def _definition(value: AnyFeatureSet | Mapping[str, Any]) -> tuple[AnyFeatureSet, Binding | None]:
    if isinstance(value, FeatureSet | GlobalFeatureSet):
        return value, None
    if not isinstance(value, Mapping):
        raise CatalogError(
            f"previous definition: expected a feature set model or its model_dump dict, found "
            f"{type(value).__name__}; pass the JSON stored in the catalog",
            found=type(value).__name__,
        )
    kind = value.get("kind", "feature_set")
    model = _MODELS.get(kind)
    if model is None:
        raise CatalogError(
            f"previous definition: kind {kind!r} is not a feature set (expected one of "
            f"{', '.join(_MODELS)}); the catalog entry is not a feature-set definition",
            kind=kind,
        )
    try:
        fields, binding = split_published(value)
        return model.model_validate(fields), binding
    except ValidationError as exc:
        raise CatalogError(
            f"previous definition of {value.get('domain')}.{value.get('name')} does not "
            f"validate as {kind}: {exc.errors()[0]['msg']} at "
            f"{'.'.join(map(str, exc.errors()[0]['loc']))}; the catalog entry was written by "
            "an incompatible engine version, republish it",
            kind=kind,
            errors=exc.errors(),
        ) from None


def compare(
    previous: AnyFeatureSet | Mapping[str, Any] | None,
    current: AnyFeatureSet | Mapping[str, Any],
    *,
    binding: Binding | None = None,
    written: tuple[Mapping[str, str], Mapping[str, str] | None] | None = None,
    inputs: tuple[Mapping[str, Collection[int]], Mapping[str, Collection[int]]] | None = None,
) -> ContractDecision:
    """Compare the last published definition with the one being published.

    ``previous`` is ``None`` for a first publish (bump ``initial``); either argument may be
    a model or its ``model_dump()`` dict (a ``previous`` dict without a binding is read as
    an earlier engine's catalog entry, whose 365-day window columns were named ``_1y``).
    ``binding`` is what ``current`` reads now (``MeshDefinition.binding``); the catalog's
    ``definition_json`` of ``previous`` holds the binding it was published with. With both,
    changed keys, data product location and timestamp columns are breaking; with ``binding``
    but none recorded for ``previous``, ``binding_unverified`` is set (``warnings()``).
    ``written`` is (previous, current) output column -> Spark type as the feature tables
    hold them (the catalog's entry of the previous version, the frame being published): an
    aggregation without a declared ``type:`` takes its type from its data product's column,
    which the definitions do not pin, so a change of its type is seen there; a ``type:``
    spelled out on one side only that names the type the tables hold is no change. A
    current side of ``None`` (the rows are not computed yet) takes such an aggregation to
    keep the type the previous table holds: the decision of the definitions alone, which
    the computed rows can only raise (a type change is breaking).
    ``inputs`` is (previous, current) of a global set: input feature set -> the major
    versions its rows were read at (``input_majors``: the previous publish's, recorded on its
    lineage edges; the current publish's). An input set read at other majors than before is
    breaking, whatever the definitions say: a new major of an input changed its values. Sets
    named on one side only are left to the definitions (``inputs_changed``), and so is an
    input the previous publish recorded no version of (an earlier engine's).
    Raises ``CatalogError`` when the two are different feature sets or a dict does not
    validate.
    """
    cur, recorded = _definition(current)
    cur_binding = binding or recorded
    if previous is None:
        return ContractDecision(cur.qualified_name, "initial", (), None, cur.version, True, True)
    prev, prev_binding = _definition(previous)
    if prev.qualified_name != cur.qualified_name:
        raise CatalogError(
            f"compare: previous is {prev.qualified_name} but current is {cur.qualified_name}; "
            "compare a feature set with its own last published version",
            previous=prev.qualified_name,
            current=cur.qualified_name,
        )
    # A catalog entry (a dict) without a binding was written by an earlier engine, which
    # named 365-day windows ``_1y``: its table holds those columns. A model is this engine's.
    legacy = prev_binding is None and cur_binding is not None and isinstance(previous, Mapping)
    old_outputs, new_outputs = _outputs(prev, legacy), _outputs(cur)
    types = _output_types(old_outputs, new_outputs, written)
    # A `type:` spelled out on one side only, naming the type the other side's column has
    # anyway, changes no value: it is left out of both hashes.
    spelled = _spelled_out(prev, cur, old_outputs, new_outputs, types)
    hashed_prev, hashed_cur = _without_types(prev, spelled), _without_types(cur, spelled)
    if prev_binding is not None and cur_binding is not None:
        old_hash, new_hash = hashed_prev.data_hash(prev_binding), hashed_cur.data_hash(cur_binding)
        bound = binding_changes(prev, cur, prev_binding, cur_binding)
    else:  # nothing to compare the binding with: the sets' own fields, as hashed before
        old_hash, new_hash = hashed_prev.legacy_data_hash(), hashed_cur.legacy_data_hash()
        bound = []
    data_changed = old_hash != new_hash or list(old_outputs) != list(new_outputs)
    changes = _set_changes(prev, cur) + bound + _output_changes(old_outputs, new_outputs, types)
    changes += _input_major_changes(inputs)
    if data_changed and not changes:
        if list(old_outputs) != list(new_outputs):
            changes.append(Change("reordered", None, "features reordered", False))
        else:  # the hash saw a difference the rules above do not name: stay on the safe side
            changes.append(
                Change("data_changed", None, f"data hash {old_hash} -> {new_hash} changed", True)
            )
    metadata = _metadata_changes(prev, cur)
    if any(c.breaking for c in changes):
        bump: Bump = "major"
    elif changes:
        bump = "minor"
    elif metadata:
        bump = "patch"
    else:
        bump = "none"
    return ContractDecision(
        subject=cur.qualified_name,
        bump=bump,
        changes=tuple(changes + metadata),
        previous_version=prev.version,
        current_version=cur.version,
        data_hash_changed=data_changed,
        metadata_hash_changed=prev.metadata_hash() != cur.metadata_hash() or bool(metadata),
        binding_unverified=legacy,
    )


def _version_problem(bump: Bump, previous: str | None, proposed: str, required: str) -> str | None:
    try:
        new = parse_semver(proposed)
        old = parse_semver(previous) if previous else None
    except ValueError as exc:
        return f"{exc}"
    if bump == "initial" or old is None:
        return None
    if bump == "none":
        return None if new == old else f"nothing changed since {previous}; keep version {previous}"
    if new <= old:
        return f"the version must increase above {previous}; use {required}"
    if bump == "major" and new[0] <= old[0]:
        return f"a breaking change needs a new major version; use {required}"
    if bump == "minor" and new < parse_semver(required):
        return f"an added feature needs at least a minor bump; use {required}"
    if bump == "patch" and new[0] != old[0]:
        return (
            f"metadata-only changes cannot make a new major version (the data hash is "
            f"unchanged); use {required}"
        )
    return None


def _set_changes(prev: AnyFeatureSet, cur: AnyFeatureSet) -> list[Change]:
    changes: list[Change] = []
    if prev.kind != cur.kind:
        changes.append(Change("kind_changed", None, f"kind {prev.kind} -> {cur.kind}", True))
    if prev.entity != cur.entity:
        changes.append(
            Change(
                "entity_changed", None, f"entity {prev.entity} -> {cur.entity} (keys change)", True
            )
        )
    if isinstance(prev, FeatureSet) and isinstance(cur, FeatureSet):
        if prev.local_source != cur.local_source:
            changes.append(
                Change("source_changed", None, f"source {prev.source} -> {cur.source}", True)
            )
        fields: tuple[str, ...] = _TIME_FIELDS
        if prev.accuracy == cur.accuracy == "event":  # the interval is the snapshot grid's
            fields = tuple(f for f in fields if f != "interval")
    else:
        fields = ("ttl",)
    if isinstance(prev, GlobalFeatureSet) and isinstance(cur, GlobalFeatureSet):
        for alias in sorted(set(prev.inputs) | set(cur.inputs)):
            old, new = prev.inputs.get(alias), cur.inputs.get(alias)
            if old != new:
                changes.append(
                    Change(
                        "inputs_changed",
                        alias,
                        f"input {alias}: {old or '-'} -> {new or '-'}",
                        True,
                    )
                )
    for name in fields:
        old, new = _show(getattr(prev, name, None)), _show(getattr(cur, name, None))
        if old != new:
            changes.append(Change("timestamp_semantics", None, f"{name} {old} -> {new}", True))
    return changes


def input_majors(read: Iterable[tuple[str, str]]) -> dict[str, set[int]]:
    """Input feature set -> the major versions read, from (feature set, semantic version)
    pairs (a global set's publish: ``read``, its lineage edges' ``from_version``)."""
    majors: dict[str, set[int]] = {}
    for name, version in read:
        majors.setdefault(name, set()).add(parse_semver(version)[0])
    return majors


def changed_input_majors(
    inputs: tuple[Mapping[str, Collection[int]], Mapping[str, Collection[int]]] | None,
) -> dict[str, tuple[list[int], list[int]]]:
    """Input feature set -> (majors read before, majors read now), sorted, for each input of
    ``compare``'s ``inputs`` read at other majors than before (named on both sides)."""
    if inputs is None:
        return {}
    before, now = inputs
    changed = {}
    for name in sorted(set(before) & set(now)):
        old, new = sorted(before[name]), sorted(now[name])
        if old and new and old != new:
            changed[name] = (old, new)
    return changed


def input_major_reason(name: str, old: list[int], new: list[int]) -> str:
    """``input <set> read at major N (was M)``: why a global set needs a new major."""
    return f"input {name} read at {_majors(new)} (was {', '.join(map(str, old))})"


def _input_major_changes(
    inputs: tuple[Mapping[str, Collection[int]], Mapping[str, Collection[int]]] | None,
) -> list[Change]:
    return [
        Change("input_major", None, input_major_reason(name, old, new), True)
        for name, (old, new) in changed_input_majors(inputs).items()
    ]


def _majors(majors: list[int]) -> str:
    return ("major " if len(majors) == 1 else "majors ") + ", ".join(map(str, majors))


_Outputs = dict[str, tuple[str | None, dict[str, Any]]]


def _outputs(fs: AnyFeatureSet, legacy: bool = False) -> _Outputs:
    """Output column -> (type, definition without the name); ``legacy``: columns named as
    earlier engines did (``legacy_output_names``)."""
    found: _Outputs = {}
    for feature in fs.features:
        if isinstance(feature, AggregationFeature):
            names = feature.legacy_output_names() if legacy else feature.output_names()
            for window, output in zip(feature.windows, names, strict=True):
                found[output] = (
                    feature.output_type(None),
                    {
                        "function": feature.function,
                        "column": feature.column,
                        "filter": feature.filter,
                        "window": format_duration(window),
                    },
                )
        elif isinstance(feature, ColumnFeature):
            found[feature.name] = (feature.type, {"column": feature.source_column})
        else:
            found[feature.name] = (feature.type, {"expr": feature.expr})
    return found


def _output_types(
    old: _Outputs,
    new: _Outputs,
    written: tuple[Mapping[str, str], Mapping[str, str] | None] | None,
) -> dict[str, tuple[str | None, str | None]]:
    """Type before and after of every output on both sides (Spark's spelling).

    A side without a declared type (an aggregation typed by its data product's column)
    has the type its table was written with (``written``; a current side of ``None``: the
    type before). Typed so on both sides and unknown on either, no type is claimed for it
    (``None`` on both sides).
    """
    old_written, new_written = written or ({}, {})
    found: dict[str, tuple[str | None, str | None]] = {}
    for name in [n for n in new if n in old]:
        old_type, new_type = old[name][0], new[name][0]
        before = old_type if old_type is not None else old_written.get(name)
        if new_type is not None:
            after: str | None = new_type
        else:
            after = before if new_written is None else new_written.get(name)
        if old_type is None and new_type is None and (before is None or after is None):
            before = after = None
        found[name] = (_spelling(before), _spelling(after))
    return found


def _spelling(type_name: str | None) -> str | None:
    return spark_form(type_name) if type_name is not None else None


def _spelled_out(
    prev: AnyFeatureSet,
    cur: AnyFeatureSet,
    old: _Outputs,
    new: _Outputs,
    types: Mapping[str, tuple[str | None, str | None]],
) -> set[str]:
    """Aggregations with a ``type:`` on one side only whose every output keeps its type."""
    before = {f.name: f for f in prev.features if isinstance(f, AggregationFeature)}
    found = set()
    for feature in cur.features:
        other = before.get(feature.name)
        if not isinstance(feature, AggregationFeature) or other is None:
            continue
        if (other.type is None) == (feature.type is None):
            continue
        outputs = [n for n in feature.output_names() if n in old and n in new]
        if outputs and all(types[n][0] is not None and types[n][0] == types[n][1] for n in outputs):
            found.add(feature.name)
    return found


def _without_types(fs: AnyFeatureSet, names: set[str]) -> AnyFeatureSet:
    """``fs`` with the ``type:`` of the aggregations ``names`` left out."""
    if not names:
        return fs
    features = [
        f.model_copy(update={"type": None})
        if isinstance(f, AggregationFeature) and f.name in names
        else f
        for f in fs.features
    ]
    return fs.model_copy(update={"features": tuple(features)})


def _output_changes(
    old: _Outputs,
    new: _Outputs,
    types: Mapping[str, tuple[str | None, str | None]],
) -> list[Change]:
    changes: list[Change] = []
    for name in [n for n in new if n in old]:
        old_def, new_def = old[name][1], new[name][1]
        old_type, new_type = types[name]
        # A type known on one side only (a sum typed by its column became a mean) says less
        # than the definition's change, which is reported instead.
        if old_type != new_type and (None not in (old_type, new_type) or old_def == new_def):
            changes.append(
                Change(
                    "type_changed",
                    name,
                    f"type of {name} {old_type or 'unknown'} -> {new_type or 'unknown'}",
                    True,
                )
            )
        elif old_def != new_def:
            diff = ", ".join(
                f"{k} {old_def.get(k)!r} -> {new_def.get(k)!r}"
                for k in sorted(set(old_def) | set(new_def))
                if old_def.get(k) != new_def.get(k)
            )
            changes.append(
                Change("definition_changed", name, f"definition of {name} changed ({diff})", True)
            )
    removed = [n for n in old if n not in new]
    added = [n for n in new if n not in old]
    for name in list(removed):
        twin = next((a for a in added if new[a] == old[name]), None)
        if twin is not None:
            changes.append(Change("renamed", name, f"renamed {name} -> {twin}", True))
            removed.remove(name)
            added.remove(twin)
    changes += [Change("removed", n, f"removed {n}", True) for n in removed]
    changes += [Change("added", n, f"added {n}", False) for n in added]
    return changes


def _metadata_changes(prev: AnyFeatureSet, cur: AnyFeatureSet) -> list[Change]:
    changes: list[Change] = []
    old_meta, new_meta = prev.metadata.model_dump(mode="json"), cur.metadata.model_dump(mode="json")
    for key in old_meta:
        if old_meta[key] != new_meta[key]:
            changes.append(
                Change(
                    "metadata",
                    None,
                    f"metadata.{key} {old_meta[key]!r} -> {new_meta[key]!r}",
                    False,
                )
            )
    if prev.quality != cur.quality:
        changes.append(Change("metadata", None, "quality thresholds changed", False))
    old_features = {f.name: f for f in prev.features}
    for feature in cur.features:
        before = old_features.get(feature.name)
        if before is None:
            continue
        for key in ("description", "pii", "tags"):
            if getattr(before, key) != getattr(feature, key):
                changes.append(
                    Change(
                        "metadata",
                        feature.name,
                        f"{key} of {feature.name} {getattr(before, key)!r} -> "
                        f"{getattr(feature, key)!r}",
                        False,
                    )
                )
    return changes


def _show(value: Any) -> Any:
    return format_duration(value) if isinstance(value, timedelta) else value
