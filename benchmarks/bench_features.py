"""Snapshot windowed features vs one plain daily groupBy, measured side by side in one run.

    .venv/bin/python benchmarks/bench_features.py --events 10000000

Generates ``--events`` card transactions (Parquet in a temporary folder, read by both sides),
then times, each written to Spark's ``noop`` sink:

* baseline: ``groupBy(customer_id, day).agg(count, sum, mean, min, max)`` over the events;
* mesh: the snapshot feature set with the same five aggregations over 1d, 7d and 30d windows
  on a daily grid (``mesh.compute.feature_frame``), late data excluded by arrival time.

Prints both times, their ratio (goal: at most 3) and the Exchange (shuffle) count of both
physical plans. Not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from mesh.compute import feature_frame
from mesh.definitions import DataProduct, FeatureSet
from mesh.session import get_spark

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
FUNCTIONS = ("count", "sum", "mean", "min", "max")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="source rows (10M)")
    parser.add_argument("--customers", type=int, default=200_000, help="distinct customers")
    parser.add_argument("--days", type=int, default=90, help="days of events")
    parser.add_argument(
        "--late-share",
        type=float,
        default=0.05,
        help="share of rows arriving 1-48h after the event (default 0.05)",
    )
    parser.add_argument(
        "--no-arrival",
        action="store_true",
        help="source without an arrival column (no late-data handling)",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "kernel", "sql"),
        default="auto",
        help="how windows are computed (see mesh.compute.windowed; default auto = kernel here)",
    )
    parser.add_argument("--runs", type=int, default=2, help="timed runs of each query (best kept)")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def generate(spark: Any, args: argparse.Namespace, path: str) -> None:
    from pyspark.sql import functions as F

    seconds = args.days * 86_400
    event = F.timestamp_seconds(
        F.lit(int(START.timestamp())) + (F.rand(args.seed) * seconds).cast("bigint")
    )
    lag_s = F.when(
        F.rand(args.seed + 1) < args.late_share,
        3600 + (F.rand(args.seed + 2) * 47 * 3600).cast("bigint"),
    ).otherwise((F.rand(args.seed + 3) * 300).cast("bigint"))
    df = (
        spark.range(args.events)
        .select(
            F.col("id").alias("tx_id"),
            (F.abs(F.xxhash64("id", F.lit(args.seed))) % args.customers).alias("customer_id"),
            event.alias("event_ts"),
            (F.rand(args.seed + 4) * 200).alias("amount"),
            lag_s.alias("_lag"),
        )
        .withColumn("ingested_ts", F.col("event_ts") + F.make_interval(secs=F.col("_lag")))
    )
    df.drop("_lag").write.mode("overwrite").parquet(path)


def exchanges(df: Any) -> int:
    plan = df._jdf.queryExecution().executedPlan().toString()
    return sum(1 for line in plan.splitlines() if "Exchange" in line and "Reused" not in line)


def timed(df: Any) -> float:
    began = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - began


def main() -> None:
    from pyspark.sql import functions as F

    args = parse_args()
    spark = get_spark("bench-features")
    # Exchange counts are read from the plan as planned; AQE would only coalesce partitions.
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/transactions"
        began = time.perf_counter()
        generate(spark, args, path)
        print(
            f"generated {args.events:,} events for {args.customers:,} customers over "
            f"{args.days} days in {time.perf_counter() - began:.1f}s"
        )
        source = spark.read.parquet(path)

        baseline = source.groupBy("customer_id", F.to_date("event_ts").alias("day")).agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("amount"),
            F.mean("amount"),
            F.min("amount"),
            F.max("amount"),
        )
        product = DataProduct(
            name="transactions",
            domain="payments",
            event_timestamp="event_ts",
            created_timestamp=None if args.no_arrival else "ingested_ts",
        )
        fs = FeatureSet.model_validate(
            {
                "name": "bench",
                "domain": "payments",
                "entity": "customer",
                "source": "transactions",
                "accuracy": "snapshot",
                "interval": "1d",
                "features": [
                    {
                        "kind": "aggregation",
                        "name": f"amount_{fn}",
                        "function": fn,
                        "column": "amount",
                        "windows": ["1d", "7d", "30d"],
                    }
                    for fn in FUNCTIONS
                ],
            }
        )
        end = START + timedelta(days=args.days + 1)
        mesh_df = feature_frame(
            source, fs, product, {"customer_id": "bigint"}, START, end, engine=args.engine
        )

        timed(source.select("customer_id"))  # warm up: JIT, file listing, page cache
        base_runs, mesh_runs = [], []
        for _ in range(args.runs):  # alternate, so both see the same machine state
            base_runs.append(timed(baseline))
            mesh_runs.append(timed(mesh_df))
        base_s, mesh_s = min(base_runs), min(mesh_runs)
        rows_base = baseline.count()
        rows_mesh = mesh_df.count()
    runs = ", ".join(f"{b:.1f}s / {m:.1f}s" for b, m in zip(base_runs, mesh_runs, strict=True))
    print(f"runs (baseline / mesh): {runs}; best of each below")
    print(
        f"baseline groupBy(customer_id, day) 5 aggs : {base_s:8.1f}s  {rows_base:,} rows  "
        f"exchanges={exchanges(baseline)}"
    )
    print(
        f"mesh snapshot 5 aggs x (1d, 7d, 30d) {args.engine:6}: {mesh_s:8.1f}s  "
        f"{rows_mesh:,} rows  exchanges={exchanges(mesh_df)}"
    )
    print(f"ratio mesh / baseline = {mesh_s / base_s:.2f} (goal <= 3)")


if __name__ == "__main__":
    main()
