"""Fixtures of the catalog tests: the example mesh pointed at a temporary warehouse."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mesh.definitions import MeshDefinition, load_mesh
from mesh.definitions.standards import StorageSettings

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
START, END = T0, T0 + timedelta(days=10)

# The warehouse of every test comes from the mesh below, never from the environment.
os.environ.pop("MESH_WAREHOUSE", None)


def make_mesh(warehouse: Path | str) -> MeshDefinition:
    mesh = load_mesh(CONF)
    mesh.standards = mesh.standards.model_copy(
        update={"storage": StorageSettings(warehouse=str(warehouse), backend="auto")}
    )
    return mesh


@pytest.fixture
def mesh(tmp_path: Path) -> MeshDefinition:
    return make_mesh(tmp_path / "wh")


def profile_rows(n: int = 12, *, shift: int = 0) -> list[tuple[Any, ...]]:
    """Rows of customers.profile: keys, feature_ts, created_ts, country, segment, year, limit."""
    rows = []
    for i in range(n):
        ts = T0 + timedelta(days=i % 9, hours=i)
        rows.append(
            (
                i + 1,
                ts,
                ts + timedelta(minutes=5),
                ["DE", "FR", "NL"][i % 3],
                ["a", "b"][i % 2],
                1960 + (i * 3) % 40,
                1000.0 + 100 * ((i + shift) % 7),
            )
        )
    return rows


PROFILE_SCHEMA = (
    "customer_id bigint, feature_ts timestamp, created_ts timestamp, country string, "
    "segment string, birth_year int, credit_limit double"
)
AMOUNTS_SCHEMA = (
    "customer_id bigint, feature_ts timestamp, created_ts timestamp, signed_amount double, "
    "is_online boolean"
)


def amounts_rows(n: int = 12) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(n):
        ts = T0 + timedelta(days=i % 9, hours=2 * i)
        rows.append((i + 1, ts, ts, float(10 * (i % 5) - 5), i % 2 == 0))
    return rows


def frame(spark: Any, rows: list[tuple[Any, ...]], schema: str) -> Any:
    return spark.createDataFrame(rows, schema)
