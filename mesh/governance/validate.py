"""``mesh validate``: load ``conf/`` leniently and report every problem, static checks included.

``load_mesh`` stops at the first cross-reference problem; here definitions that parse are
kept, so one run reports schema problems *and* every governance check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mesh.definitions.loader import read_definitions
from mesh.definitions.mesh import MeshDefinition
from mesh.errors import ConfigProblem
from mesh.governance.results import CheckResult, GovernanceReport
from mesh.governance.static import validate_definitions


def load_unchecked(
    conf_dir: str | Path = "conf",
) -> tuple[MeshDefinition | None, list[ConfigProblem]]:
    """Every definition that validates on its own, and the problems of those that do not.

    Unlike ``load_mesh`` no cross-check runs (``validate_definitions`` does those). Returns
    ``None`` for the mesh when ``mesh.yaml`` itself is invalid; raises ``ConfigError`` when
    it is missing.
    """
    return read_definitions(conf_dir)


def validate_conf(conf_dir: str | Path = "conf") -> GovernanceReport:
    """Load ``conf_dir`` and run every static check: what ``mesh validate`` prints.

    Definitions that fail to parse appear as ``config.invalid`` results (file, field, the
    loader's message); all others go through ``validate_definitions``.
    """
    mesh, problems = load_unchecked(conf_dir)
    report = problems_report(problems)
    return report + validate_definitions(mesh) if mesh is not None else report


def problems_report(problems: Sequence[ConfigProblem]) -> GovernanceReport:
    """One failed ``config.invalid`` result per loader problem (file, field, its message)."""
    return GovernanceReport(
        CheckResult(
            check="config.invalid",
            subject=p.file,
            feature=None,
            passed=False,
            measured=p.found,
            threshold="-",
            message=str(p),
            file=p.file,
            field=p.field,
        )
        for p in problems
    )
