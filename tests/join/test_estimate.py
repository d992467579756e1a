"""Spark's row estimates, which "auto" compares with the spine's rows."""

from __future__ import annotations

from types import SimpleNamespace

from pyspark.sql import functions as F

from mesh.join.estimate import estimated_rows


def test_a_range_is_estimated_exactly(spark):
    assert estimated_rows(spark.range(1234)) == 1234


def test_python_data_and_plans_on_it_have_no_estimate(spark):
    # An RDD's size is Spark's "unknown" default (spark.sql.defaultSizeInBytes).
    local = spark.createDataFrame([(i, "a" * i) for i in range(50)], "x long, y string")
    assert estimated_rows(local) is None
    assert estimated_rows(local.select("x").where("x > 3")) is None
    assert estimated_rows(local.join(spark.range(10), local.x == F.col("id"))) is None


def test_parquet_files_are_estimated_from_their_size(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.range(20_000).selectExpr("id", "id * 2 AS y").write.parquet(path)
    rows = estimated_rows(spark.read.parquet(path))
    # Compressed bytes / (8 + 16) per row: under the 20,000 rows, never zero.
    assert rows is not None and 0 < rows <= 20_000


def test_a_dataframe_without_a_jvm_plan_has_no_estimate():
    assert estimated_rows(SimpleNamespace()) is None  # type: ignore[arg-type]
