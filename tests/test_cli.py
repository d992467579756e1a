"""The platform commands: show-config, generate, demo, and the one-block error handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesh.cli import main

CONF = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture()
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # main() exports --warehouse as MESH_WAREHOUSE; monkeypatch restores it afterwards.
    monkeypatch.setenv("MESH_WAREHOUSE", str(tmp_path / "warehouse"))
    return str(tmp_path / "warehouse")


def test_show_config_lists_every_definition(capsys: pytest.CaptureFixture[str]) -> None:
    from mesh.definitions import load_mesh

    assert main(["--conf", CONF, "show-config"]) == 0
    out = capsys.readouterr().out
    mesh = load_mesh(CONF)
    for name, fs in mesh.feature_sets.items():
        assert name in out and mesh.data_hash(fs) in out and fs.metadata_hash() in out
    for name in [*mesh.products, *mesh.global_sets, *mesh.training_sets]:
        assert name in out


def test_show_config_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-config", "--conf", CONF, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in data["data_products"]] == sorted(
        ["customers.customer_profiles", "payments.transactions", "support.tickets"]
    )
    assert data["build_order"][-1] == "risk.customer_risk"


def test_bad_conf_prints_one_error_block_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MESH_DEBUG", raising=False)
    bad = tmp_path / "conf"
    bad.mkdir()
    (bad / "mesh.yaml").write_text("name: x\nentitiess: {}\nstorage: {backend: cloud}\n")
    assert main(["--conf", str(bad), "show-config"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert "2 problem(s)" in err and "did you mean `entities`?" in err
    assert "storage.backend" in err and "'cloud'" in err


def test_missing_conf_folder_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show-config", "--conf", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "mesh.yaml" in err and "Traceback" not in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_unknown_demo_step_is_an_error(
    spark: Any, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["demo", "--conf", CONF, "--warehouse", warehouse, "--steps", "generate,train"]) == 1
    )
    assert "Demo steps train do not exist" in capsys.readouterr().err


def test_generate_append_and_refuse_to_overwrite(
    spark: Any, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "generate",
        "--conf",
        CONF,
        "--warehouse",
        warehouse,
        "--customers",
        "12",
        "--days",
        "1",
        "--only",
        "payments.transactions",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "generated 1 tables" in out and "delta version: 0" in out
    assert main(["generate", "--conf", CONF, "--warehouse", warehouse, "--append-day"]) == 0
    assert "version 1" in capsys.readouterr().out
    assert main(args) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_demo_generates_and_summarises(
    spark: Any, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "demo",
                "--conf",
                CONF,
                "--warehouse",
                warehouse,
                "--customers",
                "12",
                "--days",
                "1",
                "--sample-rows",
                "1",
                "--steps",
                "generate,summary",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[1/6] generate: done" in out and "[2/6] compute: skipped" in out
    assert "[6/6] summary: done" in out
    for table in ("products/payments/transactions", "products/risk/churn_labels"):
        assert f"{warehouse}/{table}" in out


@pytest.mark.slow
def test_demo_end_to_end(spark: Any, warehouse: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "demo",
                "--conf",
                CONF,
                "--warehouse",
                warehouse,
                "--customers",
                "30",
                "--days",
                "7",
                "--sample-rows",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for step in ("generate", "compute", "publish", "global", "training", "summary"):
        assert f"{step}: done" in out, out
