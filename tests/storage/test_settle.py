"""A failed write returns only once none of its tasks still runs (then cleanup is final)."""

from __future__ import annotations

import time

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType

from mesh.storage import settle as settle_mod
from mesh.storage.settle import run_settled


def test_a_failed_write_returns_when_its_other_tasks_have_ended(spark, tmp_path):
    done = tmp_path / "slow-task-ended"

    @F.udf(DoubleType())
    def slow_or_boom(value: float) -> float:
        if value == 1.0:
            raise ValueError("boom")
        time.sleep(2.0)  # still running when the other task fails the job
        done.write_text("ended")
        return value

    frame = spark.range(0, 2, 1, 2).select(slow_or_boom(F.col("id").cast("double")).alias("v"))
    spark.range(0, 2, 1, 2).select(F.udf(lambda v: v, "long")("id")).collect()  # warm workers
    with pytest.raises(Exception, match="boom"):
        run_settled(spark, frame.collect)
    # Spark raised as soon as the job failed; the slow task had ended before the return.
    assert done.exists()
    assert not set(spark.sparkContext.getJobTags())  # the write's tag is removed


def test_a_successful_write_returns_its_result_and_removes_its_tag(spark):
    assert run_settled(spark, spark.range(3).count) == 3
    assert not set(spark.sparkContext.getJobTags())


def test_the_writes_own_error_is_raised_if_waiting_fails(spark, monkeypatch):
    def broken_settle(context, tag, timeout=0.0):
        raise RuntimeError("status tracker unavailable")

    def failing_write():
        raise ValueError("write failed")

    monkeypatch.setattr(settle_mod, "settle", broken_settle)
    with (
        pytest.warns(RuntimeWarning, match="status tracker unavailable"),
        pytest.raises(ValueError, match="write failed"),
    ):
        run_settled(spark, failing_write)
    assert not set(spark.sparkContext.getJobTags())
