"""The `mesh training|inference|global` sub-commands and the spark-submit job wrappers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sets_data import CONF

from mesh.cli import main

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def _job(name: str):
    spec = importlib.util.spec_from_file_location(name, JOBS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_build_job_prints_the_result(wh, capsys) -> None:
    code = _job("build_training_set").run(["risk.train", "--conf", str(CONF)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"-> {wh.root / 'training/risk/train'} (Delta version 0)" in out
    assert (wh.root / "training/risk/train/_manifest.json").is_file()


def test_bad_arguments_are_one_line_errors(capsys) -> None:
    code = main(
        [
            "--conf",
            str(CONF),
            "inference",
            "payments.spend.amount",
            "--key",
            "customer_id=1",
            "--as-of",
            "yesterday",
        ]
    )
    assert code == 1
    assert "--as-of 'yesterday' is not an ISO time" in capsys.readouterr().err
    code = main(["--conf", str(CONF), "inference", "payments.spend.amount", "--key", "oops"])
    assert code == 1
    assert "--key 'oops': expected COLUMN=V1,V2" in capsys.readouterr().err
