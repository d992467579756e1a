"""Training sets: point-in-time values, manifests, rebuilds after newer versions land."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from importlib import metadata
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from sets_data import SPEND_SCHEMA, SPEND_V1, SPINE, jan

from mesh.catalog.lineage import lineage
from mesh.catalog.tables import Catalog
from mesh.errors import AccessDeniedError
from mesh.sets import (
    InputChangedError,
    ManifestError,
    SpineChangedError,
    UnknownReferenceError,
    build_training_set,
    read_manifest,
    rebuild_training_set,
)
from mesh.sets.spine import fingerprint_spine
from mesh.storage import open_table

OUT_SCHEMA = (
    "customer_id bigint, label_ts timestamp, churned boolean, amount double, "
    "tx_count bigint, tickets bigint"
)
EXPECTED = [
    (1, jan(2, 12), True, 10.0, 1, 1),
    (1, jan(6), False, 30.0, 3, 2),  # the Jan 5 row only arrives on Jan 8
    (1, jan(9), False, 60.0, 5, 2),
    (2, jan(20), True, None, None, 4),  # spend is 18 days old, TTL 10 days
    (3, jan(5), False, None, None, None),
]
# A newer minor version: a correction of customer 1's Jan 3 value, a new row for customer 2.
SPEND_V1_1 = [
    (1, jan(3), jan(3, 1), 33.0, 3),
    (2, jan(15), jan(15), 25.0, 4),
]


def test_build_gives_point_in_time_values(wh) -> None:
    result = build_training_set(wh.spark, wh.mesh, "risk.train")
    expected = wh.spark.createDataFrame(EXPECTED, OUT_SCHEMA)
    assert_df_equality(
        open_table(wh.spark, result.path).read(),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert result.row_count == len(SPINE)
    assert result.path == str(wh.root / "training/risk/train")


def test_manifest_pins_every_input(wh) -> None:
    result = build_training_set(wh.spark, wh.mesh, "risk.train", run_id="run-1")
    m = result.manifest
    assert (m.training_set, m.run_id, m.engine_version) == (
        "risk.train",
        "run-1",
        metadata.version("feature-mesh"),
    )
    pins = {p.feature_set: p for p in m.inputs}
    spend, tickets = pins["payments.spend"], pins["support.tickets"]
    assert (spend.semantic_version, spend.delta_version, spend.table) == (
        "1.0.0",
        0,
        "features/payments/spend/v1",
    )
    assert spend.definition_hash == wh.mesh.data_hash(wh.mesh.any_set("payments.spend"))
    assert spend.features == {"amount": "amount", "tx_count": "tx_count"}
    assert spend.ttl_seconds == 10 * 86400 and tickets.ttl_seconds is None
    assert (m.spine.delta_version, m.spine.row_count) == (0, len(SPINE))
    spine_df = open_table(wh.spark, str(wh.root / "products/risk/labels")).read()
    assert m.spine.checksum == fingerprint_spine(spine_df)[1]
    assert m.columns == ("customer_id", "label_ts", "churned", "amount", "tx_count", "tickets")
    assert (m.output.delta_version, m.output.row_count) == (result.delta_version, len(SPINE))
    # Written inside the table folder, latest and per-version, and readable back unchanged.
    assert result.manifest_path == str(wh.root / "training/risk/train/_manifest.json")
    kept = Path(result.path) / "_manifests" / f"{result.delta_version}.json"
    assert json.loads(kept.read_text()) == json.loads(Path(result.manifest_path).read_text())
    assert read_manifest(result.path) == m


def test_manifest_records_a_relative_warehouse_absolute(wh, monkeypatch) -> None:
    monkeypatch.chdir(wh.root.parent)
    monkeypatch.setenv("MESH_WAREHOUSE", wh.root.name)
    result = build_training_set(wh.spark, wh.mesh, "risk.train")
    assert result.manifest.warehouse == str(wh.root.resolve())
    assert read_manifest(str(wh.root / "training/risk/train")).warehouse == str(wh.root.resolve())


def test_rebuild_after_newer_version_gives_identical_rows(wh) -> None:
    original = build_training_set(wh.spark, wh.mesh, "risk.train")
    wh.write_features("payments.spend", SPEND_V1_1, SPEND_SCHEMA, "1.1.0", append=True)
    wh.write_spine([(4, jan(7), True)])  # the spine grows too: the rebuild reads its pinned version

    fresh = build_training_set(wh.spark, wh.mesh, "risk.train", output="training/risk/fresh")
    fresh_rows = open_table(wh.spark, fresh.path).read()
    # Proof that the new version matters: a new build sees the correction.
    assert fresh_rows.where("customer_id = 1 AND label_ts = '2024-01-06'").first()["amount"] == 33.0

    rebuilt = rebuild_training_set(
        wh.spark, wh.mesh, original.manifest_path, output="training/risk/rebuilt"
    )
    assert_df_equality(
        open_table(wh.spark, rebuilt.path).read(),
        open_table(wh.spark, original.path).read(version=original.delta_version),
        ignore_row_order=True,
    )
    assert rebuilt.manifest.rebuilt_from == original.manifest.run_id
    assert rebuilt.manifest.inputs == original.manifest.inputs
    # Every build and rebuild is recorded in the catalog: its manifest and lineage.
    recorded = Catalog(wh.spark, wh.mesh.warehouse).rows("manifests")
    runs = sorted(json.loads(r["manifest_json"])["run_id"] for r in recorded)
    assert runs == sorted(m.manifest.run_id for m in (original, fresh, rebuilt))
    assert {r["recorder"] for r in recorded} == {"alice@risk"}
    assert {str(e) for e in lineage(wh.spark, wh.mesh, "risk.train", "upstream")} >= {
        "feature_set:payments.spend -> training_set:risk.train",
        "feature_set:support.tickets -> training_set:risk.train",
    }


def test_rebuild_keeps_the_builds_column_order(wh, monkeypatch) -> None:
    # Features listed out of alphabetical order: the manifest's features mappings are
    # stored with sorted keys, so only its columns keep the order the build wrote.
    spec = wh.mesh.training_sets["risk.train"]
    reordered = spec.model_copy(update={"features": tuple(reversed(spec.features))})
    monkeypatch.setitem(wh.mesh.training_sets, "risk.train", reordered)
    original = build_training_set(wh.spark, wh.mesh, "risk.train", output="training/risk/order")
    expected = ["customer_id", "label_ts", "churned", "tickets", "tx_count", "amount"]
    assert open_table(wh.spark, original.path).read().columns == expected
    rebuilt = rebuild_training_set(
        wh.spark, wh.mesh, original.manifest_path, output="training/risk/order_rebuilt"
    )
    assert open_table(wh.spark, rebuilt.path).read().columns == expected
    assert list(rebuilt.manifest.columns) == expected
    # A manifest whose columns are not those the rebuild produces is refused.
    edited = original.manifest.model_copy(update={"columns": (*expected[:-1], "amount_x")})
    with pytest.raises(ManifestError, match="the manifest was edited or is damaged"):
        rebuild_training_set(wh.spark, wh.mesh, edited, output="training/risk/order_edited")


def test_rebuild_refuses_a_pinned_table_written_again(wh) -> None:
    original = build_training_set(wh.spark, wh.mesh, "risk.train")
    spend = wh.root / "features/payments/spend/v1"
    # Deleted and written again: a version 0 again, same semantic version and definition.
    shutil.rmtree(spend)
    other = [(1, jan(1), jan(1), 999.0, 99), *SPEND_V1[1:]]
    wh.write_features("payments.spend", other, SPEND_SCHEMA, run_id="another-run")
    with pytest.raises(InputChangedError) as err:
        rebuild_training_set(wh.spark, wh.mesh, original.manifest)
    assert err.value.params["feature_set"] == "payments.spend"
    assert err.value.params["changed"] == ["run_id"]
    # Gone altogether.
    shutil.rmtree(spend)
    with pytest.raises(InputChangedError) as gone:
        rebuild_training_set(wh.spark, wh.mesh, original.manifest)
    assert gone.value.params["found"]["run_id"] is None


def test_rebuild_refuses_a_pinned_version_whose_files_were_vacuumed(wh) -> None:
    original = build_training_set(wh.spark, wh.mesh, "risk.train")
    spend = wh.root / "features/payments/spend/v1"
    # A newer commit rewrites the table; VACUUM then removes the files only version 0 read.
    wh.write_features("payments.spend", SPEND_V1_1, SPEND_SCHEMA, "1.1.0", append=True)
    table = open_table(wh.spark, str(spend))
    rewrite = table.history()[0].info
    assert rewrite is not None
    table.create(table.read(), rewrite, overwrite=True)
    DeltaTable(str(spend)).vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=False
    )
    with pytest.raises(InputChangedError) as err:
        rebuild_training_set(wh.spark, wh.mesh, original.manifest, output="training/risk/vac")
    assert err.value.params["feature_set"] == "payments.spend"
    assert err.value.params["delta_version"] == 0
    assert err.value.params["changed"] == ["data_files"]
    assert err.value.params["missing"]
    assert not (wh.root / "training/risk/vac").exists()


def test_rebuild_refuses_an_option_edited_against_the_catalogs_definition(wh) -> None:
    original = build_training_set(wh.spark, wh.mesh, "risk.train")
    spend = next(p for p in original.manifest.inputs if p.feature_set == "payments.spend")
    index = original.manifest.inputs.index(spend)
    edited = original.manifest.model_copy(
        update={
            "inputs": tuple(
                p.model_copy(update={"ttl_seconds": 1.0}) if p is spend else p
                for p in original.manifest.inputs
            )
        }
    )
    with pytest.raises(ManifestError) as err:
        rebuild_training_set(wh.spark, wh.mesh, edited, output="training/risk/ttl_edited")
    params = err.value.params
    assert params["field"] == f"inputs[{index}].ttl_seconds"
    assert (params["manifest_value"], params["recorded_value"]) == (1.0, 10 * 86400)
    assert "as the catalog recorded it with version 1.0.0" in err.value.message
    assert not (wh.root / "training/risk/ttl_edited").exists()


@pytest.mark.parametrize(
    ("edit", "field", "recorded", "where"),
    [
        # Keyed on another column: Spark's own error for a column the spine lacks, before.
        ({"keys": ["tx_count"]}, "keys", ["customer_id"], "as the catalog recorded it with"),
        # Another prefix, named consistently: rebuilt silently with other columns, before.
        (
            {"prefix": "x_", "features": {"amount": "x_amount", "tx_count": "x_tx_count"}},
            "prefix",
            "",
            "the training set's definition",
        ),
    ],
)
def test_rebuild_refuses_a_lookup_edited_before_any_spark_job(
    wh, tmp_path, edit, field, recorded, where
) -> None:
    original = build_training_set(wh.spark, wh.mesh, "risk.train")
    doc = json.loads(Path(original.manifest_path).read_text())
    index = next(i for i, p in enumerate(doc["inputs"]) if p["feature_set"] == "payments.spend")
    doc["inputs"][index].update(edit)
    renamed = edit.get("features", {})
    doc["columns"] = [renamed.get(c, c) for c in doc["columns"]]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    tracker = wh.spark.sparkContext.statusTracker()
    group = f"rebuild-{field}"
    wh.spark.sparkContext.setJobGroup(group, "rebuild of an edited manifest")
    try:
        with pytest.raises(ManifestError) as err:
            rebuild_training_set(wh.spark, wh.mesh, str(path), output="training/risk/edited")
    finally:
        wh.spark.sparkContext.setJobGroup("", "")
    assert tracker.getJobIdsForGroup(group) == []
    params = err.value.params
    assert (params["path"], params["field"]) == (str(path), f"inputs[{index}].{field}")
    assert params["recorded_value"] == recorded
    assert err.value.message.startswith(f"Manifest {path} of risk.train: inputs[{index}].{field}")
    assert where in err.value.message
    assert not (wh.root / "training/risk/edited").exists()


def test_conf_edited_under_the_published_version_reads_with_the_published_ttl(
    wh, monkeypatch
) -> None:
    # conf/ changes the TTL but keeps the version number (not published yet): the build reads
    # the published commit, so with its published TTL, and its manifest rebuilds.
    current = wh.mesh.feature_sets["payments.spend"]
    monkeypatch.setitem(
        wh.mesh.feature_sets, "payments.spend", current.model_copy(update={"ttl": timedelta(1)})
    )
    result = build_training_set(wh.spark, wh.mesh, "risk.train")
    spend = next(p for p in result.manifest.inputs if p.feature_set == "payments.spend")
    assert spend.ttl_seconds == 10 * 86400
    expected = wh.spark.createDataFrame(EXPECTED, OUT_SCHEMA)
    assert_df_equality(
        open_table(wh.spark, result.path).read(),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    rebuild_training_set(wh.spark, wh.mesh, result.manifest, output="training/risk/again")


def test_folder_with_a_build_missing_its_manifest_is_refused(wh, monkeypatch) -> None:
    original = build_training_set(wh.spark, wh.mesh, "risk.train")

    def fail(*_args: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr("mesh.sets.training.write_manifest", fail)
    with pytest.raises(OSError):
        build_training_set(wh.spark, wh.mesh, "risk.train")  # committed, no manifest
    monkeypatch.undo()
    with pytest.raises(ManifestError) as err:
        read_manifest(original.path)
    assert err.value.params["later_builds"] == [original.delta_version + 1]
    # The build that has one is still named by its own file.
    kept = Path(original.path) / "_manifests" / f"{original.delta_version}.json"
    assert read_manifest(str(kept)) == original.manifest


def test_the_folder_names_the_newest_build_when_two_builds_wrote_their_manifests_out_of_order(
    wh,
) -> None:
    from mesh.sets.manifest import write_manifest

    first = build_training_set(wh.spark, wh.mesh, "risk.train")
    second = build_training_set(wh.spark, wh.mesh, "risk.train")
    # The first build's manifest is written last (a slow store): it used to replace the
    # second's as _manifest.json, and the folder was then refused as missing a manifest.
    write_manifest(first.manifest, first.path)
    assert read_manifest(first.path) == second.manifest
    moved_over = Path(first.path) / "_manifests" / f"{first.delta_version}.json"
    shutil.copy(moved_over, Path(first.path) / "_manifest.json")  # the race's other order
    assert read_manifest(first.path) == second.manifest


@pytest.mark.slow
def test_rebuild_in_place_adds_a_commit(wh) -> None:
    original = build_training_set(wh.spark, wh.mesh, "risk.train")
    rebuilt = rebuild_training_set(wh.spark, wh.mesh, original.path)
    assert rebuilt.path == original.path
    assert rebuilt.delta_version == original.delta_version + 1
    assert read_manifest(original.path).run_id == rebuilt.manifest.run_id


def test_pinned_reference_reads_the_pinned_version(wh) -> None:
    wh.write_features("payments.spend", SPEND_V1_1, SPEND_SCHEMA, "1.1.0", append=True)
    spec = wh.mesh.training_sets["risk.train"].model_copy(
        update={
            "features": (
                "payments.spend@1.0.amount",
                "payments.spend@1.0.tx_count",
                "support.tickets.tickets",
            )
        }
    )
    result = build_training_set(wh.spark, wh.mesh, spec)
    assert_df_equality(
        open_table(wh.spark, result.path).read(),
        wh.spark.createDataFrame(EXPECTED, OUT_SCHEMA),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert next((p.pin, p.delta_version) for p in result.manifest.inputs) == ("1.0", 0)


def test_changed_parquet_spine_refuses_rebuild(wh) -> None:
    wh.write_spine(SPINE, location="products/risk/labels_pq", fmt="parquet")
    ts = wh.mesh.training_sets["risk.train"]
    spec = ts.model_copy(
        update={
            "spine": ts.spine.model_copy(
                update={"path": "products/risk/labels_pq", "format": "parquet"}
            )
        }
    )
    original = build_training_set(wh.spark, wh.mesh, spec)
    assert original.manifest.spine.delta_version is None
    changed = [SPINE[0], (1, jan(6), True), *SPINE[2:]]  # one label flipped, same row count
    wh.write_spine(changed, location="products/risk/labels_pq", fmt="parquet")
    with pytest.raises(SpineChangedError) as err:
        rebuild_training_set(wh.spark, wh.mesh, original.manifest)
    assert err.value.params["changed"] == ["checksum"]
    assert err.value.params["expected"]["row_count"] == err.value.params["found"]["row_count"]


def test_denied_reader_gets_nothing_built(wh) -> None:
    with pytest.raises(AccessDeniedError) as err:
        build_training_set(wh.spark, wh.mesh, "risk.train", identity="bob@marketing")
    assert err.value.params["feature_set"] == "support.tickets"
    assert not open_table(wh.spark, str(wh.root / "training/risk/train")).exists()


def test_unknown_training_set(wh) -> None:
    with pytest.raises(UnknownReferenceError) as err:
        build_training_set(wh.spark, wh.mesh, "risk.nope")
    assert err.value.params["available"] == ["risk.train"]


@pytest.mark.parametrize(
    ("path", "identity", "reason"),
    [
        ("training/support/tickets_train", None, "training table of domain support"),
        ("features/support/tickets/v1", "bob@marketing", "support.tickets"),
        ("_catalog/versions", None, "catalog's own table"),
    ],
)
def test_a_spine_inside_the_warehouse_is_access_checked(wh, path, identity, reason) -> None:
    ts = wh.mesh.training_sets["risk.train"]
    spec = ts.model_copy(update={"spine": ts.spine.model_copy(update={"path": path})})
    with pytest.raises(AccessDeniedError) as err:
        build_training_set(wh.spark, wh.mesh, spec, identity=identity)
    assert "(spine)" in err.value.message and reason in err.value.message
    assert not open_table(wh.spark, str(wh.root / "training/risk/train")).exists()


@pytest.mark.parametrize(
    ("warehouse", "path", "parts"),
    [
        ("s3://bucket/wh", "s3://bucket/wh/training/support/t", ["training", "support", "t"]),
        ("s3://bucket/wh", "s3://bucket/wh2/training/support/t", None),
        ("s3://bucket/wh", "/local/training/support/t", None),
        ("/local/wh", "s3://bucket/wh/training/support/t", None),
        ("/local/wh", "/local/wh/../wh/features/a/b/v1", ["features", "a", "b", "v1"]),
        ("/local/wh", "/local/other", None),
        ("/local/wh", "/local/wh/", []),
        ("s3://bucket/wh/", "s3://bucket/wh", []),
        # A file: URI is the local path it names, in any spelling, on either side.
        ("/local/wh", "file:///local/wh/features/a/b/v1", ["features", "a", "b", "v1"]),
        ("/local/wh", "file:/local/wh/_catalog/audit", ["_catalog", "audit"]),
        ("/local/wh", "file://localhost/local/wh/training/x", ["training", "x"]),
        ("/local/wh", "FILE:///local/w%68/features", ["features"]),
        ("file:///local/wh", "/local/wh/../wh/training", ["training"]),
        ("file:/local/wh/", "file:///local/wh", []),
        ("file:///local/wh", "/local/other", None),
        # Other schemes: only the same scheme and authority, by the normalised path.
        ("s3://bucket/wh", "S3://BUCKET/wh/x/../features", ["features"]),
        ("s3://bucket/wh", "s3://other/wh/features", None),
        ("s3://bucket/wh", "file:///bucket/wh/features", None),
        ("dbfs:/wh", "dbfs:///wh/features", ["features"]),
        # One store under several schemes, and Databricks' local mount of dbfs:/.
        ("s3://bucket/wh", "s3a://bucket/wh/features/a", ["features", "a"]),
        ("s3a://bucket/wh", "s3n://bucket/wh/_catalog", ["_catalog"]),
        ("abfss://c@acct.dfs.core.windows.net/w", "abfs://c@acct.dfs.core.windows.net/w/x", ["x"]),
        ("s3://bucket/wh", "gs://bucket/wh/features", None),
        ("dbfs:/wh", "/dbfs/wh/features/a", ["features", "a"]),
        ("/dbfs/wh", "dbfs:/wh/training/x", ["training", "x"]),
        ("dbfs:/wh", "/dbfsx/wh/features", None),
    ],
)
def test_paths_inside_the_warehouse_also_as_uris(warehouse, path, parts) -> None:
    from mesh.storage import parts_below

    assert parts_below(warehouse, path) == parts


def test_spine_columns_with_dots_in_their_names(wh) -> None:
    # Names with dots are column names, not struct fields: the spine's label and an extra
    # column keep them, through the build, the manifest's fingerprint and a rebuild.
    from mesh.storage import CommitInfo

    rows = [(c, t, label, float(i)) for i, (c, t, label) in enumerate(SPINE)]
    schema = "customer_id bigint, label_ts timestamp, `label.churned` boolean, `score.v1` double"
    open_table(wh.spark, str(wh.root / "products/risk/dotted")).append(
        wh.spark.createDataFrame(rows, schema), CommitInfo(run_id="spine", operation="spine")
    )
    ts = wh.mesh.training_sets["risk.train"]
    spine = ts.spine.model_copy(
        update={"path": "products/risk/dotted", "labels": ("label.churned",)}
    )
    spec = ts.model_copy(update={"spine": spine})
    result = build_training_set(wh.spark, wh.mesh, spec, output="training/risk/dotted")
    expected = wh.spark.createDataFrame(
        [(*e[:3], float(i), *e[3:]) for i, e in enumerate(EXPECTED)],
        "customer_id bigint, label_ts timestamp, `label.churned` boolean, `score.v1` double, "
        "amount double, tx_count bigint, tickets bigint",
    )
    built = open_table(wh.spark, result.path).read()
    assert built.columns == expected.columns
    # chispa sorts rows by column name and cannot sort by a dotted name: compare sorted rows.
    assert sorted(built.collect()) == sorted(expected.collect())
    assert result.manifest.columns[2:4] == ("label.churned", "score.v1")
    rebuilt = rebuild_training_set(
        wh.spark, wh.mesh, result.manifest, output="training/risk/dotted_again"
    )
    assert sorted(open_table(wh.spark, rebuilt.path).read().collect()) == sorted(built.collect())


def test_spine_with_map_columns_is_fingerprinted_and_rebuilt(wh) -> None:
    # Spark refuses to hash maps; the fingerprint still covers them (a changed value in a
    # map is a changed spine), and a build and rebuild run over such a spine.
    from mesh.storage import CommitInfo

    rows = [(c, t, label, {"src": f"s{i}"}, [{"n": i}]) for i, (c, t, label) in enumerate(SPINE)]
    schema = (
        "customer_id bigint, label_ts timestamp, churned boolean, tags map<string,string>, "
        "hist array<map<string,int>>"
    )
    spine_df = wh.spark.createDataFrame(rows, schema)
    changed = wh.spark.createDataFrame(
        [*rows[:-1], (*rows[-1][:3], {"src": "x"}, [{"n": 4}])], schema
    )
    assert fingerprint_spine(spine_df)[0] == fingerprint_spine(changed)[0] == len(SPINE)
    assert fingerprint_spine(spine_df)[1] != fingerprint_spine(changed)[1]
    open_table(wh.spark, str(wh.root / "products/risk/tagged")).append(
        spine_df, CommitInfo(run_id="spine", operation="spine")
    )
    ts = wh.mesh.training_sets["risk.train"]
    spec = ts.model_copy(
        update={"spine": ts.spine.model_copy(update={"path": "products/risk/tagged"})}
    )
    result = build_training_set(wh.spark, wh.mesh, spec, output="training/risk/tagged")
    built = open_table(wh.spark, result.path).read()
    assert built.columns[:5] == spine_df.columns
    assert_df_equality(
        built.drop("tags", "hist"),
        wh.spark.createDataFrame(EXPECTED, OUT_SCHEMA),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    rebuilt = rebuild_training_set(
        wh.spark, wh.mesh, result.manifest, output="training/risk/tagged_again"
    )
    again = open_table(wh.spark, rebuilt.path).read()
    # Maps cannot be ordered, so the rows are compared with the maps as JSON text.
    as_text = [*built.columns[:3], "to_json(tags) AS tags", "to_json(hist) AS hist"]
    as_text += built.columns[5:]
    assert_df_equality(
        again.selectExpr(*as_text), built.selectExpr(*as_text), ignore_row_order=True
    )


@pytest.mark.parametrize(
    ("column_type", "value"),
    [("timestamp_ntz", jan(9).replace(tzinfo=None)), ("date", jan(9).date())],
)
def test_spine_time_of_another_type_is_refused_by_the_spine(wh, column_type, value) -> None:
    # Feature tables hold timestamps; the error names the spine column, not a feature table.
    from mesh.sets import SpineError
    from mesh.storage import CommitInfo

    df = wh.spark.createDataFrame(
        [(1, value, True)], f"customer_id bigint, label_ts {column_type}, churned boolean"
    )
    open_table(wh.spark, str(wh.root / "products/risk/local")).append(
        df, CommitInfo(run_id="spine", operation="spine")
    )
    ts = wh.mesh.training_sets["risk.train"]
    spec = ts.model_copy(
        update={"spine": ts.spine.model_copy(update={"path": "products/risk/local"})}
    )
    with pytest.raises(SpineError) as err:
        build_training_set(wh.spark, wh.mesh, spec)
    assert err.value.params["column"] == "label_ts"
    assert (err.value.params["expected"], err.value.params["found"]) == ("timestamp", column_type)
    assert not open_table(wh.spark, str(wh.root / "training/risk/train")).exists()


def test_spine_key_of_another_type_is_refused_by_the_spine(wh) -> None:
    # The feature tables' keys have the entity's registered type: the error names the
    # spine's column. Integers of another width still match by value.
    from mesh.sets import SpineError
    from mesh.storage import CommitInfo

    ts = wh.mesh.training_sets["risk.train"]
    for key_type, cast in [("string", str), ("int", int)]:
        rows = [(cast(c), t, label) for c, t, label in SPINE]
        df = wh.spark.createDataFrame(
            rows, f"customer_id {key_type}, label_ts timestamp, churned boolean"
        )
        location = f"products/risk/keys_{key_type}"
        open_table(wh.spark, str(wh.root / location)).append(
            df, CommitInfo(run_id="spine", operation="spine")
        )
        spec = ts.model_copy(update={"spine": ts.spine.model_copy(update={"path": location})})
        if key_type == "int":
            result = build_training_set(wh.spark, wh.mesh, spec, output="training/risk/int")
            assert_df_equality(
                open_table(wh.spark, result.path).read(),
                wh.spark.createDataFrame(EXPECTED, OUT_SCHEMA.replace("id bigint", "id int")),
                ignore_row_order=True,
                ignore_nullable=True,
            )
            continue
        with pytest.raises(SpineError) as err:
            build_training_set(wh.spark, wh.mesh, spec)
        params = err.value.params
        assert (params["column"], params["expected"], params["found"]) == (
            "customer_id",
            "bigint",
            "string",
        )
        assert params["feature_set"] == "payments.spend"


def test_spine_with_variant_columns_is_fingerprinted(spark) -> None:
    spine = spark.sql("SELECT 1L AS k, parse_json('{\"a\": 1}') AS v")
    changed = spark.sql("SELECT 1L AS k, parse_json('{\"a\": 2}') AS v")
    assert fingerprint_spine(spine)[0] == fingerprint_spine(changed)[0] == 1
    assert fingerprint_spine(spine)[1] != fingerprint_spine(changed)[1]
    assert fingerprint_spine(spine) == fingerprint_spine(spine.select("*"))
