"""The engine on Spark Connect: tests rerun on a local Connect server, in a child process.

Once a Connect session exists, PySpark builds every DataFrame and column of its process as
a Connect one, so the rerun cannot share this run's classic session: a child ``pytest``
with ``SPARK_API_MODE=connect`` (PySpark's switch, honoured by ``tests/conftest.py``) runs
the tests below against a local Connect server.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.session import is_connect

ROOT = Path(__file__).resolve().parents[1]
# What users call through a Connect session: the join (its property test against the plain
# reference included), training sets with lookups (build, rebuild, inference), feature
# computation and refresh, publishing, and the storage backend's commits and time travel.
RERUN = [
    "tests/test_spark_connect.py::test_the_session_is_the_mode_asked_for",
    "tests/join/test_pit_property.py",
    "tests/join/test_pit_cases.py",
    "tests/join/test_pit_bounds.py::test_an_empty_spine_has_no_range_and_joins_to_nothing",
    "tests/join/test_pit_spine_keys.py",
    "tests/sets/test_lookups.py",
    "tests/compute/test_jobs.py::test_every_domain_feature_set_is_computed_in_one_commit",
    "tests/compute/test_jobs.py::test_refresh_after_one_new_day_touches_only_that_day",
    "tests/catalog/test_publish.py::test_publish_records_version_statistics_checks_lineage_and_report",
    "tests/catalog/test_publish.py::test_refused_publish_leaves_catalog_and_feature_table_exactly_as_they_were",
    "tests/storage/test_delta_roundtrip.py",
    "tests/storage/test_delta_replace_range.py",
    "tests/storage/test_delta_rows.py",
]


def test_the_session_is_the_mode_asked_for(spark) -> None:
    assert is_connect(spark) == (os.environ.get("SPARK_API_MODE", "").lower() == "connect")


@pytest.mark.skipif(
    os.environ.get("SPARK_API_MODE", "").lower() == "connect",
    reason="already the child run on Spark Connect",
)
@pytest.mark.skipif(
    importlib.util.find_spec("grpc") is None,
    reason="Spark Connect's client packages are missing (pip install 'feature-mesh[connect]')",
)
def test_the_tests_pass_on_spark_connect(tmp_path) -> None:
    # The rerun checks that Connect gives the classic answers: the property test's fixed
    # edge examples and a few random ones (the classic run has the full count).
    examples = os.environ.get("MESH_HYPOTHESIS_EXAMPLES", "5")
    env = {**os.environ, "SPARK_API_MODE": "connect", "MESH_HYPOTHESIS_EXAMPLES": examples}
    env["MESH_TEST_CODEGEN"] = "1"  # the classic run interprets expressions; this one compiles
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--basetemp", str(tmp_path / "connect"), *RERUN]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert " passed" in summary and "failed" not in summary, summary
