"""The publish gate: every governance step for one feature-set version, in one call.

The catalog's publish calls ``evaluate_publish`` with the previous version as the catalog
holds it (definition, written column types, statistics) before it makes a version visible,
stores the report's records, the decision and the statistics with the version, and refuses
the publish when the report fails. Before it computes the rows, it asks
``refuse_before_data``: a version the definition's changes alone refuse is refused then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mesh.definitions.base import parse_semver
from mesh.definitions.feature_set import FeatureSet
from mesh.definitions.mesh import AnyFeatureSet, MeshDefinition
from mesh.governance.contract import (
    ContractDecision,
    changed_input_majors,
    compare,
    input_majors,
)
from mesh.governance.contract_binding import current_binding
from mesh.governance.data_checks import run_data_checks
from mesh.governance.data_types import column_types, source_columns
from mesh.governance.report import render_html
from mesh.governance.results import DATA_NOT_RUN, CheckResult, GovernanceReport
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
    previous_inputs: Iterable[tuple[str, str]] | None = None,
    inputs: Iterable[tuple[str, str]] | None = None,
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
    ``proposed_version`` defaults to ``fs.version``. For a global set, ``previous_inputs``
    are the (feature set, semantic version) pairs the previous publish read (its lineage
    edges' ``from_version``) and ``inputs`` those ``df`` was computed from (default: the
    majors the definitions resolve its inputs to, ``resolved_input_majors``): an input read
    at another major than before needs a new major (``compare``'s ``inputs``). Without
    ``previous_inputs`` no such change is seen. Static checks run on ``mesh`` with
    ``fs`` in it (added when defined in Python only); data checks and statistics read
    ``df`` in three Spark jobs.
    """
    name = fs.qualified_name
    mesh = _with_set(mesh, fs)
    static = validate_definitions(mesh, subjects=[name])
    written = None if previous is None else (dict(previous_types or {}), column_types(df))
    read = None if inputs is None else input_majors(inputs)
    decision = _decision(mesh, fs, previous, written, previous_inputs, read)
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


def refuse_before_data(
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    *,
    previous: AnyFeatureSet | Mapping[str, Any] | None,
    previous_types: Mapping[str, str] | None = None,
    proposed_version: str | None = None,
    previous_inputs: Iterable[tuple[str, str]] | None = None,
) -> GovernanceReport | None:
    """The report of a publish refused by its definition alone, before any row is computed.

    ``None`` unless the definition's changes against ``previous`` (as for
    ``evaluate_publish``, the rows' column types taken to be ``previous_types``) need a
    higher version than ``proposed_version`` (default ``fs.version``): ``contract.version``
    then fails whatever the rows hold, since what only they show (a type read from them)
    can only raise the bump. The majors a global set's inputs will be read at are known from
    the definitions (``resolved_input_majors``), so an input read at another major than
    ``previous_inputs`` (as for ``evaluate_publish``) is seen here too. A version above
    what the definition needs is left to
    ``evaluate_publish``: such a change may justify it. The report holds the static
    checks, the contract check and a ``data.not_run`` warning: the data checks did not run,
    and may refuse the publish once its version is fixed.
    """
    if previous is None:
        return None
    mesh = _with_set(mesh, fs)
    written = (dict(previous_types or {}), None)
    decision = _decision(mesh, fs, previous, written, previous_inputs, None)
    version = proposed_version or fs.version
    if not decision.below_required(None, version):
        return None
    name = fs.qualified_name
    contract = [decision.check_version(None, version), *decision.warnings()]
    not_run = CheckResult(
        check=DATA_NOT_RUN,
        subject=name,
        feature=None,
        passed=False,
        measured=None,
        threshold=None,
        message=(
            "The data checks did not run: the version check refused the publish before its "
            "rows were computed. With the version fixed they run (column types, quality "
            "thresholds, drift) and may refuse it too."
        ),
        severity="warning",
    )
    static = validate_definitions(mesh, subjects=[name])
    return static + GovernanceReport([*contract, not_run])


def resolved_input_majors(mesh: MeshDefinition, fs: AnyFeatureSet) -> dict[str, set[int]]:
    """Input feature set -> the majors a global set's publish reads it at: a reference's
    pin (``@1``), else the major of the set's ``version:`` in ``mesh`` (``conf/``), as
    ``mesh.sets.resolve`` picks the table. Empty for a domain feature set."""
    if isinstance(fs, FeatureSet):
        return {}
    majors: dict[str, set[int]] = {}
    for ref in fs.input_refs().values():
        input_set = mesh.all_sets().get(ref.set_name)
        version = ref.version or (input_set.version if input_set is not None else None)
        if version is not None:  # an unknown set is refused by the static checks
            majors.setdefault(ref.set_name, set()).add(int(version.split(".")[0]))
    return majors


def inputs_at_new_majors(
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    previous_version: str,
    previous_inputs: Iterable[tuple[str, str]],
) -> dict[str, tuple[list[int], list[int]]]:
    """Input -> (majors its previous publish read, majors it resolves to now) for each input
    of the global set ``fs`` that its next publish, against ``previous_version`` (whose
    lineage recorded ``previous_inputs``), would find read at another major: a change that
    needs ``fs.version`` at a major above ``previous_version``'s. Empty when ``fs.version``
    has such a major already (its rows go to a new table), and for a domain feature set."""
    if parse_semver(fs.version)[0] > parse_semver(previous_version)[0]:
        return {}
    return changed_input_majors(_majors_read(mesh, fs, previous_inputs, None))


def _decision(
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    previous: AnyFeatureSet | Mapping[str, Any] | None,
    written: tuple[Mapping[str, str], Mapping[str, str] | None] | None,
    previous_inputs: Iterable[tuple[str, str]] | None,
    read: dict[str, set[int]] | None,
) -> ContractDecision:
    """``compare`` as a publish asks it, before the rows exist and after (``written``'s
    second side; ``read``: the majors the rows were read at, ``None``: as resolved)."""
    inputs = _majors_read(mesh, fs, previous_inputs, read)
    return compare(previous, fs, binding=current_binding(mesh, fs), written=written, inputs=inputs)


def _majors_read(
    mesh: MeshDefinition,
    fs: AnyFeatureSet,
    previous_inputs: Iterable[tuple[str, str]] | None,
    read: dict[str, set[int]] | None,
) -> tuple[dict[str, set[int]], dict[str, set[int]]] | None:
    """``compare``'s ``inputs``: (previous, current) majors, or ``None`` without both."""
    before = input_majors(previous_inputs or ())
    if not before or isinstance(fs, FeatureSet):
        return None
    return before, read if read is not None else resolved_input_majors(mesh, fs)


def _with_set(mesh: MeshDefinition, fs: AnyFeatureSet) -> MeshDefinition:
    """``mesh`` with ``fs`` in it (a set defined in Python only, or changed since loading)."""
    name = fs.qualified_name
    if mesh.all_sets().get(name) == fs:
        return mesh
    if isinstance(fs, FeatureSet):
        return replace(mesh, feature_sets={**mesh.feature_sets, name: fs})
    return replace(mesh, global_sets={**mesh.global_sets, name: fs})


def _same_major(previous: str | None, version: str) -> bool:
    """Whether ``version`` keeps ``previous``'s major (an unreadable one is refused by
    ``contract.version``)."""
    try:
        return previous is not None and parse_semver(previous)[0] == parse_semver(version)[0]
    except ValueError:
        return False
