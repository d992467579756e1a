"""Small frames and commit records shared by the storage tests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from mesh.storage import CommitInfo

SCHEMA = StructType(
    [
        StructField("id", LongType(), True),
        StructField("feature_ts", TimestampType(), True),
        StructField("value", DoubleType(), True),
        StructField("name", StringType(), True),
    ]
)


def ts(day: int, hour: int = 0, micro: int = 0) -> datetime:
    """A UTC instant in January 2024 (microseconds allowed, to check exact round trips)."""
    return datetime(2024, 1, day, hour, tzinfo=timezone.utc).replace(microsecond=micro)


def frame(spark: SparkSession, rows: list[tuple[Any, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, SCHEMA)


def commit(run_id: str, operation: str = "append", **kwargs: Any) -> CommitInfo:
    return CommitInfo(run_id=run_id, operation=operation, **kwargs)


def rows_of(df: DataFrame) -> list[tuple[Any, ...]]:
    """Rows as sorted tuples with timestamps in UTC, comparable across readers."""
    out = []
    for row in df.collect():
        values = tuple(v.astimezone(timezone.utc) if isinstance(v, datetime) else v for v in row)
        out.append(values)
    return sorted(out, key=repr)


def delta_rs_rows(path: str, version: int | None = None) -> Any:
    """The table at ``path`` as delta-rs reads it (an independent reader), as Arrow.

    Through pyarrow's local filesystem: with delta-rs's own, a process can abort at exit.
    """
    from deltalake import DeltaTable
    from pyarrow import fs as pafs

    table = DeltaTable(path) if version is None else DeltaTable(path, version=version)
    return table.to_pyarrow_table(filesystem=pafs.SubTreeFileSystem(path, pafs.LocalFileSystem()))


def arrow_rows(table: Any, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows of a pyarrow table in the same form as ``rows_of``."""
    data = table.select(columns).to_pylist()
    out = []
    for record in data:
        values = []
        for v in record.values():
            if isinstance(v, datetime):
                v = v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v
                v = v.astimezone(timezone.utc)
            values.append(v)
        out.append(tuple(values))
    return sorted(out, key=repr)


def concurrent_writer(
    path: str, name: str, schema_json: str, mode: str, barrier: Any, results: Any
) -> None:
    """One OS process: stage a file with pyarrow, wait for the other writer, then commit.

    Both writers plan against the same snapshot, so the commit path (not Spark) is what races.
    """
    import uuid
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable
    from pyarrow import fs as pafs

    from mesh.errors import CommitConflictError
    from mesh.storage.commit import RangeGuard, StagedFile, commit_files
    from mesh.storage.embedded import _plan_range
    from mesh.storage.stats import file_stats

    snapshot = DeltaTable(path)
    read_version = snapshot.version()
    start, end = ts(10), ts(11)
    relative = f"data/{name}/part-0.parquet"
    target = Path(path) / relative
    target.parent.mkdir(parents=True)
    arrow_schema = pa.schema(
        [
            ("id", pa.int64()),
            ("feature_ts", pa.timestamp("us", tz="UTC")),
            ("value", pa.float64()),
            ("name", pa.string()),
        ]
    )
    rows = pa.table(
        {"id": [100], "feature_ts": [ts(10, 6)], "value": [1.0], "name": [name]},
        schema=arrow_schema,
    )
    pq.write_table(rows, target)
    _, stats = file_stats(pafs.LocalFileSystem(), str(target))
    staged = StagedFile(relative, target.stat().st_size, int(target.stat().st_mtime * 1000), stats)
    guard, removes = None, []
    if mode == "replace":
        guard = RangeGuard("feature_ts", epoch_us(start), epoch_us(end))
        inside, straddling = _plan_range(snapshot, "feature_ts", guard.start_us, guard.end_us)
        removes = inside + straddling
    barrier.wait(timeout=60)
    try:
        version = commit_files(
            path,
            read_version=read_version,
            adds=[staged],
            removes=removes,
            schema_json=schema_json,
            commit=commit(name, mode),
            txn_id=uuid.uuid4().hex,
            guard=guard,
        )
        results.put((name, "ok", version))
    except CommitConflictError as exc:
        target.unlink()
        results.put((name, "conflict", exc.params["reason"]))


def epoch_us(value: datetime) -> int:
    from mesh.storage.base import epoch_micros

    return epoch_micros(value)
