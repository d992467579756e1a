"""A self-contained HTML page per feature-set version: checks, statistics, histograms.

No external assets (inline CSS and SVG), so the page can be stored in the catalog, mailed or
opened offline. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from mesh.governance.results import CheckResult, GovernanceReport, to_jsonable
from mesh.governance.statistics import FeatureStats, Histogram

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px 32px;
color:#1f2328;background:#fff;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;
border-bottom:1px solid #d0d7de;padding-bottom:4px}
.sub{color:#59636e;margin-bottom:14px}
.badge{display:inline-block;padding:3px 10px;border-radius:12px;font-weight:600;color:#fff}
.ok{background:#1a7f37}.bad{background:#cf222e}.warn{background:#9a6700}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.FAIL td{background:#ffebe9}tr.warn td{background:#fff8c5}
.pill{font-size:12px;font-weight:600;padding:1px 8px;border-radius:10px;color:#fff}
.pill.pass{background:#1a7f37}.pill.FAIL{background:#cf222e}.pill.warn{background:#9a6700}
.msg{color:#59636e;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:14px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:10px 12px;width:360px}
.card h3{font-size:14px;margin:0 0 2px;font-family:ui-monospace,Menlo,monospace}
.card .type{color:#59636e;font-size:12px;margin-bottom:6px}
.card table td{border:none;padding:1px 4px;font-size:12px}
details summary{cursor:pointer;color:#0969da;margin:8px 0}
code{font-family:ui-monospace,Menlo,monospace}
"""


def render_html(
    set_name: str,
    version: str,
    stats: Mapping[str, FeatureStats],
    report: GovernanceReport,
) -> str:
    """The page of one feature-set version as one HTML string.

    Sections: a verdict (publishable or blocked, with counts), the failed and warning checks
    (check, feature, measured, threshold, message; passed checks folded below), a statistics
    table of every feature, and one card per feature with its histogram as inline SVG.
    """
    failed, warnings = report.failed, report.warnings
    verdict = (
        '<span class="badge bad">blocked</span>'
        if failed
        else '<span class="badge warn">publishable, with warnings</span>'
        if warnings
        else '<span class="badge ok">publishable</span>'
    )
    counts = (
        f"{len(report.results)} checks: {sum(r.passed for r in report.results)} passed, "
        f"{len(failed)} failed, {len(warnings)} warning(s)"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(set_name)} {escape(version)}: feature set report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1><code>{escape(set_name)}</code> version {escape(version)}</h1>",
        f'<div class="sub">{verdict} &nbsp; {escape(counts)}</div>',
        "<h2>Checks</h2>",
        _checks_table(failed + warnings) if failed or warnings else "<p>Every check passed.</p>",
    ]
    passed = [r for r in report.results if r.passed]
    if passed:
        parts.append(
            f"<details><summary>{len(passed)} passed check(s)</summary>"
            f"{_checks_table(passed)}</details>"
        )
    parts += [
        "<h2>Statistics</h2>",
        _stats_table(stats),
        "<h2>Distributions</h2>",
        '<div class="cards">',
        *(_card(s) for s in stats.values()),
        "</div>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _checks_table(results: list[CheckResult]) -> str:
    rows = [
        "<table><tr><th>status</th><th>check</th><th>feature</th><th>measured</th>"
        "<th>threshold</th><th>message</th></tr>"
    ]
    for r in results:
        where = f" ({r.file}: {r.field})" if r.file and not r.passed else ""
        message = "" if r.passed else r.message + where
        rows.append(
            f'<tr class="{r.status}"><td><span class="pill {r.status}">{r.status}</span></td>'
            f"<td><code>{escape(r.check)}</code></td><td>{escape(r.feature or '-')}</td>"
            f'<td class="num">{escape(_fmt(r.measured))}</td>'
            f'<td class="num">{escape(_fmt(r.threshold))}</td>'
            f'<td class="msg">{escape(message)}</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def _stats_table(stats: Mapping[str, FeatureStats]) -> str:
    head = (
        "feature",
        "type",
        "rows",
        "nulls",
        "null %",
        "min",
        "max",
        "mean",
        "stddev",
        "p50",
        "distinct",
    )
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for s in stats.values():
        cells = [
            s.count,
            s.nulls,
            f"{s.null_rate:.1%}",
            s.min,
            s.max,
            s.mean,
            s.stddev,
            s.quantiles.get("p50"),
            s.distinct,
        ]
        rows.append(
            f"<tr><td><code>{escape(s.name)}</code></td><td>{escape(s.type)}</td>"
            + "".join(f'<td class="num">{escape(_fmt(c))}</td>' for c in cells)
            + "</tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _card(s: FeatureStats) -> str:
    facts = [
        ("rows", s.count),
        ("nulls", f"{s.nulls} ({s.null_rate:.1%})"),
        ("min", s.min),
        ("max", s.max),
        ("mean", s.mean),
        ("stddev", s.stddev),
        ("distinct ≈", s.distinct),
    ]
    facts += [(k, v) for k, v in s.quantiles.items()]
    shown = [(k, v) for k, v in facts if v is not None]
    table = "".join(
        f'<tr><td>{escape(k)}</td><td class="num">{escape(_fmt(v))}</td></tr>' for k, v in shown
    )
    return (
        f'<div class="card"><h3>{escape(s.name)}</h3>'
        f'<div class="type">{escape(s.type)} · {escape(s.kind)}</div>'
        f"{_svg(s)}<table>{table}</table></div>"
    )


def _svg(s: FeatureStats) -> str:
    hist = s.histogram
    if s.redacted:
        return '<p class="msg">values withheld: personal data (pii or sensitive)</p>'
    if hist is None or not any(hist.buckets):
        return '<p class="msg">no histogram (no non-null values or unsupported type)</p>'
    if hist.kind == "top_k":
        return _svg_top_k(hist)
    return _svg_bins(hist, s)


def _svg_bins(hist: Histogram, s: FeatureStats) -> str:
    width, height, pad = 336, 120, 18
    top = max(hist.counts) or 1
    bar = width / len(hist.counts)
    bars = []
    for i, count in enumerate(hist.counts):
        h = (height - pad - 12) * count / top
        low, high = hist.edges[i], hist.edges[min(i + 1, len(hist.edges) - 1)]
        bars.append(
            f'<rect x="{i * bar + 1:.1f}" y="{height - pad - h:.1f}" width="{bar - 2:.1f}" '
            f'height="{h:.1f}" fill="#0969da"><title>[{_fmt(low)}, {_fmt(high)}): {count}'
            "</title></rect>"
        )
        if count:
            bars.append(
                f'<text x="{i * bar + bar / 2:.1f}" y="{height - pad - h - 2:.1f}" '
                f'font-size="9" text-anchor="middle" fill="#59636e">{count}</text>'
            )
    left = s.min if s.kind != "numeric" else hist.edges[0]
    right = s.max if s.kind != "numeric" else hist.edges[-1]
    axis = (
        f'<line x1="0" y1="{height - pad}" x2="{width}" y2="{height - pad}" '
        'stroke="#8c959f"/>'
        f'<text x="0" y="{height - 4}" font-size="10" fill="#59636e">'
        f"{escape(_fmt(left))}</text>"
        f'<text x="{width}" y="{height - 4}" font-size="10" fill="#59636e" '
        f'text-anchor="end">{escape(_fmt(right))}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="histogram of {escape(s.name)}">{"".join(bars)}{axis}</svg>'
    )


def _svg_top_k(hist: Histogram) -> str:
    labels = [*hist.values, *(["(other)"] if hist.other else [])]
    counts = hist.buckets if hist.other else list(hist.counts)
    row, label_w, width = 18, 96, 336
    top = max(counts) or 1
    parts = []
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        w = (width - label_w - 40) * count / top
        y = i * row
        text = label if len(label) <= 16 else label[:15] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="11" text-anchor="end" '
            f'fill="#1f2328">{escape(text)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
            f'fill="#8250df"><title>{escape(label)}: {count}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="10" '
            f'fill="#59636e">{count}</text>'
        )
    height = row * len(labels) + 4
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="most frequent values">{"".join(parts)}</svg>'
    )


def _fmt(value: Any) -> str:
    value = to_jsonable(value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    # Thousands separators only from 10,000 on, so that years read as years.
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e9 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value}" if abs(value) < 1e4 else f"{value:,}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)
