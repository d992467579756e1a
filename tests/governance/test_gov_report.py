"""The HTML report of a version: golden file, self-contained, escaped. No Spark needed."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

from mesh.governance import CheckResult, FeatureStats, GovernanceReport, Histogram, render_html

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "governance_report.html"


def sample() -> tuple[dict[str, FeatureStats], GovernanceReport]:
    stats = {
        "amount_sum_7d": FeatureStats(
            name="amount_sum_7d",
            type="double",
            kind="numeric",
            count=120,
            nulls=6,
            min=0.0,
            max=500.0,
            mean=180.25,
            stddev=95.5,
            distinct=97,
            quantiles={"p05": 20.0, "p25": 110.0, "p50": 175.0, "p75": 240.0, "p95": 410.0},
            histogram=Histogram(
                "bins",
                (10, 25, 40, 20, 10, 5, 2, 1, 0, 1),
                edges=tuple(50.0 * i for i in range(11)),
            ),
        ),
        "last_channel_1d": FeatureStats(
            name="last_channel_1d",
            type="string",
            kind="categorical",
            count=120,
            nulls=0,
            distinct=5,
            histogram=Histogram(
                "top_k", (60, 40, 12), values=("card", "wallet", "<bank>"), other=8
            ),
        ),
        "first_seen": FeatureStats(
            name="first_seen", type="timestamp", kind="temporal", count=120, nulls=120
        ),
    }
    report = GovernanceReport(
        [
            CheckResult("data.null_rate", "payments.spend", "amount_sum_7d", True, 0.05, 0.6, "ok"),
            CheckResult(
                "data.freshness",
                "payments.spend",
                None,
                False,
                timedelta(days=3),
                timedelta(days=2),
                "payments.spend: the latest feature_ts is 3d old",
            ),
            CheckResult(
                "pii.public",
                "payments.spend",
                "last_channel_1d",
                False,
                "pii",
                "pii with grant",
                "payments.spend: <pii> in a public set",
                file="conf/domains/payments/spend.yaml",
                field="features[1].pii",
                severity="warning",
            ),
        ]
    )
    return stats, report


def test_report_matches_golden_file() -> None:
    stats, report = sample()
    html = render_html("payments.spend", "2.1.0", stats, report)
    if os.environ.get("MESH_UPDATE_GOLDEN"):
        GOLDEN.write_text(html)
    assert html == GOLDEN.read_text(), "run with MESH_UPDATE_GOLDEN=1 and review the diff"


def test_report_is_self_contained_and_escaped() -> None:
    stats, report = sample()
    html = render_html("payments.<spend>", "2.1.0", stats, report)
    assert not re.search(r"<(script|link|img|iframe)\b|\bsrc=|\bhref=|url\(", html)
    assert "<bank>" not in html and "&lt;bank&gt;" in html
    assert "payments.&lt;spend&gt;" in html and "&lt;pii&gt; in a public set" in html
    assert html.count("<svg") == 2  # the all-null column has no histogram
    assert '<span class="badge bad">blocked</span>' in html


def test_verdicts() -> None:
    stats, report = sample()
    warning_only = GovernanceReport([r for r in report.results if r.check != "data.freshness"])
    assert "publishable, with warnings" in render_html("s", "1.0.0", stats, warning_only)
    passed = GovernanceReport([r for r in report.results if r.passed])
    html = render_html("s", "1.0.0", stats, passed)
    assert '<span class="badge ok">publishable</span>' in html and "Every check passed" in html
