"""A short text description of a Delta table: path, version, row count and a few rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_MAX_CELL = 24


def describe_table(
    spark: SparkSession, label: str, path: str, backend: str = "auto", sample_rows: int = 3
) -> str:
    """``label``, ``path``, latest Delta version, row count and ``sample_rows`` rows as text.

    Reads the latest version once for the count and once for the sample (``limit``), so it
    is cheap on small tables and bounded on large ones.
    """
    from mesh.storage import open_table

    table = open_table(spark, path, backend=backend)
    version = table.latest_version()
    df = table.read(version=version)
    rows = df.count()
    lines = [f"  {label}", f"    path: {path}", f"    delta version: {version}, rows: {rows}"]
    if sample_rows > 0 and rows:
        sample = [[_cell(v) for v in row] for row in df.limit(sample_rows).collect()]
        lines += ["    " + line for line in _grid(df.columns, sample)]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)]
