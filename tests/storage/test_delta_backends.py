"""Backend selection, and the native (delta-spark) backend where its jars are available."""

from __future__ import annotations

import pytest
from storage_helpers import commit, frame, rows_of, ts

from mesh.errors import StorageError
from mesh.session import native_delta_enabled
from mesh.storage import CommitInfo, open_table


def test_auto_picks_embedded_without_jars_and_env_can_force(spark, tmp_path, monkeypatch):
    monkeypatch.delenv("MESH_STORAGE_BACKEND", raising=False)
    expected = "native" if native_delta_enabled(spark) else "embedded"
    assert open_table(spark, str(tmp_path / "t")).backend == expected
    monkeypatch.setenv("MESH_STORAGE_BACKEND", "embedded")
    assert open_table(spark, str(tmp_path / "t")).backend == "embedded"
    monkeypatch.setenv("MESH_STORAGE_BACKEND", "bogus")
    with pytest.raises(StorageError) as exc:
        open_table(spark, str(tmp_path / "t"))
    assert exc.value.params["backend"] == "bogus"


def test_forcing_native_without_jars_says_what_to_do(spark, tmp_path):
    if native_delta_enabled(spark):
        pytest.skip("the Delta jars are on the classpath here")
    with pytest.raises(StorageError) as exc:
        open_table(spark, str(tmp_path / "t"), backend="native")
    assert exc.value.params["backend"] == "native"
    assert "--packages io.delta:delta-spark" in exc.value.message


def test_commit_info_json_round_trip_and_rejects_unserialisable():
    info = CommitInfo("r", "append", range_start=ts(1), extra={"when": ts(2), "n": 1})
    parsed = CommitInfo.from_json(info.to_json())
    assert parsed is not None and parsed.range_start == ts(1)
    assert parsed.extra == {"when": ts(2).isoformat(), "n": 1}
    assert CommitInfo.from_json('{"something": "else"}') is None
    with pytest.raises(StorageError):
        CommitInfo("r", "append", extra={"bad": object()}).to_json()


@pytest.mark.native
def test_native_backend_round_trip(spark, tmp_path):
    if not native_delta_enabled(spark):
        pytest.skip(
            "native backend needs the Delta Lake jars (start Spark with "
            "--packages io.delta:delta-spark_2.13:<ver> and the Delta extension)"
        )
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="native")
    info = commit("r0", "create", definition_hash="h")
    table.create(frame(spark, [(1, ts(1), 1.0, "a")]), info, time_column="feature_ts")
    table.replace_range(
        frame(spark, [(2, ts(1, 5), 2.0, "b")]),
        commit("r1", "replace_range"),
        time_column="feature_ts",
        start=ts(1),
        end=ts(2),
    )
    assert rows_of(table.read()) == [(2, ts(1, 5), 2.0, "b")]
    assert rows_of(table.read(version=0)) == [(1, ts(1), 1.0, "a")]
    assert table.history()[-1].info == info


@pytest.mark.native
def test_native_replace_range_merges_new_columns(spark, tmp_path):
    if not native_delta_enabled(spark):
        pytest.skip(
            "native backend needs the Delta Lake jars (start Spark with "
            "--packages io.delta:delta-spark_2.13:<ver> and the Delta extension)"
        )
    path = str(tmp_path / "t")
    table = open_table(spark, path, backend="native")
    table.create(frame(spark, [(1, ts(1), 1.0, "a"), (2, ts(2), 2.0, "b")]), commit("r0"))
    wider = frame(spark, [(3, ts(2, 5), 3.0, "c")]).selectExpr("*", "id * 10 AS score")
    version = table.replace_range(
        wider,
        commit("r1", "replace_range"),
        time_column="feature_ts",
        start=ts(2),
        end=ts(3),
        merge_schema=True,
    )
    assert version == table.latest_version() == 1
    assert rows_of(table.read()) == [(1, ts(1), 1.0, "a", None), (3, ts(2, 5), 3.0, "c", 30)]
