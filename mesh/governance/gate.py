"""The publish gate: every governance step for one feature-set version, in one call.

The catalog's publish calls ``evaluate_publish`` with the previous version as the catalog
holds it (definition, written column types, statistics) before it makes a version visible,
stores the report's records, the decision and the statistics with the version, and refuses
the publish when the report fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mesh.definitions.base import parse_semver
from mesh.definitions.feature_set import FeatureSet
from mesh.definitions.mesh import AnyFeatureSet, MeshDefinition
from mesh.governance.contract import ContractDecision, compare
from mesh.governance.contract_binding import current_binding
from mesh.governance.data_checks import run_data_checks
from mesh.governance.data_types import column_types, source_columns
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
    previous_types: Mapping[str, str] | None = None,
    previous_stats: Mapping[str, FeatureStats] | None = None,
    as_of: datetime | None = None,
    proposed_version: str | None = None,
) -> PublishEvaluation:
    """Run every check a publish of ``fs`` (rows ``df``) needs; raises nothing on failure.

    The catalog's publish decides with this function, so a caller who passes what the
    catalog holds gets the catalog's decision. ``previous`` is the last published
    definition (model or catalog JSON, ``definition_json``; ``None`` for a first publish;
    the catalog JSON carries the binding it was published with, a model none, which gives a
    ``contract.binding`` warning). ``previous_types`` maps its output columns to the Spark
    types its feature table was written with (the ``type`` of each of the catalog entry's
    ``features``): an aggregation without a ``type:`` is typed by its data product's
    column, so a change of that type is seen only against them (without them, no change of
    such a type is claimed). ``previous_stats`` are its statistics, the drift baseline
    within one major version (a new major changes values on purpose: no drift check).
    ``proposed_version`` defaults to ``fs.version``. Static checks run on ``mesh`` with
    ``fs`` in it (added when defined in Python only); data checks and statistics read
    ``df`` in three Spark jobs.
    """
    name = fs.qualified_name
    if mesh.all_sets().get(name) != fs:
        if isinstance(fs, FeatureSet):
            mesh = replace(mesh, feature_sets={**mesh.feature_sets, name: fs})
        else:
            mesh = replace(mesh, global_sets={**mesh.global_sets, name: fs})
    static = validate_definitions(mesh, subjects=[name])
    written = None if previous is None else (dict(previous_types or {}), column_types(df))
    decision = compare(previous, fs, binding=current_binding(mesh, fs), written=written)
    version = proposed_version or fs.version
    contract = GovernanceReport([decision.check_version(None, version), *decision.warnings()])
    if not _same_major(decision.previous_version, version):
        previous_stats = None
    entity = mesh.standards.entities.get(fs.entity)
    keys = entity.key_columns if entity else []
    data = run_data_checks(
        df,
        fs,
        mesh.standards,
        key_columns=keys,
        source_columns=source_columns(mesh, fs),
        previous_stats=previous_stats or None,
        as_of=as_of,
    )
    # A missing column is the report's data.schema failure, not an error of its own here.
    present = [c for c in fs.output_names() if c in df.columns]
    stats = compute_statistics(df, present, protected=protected_columns(fs))
    return PublishEvaluation(name, version, static + contract + data, decision, stats)


def _same_major(previous: str | None, version: str) -> bool:
    """Whether ``version`` keeps ``previous``'s major (an unreadable one is refused by
    ``contract.version``)."""
    try:
        return previous is not None and parse_semver(previous)[0] == parse_semver(version)[0]
    except ValueError:
        return False
