"""A warehouse copied elsewhere, its original deleted, reads and rebuilds from its own tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sets_data import CONF, Warehouse

from mesh.catalog.export import collect
from mesh.catalog.publish import publish_definition
from mesh.catalog.run import publish_range
from mesh.catalog.search import show, versions
from mesh.catalog.tables import Catalog
from mesh.definitions import load_mesh
from mesh.definitions.standards import StorageSettings
from mesh.errors import WarehouseMovedError
from mesh.sets import build_training_set, read_manifest, rebuild_training_set
from mesh.sets import training as training_module
from mesh.storage import in_warehouse, normalize_path, open_table

TRAIN = "training/risk/train"
SPINE = "products/risk/labels"
COMBO = "features/risk/combo/v1"


def _moved(wh: Warehouse, to: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """The whole warehouse copied to ``to``, the original deleted, the mesh pointed there."""
    shutil.copytree(wh.root, to)
    shutil.rmtree(wh.root)
    monkeypatch.setenv("MESH_WAREHOUSE", str(to))
    return Warehouse(spark=wh.spark, mesh=load_mesh(CONF), root=to)


def test_a_copied_warehouse_reads_and_rebuilds_from_its_own_tables(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = publish_range(wh.spark, wh.mesh, "risk.combo", identity="etl@risk")
    published_rows = open_table(wh.spark, published.table_path).read().collect()
    spec = wh.mesh.training_sets["risk.train"]  # reading the published global set too
    spec = spec.model_copy(update={"features": (*spec.features, "risk.combo.ratio")})
    built = build_training_set(wh.spark, wh.mesh, spec)
    rows = open_table(wh.spark, built.path).read().collect()
    # Recorded as places in the warehouse, in the catalog and in the manifest.
    catalog = Catalog(wh.spark, str(wh.root))
    assert {r["name"]: r["table_path"] for r in catalog.rows("versions")}["risk.combo"] == COMBO
    assert catalog.rows("manifests")[0]["table_path"] == TRAIN
    assert (built.manifest.output.path, built.manifest.spine.path) == (TRAIN, SPINE)

    new = _moved(wh, tmp_path / "copy" / "warehouse", monkeypatch)
    here = str(new.root / COMBO)
    (record,) = versions(new.spark, new.mesh, "risk.combo", identity="etl@risk")
    assert record.table_path == here
    shown = show(new.spark, new.mesh, "risk.combo", identity="etl@risk")
    assert shown["versions"][0]["table_path"] == here
    exported = collect(new.spark, new.mesh, identity="etl@risk").versions["risk.combo"]
    assert exported.table_path == here
    assert open_table(new.spark, here).read(version=record.delta_version).collect() == (
        published_rows
    )
    # A metadata-only publish in the copy names the copy's table.
    combo = new.mesh.global_sets["risk.combo"]
    meta = combo.metadata.model_copy(update={"description": "Moved"})
    patch = combo.model_copy(update={"version": "1.0.1", "metadata": meta})
    new.mesh.global_sets["risk.combo"] = patch
    again = publish_definition(new.spark, new.mesh, patch, identity="etl@risk")
    assert (again.table_path, again.delta_version) == (here, published.delta_version)

    # The manifest in the copied table folder rebuilds the same rows, into the copy.
    rebuilt = rebuild_training_set(new.spark, new.mesh, str(new.root / TRAIN))
    assert rebuilt.path == str(new.root / TRAIN)
    assert rebuilt.manifest.warehouse == str(new.root)
    assert (rebuilt.manifest.output.path, rebuilt.manifest.spine.path) == (TRAIN, SPINE)
    got = open_table(new.spark, rebuilt.path).read().collect()
    assert sorted(got, key=repr) == sorted(rows, key=repr)
    assert not wh.root.exists()  # nothing was written back to the original's place


def _earlier_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Manifests with absolute table paths, as an earlier engine wrote an absolute output."""
    monkeypatch.setattr(
        training_module,
        "_place",
        lambda mesh, location: normalize_path(in_warehouse(mesh, location)),
    )


def test_an_absolute_manifest_of_a_moved_warehouse_names_both_places(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as earlier:
        _earlier_engine(earlier)
        built = build_training_set(wh.spark, wh.mesh, "risk.train")
    old = str(wh.root.resolve())
    assert built.manifest.output.path == f"{old}/{TRAIN}"
    rows = open_table(wh.spark, built.path).read().collect()
    new = _moved(wh, tmp_path / "copy" / "warehouse", monkeypatch)

    with pytest.raises(WarehouseMovedError, match=r"storage\.moved_from") as info:
        rebuild_training_set(new.spark, new.mesh, str(new.root / TRAIN))
    # The spine is the first table the manifest names.
    assert info.value.params["current"] == str(new.root / SPINE)
    assert info.value.params["old_warehouse"] == old

    # Declared moved: rebuilt from and into the copy, the new manifest relative.
    storage = StorageSettings(warehouse=str(new.root), moved_from=(old,))
    new.mesh.standards = new.mesh.standards.model_copy(update={"storage": storage})
    rebuilt = rebuild_training_set(new.spark, new.mesh, str(new.root / TRAIN))
    assert rebuilt.path == str(new.root / TRAIN)
    assert rebuilt.manifest.output.path == TRAIN
    saved = json.loads(Path(rebuilt.manifest_path).read_text())
    assert (saved["output"]["path"], saved["spine"]["path"]) == (TRAIN, SPINE)
    got = open_table(new.spark, rebuilt.path).read().collect()
    assert sorted(got, key=repr) == sorted(rows, key=repr)
    assert read_manifest(rebuilt.path).rebuilt_from == built.manifest.run_id
