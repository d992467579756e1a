"""Run a Spark write so that, if it fails, none of its tasks is still running afterwards.

When one task of a job fails, Spark fails the job and kills its other tasks asynchronously:
the action raises while a task may still be writing. A caller that then deletes the write's
staging directory can see a late task create its file again behind it (seen in CI: a Python
UDF raising in one task left another task's part file in ``_temporary``). So the write's
jobs carry a job tag; on failure they are cancelled and the caller waits, up to a limit,
until the status tracker shows none of their tasks active, and only then cleans up.

Classic Spark only: a session without a SparkContext in this process (Spark Connect) runs
the write as is.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from pyspark.sql import SparkSession

SETTLE_SECONDS = 30.0  # longest wait for a failed write's tasks to end
_POLL_SECONDS = 0.05


def run_settled(spark: SparkSession, write: Callable[[], Any]) -> Any:
    """``write()``, its Spark jobs tagged; if it raises, wait for their tasks, then re-raise."""
    context = getattr(spark, "_sc", None)  # classic PySpark; absent with Spark Connect
    if context is None:
        return write()
    tag = f"mesh-write-{uuid.uuid4().hex}"
    context.addJobTag(tag)
    try:
        return write()
    except BaseException:
        try:
            settle(context, tag)
        except Exception as problem:  # the write's own error is the one to raise
            warnings.warn(
                f"a failed write's tasks could not be waited for ({problem}); its staging "
                "directory is cleaned up anyway",
                RuntimeWarning,
                stacklevel=2,
            )
        raise
    finally:
        context.removeJobTag(tag)


def settle(context: Any, tag: str, timeout: float = SETTLE_SECONDS) -> int:
    """Cancel the jobs tagged ``tag``; wait until none of their tasks runs (or ``timeout``).

    Returns the number of tasks still active when it stopped waiting (0: all ended).
    """
    context.cancelJobsWithTag(tag)
    tracker = context._jsc.sc().statusTracker()
    deadline = time.monotonic() + timeout
    while True:
        active = 0
        for job in tracker.getJobIdsForTag(tag):
            info = tracker.getJobInfo(job)
            if info.isEmpty():
                continue
            for stage in info.get().stageIds():
                stage_info = tracker.getStageInfo(stage)
                if not stage_info.isEmpty():
                    active += stage_info.get().numActiveTasks()
        if active == 0 or time.monotonic() >= deadline:
            return active
        time.sleep(_POLL_SECONDS)


__all__ = ["SETTLE_SECONDS", "run_settled", "settle"]
