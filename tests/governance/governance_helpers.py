"""The example mesh, edited one definition at a time, for the governance tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mesh.definitions import FeatureSet, GlobalFeatureSet, MeshDefinition, load_mesh
from mesh.definitions.source import DataProduct

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

Edit = Callable[[dict[str, Any]], None]


def example_mesh() -> MeshDefinition:
    return load_mesh(CONF)


def edit_set(mesh: MeshDefinition, qualified: str, change: Edit) -> str:
    """Re-validate a feature set after ``change`` edits its JSON dump; returns its new name."""
    old = mesh.all_sets()[qualified]
    data = old.model_dump(mode="json")
    change(data)
    new = type(old).model_validate(data)
    registry: dict[str, Any] = (
        mesh.feature_sets if isinstance(old, FeatureSet) else mesh.global_sets
    )
    del registry[qualified]
    registry[new.qualified_name] = new
    mesh.files[new.qualified_name] = mesh.files[qualified]
    return new.qualified_name


def edit_product(mesh: MeshDefinition, qualified: str, change: Edit) -> None:
    data = mesh.products[qualified].model_dump(mode="json")
    change(data)
    mesh.products[qualified] = DataProduct.model_validate(data)


def add_global(mesh: MeshDefinition, data: dict[str, Any]) -> None:
    gs = GlobalFeatureSet.model_validate(data)
    mesh.global_sets[gs.qualified_name] = gs
    mesh.files[gs.qualified_name] = f"conf/global/{gs.name}.yaml"


def set_standards(mesh: MeshDefinition, **update: Any) -> None:
    mesh.standards = mesh.standards.model_copy(update=update)


def feature(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in data["features"] if f["name"] == name)
