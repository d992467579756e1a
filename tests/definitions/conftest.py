"""A writable copy of the example conf/ per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REAL_CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.fixture()
def conf(tmp_path: Path) -> Path:
    target = tmp_path / "conf"
    shutil.copytree(REAL_CONF, target)
    return target
