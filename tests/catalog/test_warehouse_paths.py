"""Table paths in the catalog are places in the warehouse: a catalog read from elsewhere, or a
warehouse copied or moved, finds its own tables."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import END, PROFILE_SCHEMA, START, frame, make_mesh, profile_rows

from mesh.catalog import publish as publish_module
from mesh.catalog.export import collect
from mesh.catalog.paths import recorded_path, stored_path
from mesh.catalog.publish import publish_definition, publish_feature_set
from mesh.catalog.search import recorded_versions, show, versions
from mesh.catalog.tables import Catalog
from mesh.definitions.standards import StorageSettings
from mesh.errors import WarehouseMovedError
from mesh.storage import normalize_path, open_table

CUSTOMERS = "etl@customers"
TABLE = "features/customers/profile/v1"


def _publish_from(spark: Any, warehouse: str, shift: int = 0) -> Any:
    mesh = make_mesh(warehouse)
    fs = mesh.feature_sets["customers.profile"]
    df = frame(spark, profile_rows(shift=shift), PROFILE_SCHEMA)
    return publish_feature_set(
        spark, mesh, fs, df, start=START, end=END, identity=CUSTOMERS, as_of=END
    )


def test_a_publish_with_a_relative_warehouse_records_the_tables_place_in_it(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "job")
    result = _publish_from(spark, "wh")
    expected = str(tmp_path / "job" / "wh" / TABLE)
    assert result.table_path == expected  # what a user is given is absolute
    reports = tmp_path / "job" / "wh" / "_catalog" / "reports" / "customers.profile" / "1.0.0"
    assert result.report_path == str(reports / f"{result.publish_id}.html")
    refused = Catalog(spark, "wh").refusal_report_path("customers.profile", "1.0.0", "a1")
    assert refused == str(reports / "refused" / "a1.html")  # printed by a refused publish
    (row,) = Catalog(spark, "wh").rows("versions")
    assert row["table_path"] == TABLE  # as stored: relative to the warehouse

    # Read from another working directory, through another spelling of the warehouse.
    monkeypatch.chdir(tmp_path / "elsewhere")
    (record,) = recorded_versions(spark, make_mesh("../job/wh"), "customers.profile")
    assert record.table_path == expected
    assert open_table(spark, record.table_path).read(version=record.delta_version).count() == 12


def test_a_copied_warehouse_reads_its_own_tables(spark: Any, tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "wh", tmp_path / "new" / "wh"
    published = _publish_from(spark, str(old))
    rows = open_table(spark, published.table_path).read(version=published.delta_version).collect()
    shutil.copytree(old, new)
    shutil.rmtree(old)

    mesh, here = make_mesh(new), str(new / TABLE)
    (record,) = versions(spark, mesh, "customers.profile", identity=CUSTOMERS)
    assert record.table_path == here
    assert (
        show(spark, mesh, "customers.profile", identity=CUSTOMERS)["versions"][0]["table_path"]
        == here
    )
    assert collect(spark, mesh, identity=CUSTOMERS).versions["customers.profile"].table_path == here
    assert open_table(spark, here).read(version=record.delta_version).collect() == rows
    # A metadata-only publish in the copy names the copy's table, and records it relative.
    fs = mesh.feature_sets["customers.profile"]
    meta = fs.metadata.model_copy(update={"description": "Moved"})
    patched = fs.model_copy(update={"metadata": meta, "version": "1.0.1"})
    again = publish_definition(spark, mesh, patched, identity=CUSTOMERS)
    assert (again.table_path, again.delta_version) == (here, published.delta_version)
    assert {r["table_path"] for r in Catalog(spark, str(new)).rows("versions")} == {TABLE}
    assert not old.exists()


def test_a_relative_path_an_earlier_engine_recorded_is_read_under_the_warehouse(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "job")
    # An earlier engine recorded the path as the publish was given it (./wh).
    with monkeypatch.context() as earlier:
        earlier.setattr(publish_module, "stored_path", lambda warehouse, _: f"./wh/{TABLE}")
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
    assert sorted(r["table_path"] for r in Catalog(spark, warehouse).rows("versions")) == [
        f"./wh/{TABLE}",
        TABLE,
    ]


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("features/d/s/v1", "/data/wh/features/d/s/v1"),  # as recorded now
        ("wh/features/d/s/v1", "/data/wh/features/d/s/v1"),
        ("../x/wh/features/d/s/v1", "/data/wh/features/d/s/v1"),
        ("/old/wh/features/d/s/v1", "/old/wh/features/d/s/v1"),  # absolute: as recorded
        ("/data/wh/features/d/s/v1", "/data/wh/features/d/s/v1"),
        ("file:/data/wh/features/d/s/v1", "/data/wh/features/d/s/v1"),
        ("/data/wh/./x/../features/d/s/v1", "/data/wh/features/d/s/v1"),
        ("s3://bucket/wh/features/d/s/v1", "s3://bucket/wh/features/d/s/v1"),
        ("dbfs:/wh/features/d/s/v1", "dbfs:/wh/features/d/s/v1"),
        ("xfeatures/d/s/v1", "/cwd/xfeatures/d/s/v1"),  # not the table's place: from the cwd
    ],
)
def test_recorded_path(stored: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.getcwd", lambda: "/cwd")
    assert recorded_path("/data/wh", stored, "features/d/s/v1") == expected


@pytest.mark.parametrize(
    ("warehouse", "table", "stored"),
    [
        ("/data/wh", "/data/wh/features/d/s/v1", "features/d/s/v1"),
        ("/data/wh/", "file:/data/wh/training/r/c", "training/r/c"),
        ("file:///data/wh", "/data/wh/training/r/c", "training/r/c"),
        ("/data/wh", "/data/wh2/features/d/s/v1", "/data/wh2/features/d/s/v1"),  # a sibling
        ("/data/wh", "/data/wh", "/data/wh"),  # the warehouse itself holds no table
        ("/data/wh", "/elsewhere/t", "/elsewhere/t"),
        ("s3://bucket/wh", "s3://bucket/wh/features/d/s/v1", "features/d/s/v1"),
        ("s3://bucket/wh", "s3://bucket/wh2/features/d/s/v1", "s3://bucket/wh2/features/d/s/v1"),
        ("s3://bucket/wh", "s3://other/wh/features/d/s/v1", "s3://other/wh/features/d/s/v1"),
        # Another scheme (another client of the store, or its mount) is kept as written.
        ("s3://bucket/wh", "s3a://bucket/wh/features/d/s/v1", "s3a://bucket/wh/features/d/s/v1"),
        ("dbfs:/wh", "dbfs:/wh/features/d/s/v1", "features/d/s/v1"),
        ("dbfs:/wh", "/dbfs/wh/features/d/s/v1", "/dbfs/wh/features/d/s/v1"),
        (
            "abfss://c@acct.dfs.core.windows.net/wh",
            "abfss://c@acct.dfs.core.windows.net/wh/training/r/c",
            "training/r/c",
        ),
    ],
)
def test_stored_path_is_the_place_in_the_warehouse_of_the_same_scheme(
    warehouse: str, table: str, stored: str
) -> None:
    assert stored_path(warehouse, table) == stored
    # Read back under the same warehouse, it is the table again, absolute.
    assert recorded_path(warehouse, stored) == normalize_path(table)


def test_a_catalog_with_absolute_records_moved_elsewhere_names_both_places(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "old" / "wh", tmp_path / "new" / "wh"
    with monkeypatch.context() as earlier:  # an earlier engine recorded absolute paths
        earlier.setattr(publish_module, "stored_path", lambda warehouse, path: path)
        _publish_from(spark, str(old))
    assert Catalog(spark, str(old)).rows("versions")[0]["table_path"] == str(old / TABLE)
    shutil.copytree(old, new)
    shutil.rmtree(old)

    with pytest.raises(WarehouseMovedError, match=r"storage\.moved_from") as info:
        recorded_versions(spark, make_mesh(new), "customers.profile")
    assert info.value.params["recorded"] == str(old / TABLE)
    assert info.value.params["current"] == str(new / TABLE)
    assert info.value.params["old_warehouse"] == str(old)

    # Declared moved: its records are read in the warehouse they are in now.
    mesh = make_mesh(new)
    mesh.standards = mesh.standards.model_copy(
        update={"storage": StorageSettings(warehouse=str(new), moved_from=(str(old),))}
    )
    (record,) = recorded_versions(spark, mesh, "customers.profile")
    assert record.table_path == str(new / TABLE)
    assert open_table(spark, record.table_path).read(version=record.delta_version).count() == 12


def test_an_absolute_record_whose_table_still_exists_is_read_there(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "old" / "wh", tmp_path / "new" / "wh"
    with monkeypatch.context() as earlier:
        earlier.setattr(publish_module, "stored_path", lambda warehouse, path: path)
        _publish_from(spark, str(old))
    shutil.copytree(old, new)
    (record,) = recorded_versions(spark, make_mesh(new), "customers.profile")
    assert record.table_path == str(old / TABLE)  # as recorded: it may be another table


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
