"""The platform commands: show-config, generate, demo, the one-block error handler, Ctrl-C,
and catalog lookups at a missing warehouse."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mesh.cli import main
from mesh.cli.interrupt import MESSAGE, SigintHandler
from mesh.errors import MeshError

ROOT = Path(__file__).resolve().parents[1]
MESH = [sys.executable, "-m", "mesh"]  # the command as `python -m mesh` runs it
CONF = str(ROOT / "conf")


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
    for name, fs in [*mesh.feature_sets.items(), *mesh.global_sets.items()]:
        line = next(line for line in out.splitlines() if line.strip().startswith(f"{name} "))
        assert f"data {mesh.data_hash(fs)}" in line and f"meta {fs.metadata_hash()}" in line
    for name in [*mesh.products, *mesh.training_sets]:
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


@pytest.mark.parametrize("before", [None, "/data/default-warehouse"])
def test_warehouse_option_lasts_one_command(
    before: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # main() also runs in long-lived processes (notebooks, a driver running several jobs).
    if before is None:
        monkeypatch.delenv("MESH_WAREHOUSE", raising=False)
    else:
        monkeypatch.setenv("MESH_WAREHOUSE", before)
    assert main(["--conf", CONF, "--warehouse", "/tmp/one-command", "show-config"]) == 0
    assert "warehouse: /tmp/one-command," in capsys.readouterr().out
    assert os.environ.get("MESH_WAREHOUSE") == before
    assert main(["--conf", CONF, "show-config"]) == 0
    assert "warehouse: /tmp/one-command," not in capsys.readouterr().out


def test_missing_conf_folder_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show-config", "--conf", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "mesh.yaml" in err and "Traceback" not in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_python_dash_m_mesh_is_the_mesh_command(tmp_path: Path) -> None:
    """``python -m mesh`` (no script on PATH) runs the same command: its usage names
    ``mesh``, and its exit code is the command's (2 for usage, 1 for an error)."""
    usage = subprocess.run(
        [*MESH], cwd=tmp_path, env=_mesh_env(), capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2 and usage.stdout.startswith("usage: mesh "), usage.stderr
    missing = subprocess.run(
        [*MESH, "validate", "--conf", str(tmp_path / "none")],
        cwd=tmp_path,
        env=_mesh_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and missing.stderr.startswith("error: "), missing.stderr


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


# --- Ctrl-C: Spark's jobs cancelled, no Py4J traceback, one line, exit 130 ----------------


class _CutShortConnection:
    """A Py4J connection whose call is cut short by Ctrl-C: it runs the SIGINT handler the
    process has, as the signal would in the main thread while it waits for the JVM."""

    socket = None

    def send_command(self, command: str) -> str:
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler)
        handler(signal.SIGINT, None)
        return "never"


def _interrupted_py4j_call() -> None:
    """A Py4J call interrupted in the wait for its answer, through Py4J's own code."""
    from py4j.java_gateway import GatewayClient

    client = GatewayClient.__new__(GatewayClient)
    client._get_connection = _CutShortConnection  # type: ignore[method-assign]
    client.send_command("c\nt\nm\ne\n")


@pytest.fixture()
def cancels(spark: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the cancellations of the session's SparkContext."""
    calls: list[str] = []
    monkeypatch.setattr(spark.sparkContext, "cancelAllJobs", lambda: calls.append("all"))
    return calls


def _run_as_show_config(monkeypatch: pytest.MonkeyPatch, work: Any) -> int:
    import mesh.cli.platform as platform

    def command(args: Any) -> int:
        work()
        return 0

    monkeypatch.setattr(platform, "_show_config", command)
    return main(["show-config", "--conf", CONF])


def _assert_one_line(captured: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert captured.err.splitlines() == [MESSAGE], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == [], caplog.text


def _py4j_network_error() -> BaseException:
    from py4j.protocol import Py4JNetworkError

    return Py4JNetworkError("Error while sending or receiving")


def _py4j_error() -> BaseException:
    from py4j.protocol import Py4JError

    return Py4JError("An error occurred while calling o27.sc")


def _pyspark_error() -> BaseException:
    from pyspark.errors import PySparkRuntimeError

    return PySparkRuntimeError(
        errorClass="CANNOT_BE_EMPTY", messageParameters={"item": "the interrupted call"}
    )


@pytest.mark.parametrize("error", [None, _py4j_network_error, _py4j_error, _pyspark_error])
def test_an_interrupt_is_one_line_and_exit_130(
    error: Any,
    cancels: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Py4J call interrupted (``error`` None), or after it the next Py4J call (a
    ``finally`` that unpersists) failing instead: the Spark error is the interrupt's."""
    monkeypatch.delenv("MESH_DEBUG", raising=False)
    caplog.set_level(logging.INFO)

    def work() -> None:
        if error is None:
            _interrupted_py4j_call()
            return
        with contextlib.suppress(KeyboardInterrupt):  # swallowed on the way, as code may
            _interrupted_py4j_call()
        logging.getLogger("py4j.clientserver").info("Error while receiving.", exc_info=True)
        raise error()

    assert _run_as_show_config(monkeypatch, work) == 130
    _assert_one_line(capsys.readouterr(), caplog)
    assert cancels == ["all"]
    assert signal.getsignal(signal.SIGINT) is not None
    assert not isinstance(signal.getsignal(signal.SIGINT), SigintHandler)  # put back


def test_silencing_creates_no_logger_pyspark_cannot_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """A query-context logger PySpark has not made yet is made as its class, and restored."""
    from pyspark.logger import PySparkLogger

    from mesh.cli.interrupt import interrupt_guard, mark_interrupted

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        monkeypatch.delitem(logging.Logger.manager.loggerDict, name, raising=False)
    with interrupt_guard():
        mark_interrupted()
        assert logging.getLogger("SQLQueryContextLogger").disabled
    logger = logging.getLogger("SQLQueryContextLogger")
    assert isinstance(logger, PySparkLogger) and not logger.disabled
    with contextlib.suppress(ZeroDivisionError):
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logger.exception("as PySpark logs an analysis error", errorClass="X")  # no TypeError
            raise


def test_a_spark_error_without_an_interrupt_is_not_one(
    cancels: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from py4j.protocol import Py4JError

    def work() -> None:
        raise Py4JError("a real failure")

    with pytest.raises(Py4JError, match="a real failure"):
        _run_as_show_config(monkeypatch, work)
    assert cancels == []


@pytest.mark.slow
def test_ctrl_c_during_a_run_exits_130_without_a_traceback(tmp_path: Path) -> None:
    """A real SIGINT to ``mesh demo`` while it generates (a fresh process: ~12 s)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MESH_WAREHOUSE": str(tmp_path / "wh"),
        "MESH_SPARK_MASTER": "local[1]",
        "MESH_DRIVER_MEMORY": "1g",
    }
    env.pop("MESH_DEBUG", None)
    command = MESH
    args = ["demo", "--conf", CONF, "--customers", "12", "--days", "2", "--sample-rows", "0"]
    with subprocess.Popen(
        command + args,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("[1/6] generate"):  # Spark is up and writing tables
                time.sleep(1.0)
                process.send_signal(signal.SIGINT)
                break
        _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "Py4J" not in err, err[-3000:]
    assert err.splitlines()[-1] == MESSAGE


# --- catalog lookups need a warehouse ------------------------------------------------------

LOOKUPS = [
    ["search"],
    ["show", "customers.profile"],
    ["versions", "customers.profile"],
    ["lineage", "customers.profile"],
    ["export", "all", "--out", "OUT"],
    ["duplicates"],
    ["audit"],
]


@pytest.mark.parametrize("lookup", LOOKUPS, ids=lambda a: a[0])
def test_a_catalog_lookup_at_a_missing_warehouse_is_one_error(
    lookup: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("MESH_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "export")
    argv = ["catalog", *[out if a == "OUT" else a for a in lookup]]
    argv += ["--conf", CONF, "--warehouse", "nowhere", "--identity", "bob@support"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert f"no warehouse at nowhere ({tmp_path / 'nowhere'})" in err
    assert "pass --warehouse or set MESH_WAREHOUSE" in err
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "export").exists()


def test_a_catalog_lookup_names_the_missing_error_class() -> None:
    from mesh.catalog.tables import require_warehouse
    from mesh.errors import CatalogError

    with pytest.raises(CatalogError) as info:
        require_warehouse("/nonexistent/mesh-warehouse", "pass --warehouse")
    assert info.value.params == {
        "warehouse": "/nonexistent/mesh-warehouse",
        "path": "/nonexistent/mesh-warehouse",
    }
    require_warehouse("s3://bucket/nowhere", "pass --warehouse")  # URIs are not checked


def test_python_lookups_at_a_missing_warehouse_are_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A notebook with a misspelt MESH_WAREHOUSE, or a relative one after os.chdir: "nothing
    # published" would be a wrong answer.
    from mesh.catalog.audit import audit_log
    from mesh.catalog.duplicates import value_duplicates
    from mesh.catalog.lineage import lineage
    from mesh.catalog.search import search, show, versions
    from mesh.definitions import load_mesh
    from mesh.errors import CatalogError

    mesh = load_mesh(CONF)
    monkeypatch.setenv("MESH_WAREHOUSE", str(tmp_path / "typo"))
    who = {"identity": "bob@support"}
    lookups = {
        "search": lambda: search(None, mesh, **who),
        "show": lambda: show(None, mesh, "payments.customer_spend", **who),
        "versions": lambda: versions(None, mesh, "payments.customer_spend", **who),
        "lineage": lambda: lineage(None, mesh, "payments.customer_spend", **who),
        "audit": lambda: audit_log(None, mesh, **who),
        "duplicates": lambda: value_duplicates(None, mesh, **who),
    }
    for name, call in lookups.items():
        with pytest.raises(CatalogError, match=r"no warehouse at .*set MESH_WAREHOUSE") as info:
            call()
        assert info.value.params["path"] == str(tmp_path / "typo"), name
    assert not (tmp_path / "typo").exists()


def test_an_existing_empty_warehouse_is_an_empty_catalog(
    spark: Any, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(warehouse).mkdir()
    argv = [
        "catalog",
        "search",
        "--conf",
        CONF,
        "--warehouse",
        warehouse,
        "--identity",
        "bob@support",
    ]
    assert main(argv) == 0
    assert "0 feature set(s)" in capsys.readouterr().out


def test_publish_is_not_a_lookup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mesh.cli import catalog

    args = argparse.Namespace(conf=CONF)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESH_WAREHOUSE", str(tmp_path / "fresh"))
        patch.setattr("mesh.session.get_spark", lambda name: "spark")
        assert catalog._context(args, lookup=False)[0] == "spark"
        with pytest.raises(MeshError, match="no warehouse at"):
            catalog._context(args)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["audit", "--limit", "-1"], "expected at least 0, found -1"),
        (["lineage", "risk.churn", "--depth", "0"], "expected at least 1, found 0"),
        (["duplicates", "--threshold", "5"], "above 0 and at most 1, found 5"),
        (["duplicates", "--threshold", "x"], "expected a number, found 'x'"),
        (["duplicates", "--min-overlap", "1.5"], "expected a whole number, found '1.5'"),
    ],
)
def test_catalog_options_out_of_range_are_usage_errors(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["catalog", *argv, "--conf", CONF])
    assert info.value.code == 2
    assert expected in capsys.readouterr().err


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that fails if the command starts Spark."""

    def refuse(name: str) -> Any:
        raise AssertionError("Spark started")

    monkeypatch.setattr("mesh.session.get_spark", refuse)


def test_metadata_only_publish_refuses_a_range_before_spark_starts(
    capsys: pytest.CaptureFixture[str], no_spark: None
) -> None:
    argv = ["publish", "customers.profile", "--metadata-only", "--end", "2024-02-01"]
    assert main([*argv, "--conf", CONF]) == 1
    err = capsys.readouterr().err
    assert "--metadata-only computes nothing, so it takes no --start/--end" in err


def test_publish_refuses_an_empty_range_before_spark_starts(
    capsys: pytest.CaptureFixture[str], no_spark: None
) -> None:
    for start, end in (("2024-03-01", "2024-01-01"), ("2024-01-01", "2024-01-01")):
        argv = ["publish", "payments.tx_amounts", "--start", start, "--end", end]
        assert main([*argv, "--conf", CONF]) == 1
        err = capsys.readouterr().err
        assert f"--start {start}T00:00:00+00:00 is not before --end {end}" in err


def test_compute_refuses_an_empty_range_before_spark_starts(
    capsys: pytest.CaptureFixture[str], no_spark: None
) -> None:
    argv = ["compute", "payments", "--start", "2024-03-01", "--end", "2024-01-01"]
    assert main([*argv, "--conf", CONF]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --start 2024-03-01T00:00:00+00:00 is not before --end 2024-01")


def test_a_publish_by_another_domain_is_refused_before_spark_starts(
    capsys: pytest.CaptureFixture[str], no_spark: None
) -> None:
    for extra in (["--start", "2024-01-01", "--end", "2024-02-01"], ["--metadata-only"]):
        argv = ["publish", "customers.profile", *extra, "--identity", "eve@support"]
        assert main([*argv, "--conf", CONF]) == 1
        err = capsys.readouterr().err
        assert "access denied: eve@support may not publish customers.profile" in err


def test_versions_and_lineage_of_a_set_without_any_say_so(
    spark: Any, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(warehouse).mkdir()
    common = ["--conf", CONF, "--warehouse", warehouse, "--identity", "bob@support"]
    assert main(["catalog", "versions", "support.ticket_stats", *common]) == 0
    assert capsys.readouterr().out == "no published version of support.ticket_stats\n"
    argv = ["catalog", "lineage", "support.ticket_stats", "--direction", "upstream", *common]
    assert main(argv) == 0
    assert capsys.readouterr().out == "no upstream lineage edges of support.ticket_stats\n"
    # A name neither published nor defined is a typo: an error, as for `catalog show`.
    assert main(["catalog", "versions", "support.nosuch", *common]) == 1
    assert "'support.nosuch' is neither in the catalog nor defined in conf/" in (
        capsys.readouterr().err
    )
    assert main(["catalog", "lineage", "support.nosuch", *common]) == 1
    assert "lineage of support.nosuch: no lineage record names it and conf/ does not define it" in (
        capsys.readouterr().err
    )
    # `catalog show` of a typo suggests the name, never a publish of the typo.
    assert main(["catalog", "show", "support.ticket_stat", *common]) == 1
    err = capsys.readouterr().err
    assert "'support.ticket_stat' is neither in the catalog nor defined in conf/" in err
    assert "did you mean 'support.ticket_stats'?" in err
    assert "mesh publish" not in err
    # Of a set conf/ defines but nobody published, it says how to publish it, with a command
    # that runs: a domain set's publish needs --start and --end.
    assert main(["catalog", "show", "support.ticket_stats", *common]) == 1
    err = capsys.readouterr().err
    assert "'support.ticket_stats' is not in the catalog: no version of it was published" in err
    assert (
        "publish it over a range with `mesh publish support.ticket_stats --start START --end "
        "END` (UTC dates or ISO times; the publish computes that range, then checks it)" in err
    )
    # A global set's publish computes its whole history from its inputs.
    assert main(["catalog", "show", "risk.customer_risk", *common]) == 1
    assert "with `mesh publish risk.customer_risk`, or list" in capsys.readouterr().err


def test_a_training_sets_name_is_not_taken_for_an_undefined_feature_set(
    warehouse: str, capsys: pytest.CaptureFixture[str], no_spark: None
) -> None:
    Path(warehouse).mkdir()
    common = ["--conf", CONF, "--identity", "alice@risk"]
    for action in ("show", "versions"):
        assert main(["catalog", action, "risk.churn", *common]) == 1
        err = capsys.readouterr().err
        assert "neither in the catalog nor defined in conf/" not in err
        assert (
            "'risk.churn' is a training set, not a feature set: the catalog lists feature sets; "
            "see what it reads with `mesh catalog lineage risk.churn --direction upstream`, or "
            "build it with `mesh training build risk.churn`" in err
        )
    assert main(["publish", "risk.churn", *common]) == 1
    assert (
        "'risk.churn' is a training set, not a feature set: training sets are built, not "
        "published; build it with `mesh training build risk.churn`" in capsys.readouterr().err
    )


def test_a_metadata_only_publish_of_a_set_never_published_names_the_publish_to_run(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(warehouse).mkdir()
    argv = ["publish", "support.ticket_stats", "--metadata-only", "--identity", "etl@support"]
    assert main([*argv, "--conf", CONF]) == 1
    assert (
        "support.ticket_stats was never published; a metadata-only publish needs a previous "
        "version: publish it over a range with `mesh publish support.ticket_stats --start START "
        "--end END`" in capsys.readouterr().err
    )
    argv = ["publish", "risk.customer_risk", "--metadata-only", "--identity", "etl@risk"]
    assert main([*argv, "--conf", CONF]) == 1
    assert "with `mesh publish risk.customer_risk`." in capsys.readouterr().err


def test_show_of_a_computed_set_never_published_names_the_range_to_publish(
    spark: Any, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mesh.storage import CommitInfo, open_table

    table = open_table(spark, f"{warehouse}/features/support/ticket_stats/v1")
    rows = spark.createDataFrame([(1,)], "customer_id bigint")
    for start, end in (("2024-01-03", "2024-02-01"), ("2024-01-01", "2024-01-10")):
        computed = CommitInfo(
            run_id=start,
            operation="compute",
            range_start=datetime.fromisoformat(f"{start}T00:00+00:00"),
            range_end=datetime.fromisoformat(f"{end}T00:00+00:00"),
            extra={"feature_set": "support.ticket_stats", "semantic_version": "1.0.0"},
        )
        if table.exists():
            table.append(rows, computed)
        else:
            table.create(rows, computed)
    argv = ["catalog", "show", "support.ticket_stats", "--conf", CONF, "--identity", "bob@support"]
    assert main(argv) == 1
    assert (
        "publish the range its computations covered with `mesh publish support.ticket_stats "
        "--start 2024-01-01 --end 2024-02-01`, or list" in capsys.readouterr().err
    )


def test_inference_output_into_a_feature_table_is_refused(
    spark: Any, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mesh.storage import CommitInfo, open_table

    path = f"{warehouse}/features/payments/customer_spend/v1"
    table = open_table(spark, path)
    rows = spark.createDataFrame([(1, 10.0)], "customer_id bigint, amount_sum_30d double")
    table.create(rows, CommitInfo(run_id="compute-1", operation="compute"))
    argv = ["inference", "payments.customer_spend.amount_sum_30d", "--key", "customer_id=1"]
    argv += ["--identity", "alice@risk", "--output", path]
    assert main(["--conf", CONF, "--warehouse", warehouse, *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: Output {path} of inference set: it is in the feature tables'")
    assert "Choose another --output: a new or empty folder" in err
    assert table.latest_version() == 0
    assert [tuple(r) for r in table.read().collect()] == [(1, 10.0)]


def test_a_domain_publish_without_its_range_is_refused_before_spark_starts(
    capsys: pytest.CaptureFixture[str], no_spark: None
) -> None:
    for extra in ([], ["--start", "2024-01-01"], ["--end", "2024-02-01"]):
        argv = ["publish", "payments.tx_amounts", *extra, "--identity", "ann@payments"]
        assert main([*argv, "--conf", CONF]) == 1
        err = capsys.readouterr().err
        assert "--start and --end are required for a domain feature set" in err


@pytest.mark.parametrize("given", [["--start", "2024-01-01"], ["--end", "2024-02-01"]])
def test_a_global_publish_with_one_side_of_its_range_is_refused_before_spark_starts(
    given: list[str], capsys: pytest.CaptureFixture[str], no_spark: None
) -> None:
    # Both (the range [start, end) to replace) or neither (the whole history), as a domain
    # set's publish takes both: a range open on one side has no end to replace up to.
    argv = ["publish", "risk.customer_risk", *given, "--identity", "ann@risk"]
    assert main([*argv, "--conf", CONF]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: publish risk.customer_risk: {given[0]} without "
        f"{'--end' if given[0] == '--start' else '--start'}; a global feature set is published "
        "over [--start, --end) (give both) or over its whole history (give neither)"
    )


def test_unknown_demo_steps_are_refused_before_spark_starts(
    capsys: pytest.CaptureFixture[str], no_spark: None, tmp_path: Path
) -> None:
    argv = ["--warehouse", str(tmp_path), "demo", "--steps", "generate,bogus", "--conf", CONF]
    assert main(argv) == 1
    assert "Demo steps bogus do not exist" in capsys.readouterr().err


def test_demo_into_a_warehouse_that_holds_anything_is_refused_before_spark_starts(
    capsys: pytest.CaptureFixture[str], no_spark: None, tmp_path: Path
) -> None:
    # A second demo after `generate --append-day` and `refresh` regenerated the products and
    # stopped halfway through the publishes: the demo starts a warehouse from scratch.
    warehouse = tmp_path / "wh"
    (warehouse / "_catalog").mkdir(parents=True)
    (warehouse / "products").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["--warehouse", str(warehouse), "demo", "--conf", CONF]) == 1
    err = capsys.readouterr().err
    assert f"{warehouse} already holds _catalog, products" in err
    assert f"Pass a fresh --warehouse (or MESH_WAREHOUSE), or remove {warehouse} first" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_demo_steps_without_generate_continue_in_the_warehouse(tmp_path: Path) -> None:
    from mesh.datagen.demo import check_fresh_warehouse

    (tmp_path / "products").mkdir()
    check_fresh_warehouse(str(tmp_path), {"compute", "publish", "summary"})
    check_fresh_warehouse(str(tmp_path / "new"), {"generate"})
    (tmp_path / "empty").mkdir()
    check_fresh_warehouse(str(tmp_path / "empty"), {"generate"})


def test_compute_and_refresh_that_build_global_sets_need_a_caller_before_spark_starts(
    capsys: pytest.CaptureFixture[str],
    no_spark: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("MESH_IDENTITY", raising=False)
    for command in ("compute", "refresh"):
        argv = [command, "--conf", CONF, "--warehouse", str(tmp_path)]
        assert main(argv) == 1
        assert "no caller identity: MESH_IDENTITY is not set" in capsys.readouterr().err
        with pytest.raises(AssertionError, match="Spark started"):  # the caller was accepted
            main([*argv, "--identity", "ann@risk"])


def test_a_negative_inference_limit_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:  # it printed an empty table
        main(["inference", "--training", "risk.churn", "--limit", "-1", "--conf", CONF])
    assert info.value.code == 2
    assert "expected at least 0, found -1" in capsys.readouterr().err


# --- what the command prints: its one message, its output, nothing of Spark's ---------------

JVM_NOTICE = "WARNING: Using incubator modules"  # the JVM's own line, not a log's


def _mesh_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MESH_SPARK_MASTER": "local[1]", **extra}
    env.setdefault("MESH_DRIVER_MEMORY", "1g")
    for name in ("MESH_DEBUG", "MESH_SPARK_LOG_LEVEL", "MESH_WAREHOUSE"):
        env.pop(name, None)
    return env


def test_a_computation_failing_on_the_data_is_one_message_without_sparks_logs(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Spark logs a failed task at ERROR (its stack, the aborted job) and PySpark the query's
    context; a session ``mesh`` starts itself logs none of it, nor its start-up lines."""
    import shutil

    warehouse = str(tmp_path / "wh")
    generate = ["generate", "--conf", CONF, "--warehouse", warehouse, "--customers", "6"]
    assert main([*generate, "--days", "2", "--only", "payments.transactions"]) == 0
    capsys.readouterr()
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    spend = conf / "domains" / "payments" / "customer_spend.yaml"
    text = spend.read_text()
    assert 'filter: "is_refund"' in text
    spend.write_text(text.replace('"is_refund"', '"cast(currency as int) > 0"'))  # 'EUR'
    argv = ["compute", "payments.customer_spend", "--conf", str(conf), "--warehouse", warehouse]
    run = subprocess.run(
        MESH + argv, cwd=tmp_path, env=_mesh_env(), capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 1, run.stderr[-3000:]
    lines = [line for line in run.stderr.splitlines() if not line.startswith(JVM_NOTICE)]
    assert len(lines) == 2, run.stderr[-3000:]
    assert lines[0].startswith("error: Feature set `payments.customer_spend`: its computation ")
    assert "CAST_INVALID_INPUT" in lines[0] and "nothing was written" in lines[0]
    assert lines[1] == "(set MESH_DEBUG=1 for the traceback)"


def test_a_closed_output_ends_the_command_quietly(tmp_path: Path) -> None:
    """``mesh ... | head -1``: the reader is gone before the command writes."""
    read, write = os.pipe()
    os.close(read)  # writing now fails with EPIPE (Python ignores SIGPIPE)
    try:
        run = subprocess.run(
            [*MESH, "show-config", "--conf", CONF],
            stdout=write,
            stderr=subprocess.PIPE,
            env=_mesh_env(),
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert run.returncode == 141
    assert run.stderr == ""


def test_a_closed_output_in_a_process_leaves_its_stdout_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def command(args: Any) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    real = argparse.ArgumentParser.parse_args
    monkeypatch.setattr(
        argparse.ArgumentParser,
        "parse_args",
        lambda self, argv=None: argparse.Namespace(**{**vars(real(self, argv)), "func": command}),
    )
    assert main(["show-config", "--conf", CONF]) == 141
    print("still here")
    assert capsys.readouterr().out == "still here\n"


READS = [
    ["compute", "payments.customer_spend"],
    ["refresh", "payments.customer_spend"],
    ["inference", "payments.customer_spend.tx_count_1d", "--key", "customer_id=1"],
    ["training", "build", "risk.churn"],
    ["training", "rebuild", "MANIFEST"],
    ["global", "build"],
]


@pytest.mark.parametrize("command", READS, ids=lambda a: "-".join(a[:2]))
def test_a_command_reading_a_missing_warehouse_says_so_before_spark_starts(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_spark: None,
) -> None:
    monkeypatch.delenv("MESH_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    argv = [str(tmp_path / "_manifest.json") if a == "MANIFEST" else a for a in command]
    argv += ["--conf", CONF, "--warehouse", "nowh", "--identity", "ann@risk"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert f"error: no warehouse at nowh ({tmp_path / 'nowh'}); pass --warehouse" in err
    assert "or create it: `mesh generate` writes the example data products into it" in err
    assert list(tmp_path.iterdir()) == []
