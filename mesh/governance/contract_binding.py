"""The contract's view of a feature set's binding: its entity's keys and its data product's
location and timestamp columns, as published against as now (``mesh.definitions.binding``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesh.definitions.binding import Binding
from mesh.errors import MeshError
from mesh.governance.results import CheckResult

if TYPE_CHECKING:
    from mesh.definitions.mesh import AnyFeatureSet, MeshDefinition
    from mesh.governance.contract import Change, ContractDecision

# Binding field -> (change kind, how it is named). Timestamp columns decide when each row
# happened and arrived, so they change the set's timestamp semantics.
_FIELDS = {
    "location": ("source_location_changed", "source location"),
    "event_timestamp": ("timestamp_semantics", "event_timestamp"),
    "created_timestamp": ("timestamp_semantics", "created_timestamp"),
}


def binding_changes(
    prev: AnyFeatureSet, cur: AnyFeatureSet, old: Binding, new: Binding
) -> list[Change]:
    """Breaking changes between the binding ``prev`` was published with and ``cur``'s."""
    from mesh.governance.contract import Change

    changes: list[Change] = []
    # A changed entity is reported as such (its keys change with it).
    if prev.entity == cur.entity and old.keys != new.keys:
        changes.append(
            Change(
                "keys_changed",
                None,
                f"keys of entity {cur.entity} {_keys(old)} -> {_keys(new)}",
                True,
            )
        )
    for field, (kind, label) in _FIELDS.items():
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            changes.append(Change(kind, None, f"{label} {before or '-'} -> {after or '-'}", True))
    return changes


def current_binding(mesh: MeshDefinition, fs: AnyFeatureSet) -> Binding | None:
    """``mesh.binding(fs)``, or ``None`` when its entity or source does not resolve: the
    static checks then fail the publish (``entity.registered``, ``references.source``)."""
    try:
        return mesh.binding(fs)
    except MeshError:
        return None


def binding_warning(decision: ContractDecision) -> CheckResult:
    """``contract.binding``: the previous version recorded no binding to compare with."""
    return CheckResult(
        check="contract.binding",
        subject=decision.subject,
        feature=None,
        passed=False,
        measured="not recorded",
        threshold="recorded",
        message=(
            f"{decision.subject}: version {decision.previous_version} was published before "
            "the catalog recorded what a set reads from other definitions (entity keys, data "
            "product location and timestamp columns), so a change of those since then cannot "
            "be seen; this publish records them. If they changed, publish a new major version."
        ),
        field="version",
        severity="warning",
    )


def _keys(binding: Binding) -> str:
    return "{" + ", ".join(f"{k}: {t}" for k, t in binding.keys.items()) + "}"
