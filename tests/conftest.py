"""One SparkSession for the whole test run: local[2], UI off, two shuffle partitions, UTC.

With ``SPARK_API_MODE=connect`` (PySpark's own switch) the same session is a Spark Connect
one, served by a local Connect server: ``tests/test_spark_connect.py`` reruns tests so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)  # type: ignore[attr-defined]
os.environ.setdefault("MESH_IDENTITY", "test-runner")


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from pyspark.sql import SparkSession

    from mesh.session import is_connect

    # Tables saved by name (bucketed tables in the join's plan tests) go under a temp dir.
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("feature-mesh-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config(map=_codegen())
        .getOrCreate()
    )
    if not is_connect(session):
        session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _codegen() -> dict[str, str]:
    """Spark's interpreted expressions (its own tests' ``NO_CODEGEN``) unless
    ``MESH_TEST_CODEGEN=1``: compiling each query's generated code costs more than running
    it on a test's few rows (about a third of the run). The Spark Connect rerun
    (``tests/test_spark_connect.py``) runs its tests with code generation, as users do."""
    if os.environ.get("MESH_TEST_CODEGEN") == "1":
        return {}
    return {
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    }


@pytest.fixture
def four_shuffle_partitions(spark: object) -> Iterator[None]:
    """Four shuffle partitions inside (the session has two): for the tests that count a
    plan's partitions or spread a hot key over several."""
    conf = spark.conf  # type: ignore[attr-defined]
    previous = conf.get("spark.sql.shuffle.partitions")
    conf.set("spark.sql.shuffle.partitions", "4")
    try:
        yield
    finally:
        conf.set("spark.sql.shuffle.partitions", previous)
