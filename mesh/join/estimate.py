"""How many rows a DataFrame holds, as Spark's optimizer estimates it: free, no job.

``"auto"`` asks this of a key set's sources before it builds a spine index: an index pays
only when the sources have many more rows than the spine (see ``mesh.join.pit``). Spark's
plan statistics give an exact ``rowCount`` for ranges and analyzed tables; otherwise a
size in bytes (for Parquet and Delta scans, the files' compressed size), which is turned
into rows the way Spark's own estimates are (``8 + the row's default size`` per row). File
scans are thus under-estimated by their compression ratio (2.6-3.1x on the benchmark's
tables); the threshold that uses this estimate is calibrated on such scans.
"""

from __future__ import annotations

from pyspark.sql import DataFrame


def estimated_rows(df: DataFrame) -> int | None:
    """Spark's estimate of ``df``'s rows; None if Spark has none.

    Read from the optimized logical plan (classic PySpark): computing it runs no job. None
    without a JVM plan (Spark Connect) and where a leaf's size is Spark's "unknown" default
    (``spark.sql.defaultSizeInBytes``: an RDD, Python data), which the plan above only scales.
    """
    jdf = getattr(df, "_jdf", None)
    if jdf is None:
        return None
    plan = jdf.queryExecution().optimizedPlan()
    stats = plan.stats()
    if stats.rowCount().isDefined():
        return int(str(stats.rowCount().get()))
    unknown = int(jdf.sparkSession().sessionState().conf().defaultSizeInBytes())
    leaves = plan.collectLeaves()
    for i in range(leaves.size()):
        if int(str(leaves.apply(i).stats().sizeInBytes())) >= unknown:
            return None
    return int(str(stats.sizeInBytes())) // (8 + int(plan.schema().defaultSize()))


__all__ = ["estimated_rows"]
