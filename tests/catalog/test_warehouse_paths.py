"""Table paths in the catalog are absolute, so a catalog read from elsewhere finds the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import END, PROFILE_SCHEMA, START, frame, make_mesh, profile_rows

from mesh.catalog import publish as publish_module
from mesh.catalog.publish import publish_feature_set
from mesh.catalog.search import recorded_versions
from mesh.catalog.tables import Catalog, recorded_path
from mesh.storage import open_table

CUSTOMERS = "etl@customers"
TABLE = "features/customers/profile/v1"


def _publish_from(spark: Any, warehouse: str, shift: int = 0) -> Any:
    mesh = make_mesh(warehouse)
    fs = mesh.feature_sets["customers.profile"]
    df = frame(spark, profile_rows(shift=shift), PROFILE_SCHEMA)
    return publish_feature_set(
        spark, mesh, fs, df, start=START, end=END, identity=CUSTOMERS, as_of=END
    )


def test_a_publish_with_a_relative_warehouse_records_absolute_paths(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "job")
    result = _publish_from(spark, "wh")
    expected = str(tmp_path / "job" / "wh" / TABLE)
    assert result.table_path == expected
    (row,) = Catalog(spark, "wh").rows("versions")
    assert row["table_path"] == expected  # as stored, not only as read back

    # Read from another working directory, through another spelling of the warehouse.
    monkeypatch.chdir(tmp_path / "elsewhere")
    (record,) = recorded_versions(spark, make_mesh("../job/wh"), "customers.profile")
    assert record.table_path == expected
    assert open_table(spark, record.table_path).read(version=record.delta_version).count() == 12


def test_a_relative_path_an_earlier_engine_recorded_is_read_under_the_warehouse(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "job")
    # An earlier engine recorded the path as the publish was given it.
    with monkeypatch.context() as earlier:
        earlier.setattr(publish_module, "stored_path", lambda path: path)
        _publish_from(spark, "./wh")
    (row,) = Catalog(spark, "wh").rows("versions")
    assert row["table_path"] == f"./wh/{TABLE}"

    monkeypatch.chdir(tmp_path / "elsewhere")
    warehouse = str(tmp_path / "job" / "wh")
    (record,) = recorded_versions(spark, make_mesh(warehouse), "customers.profile")
    assert record.table_path == f"{warehouse}/{TABLE}"
    assert open_table(spark, record.table_path).exists()
    # A later publish from there compares the recorded table with its own: no refusal.
    again = _publish_from(spark, warehouse, shift=1)
    assert again.table_path == f"{warehouse}/{TABLE}"
    assert [v.table_path for v in recorded_versions(spark, make_mesh(warehouse), again.name)] == [
        f"{warehouse}/{TABLE}"
    ] * 2


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("wh/features/d/s/v1", "/data/wh/features/d/s/v1"),
        ("../x/wh/features/d/s/v1", "/data/wh/features/d/s/v1"),
        ("/old/wh/features/d/s/v1", "/old/wh/features/d/s/v1"),  # absolute: as recorded
        ("s3://bucket/wh/features/d/s/v1", "s3://bucket/wh/features/d/s/v1"),
        ("dbfs:/wh/features/d/s/v1", "dbfs:/wh/features/d/s/v1"),
        ("xfeatures/d/s/v1", "/cwd/xfeatures/d/s/v1"),  # not the table's place: from the cwd
    ],
)
def test_recorded_path(stored: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.getcwd", lambda: "/cwd")
    assert recorded_path("/data/wh", stored, "features/d/s/v1") == expected


def test_a_damaged_catalog_table_is_one_catalog_error_naming_it(spark: Any, tmp_path: Path) -> None:
    from mesh.errors import CatalogError
    from mesh.storage import CommitInfo

    catalog = Catalog(spark, str(tmp_path))
    catalog.append("audit", [{"user": "ann"}], CommitInfo(run_id="r", operation="append"))
    assert [r["user"] for r in catalog.rows("audit")] == ["ann"]
    # A commit file overwritten with junk: delta-rs cannot parse the log.
    (tmp_path / "_catalog" / "audit" / "_delta_log" / "00000000000000000000.json").write_text("{")
    with pytest.raises(CatalogError, match=r"catalog table audit at .* cannot be read") as info:
        catalog.rows("audit")
    assert info.value.params["table"] == "audit"
    with pytest.raises(CatalogError, match="catalog table audit"):
        catalog.append("audit", [{"user": "bob"}], CommitInfo(run_id="r", operation="append"))
    # A file where the table's folder should be.
    (tmp_path / "_catalog" / "lineage").write_text("junk")
    with pytest.raises(CatalogError, match=r"catalog table lineage .*Not a directory"):
        catalog.rows("lineage")
    with pytest.raises(CatalogError, match="catalog table lineage"):
        catalog.version("lineage")
