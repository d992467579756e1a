"""Where a training set build may write: managed areas, tables it reads, others' data refused."""

from __future__ import annotations

import pytest

from mesh.sets import OutputPathError, build_training_set, rebuild_training_set
from mesh.storage import CommitInfo, open_table

SPEND_TABLE = "features/payments/spend/v1"
SPINE_TABLE = "products/risk/labels"


def _refused(wh, output: str) -> OutputPathError:
    with pytest.raises(OutputPathError) as err:
        build_training_set(wh.spark, wh.mesh, "risk.train", output=output)
    return err.value


def _versions(wh, location: str) -> int:
    return len(open_table(wh.spark, str(wh.root / location)).history())


def test_a_feature_table_is_refused_and_left_untouched(wh) -> None:
    before = _versions(wh, SPEND_TABLE)
    err = _refused(wh, SPEND_TABLE)
    assert err.params["path"] == str(wh.root / SPEND_TABLE)
    assert "feature tables' area (features/)" in err.message
    assert "Choose another output (the spec's `output:` or --output)" in err.message
    assert _versions(wh, SPEND_TABLE) == before
    assert not (wh.root / "training").exists()  # nothing built either


@pytest.mark.parametrize("output", ["_catalog/versions", "_catalog"])
def test_the_catalog_is_refused(wh, output) -> None:
    err = _refused(wh, output)
    assert "catalog's area (_catalog)" in err.params["reason"]


def test_another_domains_training_area_is_refused(wh) -> None:
    err = _refused(wh, "training/support/mine")
    assert err.params["domain"] == "support"
    assert "training area of domain support" in err.message
    assert not (wh.root / "training/support/mine").exists()


@pytest.mark.parametrize(
    ("output", "relation"),
    [(SPINE_TABLE, "is"), ("products/risk", "holds"), (f"{SPINE_TABLE}/sub", "lies inside")],
)
def test_the_spine_is_refused_and_left_untouched(wh, output, relation) -> None:
    before = _versions(wh, SPINE_TABLE)
    err = _refused(wh, output)
    assert err.params["conflict"] == str(wh.root / SPINE_TABLE)
    assert f"it {relation} the spine" in err.message
    assert _versions(wh, SPINE_TABLE) == before


def test_a_data_product_of_the_mesh_is_refused_even_where_not_read(wh) -> None:
    err = _refused(wh, "products/payments/transactions")
    assert "data product payments.transactions" in err.message


def test_the_warehouse_itself_is_refused(wh) -> None:
    err = _refused(wh, str(wh.root))
    assert "holds the whole warehouse" in err.message


def test_a_foreign_delta_table_is_refused_and_left_untouched(wh, tmp_path) -> None:
    foreign = tmp_path / "theirs"
    df = wh.spark.createDataFrame([(1, "a")], "id bigint, v string")
    open_table(wh.spark, str(foreign)).create(df, CommitInfo(run_id="x", operation="ingest"))
    err = _refused(wh, str(foreign))
    assert err.params["found_operation"] == "ingest"
    assert "newest commit (version 0) is a mesh ingest run" in err.message
    table = open_table(wh.spark, str(foreign))
    assert table.latest_version() == 0
    assert [tuple(r) for r in table.read().collect()] == [(1, "a")]


def test_the_table_of_another_training_set_is_refused(wh) -> None:
    other = wh.mesh.training_sets["risk.train"].model_copy(update={"name": "other"})
    build_training_set(wh.spark, wh.mesh, other, output="training/risk/shared")
    err = _refused(wh, "training/risk/shared")
    assert err.params["found_training_set"] == "risk.other"
    assert "a build of training set risk.other, not a build of training set risk.train" in (
        err.message
    )
    assert _versions(wh, "training/risk/shared") == 1


def test_a_folder_of_other_files_is_refused_and_left_untouched(wh, tmp_path) -> None:
    folder = tmp_path / "parquet"
    wh.spark.createDataFrame([(1,)], "id bigint").write.parquet(str(folder))
    before = sorted(p.name for p in folder.iterdir())
    err = _refused(wh, str(folder))
    assert "is a folder holding" in err.message and "no Delta table" in err.message
    assert sorted(p.name for p in folder.iterdir()) == before
    (tmp_path / "file.txt").write_text("mine")
    assert "it is a file" in _refused(wh, str(tmp_path / "file.txt")).message


def test_a_folder_inside_a_delta_table_is_refused(wh) -> None:
    build_training_set(wh.spark, wh.mesh, "risk.train")
    err = _refused(wh, "training/risk/train/nested")
    assert err.params["conflict"] == str(wh.root / "training/risk/train")


def test_builds_and_rebuilds_overwrite_their_own_table(wh, tmp_path) -> None:
    first = build_training_set(wh.spark, wh.mesh, "risk.train")
    second = build_training_set(wh.spark, wh.mesh, "risk.train")
    assert (first.delta_version, second.delta_version) == (0, 1)
    rebuilt = rebuild_training_set(wh.spark, wh.mesh, first.manifest_path)
    assert (rebuilt.path, rebuilt.delta_version) == (first.path, 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build_training_set(wh.spark, wh.mesh, "risk.train", output=str(empty)).row_count == 5


def test_a_rebuild_into_another_domains_area_is_refused(wh) -> None:
    built = build_training_set(wh.spark, wh.mesh, "risk.train")
    with pytest.raises(OutputPathError) as err:
        rebuild_training_set(wh.spark, wh.mesh, built.manifest, output="training/support/copy")
    assert err.value.params["domain"] == "support"
    with pytest.raises(OutputPathError):
        rebuild_training_set(wh.spark, wh.mesh, built.manifest, output=SPEND_TABLE)
    assert _versions(wh, "training/risk/train") == 1


def test_inference_outputs_overwrite_only_earlier_inference_outputs(wh, tmp_path) -> None:
    from mesh.sets.manifest import BUILD_OPERATION
    from mesh.sets.output import INFERENCE_OPERATION, check_output

    earlier = str(tmp_path / "scores")
    df = wh.spark.createDataFrame([(1,)], "customer_id bigint")
    open_table(wh.spark, earlier).create(df, CommitInfo(run_id="i", operation=INFERENCE_OPERATION))
    check_output(wh.spark, wh.mesh, earlier, [], operation=INFERENCE_OPERATION)  # allowed
    # The training area holds training set builds only, even where nothing is yet.
    for area in ("training/risk/scores", "training/support/scores"):
        with pytest.raises(OutputPathError, match=r"training tables' area \(training/\)"):
            check_output(wh.spark, wh.mesh, area, [], operation=INFERENCE_OPERATION)
    with pytest.raises(OutputPathError, match=r"not a build of training set risk\.train"):
        check_output(
            wh.spark, wh.mesh, earlier, [], operation=BUILD_OPERATION, training_set="risk.train"
        )
    entities = [("the entity table", earlier)]
    with pytest.raises(OutputPathError, match="it is the entity table") as err:
        check_output(wh.spark, wh.mesh, earlier, entities, operation=INFERENCE_OPERATION)
    assert err.value.params["conflict"] == earlier
    # A training table outside the warehouse is told apart by its commits.
    built = build_training_set(wh.spark, wh.mesh, "risk.train", output=str(tmp_path / "train"))
    with pytest.raises(OutputPathError, match=r"is a build of training set risk\.train, not a"):
        check_output(wh.spark, wh.mesh, built.path, [], operation=INFERENCE_OPERATION)
