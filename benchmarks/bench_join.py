"""Benchmark the point-in-time join against a floor, a range join, Feast and Tempo.

Run from the repository root (Feast and Tempo are optional; without them they are skipped
with the import error printed):

    .venv-bench/bin/python benchmarks/bench_join.py --small
    .venv-bench/bin/python benchmarks/bench_join.py              # 1M spine, 2 x 10M rows

Data is generated with Spark (``spark.range``, hash-based so it is deterministic whatever
the partitioning) and written to Parquet first, so every contender reads the same files.
Every contender's result is reduced to (row count, order-independent checksum = sum of
xxhash64 over all output columns); that action is what is timed. Contenders with the same
semantics must produce the same checksum.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pyspark.sql import Column, DataFrame, SparkSession, Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from mesh.join import FeatureSource, point_in_time_join  # noqa: E402

BASE = dt.datetime(2024, 1, 1)
DAYS = 60
TTL = dt.timedelta(days=7)
SPINE_COLS = ["row_id", "customer_id", "ts", "label"]
FEATURES = ["f1_a", "f1_b", "f2_a", "f2_b"]


def unit(seed: int, *cols: str) -> Column:
    """Deterministic uniform [0, 1) from a hash of the columns."""
    h = F.xxhash64(*[F.col(c) for c in cols], F.lit(seed))
    return (h.bitwiseAND(F.lit(0x7FFFFFFF))).cast("double") / float(2**31)


def customer(seed: int, n_keys: int, hot_share: float) -> Column:
    # One very hot key (0), then a power-law tail: many keys are cold, some warm.
    tail = (F.lit(1) + F.floor(F.pow(unit(seed + 1, "id"), 2.0) * (n_keys - 1))).cast("long")
    return F.when(unit(seed, "id") < hot_share, F.lit(0).cast("long")).otherwise(tail)


def seconds_to_ts(seconds: Column) -> Column:
    return F.timestamp_seconds(F.lit(int(BASE.replace(tzinfo=dt.UTC).timestamp())) + seconds)


def generate(
    spark: SparkSession, out: str, spine_rows: int, feature_rows: int, history_days: int = DAYS
) -> None:
    n_keys = max(10, spine_rows // 10)
    spine = spark.range(spine_rows).select(
        F.col("id").alias("row_id"),
        customer(1, n_keys, 0.02).alias("customer_id"),
        seconds_to_ts(F.floor(unit(3, "id") * DAYS * 86400).cast("long")).alias("ts"),
        F.concat(F.lit("l"), (F.col("id") % 7).cast("string")).alias("label"),
    )
    spine.write.mode("overwrite").parquet(f"{out}/spine")
    for table, seed in (("f1", 10), ("f2", 20)):
        # feature_ts on whole minutes: many ties on hot keys. created_ts: 85% within
        # minutes, 15% late (hours to days: corrections and late data); 1% null.
        late = unit(seed + 4, "id") < 0.15
        delay = F.when(late, F.floor(unit(seed + 5, "id") * 3 * 86400)).otherwise(
            F.floor(unit(seed + 5, "id") * 600)
        )
        # The spine covers the last DAYS days of a history of history_days days.
        minutes = F.floor(unit(seed + 3, "id") * history_days * 1440).cast("long")
        minute = (minutes - (history_days - DAYS) * 1440) * 60
        created = F.when(unit(seed + 6, "id") < 0.01, F.lit(None)).otherwise(
            seconds_to_ts(minute + delay.cast("long"))
        )
        df = spark.range(feature_rows).select(
            customer(seed, n_keys, 0.05).alias("customer_id"),
            seconds_to_ts(minute).alias("feature_ts"),
            created.cast("timestamp").alias("created_ts"),
            F.round(unit(seed + 7, "id") * 100, 2).alias(f"{table}_a"),
            F.when(unit(seed + 8, "id") < 0.05, F.lit(None))
            .otherwise(F.floor(unit(seed + 9, "id") * 1000).cast("long"))
            .alias(f"{table}_b"),
        )
        if history_days == DAYS:
            df.write.mode("overwrite").parquet(f"{out}/{table}")
            continue
        # Like a Delta table appended over time: files (and row groups) in time order,
        # timestamps as INT64 micros with min/max statistics (Spark's default, INT96, has
        # none a scan could skip row groups with).
        df = df.repartitionByRange(32, "feature_ts").sortWithinPartitions("feature_ts")
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        try:
            df.write.mode("overwrite").parquet(f"{out}/{table}")
        finally:
            spark.conf.unset("spark.sql.parquet.outputTimestampType")


@dataclass
class Result:
    name: str
    seconds: float | None
    rows: int | None = None
    checksum: int | None = None
    exchanges: str = ""
    jvm_peak_mb: float | None = None
    rows_read: int | None = None
    note: str = ""


def timeline_spine(f1: DataFrame, f2: DataFrame) -> DataFrame:
    """A global feature set's spine: every (key, time at which an input row is known)."""
    parts = [
        f.select("customer_id", F.greatest("feature_ts", "created_ts").alias("ts"))
        for f in (f1, f2)
    ]
    times = parts[0].unionByName(parts[1]).dropna().distinct()
    return times.select(
        F.xxhash64("customer_id", "ts").alias("row_id"),
        "customer_id",
        "ts",
        F.lit("l").alias("label"),
    )


def checksum_of(df: DataFrame) -> DataFrame:
    cols = [F.col(c) for c in [*SPINE_COLS, *FEATURES]]
    return df.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.xxhash64(*cols).cast("decimal(38,0)")).alias("h"),
    )


def count_exchanges(df: DataFrame) -> str:
    plan = df._jdf.queryExecution().executedPlan().toString()
    hashed = plan.count("Exchange hashpartitioning")
    total = plan.count("Exchange ") - plan.count("ReusedExchange")
    return f"{hashed} hash / {total} all"


class JvmMemory:
    """Peak RSS of the Spark JVM (driver = executor in local mode), reset per contender."""

    def __init__(self, spark: SparkSession) -> None:
        try:
            self.pid: int | None = int(spark._jvm.java.lang.ProcessHandle.current().pid())
        except Exception:
            self.pid = None

    def reset(self) -> None:
        if self.pid is not None:
            try:
                with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM (peak RSS) on Linux
            except OSError:
                pass

    def peak_mb(self) -> float | None:
        if self.pid is None:
            return None
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return None


def rows_read(spark: SparkSession, group: str) -> int | None:
    """Rows read from files (and the index's Arrow batches) by the jobs of ``group``.

    From the Spark UI's REST API (input records of their stages); None without the UI.
    """
    url = spark.sparkContext.uiWebUrl
    if not url:
        return None
    base = f"{url}/api/v1/applications/{spark.sparkContext.applicationId}"
    try:
        with urllib.request.urlopen(f"{base}/jobs", timeout=30) as response:
            jobs = json.load(response)
        stage_ids = {s for j in jobs if j.get("jobGroup") == group for s in j["stageIds"]}
        with urllib.request.urlopen(f"{base}/stages", timeout=30) as response:
            stages = json.load(response)
    except (OSError, ValueError):
        return None
    return sum(s["inputRecords"] for s in stages if s["stageId"] in stage_ids)


def run(
    spark: SparkSession,
    memory: JvmMemory,
    name: str,
    build: Callable[[], DataFrame],
    timeout: float,
) -> Result:
    memory.reset()
    group = f"bench-{name}-{time.monotonic_ns()}"
    timer = threading.Timer(timeout, lambda: spark.sparkContext.cancelJobGroup(group))
    start = time.perf_counter()
    try:
        spark.sparkContext.setJobGroup(group, name, interruptOnCancel=True)
        timer.start()
        df = build()
        summary = checksum_of(df)
        # Before executing: an executed adaptive plan prints its final and initial plans.
        exchanges = count_exchanges(summary)
        row = summary.collect()[0]
        seconds = time.perf_counter() - start
        peak = memory.peak_mb()
        read = rows_read(spark, group)
        return Result(name, seconds, row["n"], int(row["h"]), exchanges, peak, read)
    except Exception as exc:  # a contender failing must not stop the others
        seconds = time.perf_counter() - start
        reason = "timeout" if seconds >= timeout else f"{type(exc).__name__}: {exc}"
        return Result(name, None, note=reason.splitlines()[0][:160])
    finally:
        timer.cancel()
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)


# ---------------------------------------------------------------- contenders


def engine(
    spine: DataFrame,
    f1: DataFrame,
    f2: DataFrame,
    *,
    exclude: bool = True,
    ttl: dt.timedelta | None = TTL,
    skew: bool | None = None,
    strategy: str = "auto",
) -> DataFrame:
    return point_in_time_join(
        spine,
        [
            FeatureSource(
                f1,
                "customer_id",
                "feature_ts",
                "created_ts",
                ttl=ttl,
                exclude_not_yet_created=exclude,
            ),
            FeatureSource(
                f2,
                "customer_id",
                "feature_ts",
                "created_ts",
                ttl=ttl,
                exclude_not_yet_created=exclude,
            ),
        ],
        "ts",
        skew=skew,
        strategy=strategy,
    )


def floor(spine: DataFrame, f1: DataFrame, f2: DataFrame) -> DataFrame:
    """Lower bound: latest row per key (ignoring time), equi-joined onto the spine."""
    out = spine
    for f, (a, b) in ((f1, ("f1_a", "f1_b")), (f2, ("f2_a", "f2_b"))):
        latest = f.groupBy("customer_id").agg(
            F.max(F.struct("feature_ts", "created_ts", a, b)).alias("w")
        )
        out = out.join(
            latest.select("customer_id", F.col("w")[a].alias(a), F.col("w")[b].alias(b)),
            "customer_id",
            "left",
        )
    return out


def range_join(spine: DataFrame, f1: DataFrame, f2: DataFrame) -> DataFrame:
    """Straightforward reference: join on keys and time range, pick the winner per row."""
    out = spine
    for f, (a, b) in ((f1, ("f1_a", "f1_b")), (f2, ("f2_a", "f2_b"))):
        s = spine.select("row_id", F.col("customer_id").alias("k"), F.col("ts").alias("t"))
        cand = s.join(
            f,
            (f.customer_id == s.k)
            & (f.feature_ts <= s.t)
            & (f.created_ts.isNull() | (f.created_ts <= s.t)),
        )
        order = Window.partitionBy("row_id").orderBy(
            F.col("feature_ts").desc(),
            F.col("created_ts").desc(),
            F.col(a).desc(),
            F.col(b).desc(),
        )
        win = cand.withColumn("rn", F.row_number().over(order)).where("rn = 1")
        fresh = F.col("feature_ts") >= F.col("t") - F.lit(TTL)
        win = win.select(
            "row_id", F.when(fresh, F.col(a)).alias(a), F.when(fresh, F.col(b)).alias(b)
        )
        out = out.join(win, "row_id", "left")
    return out


def feast(spark: SparkSession, data: str, spine: DataFrame) -> DataFrame:
    from feast import Entity, FeatureStore, FeatureView, Field, ValueType
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import (
        SparkOfflineStoreConfig,
    )
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
        SparkSource,
    )
    from feast.repo_config import RepoConfig
    from feast.types import Float64, Int64

    repo = tempfile.mkdtemp(prefix="feast-bench-")
    config = RepoConfig(
        project="bench",
        registry=f"{repo}/registry.db",
        provider="local",
        offline_store=SparkOfflineStoreConfig(type="spark"),
        online_store={"type": "sqlite", "path": f"{repo}/online.db"},
        entity_key_serialization_version=3,
        repo_path=repo,
    )
    store = FeatureStore(config=config)
    cust = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    views = []
    for table in ("f1", "f2"):
        source = SparkSource(
            name=f"{table}_src",
            path=f"{data}/{table}",
            file_format="parquet",
            timestamp_field="feature_ts",
            created_timestamp_column="created_ts",
        )
        views.append(
            FeatureView(
                name=table,
                entities=[cust],
                ttl=TTL,
                source=source,
                schema=[
                    Field(name=f"{table}_a", dtype=Float64),
                    Field(name=f"{table}_b", dtype=Int64),
                ],
            )
        )
    store.apply([cust, *views])
    job = store.get_historical_features(
        entity_df=spine, features=[f"{t}:{t}_{c}" for t in ("f1", "f2") for c in "ab"]
    )
    return job.to_spark_df()


def tempo(spine: DataFrame, f1: DataFrame, f2: DataFrame) -> DataFrame:
    from tempo import TSDF

    out = TSDF(spine, ts_col="ts", partition_cols=["customer_id"])
    for f, table in ((f1, "f1"), (f2, "f2")):
        right = TSDF(
            f.select(
                "customer_id",
                F.col("feature_ts").alias("ts"),
                "created_ts",
                f"{table}_a",
                f"{table}_b",
            ),
            ts_col="ts",
            partition_cols=["customer_id"],
            sequence_col="created_ts",
        )
        joined = out.asofJoin(
            right, right_prefix=table, skipNulls=False, tolerance=TTL.total_seconds()
        )
        df = joined.df
        keep = [
            c
            for c in df.columns
            if not c.startswith(f"{table}_") or c in (f"{table}_{table}_a", f"{table}_{table}_b")
        ]
        df = df.select(*keep).withColumnsRenamed(
            {f"{table}_{table}_a": f"{table}_a", f"{table}_{table}_b": f"{table}_b"}
        )
        out = TSDF(df, ts_col="ts", partition_cols=["customer_id"])
    return out.df


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="50k spine, 2 x 500k rows")
    parser.add_argument("--spine-rows", type=int, default=1_000_000)
    parser.add_argument("--feature-rows", type=int, default=10_000_000)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "mesh-bench"))
    parser.add_argument("--timeout", type=float, default=900, help="seconds per contender")
    parser.add_argument(
        "--skip", default="", help="comma list: floor,engine,sorted,range,feast,tempo"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender, best kept")
    parser.add_argument(
        "--history-days",
        type=int,
        default=DAYS,
        help=f"days of feature history, the spine's {DAYS} last (longer: files in time order)",
    )
    parser.add_argument(
        "--timeline-spine",
        action="store_true",
        help="spine: every distinct (key, known time) of both tables, as a global feature set's",
    )
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--driver-memory", default="6g")
    args = parser.parse_args()
    if args.history_days < 1:
        parser.error(f"--history-days: expected at least 1, found {args.history_days}")
    if args.small:
        args.spine_rows, args.feature_rows = 50_000, 500_000
    skip = set(filter(None, args.skip.split(",")))

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("bench-join")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.adaptive.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    data = f"{args.data_dir}/{args.spine_rows}_{args.feature_rows}"
    if args.history_days != DAYS:
        data += f"_h{args.history_days}"
    print(
        f"spine {args.spine_rows:,} rows over {DAYS} days, 2 feature tables x "
        f"{args.feature_rows:,} rows over {args.history_days} days, "
        f"data {data}, Spark {spark.version}, local[2], "
        f"{args.shuffle_partitions} shuffle partitions, AQE on"
    )
    start = time.perf_counter()
    if not os.path.exists(f"{data}/f2/_SUCCESS"):
        shutil.rmtree(data, ignore_errors=True)
        generate(spark, data, args.spine_rows, args.feature_rows, args.history_days)
    print(f"data ready in {time.perf_counter() - start:.1f}s")

    spine = spark.read.parquet(f"{data}/spine")
    f1, f2 = spark.read.parquet(f"{data}/f1"), spark.read.parquet(f"{data}/f2")
    if args.timeline_spine:
        if not os.path.exists(f"{data}/timeline/_SUCCESS"):
            timeline_spine(f1, f2).write.mode("overwrite").parquet(f"{data}/timeline")
        spine = spark.read.parquet(f"{data}/timeline")
        print(f"timeline spine: {spine.count():,} rows")
    hot = f1.where("customer_id = 0").count() / args.feature_rows
    print(f"hot key share in f1: {hot:.1%}")
    memory = JvmMemory(spark)

    contenders: list[tuple[str, str, Callable[[], DataFrame]]] = [
        ("floor", "floor (latest per key)", lambda: floor(spine, f1, f2)),
        ("engine", "engine (full semantics)", lambda: engine(spine, f1, f2)),
        ("sorted", "engine (sorted, no index)", lambda: engine(spine, f1, f2, strategy="sorted")),
        ("range", "range join (full semantics)", lambda: range_join(spine, f1, f2)),
        ("feast", "engine (Feast semantics)", lambda: engine(spine, f1, f2, exclude=False)),
        ("feast", "Feast 0.67 spark store", lambda: feast(spark, data, spine)),
        ("tempo", "engine (Tempo semantics)", lambda: engine(spine, f1, f2, exclude=False)),
        ("tempo", "Tempo asofJoin", lambda: tempo(spine, f1, f2)),
    ]
    # Warm-up (JIT, file listing caches) so the first contender is not penalised.
    checksum_of(floor(spine, f1, f2)).collect()
    results = []
    for key, name, build in contenders:
        if key in skip:
            continue
        tries = [run(spark, memory, name, build, args.timeout) for _ in range(args.repeat)]
        done = [r for r in tries if r.seconds is not None]
        result = min(done, key=lambda r: r.seconds or 0) if done else tries[0]
        results.append(result)
        status = f"{result.seconds:.1f}s" if result.seconds is not None else result.note
        print(f"  ran {name}: {status}", flush=True)

    floor_s = next((r.seconds for r in results if r.name.startswith("floor")), None)
    print()
    print(
        f"{'contender':32} {'time':>8} {'x floor':>8} {'rows':>10} {'checksum':>22} "
        f"{'exchanges':>15} {'JVM peak':>9} {'rows read':>11}"
    )
    for r in results:
        if r.seconds is None and r.note == "timeout":
            # Not finished within --timeout: the time and ratio are lower bounds.
            ratio = f">{args.timeout / floor_s:.1f}" if floor_s else "-"
            print(f"{r.name:32} {'>' + f'{args.timeout:.0f}s':>8} {ratio:>8}   timed out")
            continue
        if r.seconds is None:
            print(f"{r.name:32} {'-':>8} {'-':>8}   skipped/failed: {r.note}")
            continue
        ratio = f"{r.seconds / floor_s:.2f}" if floor_s else "-"
        peak = f"{r.jvm_peak_mb:.0f} MB" if r.jvm_peak_mb else "-"
        read = f"{r.rows_read:,}" if r.rows_read is not None else "-"
        print(
            f"{r.name:32} {r.seconds:7.1f}s {ratio:>8} {r.rows:>10,} {r.checksum:>22} "
            f"{r.exchanges:>15} {peak:>9} {read:>11}"
        )
    by = {r.name: r for r in results if r.checksum is not None}

    def same(a: str, b: str) -> str:
        if a not in by or b not in by:
            return "n/a"
        return "identical" if by[a].checksum == by[b].checksum else "DIFFERENT"

    print()
    pairs = [
        ("full semantics", "engine (full semantics)", "range join (full semantics)"),
        ("Feast semantics", "engine (Feast semantics)", "Feast 0.67 spark store"),
        ("Tempo semantics", "engine (Tempo semantics)", "Tempo asofJoin"),
    ]
    for label, a, b in pairs:
        print(f"checksum {a} vs {b} ({label}): {same(a, b)}")
    times = {r.name: r.seconds for r in results}
    timed_out = {r.name for r in results if r.seconds is None and r.note == "timeout"}
    for _, a, b in pairs:
        ours = times.get(a)
        if ours is None or b not in times:
            continue
        theirs = times[b]
        if theirs is not None:
            print(f"{b} / {a}: {theirs / ours:.1f}x")
        elif b in timed_out:
            print(f"{b} / {a}: >{args.timeout / ours:.1f}x (timed out after {args.timeout:.0f}s)")
    python_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"python driver peak RSS: {python_peak:.0f} MB")
    print(f"load average at end: {os.getloadavg()} (2 cores shared with other users)")
    spark.stop()


if __name__ == "__main__":
    main()
