"""spark-submit.sh and the jobs/ it submits: their sessions, its help and the conf it ships."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "spark-submit.sh"
JOBS = ROOT / "jobs"
SHUFFLE = "spark.sql.shuffle.partitions"
LOCAL_PARTITIONS = str(max(4, (os.cpu_count() or 2) * 2))


def _submit(args: list[str], *, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    unset = ("MESH_SPARK_LOG_LEVEL", "MESH_CONF_DIR", "SPARK_SUBMIT_OPTS", "SPARK_CONF_DIR")
    unset += ("SPARK_HOME", "MASTER")
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    environment.update(
        SPARK_SUBMIT=str(Path(sys.executable).parent / "spark-submit"),
        PYTHON=sys.executable,
        PYSPARK_PYTHON=sys.executable,
    )
    environment.update(env)
    return subprocess.run(
        [str(SCRIPT), *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


SESSION_REPORT = """
from mesh.session import get_spark
spark = get_spark()
logger = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager.getRootLogger()
print("SESSION", spark.conf.get("spark.sql.shuffle.partitions"), logger.getLevel().toString())
"""


@pytest.mark.parametrize(
    ("options", "level", "expected"),
    [
        ([], None, (LOCAL_PARTITIONS, "ERROR")),
        (["--conf", f"{SHUFFLE}=7", "--conf", "spark.ui.enabled=false"], "INFO", ("7", "INFO")),
    ],
    ids=["defaults", "set by the user"],
)
def test_a_job_submitted_to_a_local_master_runs_as_a_local_session(
    tmp_path: Path, options: list[str], level: str | None, expected: tuple[str, str]
) -> None:
    # spark-submit's session had Spark's 200 shuffle partitions and INFO logging: hundreds of
    # tiny tasks a stage and megabytes of log lines for the demo. What its command line sets
    # is kept. Spark's start-up (some 50 INFO lines before the session set the level) logs at
    # the session's level too.
    job = tmp_path / "job.py"
    job.write_text(SESSION_REPORT)
    env = {"MESH_SPARK_LOG_LEVEL": level} if level else {}
    done = _submit([str(job), "--master", "local[2]", *options], **env)
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("SESSION ")]
    assert tuple(line.split()[1:]) == expected
    started = " INFO SparkContext: Running Spark version" in done.stderr
    assert started == (level == "INFO"), done.stderr[-2000:]
    if level is None:
        assert " INFO " not in done.stderr, done.stderr[-2000:]


# Runs every file of jobs/ as spark-submit would, with the mesh command it calls replaced by
# a report of the session that command gets; the session is stopped between jobs.
EVERY_JOB = """
import os, runpy, sys
import mesh.cli
from pyspark.sql import SparkSession
from mesh.session import get_spark

def report(argv):
    spark = get_spark("named-by-the-job")
    log4j = spark.sparkContext._jvm.org.apache.logging.log4j
    level = log4j.LogManager.getRootLogger().getLevel().toString()
    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    name = spark.sparkContext.appName
    print("SESSION", os.path.basename(sys.argv[0]), partitions, level, name, flush=True)
    return 0

mesh.cli.main = report
for job in sys.argv[1:]:
    sys.argv = [job]
    try:
        runpy.run_path(job, run_name="__main__")
    except SystemExit:
        pass
    spark = SparkSession.getActiveSession()
    spark.sparkContext.setLogLevel("INFO")  # the next job starts from spark-submit's level
    spark.stop()
"""


def test_every_job_submitted_to_a_local_master_runs_as_a_local_session(tmp_path: Path) -> None:
    # jobs/run_mesh.py and jobs/generate_data.py started spark-submit's session themselves
    # before the mesh command did, which then took it as it was: 200 shuffle partitions and
    # INFO logging (53,000 log lines and minutes more for the demo on local[2]).
    jobs = sorted(ROOT.glob("jobs/*.py"))
    probe = tmp_path / "every_job.py"
    probe.write_text(EVERY_JOB)
    done = _submit([str(probe), "--master", "local[2]", "--", *map(str, jobs)])
    assert done.returncode == 0, done.stderr[-2000:]
    found = {
        parts[1]: tuple(parts[2:])
        for parts in (x.split() for x in done.stdout.splitlines() if x.startswith("SESSION "))
    }
    assert {job: found[job][:2] for job in found} == {
        job.name: (LOCAL_PARTITIONS, "ERROR") for job in jobs
    }
    # The application keeps the name spark-submit gave it (spark-submit.sh's --name).
    assert {found[job][2] for job in found} == {"mesh-every_job"}


def _listed_jobs(text: str) -> list[str]:
    """The jobs a usage message lists, one a line under "Jobs:"."""
    lines = text.splitlines()
    start = lines.index("Jobs:") + 1
    return [x.strip() for x in lines[start:] if x.startswith("  ")]


def test_help_is_not_an_error() -> None:
    done = _submit(["--help"])
    assert done.returncode == 0, done.stderr
    assert "MESH_CONF_DIR" in done.stdout  # the whole header, environment included
    assert _listed_jobs(done.stdout) == [f"jobs/{job.name}" for job in sorted(JOBS.glob("*.py"))]
    assert done.stderr == ""
    missing = _submit([])
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert f"usage: {SCRIPT} JOB [SPARK-SUBMIT OPTIONS...]" in missing.stderr
    assert "jobs/run_mesh.py" in _listed_jobs(missing.stderr)


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ("run_mesh", "error: job file 'run_mesh' not found in "),
        ("--master", "error: the job comes first, before spark-submit's options (got '--master')"),
    ],
    ids=["not found", "an option first"],
)
@pytest.mark.parametrize("where", ["checkout", "above it", "elsewhere"])
def test_a_job_not_found_lists_the_jobs_as_they_are_typed_from_there(
    tmp_path: Path, job: str, message: str, where: str
) -> None:
    # The error listed bare names (run_mesh.py), which are not found either.
    cwd = {"checkout": ROOT, "above it": ROOT.parent, "elsewhere": tmp_path}[where]
    done = _submit([job, "--master", "local[2]"], cwd=cwd)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(message), done.stderr
    assert f"usage: {SCRIPT} JOB" in done.stderr
    listed = _listed_jobs(done.stderr)
    assert sorted(Path(x).name for x in listed) == sorted(x.name for x in JOBS.glob("*.py"))
    assert all((cwd / x).resolve().parent == JOBS.resolve() for x in listed), listed
    assert all(not Path(x).is_absolute() for x in listed) == (where != "elsewhere"), listed


def _fake_spark_submit(tmp_path: Path) -> Path:
    fake = tmp_path / "spark-submit"
    fake.write_text(
        '#!/usr/bin/env bash\necho "MESH_CONF=$MESH_CONF"\necho "OPTS=${SPARK_SUBMIT_OPTS:-}"\n'
    )
    fake.chmod(0o755)
    return fake


QUIET = f'-Dlog4j2.configurationFile="{ROOT}/mesh/log4j2.properties"'
OWN = "-Dlog4j.configurationFile=my.xml"  # a log4j configuration of the user's
LOCAL = ["--master", "local[2]"]


@pytest.mark.parametrize(
    ("options", "env", "files", "opts"),
    [
        pytest.param(LOCAL, {}, {}, f"{QUIET} -Dmesh.spark.log.level=ERROR", id="local"),
        pytest.param([], {}, {}, f"{QUIET} -Dmesh.spark.log.level=ERROR", id="local[*]"),
        pytest.param(
            ["--master=local[2]"],
            {"MESH_SPARK_LOG_LEVEL": "info"},
            {},
            f"{QUIET} -Dmesh.spark.log.level=info",
            id="MESH_SPARK_LOG_LEVEL",
        ),
        pytest.param(
            LOCAL,
            {"SPARK_SUBMIT_OPTS": "-Xss4m"},
            {},
            f"{QUIET} -Dmesh.spark.log.level=ERROR -Xss4m",
            id="SPARK_SUBMIT_OPTS kept",
        ),
        pytest.param(["--master", "yarn"], {}, {}, "", id="yarn"),
        pytest.param(["-c", "spark.master=k8s://https://k:443"], {}, {}, "", id="--conf"),
        pytest.param([], {"MASTER": "spark://host:7077"}, {}, "", id="MASTER"),
        pytest.param(
            [],
            {"SPARK_CONF_DIR": "{tmp}"},
            {"spark-defaults.conf": "spark.master  yarn\n"},
            "",
            id="spark-defaults.conf",
        ),
        pytest.param(
            ["--properties-file", "{tmp}/my.conf"],
            {},
            {"my.conf": "spark.master=yarn\n"},
            "",
            id="--properties-file",
        ),
        pytest.param([*LOCAL, "--driver-java-options", OWN], {}, {}, "", id="own, options"),
        pytest.param(LOCAL, {"SPARK_SUBMIT_OPTS": OWN}, {}, OWN, id="own, SPARK_SUBMIT_OPTS"),
        pytest.param(
            LOCAL,
            {"SPARK_HOME": "{tmp}"},
            {"conf/spark-defaults.conf": f"spark.driver.extraJavaOptions {OWN}\n"},
            "",
            id="own, spark-defaults.conf",
        ),
        pytest.param(
            LOCAL,
            {"SPARK_CONF_DIR": "{tmp}"},
            {"log4j2.properties": ""},
            "",
            id="own, log4j2.properties",
        ),
    ],
)
def test_start_up_logs_at_the_session_level_on_a_local_master_only(
    tmp_path: Path,
    options: list[str],
    env: dict[str, str],
    files: dict[str, str],
    opts: str,
) -> None:
    # A cluster's master, or a log4j configuration of the user's, keeps Spark's own start-up.
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    job = tmp_path / "job.py"
    job.write_text("")
    options = [x.replace("{tmp}", str(tmp_path)) for x in options]
    env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}
    fake = str(_fake_spark_submit(tmp_path))
    done = _submit([str(job), *options], SPARK_SUBMIT=fake, **env)
    assert done.returncode == 0, done.stderr
    assert f"OPTS={opts}" in done.stdout.splitlines(), done.stdout


def test_a_log_level_that_is_none_is_an_error(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text("")
    fake = str(_fake_spark_submit(tmp_path))
    done = _submit([str(job)], SPARK_SUBMIT=fake, MESH_SPARK_LOG_LEVEL="loud")
    assert done.returncode == 2
    assert "MESH_SPARK_LOG_LEVEL='loud' is not a log level" in done.stderr
    assert "MESH_CONF=" not in done.stdout


def test_the_conf_shipped_is_the_one_of_the_folder_it_runs_from(tmp_path: Path) -> None:
    # Someone's own project: its conf/ holds their mesh, not the example this checkout holds.
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    job = project / "job.py"
    job.write_text("")
    fake = str(_fake_spark_submit(tmp_path))
    done = _submit([str(job), "--master", "local[2]"], cwd=project, SPARK_SUBMIT=fake)
    assert done.returncode == 0, done.stderr
    assert f"MESH_CONF={project / 'conf'}" in done.stdout.splitlines()

    other = tmp_path / "definitions"
    other.mkdir()
    elsewhere = _submit([str(job)], cwd=tmp_path, SPARK_SUBMIT=fake, MESH_CONF_DIR=str(other))
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert f"MESH_CONF={other}" in elsewhere.stdout.splitlines()


def test_no_conf_folder_is_an_error_naming_mesh_conf_dir(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text("")
    done = _submit([str(job)], cwd=tmp_path, SPARK_SUBMIT=str(_fake_spark_submit(tmp_path)))
    assert done.returncode == 2
    assert "conf folder 'conf' not found" in done.stderr
    assert "MESH_CONF_DIR" in done.stderr
    assert "MESH_CONF=" not in done.stdout
