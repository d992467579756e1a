"""The ``wh`` fixture: the test mesh (tests/sets/conf) over a fresh, hand-made warehouse."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sets_data import (
    CONF,
    SPEND_SCHEMA,
    SPEND_V1,
    SPINE,
    TICKETS_SCHEMA,
    TICKETS_V1,
    Warehouse,
)

from mesh.definitions import load_mesh


@pytest.fixture(scope="session")
def template_warehouse(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Written once: spend v1.0.0, tickets v1.0.0 and the spine (Delta logs use relative paths,
    so each test gets a byte copy instead of paying for the writes again)."""
    root = tmp_path_factory.mktemp("template") / "warehouse"
    warehouse = Warehouse(spark=spark, mesh=load_mesh(CONF), root=root)
    warehouse.write_features("payments.spend", SPEND_V1, SPEND_SCHEMA)
    warehouse.write_features("support.tickets", TICKETS_V1, TICKETS_SCHEMA)
    warehouse.write_spine(SPINE)
    return root


@pytest.fixture
def wh(
    spark: Any, template_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Warehouse:
    """The test mesh over a fresh copy of the template warehouse, read as ``alice@risk``."""
    root = tmp_path / "warehouse"
    shutil.copytree(template_warehouse, root)
    monkeypatch.setenv("MESH_WAREHOUSE", str(root))
    monkeypatch.setenv("MESH_IDENTITY", "alice@risk")
    return Warehouse(spark=spark, mesh=load_mesh(CONF), root=root)
