"""Feature references checked against the definitions: parsed, naming a defined set and feature.

A reference ``domain.feature_set[@pin].feature`` (or ``.*``, or a ``FeatureLookup``) is parsed
by :mod:`mesh.definitions.references`; here a malformed one, one naming a set ``conf/`` does
not define, or a feature the set's definition lacks is refused with ``UnknownReferenceError``,
before any feature is read.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from mesh.definitions import FeatureLookup, FeatureRef, MeshDefinition
from mesh.definitions.references import expand_references
from mesh.sets.errors import UnknownReferenceError

if TYPE_CHECKING:
    from mesh.definitions import AnyFeatureSet


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
    refs = parse_references(references)
    for ref in refs:
        defined_set(mesh, ref, hidden)
    return refs


def parse_references(references: Sequence[str | FeatureRef | FeatureLookup]) -> list[FeatureRef]:
    """``references`` parsed, a lookup expanded to one reference per feature;
    ``UnknownReferenceError`` for a malformed one."""
    refs = []
    for raw in references:
        try:
            refs.extend(expand_references([raw]))
        except ValueError as exc:
            raise UnknownReferenceError(str(exc), reference=str(raw)) from None
    return refs


def defined_set(
    mesh: MeshDefinition, ref: FeatureRef, hidden: Collection[str] = ()
) -> AnyFeatureSet:
    """The current definition (``conf/``) of the set ``ref`` names; ``UnknownReferenceError``
    listing the defined sets but ``hidden`` when there is none."""
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


def check_feature(definition: AnyFeatureSet, ref: FeatureRef) -> AnyFeatureSet:
    """``definition``, once it has the feature ``ref`` names (``*``: any)."""
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
