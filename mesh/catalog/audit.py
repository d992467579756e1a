"""The audit log: every read decision (allowed or denied) and every refused catalog lookup.

Rows of ``_catalog/audit``; ``action`` is ``read`` for reads through the engine, ``metadata``
for a catalog lookup of a set the caller may not see. A refused read of a warehouse path
that holds no feature set (the catalog's tables, another domain's training tables) is a
``read`` row without a feature set, its ``reason`` naming the path. A read row names the
version read (``semantic_version``, ``delta_version``) when the read had resolved one, allowed
or denied; null when it was refused before any was resolved, and in rows written before.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mesh.catalog.tables import Catalog, utc_now
from mesh.storage import CommitInfo

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.access import Decided, Decision, Identity, ReadVersion
    from mesh.definitions import MeshDefinition


def record_reads(
    spark: SparkSession,
    mesh: MeshDefinition,
    identity: Identity,
    decisions: Sequence[Decided],
    purpose: str,
) -> None:
    """Append one audit row per requested feature set, in one commit; a set's decisions may
    name the version read (``ReadVersion``), recorded with them.

    A failure to write the audit propagates: a read that cannot be audited does not happen.
    """
    at = utc_now()
    rows: list[dict[str, Any]] = []
    for decided in decisions:
        fs, items = decided[0], decided[1]
        version = decided[2] if len(decided) == 3 else None
        denied = [d for d in items if not d.allowed]
        rows.append(
            _row(
                identity,
                "read",
                purpose,
                at=at,
                feature_set=fs.qualified_name,
                features=[d.feature for d in items],
                decision="denied" if denied else "allowed",
                denied_features=[d.feature for d in denied],
                missing_grants=sorted({d.missing_grant for d in denied if d.missing_grant}),
                reason="; ".join(sorted({d.reason for d in denied})) if denied else "allowed",
                version=version,
            )
        )
    _append(spark, mesh, identity, purpose, rows)


def record_metadata_denial(
    spark: SparkSession,
    mesh: MeshDefinition,
    identity: Identity,
    denial: Decision,
    purpose: str,
) -> None:
    """Append the audit row of a refused catalog lookup (``show``, ``versions``, ``lineage``).

    Action ``metadata`` tells it apart from feature reads; no features are named, the whole
    set was refused. A failure to write it propagates, as for reads.
    """
    row = _row(
        identity,
        "metadata",
        purpose,
        feature_set=denial.feature_set,
        missing_grants=[denial.missing_grant] if denial.missing_grant else [],
        reason=denial.reason,
    )
    _append(spark, mesh, identity, purpose, [row])


def record_path_denial(
    spark: SparkSession,
    mesh: MeshDefinition,
    identity: Identity,
    path: str,
    reason: str,
    purpose: str,
    owner: str | None = None,
) -> None:
    """Append the audit row of a refused read of ``path``, a warehouse table that holds no
    feature set: action ``read``, no feature set or features, ``reason`` naming the path,
    ``owner_domain`` the domain that owns the table (a training table's; None for the
    catalog's). A failure to write it propagates, as for feature reads."""
    row = _row(
        identity,
        "read",
        purpose,
        feature_set=None,
        reason=f"{path}: {reason}",
        owner_domain=owner,
    )
    _append(spark, mesh, identity, purpose, [row])


def _row(
    identity: Identity,
    action: str,
    purpose: str,
    *,
    feature_set: str | None,
    reason: str,
    at: datetime | None = None,
    features: list[str] | None = None,
    decision: str = "denied",
    denied_features: list[str] | None = None,
    missing_grants: list[str] | None = None,
    owner_domain: str | None = None,
    version: ReadVersion | None = None,
) -> dict[str, Any]:
    """One audit row; the defaults describe a refusal that names no features."""
    return {
        "event_id": uuid.uuid4().hex,
        "at": at or utc_now(),
        "user": identity.user,
        "domain": identity.domain,
        "action": action,
        "purpose": purpose,
        "feature_set": feature_set,
        "features": features or [],
        "decision": decision,
        "denied_features": denied_features or [],
        "missing_grants": missing_grants or [],
        "reason": reason,
        "owner_domain": owner_domain,
        "semantic_version": version.semantic_version if version else None,
        "delta_version": version.delta_version if version else None,
    }


def _append(
    spark: SparkSession,
    mesh: MeshDefinition,
    identity: Identity,
    purpose: str,
    rows: list[dict[str, Any]],
) -> None:
    """Append ``rows`` to the audit table in one commit; a failure propagates."""
    commit = CommitInfo(
        run_id=uuid.uuid4().hex,
        operation="catalog_audit",
        extra={"identity": str(identity), "purpose": purpose},
    )
    Catalog(spark, mesh.warehouse).append("audit", rows, commit)


def audit_log(
    spark: SparkSession,
    mesh: MeshDefinition,
    *,
    feature_set: str | None = None,
    decision: str | None = None,
    identity: Identity | str | None = None,
) -> list[dict[str, Any]]:
    """Audit rows, newest first, optionally of one feature set and/or one decision.

    The caller (``identity``, else the identity variable; none is refused) sees the rows of
    its own domain's reads and the reads of its domain's feature sets and training tables,
    not other domains'.
    """
    from mesh.catalog.access import current_identity
    from mesh.catalog.tables import LOOKUP_HINT, require_warehouse

    who = current_identity(mesh.standards, identity)
    require_warehouse(mesh.warehouse_as_given, LOOKUP_HINT)  # not "no rows" for a wrong path
    filters = {k: v for k, v in (("feature_set", feature_set), ("decision", decision)) if v}
    rows = [
        r
        for r in Catalog(spark, mesh.warehouse).rows("audit", **filters)
        if who.domain
        in (r["domain"], r["owner_domain"], str(r["feature_set"] or "").split(".", 1)[0])
    ]
    return sorted(rows, key=lambda r: r["at"], reverse=True)
