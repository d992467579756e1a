"""Static governance: the standards in ``conf/mesh.yaml`` checked against every definition.

No Spark and no data: this is what ``mesh validate`` runs and what a publish runs first.
The loader already refuses some of these problems; they are re-checked here so that a
report lists every problem of the mesh, each with its file and field.

PII in ``public`` feature sets: a ``pii`` feature is a *warning* (it stays readable only
with an explicit grant, which access control enforces on every read); a ``sensitive``
feature in a ``public`` set *fails*: move it to an ``internal``/``private`` set.
"""

from __future__ import annotations

from collections.abc import Iterable

from mesh.definitions.mesh import MeshDefinition
from mesh.governance.results import GovernanceReport
from mesh.governance.static_refs import ReferenceRules


def validate_definitions(
    mesh: MeshDefinition, subjects: Iterable[str] | None = None
) -> GovernanceReport:
    """Run every static check on the mesh; passed checks are part of the report too.

    ``subjects`` limits the report to some qualified names (``payments.customer_spend``),
    e.g. the feature set being published. Checks: naming (pattern, max length, reserved
    words, clash with key columns), required metadata, declared domain, registered entity
    and key types against the source, allowed feature types (aggregation output types
    derived from the source column type), aggregation input types, PII tag on every
    feature, PII in public sets, PII lineage of global features (at least the inputs'
    class), visibility and ``allowed_domains``, global sets no more visible than their
    inputs, duplicate feature names, references (sources, columns, inputs,
    training-set features, timestamp columns), quality overrides naming real features,
    cycles among global feature sets, and ``access.grants`` naming declared domains and
    defined sets or features (reported under the subject ``mesh.yaml``).
    """
    checker = _Checker(mesh)
    for name, product in sorted(mesh.products.items()):
        checker.product(name, product)
    for name, fs in sorted(mesh.feature_sets.items()):
        checker.feature_set(name, fs)
    for name, gs in sorted(mesh.global_sets.items()):
        checker.global_set(name, gs)
    checker.cycles()
    checker.grants()
    for name, ts in sorted(mesh.training_sets.items()):
        checker.training_set(name, ts)
    results = checker.results
    if subjects is not None:
        wanted = set(subjects)
        results = [r for r in results if r.subject in wanted]
    return GovernanceReport(results)


class _Checker(ReferenceRules):
    """Every static rule, reporting into one collector."""
