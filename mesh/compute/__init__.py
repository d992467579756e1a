"""Domain feature computation: windowed aggregations, row-level features, compute and refresh.

Entry points: :func:`compute_targets` / :func:`refresh_targets` (what the ``mesh compute`` and
``mesh refresh`` commands call), :func:`compute_feature_set` / :func:`refresh_feature_set` for
one set, and :func:`feature_frame` for the rows of a set from any source DataFrame (no IO).
Window and late-data conventions are documented in ``mesh.compute.windowed``.
"""

from mesh.compute.build import feature_frame
from mesh.compute.job import RunResult, compute_feature_set, feature_rows, feature_table_path
from mesh.compute.refresh import refresh_feature_set
from mesh.compute.runner import compute_targets, refresh_targets, resolve_targets

__all__ = [
    "RunResult",
    "compute_feature_set",
    "compute_targets",
    "feature_frame",
    "feature_rows",
    "feature_table_path",
    "refresh_feature_set",
    "refresh_targets",
    "resolve_targets",
]
