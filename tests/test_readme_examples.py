"""The README's self-contained Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# Examples that need a computed warehouse (training, inference, compute, publish) run in the
# slow end-to-end demo test instead; these need nothing but a Spark session.
SELF_CONTAINED = (
    "point_in_time_join(spine",
    "point_in_time_join(transfers",
    "open_table(spark, tempfile",
    "validate_definitions(mesh)",
)


def _examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if any(marker in b for marker in SELF_CONTAINED)]


def test_every_self_contained_example_is_found() -> None:
    assert len(_examples()) == len(SELF_CONTAINED)


@pytest.mark.parametrize("code", _examples(), ids=lambda c: c.split("\n")[0][:40])
def test_readme_example_runs(code: str, spark: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(README.parent)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
