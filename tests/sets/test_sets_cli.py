"""The `mesh training|inference|global` sub-commands and the spark-submit job wrappers."""

from __future__ import annotations

import importlib.util
import json
import shutil
from datetime import date
from pathlib import Path

import pytest
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


def test_training_rebuild_of_an_edited_manifest_names_its_file(wh, capsys, tmp_path) -> None:
    assert main(["--conf", str(CONF), "training", "build", "risk.train"]) == 0
    manifest = json.loads((wh.root / "training/risk/train/_manifest.json").read_text())
    manifest["inputs"][0]["spine_keys"] = ["client_id"]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["--conf", str(CONF), "training", "rebuild", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"Manifest {path} of risk.train: inputs[0].spine_keys" in err
    assert "['client_id'], but the training set's definition" in err


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
    assert "--as-of: 'yesterday' is not an ISO date or time" in capsys.readouterr().err
    # An empty value (a scheduler's unset variable) is an error too, not "now".
    argv = ["inference", "payments.spend.amount", "--key", "customer_id=1", "--as-of", ""]
    assert main(["--conf", str(CONF), *argv]) == 1
    assert "--as-of: '' is not an ISO date or time" in capsys.readouterr().err
    code = main(["--conf", str(CONF), "inference", "payments.spend.amount", "--key", "oops"])
    assert code == 1
    assert "--key 'oops': expected COLUMN=V1,V2" in capsys.readouterr().err


@pytest.fixture
def no_spark(monkeypatch) -> None:
    """Starting Spark fails the test: what it checks must be refused before that."""
    import mesh.session

    def refuse(*args, **kwargs):
        raise AssertionError("Spark was started")

    monkeypatch.setattr(mesh.session, "get_spark", refuse)


@pytest.fixture
def empty_warehouse(monkeypatch, tmp_path) -> Path:
    """An existing, empty warehouse: what these commands refuse before Spark starts must not
    depend on a warehouse the working directory happens to hold."""
    root = tmp_path / "warehouse"
    root.mkdir()
    monkeypatch.setenv("MESH_WAREHOUSE", str(root))
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["training", "build", "risk.train"],
        ["training", "rebuild", "manifest.json"],
        ["inference", "payments.spend.amount", "--key", "customer_id=1"],
        ["global", "build"],
    ],
)
def test_no_identity_is_refused_before_spark_starts(
    monkeypatch, capsys, no_spark, empty_warehouse, command
) -> None:
    monkeypatch.delenv("MESH_IDENTITY", raising=False)
    assert main(["--conf", str(CONF), *command]) == 1
    assert "no caller identity: MESH_IDENTITY is not set" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["training", "build", "risk.nosuch"], "Training set 'risk.nosuch' is not defined"),
        (["training", "rebuild", "nosuch/_manifest.json"], "no manifest file there"),
        (
            ["inference", "--training", "risk.nosuch", "--key", "customer_id=1"],
            "Training set 'risk.nosuch' is not defined",
        ),
        (
            ["inference", "payments.nosuch.x", "--key", "customer_id=1"],
            "feature set 'payments.nosuch' is not defined",
        ),
        (
            ["inference", "payments", "--key", "customer_id=1"],
            "'payments' is not a feature reference",
        ),
        (["global", "build", "risk.nosuch"], "Global feature set 'risk.nosuch' is not defined"),
        (["publish", "risk.nosuch"], "feature set 'risk.nosuch' is not defined"),
        (["compute", "nosuch"], "target 'nosuch' is neither a feature set nor a domain"),
        (["refresh", "nosuch"], "target 'nosuch' is neither a feature set nor a domain"),
    ],
)
def test_unknown_names_and_manifests_are_refused_before_spark_starts(
    monkeypatch, capsys, no_spark, empty_warehouse, command, message
) -> None:
    monkeypatch.setenv("MESH_IDENTITY", "alice@risk")
    assert main(["--conf", str(CONF), *command]) == 1
    assert message in capsys.readouterr().err


def test_unknown_set_error_lists_only_sets_the_caller_may_see(
    monkeypatch, capsys, no_spark, empty_warehouse
) -> None:
    # support.tickets is internal to support and risk: marketing is not told it exists.
    command = ["--conf", str(CONF), "inference", "payments.nosuch.x", "--key", "customer_id=1"]
    monkeypatch.setenv("MESH_IDENTITY", "bob@marketing")
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "payments.spend" in err and "support.tickets" not in err
    monkeypatch.setenv("MESH_IDENTITY", "alice@risk")
    assert main(command) == 1
    assert "support.tickets" in capsys.readouterr().err


def test_check_references_leaves_features_and_pins_to_the_build() -> None:
    from mesh.definitions import load_mesh
    from mesh.sets.errors import UnknownReferenceError
    from mesh.sets.references import check_references

    mesh = load_mesh(str(CONF))
    # A pinned version may have features the current definition lacks: not refused here.
    check_references(
        mesh, ["payments.spend.amount", "payments.spend@9.9.9.gone", "payments.spend.*"]
    )
    with pytest.raises(UnknownReferenceError, match=r"'payments\.nosuch' is not defined"):
        check_references(mesh, ["payments.spend.amount", "payments.nosuch.amount"])


def test_inference_key_values_are_typed(wh, capsys) -> None:
    from mesh.storage import open_table

    output = wh.root / "inference_out"
    code = main(
        [
            "--conf",
            str(CONF),
            "inference",
            "payments.spend.amount",
            "--key",
            "customer_id=1,2",
            "--key",
            "cap:double=1.5,2",
            "--key",
            "day:date=2024-01-01,2024-01-02",
            "--key",
            "n=3,4",
            "--key",
            'note="007",x',
            "--key",
            "flag=true,null",
            "--as-of",
            "2024-01-06T00:00",
            "--output",
            str(output),
        ]
    )
    assert code == 0, capsys.readouterr().err
    got = open_table(wh.spark, str(output)).read()
    assert [(f.name, f.dataType.simpleString()) for f in got.schema.fields] == [
        ("customer_id", "bigint"),
        ("cap", "double"),
        ("day", "date"),
        ("n", "bigint"),
        ("note", "string"),
        ("flag", "boolean"),
        ("as_of_ts", "timestamp"),
        ("amount", "double"),
    ]
    rows = sorted(tuple(r) for r in got.drop("as_of_ts").collect())
    assert rows == [
        (1, 1.5, date(2024, 1, 1), 3, "007", True, 30.0),
        (2, 2.0, date(2024, 1, 2), 4, "x", None, 20.0),
    ]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("cap:double=1.5,abc", "column cap (double): 'abc' is not a double; give a double"),
        ("day:date=2024-13-01,2024-01-02", "column day (date): '2024-13-01' is not a date"),
        ("customer_id=1,x", "customer_id (bigint, the key type of entity customer): 'x' is"),
        ("cap:flaot=1,2", "column cap: 'flaot' is not a Spark SQL type"),
        ("customer_id:string=1,2", "customer_id is a key of entity customer"),
        ("cap:=1,2", "expected COLUMN=V1,V2"),
    ],
)
def test_inference_key_values_that_do_not_parse(wh, capsys, key, message) -> None:
    args = ["--conf", str(CONF), "inference", "payments.spend.amount"]
    args += ["--key", "customer_id=1,2"] if not key.startswith("customer_id") else []
    code = main([*args, "--key", key, "--as-of", "2024-01-06T00:00"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err.splitlines()[0]


PAIRS = """kind: training_set
name: pairs
domain: risk
spine: {path: products/risk/payments, timestamp: label_ts}
strict: true
features:
  - features: [payments.spend.amount]
    keys: {customer_id: payer_id}
    prefix: payer_
"""


def test_inference_takes_a_training_sets_features(wh, capsys, tmp_path) -> None:
    """``--training``: the set's lookups (typed keys under the spine's names) and options."""
    from mesh.storage import open_table

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "training" / "pairs.yaml").write_text(PAIRS)
    output = wh.root / "inference_pairs"
    args = ["--conf", str(conf), "inference", "--key", "payer_id=1,2", "--as-of"]
    # strict: the value must be known strictly before the time; Jan 3 00:00 is customer 1's.
    code = main([*args, "2024-01-03T00:00", "--training", "risk.pairs", "--output", str(output)])
    assert code == 0, capsys.readouterr().err
    got = open_table(wh.spark, str(output)).read()
    assert [(f.name, f.dataType.simpleString()) for f in got.schema.fields] == [
        ("payer_id", "bigint"),
        ("as_of_ts", "timestamp"),
        ("payer_amount", "double"),
    ]
    assert sorted((r.payer_id, r.payer_amount) for r in got.collect()) == [(1, 10.0), (2, 20.0)]

    typed = ["--conf", str(conf), "inference", "--training", "risk.pairs", "--key"]
    assert main([*typed, "payer_id:string=1"]) == 1  # the entity's key, under its spine name
    assert "payer_id is a key of entity customer" in capsys.readouterr().err
    assert main([*args, "2024-01-06T00:00", "--training", "risk.nope"]) == 1
    assert "Training set 'risk.nope' is not defined (defined: risk.pairs" in (
        capsys.readouterr().err
    )
    for extra in (["--training", "risk.pairs", "payments.spend.amount"], []):
        assert main([*args, "2024-01-06T00:00", *extra]) == 1
        assert "give feature references or --training NAME (one)" in capsys.readouterr().err


def test_global_build_refuses_an_input_at_a_new_major_before_reading_it(
    wh, capsys, tmp_path, monkeypatch
) -> None:
    from mesh.catalog.run import publish_range
    from mesh.storage import open_table

    first = publish_range(wh.spark, wh.mesh, "risk.combo", identity="etl@risk")
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    spend = conf / "domains/payments/spend.yaml"
    spend.write_text(spend.read_text().replace("name: spend\n", "name: spend\nversion: 2.0.0\n"))
    wh.publish_spend_2()  # as conf/ now defines it

    def read(*args, **kwargs):
        raise AssertionError("an input was read before the build was refused")

    monkeypatch.setattr("mesh.sets.global_features.resolve_inputs", read)
    # Named first, a set that reads spend at no new major is not built either: every set is
    # checked before any is built.
    combo = (conf / "global/combo.yaml").read_text()
    (conf / "global/alone.yaml").write_text(
        combo.replace("name: combo", "name: alone").replace("payments.spend.", "payments.spend@2.")
    )
    assert main(["--conf", str(conf), "global", "build", "risk.alone", "risk.combo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "error: Global feature set risk.combo 1.0.0: input payments.spend read at major 2 "
        "(was 1) since its last publish, 1.0.0."
    )
    assert (
        "Bump its major: set risk.combo's `version:` in conf/ to 2.0.0 (its rows then go to "
        "features/risk/combo/v2), or pin the input to the major its last publish read "
        "(payments.spend@1.<feature>). Nothing was read or written." in err
    )
    assert open_table(wh.spark, first.table_path).latest_version() == first.delta_version
    assert not (wh.root / "features/risk/alone").exists()


def test_global_build_checks_each_set_once(wh, capsys, monkeypatch) -> None:
    """The command checks every set before building any; the build does not read the catalog
    for the same check again (a Python caller's build still checks: see
    test_a_global_build_reading_a_new_major_of_an_input_needs_the_sets_new_major)."""
    from mesh.sets import global_features

    checked: list[str] = []
    check = global_features.check_before_build

    def counted(spark, mesh, spec, identity=None) -> None:
        checked.append(global_features.global_spec(mesh, spec).qualified_name)
        check(spark, mesh, spec, identity)

    monkeypatch.setattr(global_features, "check_before_build", counted)
    assert main(["--conf", str(CONF), "global", "build", "risk.combo"]) == 0
    assert "global feature set risk.combo 1.0.0:" in capsys.readouterr().out
    assert checked == ["risk.combo"]
