"""`mesh validate`: exit codes, the report, every problem of a broken conf at once, no Spark."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from governance_helpers import CONF, ROOT

from mesh.cli import main
from mesh.errors import ConfigError
from mesh.governance import load_unchecked, validate_conf


def broken_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    profile = conf / "domains" / "customers" / "profile.yaml"
    # a schema problem (unknown field) in one file ...
    profile.write_text(profile.read_text().replace("accuracy: event", "acuracy: event"))
    # ... and a governance problem (type not allowed) plus a cross-reference one in others
    amounts = conf / "domains" / "payments" / "tx_amounts.yaml"
    amounts.write_text(amounts.read_text().replace("type: boolean", "type: float"))
    events = conf / "domains" / "payments" / "tx_events.yaml"
    events.write_text(events.read_text().replace("entity: customer", "entity: account"))
    return conf


def test_validate_example_conf(capsys) -> None:
    assert main(["--conf", str(CONF), "validate"]) == 0
    out = capsys.readouterr().out
    assert "0 failed, 1 warning(s)" in out.splitlines()[-1]


def test_validate_reports_every_problem(tmp_path, capsys) -> None:
    conf = broken_conf(tmp_path)
    assert main(["validate", "--conf", str(conf)]) == 1
    out = capsys.readouterr().out
    assert "config.invalid" in out and "unknown field `acuracy`" in out
    assert "types.allowed" in out and "payments.tx_amounts.is_online" in out
    assert "entity.registered" in out and "'account'" in out
    assert out.splitlines()[-1].startswith("validate: ")


def test_validate_json_lines(tmp_path, capsys) -> None:
    conf = broken_conf(tmp_path)
    assert main(["--conf", str(conf), "validate", "--json"]) == 1
    captured = capsys.readouterr()
    # Every line of stdout is JSON (a pipe into jq works when checks fail); the summary is
    # on stderr.
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert captured.err.startswith("validate: 7 check(s) failed in ")
    failed = {(r["check"], r["feature"]) for r in records if r["severity"] == "error"}
    assert failed == {
        ("config.invalid", None),
        ("types.allowed", "is_online"),
        ("entity.registered", None),
        ("references.input", "limit"),
        ("references.training", "country"),
        ("references.training", "segment"),
        ("access.grant", None),
    }


def test_validate_conf_keeps_valid_definitions(tmp_path) -> None:
    mesh, problems = load_unchecked(broken_conf(tmp_path))
    assert mesh is not None and "customers.profile" not in mesh.feature_sets
    assert "payments.tx_events" in mesh.feature_sets  # cross-reference problems are checks
    assert [p.field for p in problems] == ["acuracy"]
    report = validate_conf(tmp_path / "conf")
    # the training set, global set and risk's grant now miss customers.profile: reported,
    # not hidden
    assert {r.check for r in report.failed} == {
        "config.invalid",
        "types.allowed",
        "entity.registered",
        "references.input",
        "references.training",
        "access.grant",
    }
    (grant,) = [r for r in report.failed if r.check == "access.grant"]
    assert "'customers.profile' does not load (see its config.invalid result)" in grant.message


@pytest.mark.parametrize(
    ("text", "problem"),
    [("name: x\n  : [\n", "not valid YAML"), ("", "the file holds no definition")],
)
def test_a_mesh_yaml_that_does_not_parse_is_one_problem(tmp_path, capsys, text, problem) -> None:
    # Its standards are unknown: the definitions are not checked against the defaults
    # (no entity, no domain registered), which would add one error per set.
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "mesh.yaml").write_text(text)
    assert main(["--conf", str(conf), "validate", "--json"]) == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    found = [(r["check"], Path(r["file"]).name) for r in records]
    assert found == [("config.invalid", "mesh.yaml")]
    assert problem in records[0]["message"]
    assert captured.err.startswith("validate: 1 check(s) failed in ")


def test_missing_conf_is_a_config_error(tmp_path, capsys) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_conf(tmp_path)
    assert caught.value.problems[0].field == "-"
    assert main(["--conf", str(tmp_path), "validate"]) == 1
    assert "the standards file is missing" in capsys.readouterr().err
    # With --json the problem is a JSON line on stdout, as every other one is.
    assert main(["--conf", str(tmp_path), "validate", "--json"]) == 1
    captured = capsys.readouterr()
    (record,) = [json.loads(line) for line in captured.out.splitlines()]
    assert record["check"] == "config.invalid" and record["file"].endswith("mesh.yaml")
    assert "the standards file is missing" in record["message"]
    assert captured.err.startswith("validate: 1 check(s) failed in ")


def test_validate_never_imports_spark() -> None:
    code = (
        "import sys; from mesh.cli import main; rc = main(['--conf', 'conf', 'validate']); "
        "import mesh.governance; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j')); "
        "print(rc, ','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "0"
