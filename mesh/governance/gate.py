"""The publish gate: every governance step for one feature-set version, in one call.

The catalog's publish calls ``evaluate_publish`` before it makes a version visible, stores
``report.to_records()``, ``decision.to_record()`` and ``stats_to_dict(stats)`` with the
version, and refuses the publish with ``raise_if_failed()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mesh.definitions.feature_set import FeatureSet
from mesh.definitions.mesh import AnyFeatureSet, MeshDefinition
from mesh.governance.contract import ContractDecision, compare
from mesh.governance.contract_binding import current_binding
from mesh.governance.data_checks import run_data_checks
from mesh.governance.data_types import source_columns
from mesh.governance.report import render_html
from mesh.governance.results import GovernanceReport
from mesh.governance.static import validate_definitions
from mesh.governance.statistics import FeatureStats, compute_statistics, protected_columns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class PublishEvaluation:
    """Static + contract + data results, the version decision and the new statistics."""

    subject: str
    version: str
    report: GovernanceReport
    decision: ContractDecision
    stats: dict[str, FeatureStats]

    @property
    def ok(self) -> bool:
        return self.report.ok

    def raise_if_failed(self, action: str = "publish") -> None:
        """``GovernanceError`` naming every blocking check (see ``GovernanceReport``)."""
        self.report.raise_if_failed(action)

    def html(self) -> str:
        """The version's self-contained HTML report."""
        return render_html(self.subject, self.version, self.stats, self.report)


def evaluate_publish(
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    df: DataFrame,
    *,
    previous: AnyFeatureSet | Mapping[str, Any] | None = None,
    previous_stats: Mapping[str, FeatureStats] | None = None,
    as_of: datetime | None = None,
    proposed_version: str | None = None,
) -> PublishEvaluation:
    """Run every check a publish of ``fs`` (rows ``df``) needs; raises nothing on failure.

    ``previous`` is the last published definition (model or catalog JSON; ``None`` for a
    first publish; the catalog JSON carries the binding it was published with, a model none,
    which gives a ``contract.binding`` warning) and ``previous_stats`` its statistics (the
    drift baseline); ``proposed_version`` defaults to ``fs.version``. Static checks run on
    ``mesh`` with ``fs`` in it (added when defined in Python only); data checks and
    statistics read ``df`` in three Spark jobs.
    """
    name = fs.qualified_name
    if mesh.all_sets().get(name) != fs:
        if isinstance(fs, FeatureSet):
            mesh = replace(mesh, feature_sets={**mesh.feature_sets, name: fs})
        else:
            mesh = replace(mesh, global_sets={**mesh.global_sets, name: fs})
    static = validate_definitions(mesh, subjects=[name])
    decision = compare(previous, fs, binding=current_binding(mesh, fs))
    version = proposed_version or fs.version
    contract = GovernanceReport([decision.check_version(None, version), *decision.warnings()])
    entity = mesh.standards.entities.get(fs.entity)
    keys = entity.key_columns if entity else []
    data = run_data_checks(
        df,
        fs,
        mesh.standards,
        key_columns=keys,
        source_columns=source_columns(mesh, fs),
        previous_stats=previous_stats,
        as_of=as_of,
    )
    stats = compute_statistics(
        df, [c for c in fs.output_names() if c in df.columns], protected=protected_columns(fs)
    )
    return PublishEvaluation(name, version, static + contract + data, decision, stats)
