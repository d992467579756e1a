"""Check results and the governance report every validate and publish produces."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from mesh.definitions.base import format_duration
from mesh.errors import GovernanceError

Severity = Literal["error", "warning"]
# The warning of a publish refused before its rows were computed: no data check ran.
DATA_NOT_RUN = "data.not_run"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one subject (feature set) and, if it applies, one feature.

    ``check`` is a stable id such as ``naming.feature_pattern`` or ``data.null_rate``;
    ``measured`` is what was found and ``threshold`` what the rule allows. A failed result
    with severity ``warning`` is reported but never blocks a publish. ``file``/``field`` say
    where a static problem lives in ``conf/``.
    """

    check: str
    subject: str
    feature: str | None
    passed: bool
    measured: Any
    threshold: Any
    message: str
    file: str | None = None
    field: str | None = None
    severity: Severity = "error"

    @property
    def blocking(self) -> bool:
        """True when this result fails a publish (a failed error, not a warning)."""
        return not self.passed and self.severity == "error"

    @property
    def status(self) -> str:
        if self.passed:
            return "pass"
        return "FAIL" if self.severity == "error" else "warn"

    def to_record(self) -> dict[str, Any]:
        """A JSON-able dict (one row of the catalog's check-results table)."""
        return {
            "check": self.check,
            "subject": self.subject,
            "feature": self.feature,
            "passed": self.passed,
            "severity": self.severity,
            "measured": to_jsonable(self.measured),
            "threshold": to_jsonable(self.threshold),
            "message": self.message,
            "file": self.file,
            "field": self.field,
        }


@dataclass(frozen=True, init=False)
class GovernanceReport:
    """Every check result of one validate or publish, passed ones included (for the audit)."""

    results: tuple[CheckResult, ...]

    def __init__(self, results: Iterable[CheckResult] = ()) -> None:
        object.__setattr__(self, "results", tuple(results))

    @classmethod
    def merge(cls, *reports: GovernanceReport) -> GovernanceReport:
        """One report holding the results of several (static + contract + data)."""
        return cls(r for report in reports for r in report.results)

    def __add__(self, other: GovernanceReport) -> GovernanceReport:
        return GovernanceReport.merge(self, other)

    def __len__(self) -> int:
        return len(self.results)

    @property
    def failed(self) -> list[CheckResult]:
        """Results that block a publish."""
        return [r for r in self.results if r.blocking]

    @property
    def warnings(self) -> list[CheckResult]:
        """Failed results with severity ``warning``: reported, never blocking."""
        return [r for r in self.results if not r.passed and r.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no check blocks (warnings allowed)."""
        return not self.failed

    def find(self, check: str, feature: str | None = None) -> list[CheckResult]:
        """Results of one check id (optionally for one feature)."""
        return [
            r
            for r in self.results
            if r.check == check and (feature is None or r.feature == feature)
        ]

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-able dicts, one per result, for the catalog's check-results table."""
        return [r.to_record() for r in self.results]

    def render_text(self, verbose: bool = False) -> str:
        """A table a person can read: status, check, subject/feature, measured, threshold.

        Failures come first, then warnings; passed checks are counted, and listed only
        with ``verbose``.
        """
        shown = self.failed + self.warnings
        if verbose:
            shown += [r for r in self.results if r.passed]
        passed = sum(r.passed for r in self.results)
        summary = (
            f"{len(self.results)} check(s): {passed} passed, {len(self.failed)} failed, "
            f"{len(self.warnings)} warning(s)"
        )
        if not shown:
            return summary
        header = ("status", "check", "subject / feature", "measured", "threshold")
        rows = [
            (
                r.status,
                r.check,
                r.subject + (f".{r.feature}" if r.feature else ""),
                _short(r.measured),
                _short(r.threshold),
            )
            for r in shown
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        for r, row in zip(shown, rows, strict=True):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if not r.passed:
                where = f" [{r.file}: {r.field}]" if r.file else ""
                lines.append(f"      {r.message}{where}")
        lines.append(summary)
        return "\n".join(lines)

    def raise_if_failed(self, action: str = "publish") -> None:
        """Raise ``GovernanceError`` naming every blocking check; return when none fails.

        The error's first line names the subject(s), each failing check with its feature,
        measured value and threshold (and the message of a ``data.not_run`` warning: the
        data checks did not run); ``error.report`` is this report and
        ``error.params['failed']`` the failing check ids.
        """
        failed = self.failed
        if not failed:
            return
        subjects = sorted({r.subject for r in failed})
        parts = [
            f"{r.check}"
            + (f" on {r.feature}" if r.feature else "")
            + f" (measured {_short(r.measured)}, threshold {_short(r.threshold)})"
            # A version refusal's measured value is only a version: say which change needs
            # which bump, as the command line shows this line alone.
            + (
                f": {r.message.removeprefix(f'{r.subject}: ')}"
                if r.check == "contract.version"
                else ""
            )
            for r in failed
        ]
        # Checks that did not run say so on the first line: another refusal may follow.
        notes = "".join(f" {r.message}" for r in self.warnings if r.check == DATA_NOT_RUN)
        message = (
            f"{action} of {', '.join(subjects)} refused: {len(failed)} governance check(s) "
            f"failed: {'; '.join(parts)}. {_fix_hint(failed)}{notes}\n" + self.render_text()
        )
        raise GovernanceError(
            message,
            report=self,
            action=action,
            subjects=subjects,
            failed=[r.check for r in failed],
        )


# Checks whose threshold is a `quality:` setting (mesh.yaml's or the feature set's).
_QUALITY_CHECKS = frozenset(
    {
        "data.row_count",
        "data.key_nulls",
        "data.null_rate",
        "data.range",
        "data.freshness",
        "data.drift_psi",
    }
)


# Thresholds only conf/mesh.yaml sets: a feature set's `quality` has no such field.
_STANDARDS_ONLY = frozenset({"quality.min_rows", "quality.max_key_null_rate"})


def _fix_hint(failed: list[CheckResult]) -> str:
    """What the refused caller can do, for the checks that failed: for a quality threshold,
    the setting that holds it (the data check's ``field``) and where it is set; for stale
    data, also the time a backfill is checked as of."""
    hint = _threshold_hint(failed)
    if any(r.check == "data.freshness" for r in failed):
        hint += (
            " A backfill of an old range is as old as the range: check its freshness as of "
            "the range's end (`mesh publish --as-of`, `as_of=`)."
        )
    return hint


def _threshold_hint(failed: list[CheckResult]) -> str:
    checks = {r.check for r in failed}
    quality = [r for r in failed if r.check in _QUALITY_CHECKS]
    if quality and all(r.field for r in quality):
        where = [
            f"{s} in conf/mesh.yaml" if s in _STANDARDS_ONLY else f"the feature set's {s}"
            for s in sorted({str(r.field) for r in quality})
        ]
        return f"Fix the definitions or data, or change the threshold: {'; '.join(where)}."
    if quality:
        return (
            "Fix the definitions or data, or change the threshold in conf/mesh.yaml "
            "(quality) or the feature set's `quality`."
        )
    if checks == {"contract.version"}:
        return "Set the definition's `version:` to the version named above."
    return "Fix the definitions or data."


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for measured values: durations as ``7d``, times as ISO, NaN as None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, timedelta):
        return _duration_text(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return str(value)


def _duration_text(value: timedelta) -> str:
    """``7d``/``90m`` when whole minutes, else ``2d3h17m5s`` (readable, never ``184625s``)."""
    seconds = round(value.total_seconds())
    if seconds > 0 and seconds % 60 == 0:
        return format_duration(timedelta(seconds=seconds))
    sign, rest = ("-" if seconds < 0 else ""), abs(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return sign + "".join(parts)


def _short(value: Any) -> str:
    value = to_jsonable(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
