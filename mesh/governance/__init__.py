"""Computational governance: static checks, contract diff, data checks, statistics, reports.

Importing this package never imports pyspark (``mesh validate`` runs without Spark); the
data checks and statistics load it when they run.
"""

from mesh.governance.contract import Change, ContractDecision, as_feature_set, compare
from mesh.governance.data_checks import population_stability_index, run_data_checks
from mesh.governance.gate import PublishEvaluation, evaluate_publish
from mesh.governance.report import render_html
from mesh.governance.results import CheckResult, GovernanceReport
from mesh.governance.static import validate_definitions
from mesh.governance.statistics import (
    FeatureStats,
    Histogram,
    compute_statistics,
    stats_from_dict,
    stats_to_dict,
)
from mesh.governance.validate import load_unchecked, validate_conf

__all__ = [
    "Change",
    "CheckResult",
    "ContractDecision",
    "FeatureStats",
    "GovernanceReport",
    "Histogram",
    "PublishEvaluation",
    "evaluate_publish",
    "as_feature_set",
    "compare",
    "compute_statistics",
    "load_unchecked",
    "population_stability_index",
    "render_html",
    "run_data_checks",
    "stats_from_dict",
    "stats_to_dict",
    "validate_conf",
    "validate_definitions",
]
