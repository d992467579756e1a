"""Embedded backend: Spark writes the Parquet files, delta-rs commits them as one transaction.

Used wherever the delta-spark jars are not on the classpath. A write goes in three steps:

1. Spark writes the frame (in parallel, nothing collected to the driver) into a fresh
   directory ``<table>/data/<txn-id>/`` inside the table. Files there are invisible: Delta
   readers only see files the log references.
2. The driver reads the Parquet footers (not the data) to build each file's Delta stats.
3. :func:`mesh.storage.commit.commit_files` writes one log entry with all add/remove actions.

Any failure before the log entry exists (Spark job error, commit conflict, interrupt) deletes
the staged directory (after the failed job's tasks have ended: ``mesh.storage.settle``), so the
table stays at its previous version. Time travel resolves the file
list of a version with delta-rs and lets Spark read exactly those files with the table schema.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyarrow import fs as pafs
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from mesh.errors import StorageError, TableNotFoundError, VersionNotFoundError
from mesh.storage import commit as commit_mod
from mesh.storage.base import (
    CommitInfo,
    CommitRecord,
    DeltaFeatureTable,
    epoch_micros,
    parse_history_entry,
    to_utc,
)
from mesh.storage.commit import (
    RangeGuard,
    RemovedFile,
    StagedFile,
    delta_rs_detail,
    filesystem_for,
)
from mesh.storage.schema import align, as_nullable, require_time_column, table_schema_of
from mesh.storage.settle import run_settled
from mesh.storage.stats import file_stats

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# Reader features whose semantics a plain Parquet read of the file list would get wrong.
_UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping", "v2Checkpoint"}
_RANGE_MARKER = "MESH_ROW_OUTSIDE_RANGE"
_CONSTRAINT_MARKER = "MESH_CONSTRAINT_VIOLATED"
# Spark's listing of many read paths runs as a job of up to this many tasks (default 10000).
_LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
_FILES_PER_LISTING_TASK = 100


class EmbeddedDeltaTable(DeltaFeatureTable):
    """Delta table written by Spark + delta-rs; see the module docstring for the write path."""

    backend = "embedded"

    def __init__(self, spark: SparkSession, path: str) -> None:
        super().__init__(spark, path)
        self._spark_root = f"file://{path}" if path.startswith("/") else path

    # -- reading -------------------------------------------------------------------------

    def exists(self) -> bool:
        try:
            return bool(DeltaTable.is_deltatable(self.path))
        except OSError as exc:  # e.g. a file where the table's folder should be
            raise StorageError(
                f"{self.path} cannot be read as a Delta table ({delta_rs_detail(exc)}): a "
                "Delta table is a folder holding a _delta_log; for a Parquet file or folder, "
                "say so (format: parquet, --entities-format parquet).",
                path=self.path,
            ) from exc

    def _table(self, version: int | None = None) -> DeltaTable:
        if not self.exists():
            raise TableNotFoundError(
                f"No Delta table at {self.path}: expected a _delta_log with at least one "
                "commit; check the path, or create the table first (create/append).",
                path=self.path,
            )
        table = DeltaTable(self.path)
        if version is None:
            return table
        latest = table.version()
        if not 0 <= version <= latest:
            raise VersionNotFoundError(
                f"Delta table {self.path}: version {version} does not exist (versions 0 to "
                f"{latest}); pick one from history().",
                path=self.path,
                version=version,
                latest=latest,
            )
        try:
            table.load_as_version(version)
        except Exception as exc:  # log files of old versions removed by log retention
            raise VersionNotFoundError(
                f"Delta table {self.path}: version {version} is no longer readable ({exc}); "
                "its log was cleaned up, pick a newer version from history().",
                path=self.path,
                version=version,
            ) from exc
        return table

    def latest_version(self) -> int:
        return self._table().version()

    def schema(self) -> StructType:
        return _spark_schema(self._table())

    def history(self) -> list[CommitRecord]:
        raw = self._table().history()
        return [parse_history_entry(entry, int(entry["version"])) for entry in raw]

    def read(self, version: int | None = None, timestamp: datetime | None = None) -> DataFrame:
        if version is not None and timestamp is not None:
            raise StorageError(
                f"Delta table {self.path}: read() got both version and timestamp; pass one.",
                path=self.path,
            )
        if timestamp is not None:
            version = self._version_at(timestamp)
        table = self._table(version)
        self._check_readable(table)
        schema = _spark_schema(table)
        partitions = list(table.metadata().partition_columns)
        if partitions:
            return self._read_partitioned(table, schema, partitions)
        files = _data_files(table)
        if not files:
            return self.spark.createDataFrame([], schema)
        return self._parquet(table, schema, files)

    def _parquet(self, table: DeltaTable, schema: StructType, files: list[str]) -> DataFrame:
        """Spark's read of ``files``; a file the log lists but that is gone (removed by
        VACUUM, say) is ``VersionFilesRemovedError``. Spark checks the paths as it sets up
        the read (``_read_files``)."""
        try:
            return _read_files(self.spark, schema, files)
        except Exception as exc:
            if getattr(exc, "getCondition", lambda: None)() != "PATH_NOT_FOUND":
                raise
            self._files_removed(table.version(), files)
            raise  # every file is there after all: not a removed file

    def _read_partitioned(
        self, table: DeltaTable, schema: StructType, partitions: list[str]
    ) -> DataFrame:
        """A partitioned table's rows: the partition values live in the log, not the files.

        The files of each distinct partition value are read together and given the values as
        literals (one scan per partition value, unioned).
        """
        actions = pa.table(table.get_add_actions(flatten=True))
        if actions.num_rows == 0:
            return self.spark.createDataFrame([], schema)
        root = self.path.rstrip("/")
        paths = [_absolute(root, path) for path in actions.column("path").to_pylist()]
        values = zip(
            *[actions.column(f"partition.{c}").to_pylist() for c in partitions], strict=True
        )
        groups: dict[tuple[object, ...], list[str]] = {}
        for path, value in zip(paths, values, strict=True):
            groups.setdefault(value, []).append(_spark_uri(path))
        data_schema = StructType([f for f in schema.fields if f.name not in partitions])
        types = {f.name: f.dataType for f in schema.fields}
        frames = []
        for value, files in groups.items():
            literals = {c: F.lit(v).cast(types[c]) for c, v in zip(partitions, value, strict=True)}
            frame = self._parquet(table, data_schema, files)
            frames.append(
                frame.select(*[literals.get(f.name, F.col(f.name)).alias(f.name) for f in schema])
            )
        result = frames[0]
        for frame in frames[1:]:
            result = result.unionByName(frame)
        return result

    def _version_at(self, timestamp: datetime) -> int:
        wanted_ms = epoch_micros(timestamp) // 1000
        records = self.history()
        for record in records:  # newest first
            if int(record.raw.get("timestamp", 0)) <= wanted_ms:
                return record.version
        first = records[-1].timestamp.isoformat() if records else "none"
        raise VersionNotFoundError(
            f"Delta table {self.path}: no version at or before {to_utc(timestamp).isoformat()} "
            f"(first commit at {first}); pick a later timestamp.",
            path=self.path,
            timestamp=timestamp,
        )

    def _check_readable(self, table: DeltaTable) -> None:
        features = set(table.protocol().reader_features or [])
        # Column mapping enabled through reader version 2 (no reader features) is still on.
        mapping = table.metadata().configuration.get("delta.columnMapping.mode", "none")
        if mapping not in (None, "none"):
            features.add("columnMapping")
        unsupported = sorted(features & _UNSUPPORTED_READER_FEATURES)
        if unsupported:
            raise StorageError(
                f"Delta table {self.path} uses reader features {unsupported} that the embedded "
                "backend cannot apply; read it with the native backend (delta-spark jars).",
                path=self.path,
                features=unsupported,
            )

    def _check_writable(self, table: DeltaTable) -> None:
        """Appends and range replacements write unpartitioned files with plain column names."""
        self._check_readable(table)
        partitions = list(table.metadata().partition_columns)
        if partitions:
            raise StorageError(
                f"Delta table {self.path} is partitioned by {partitions}; the embedded backend "
                "writes unpartitioned tables only. Write it with the native backend (delta-spark "
                "jars), or to an unpartitioned table.",
                path=self.path,
                partition_columns=partitions,
            )

    # -- writing -------------------------------------------------------------------------

    def create(
        self,
        df: DataFrame,
        commit: CommitInfo,
        *,
        time_column: str | None = None,
        overwrite: bool = False,
    ) -> int:
        exists = self.exists()
        if exists and not overwrite:
            raise StorageError(
                f"Delta table {self.path} already exists (version {self.latest_version()}); "
                "use append/replace_range, or create(..., overwrite=True) to replace it.",
                path=self.path,
            )
        schema = table_schema_of(df)
        read_version = self.latest_version() if exists else None
        return self._write(df, commit, schema, read_version, time_column, overwrite=overwrite)

    def append(
        self,
        df: DataFrame,
        commit: CommitInfo,
        *,
        time_column: str | None = None,
        merge_schema: bool = False,
    ) -> int:
        if not self.exists():
            return self._write(df, commit, table_schema_of(df), None, time_column)
        table = self._table()
        self._check_writable(table)
        current = _spark_schema(table)
        frame, schema = align(df, current, path=self.path, merge_schema=merge_schema)
        frame = _constrained(frame, table)
        if len(schema) != len(current):
            kept = [_widened(self._live_rows(table, current), schema)]
            return self._write(
                frame, commit, schema, table.version(), time_column, kept=kept, widen=True
            )
        return self._write(frame, commit, schema, table.version(), time_column)

    def append_rows(self, rows: pa.Table, commit: CommitInfo, *, merge_schema: bool = False) -> int:
        """Rows whose columns are the table's (any order) are written by pyarrow as one file
        and committed like any append, without a Spark job; other rows (new columns, other
        types: widening or the error), and rows for a table with CHECK constraints (SQL, which
        Spark evaluates), take Spark's way."""
        incoming = _arrow_to_spark(rows.schema)
        if not self.exists():
            return self._write(rows, commit, incoming, None, None)
        table = self._table()
        self._check_writable(table)
        current = _spark_schema(table)
        kinds = {f.name: f.dataType.simpleString() for f in current}
        checks = _check_rows(rows, table, self.path)
        if checks or {f.name: f.dataType.simpleString() for f in incoming} != kinds:
            return super().append_rows(rows, commit, merge_schema=merge_schema)
        return self._write(rows.select(current.names), commit, current, table.version(), None)

    def read_rows(self) -> pa.Table:
        """The latest version's rows read by delta-rs, without a Spark job.

        The files are read through pyarrow's own filesystem: with delta-rs's (the default)
        the process can abort at exit ("terminate called without an active exception",
        exit code 134) once pyarrow's reader threads have called into it.
        """
        table = self._table()
        self._check_readable(table)
        schema = _spark_schema(table)
        filesystem, root = filesystem_for(self.path)
        rows = table.to_pyarrow_table(filesystem=pafs.SubTreeFileSystem(root, filesystem))
        return rows.select(schema.names)

    def replace_range(
        self,
        df: DataFrame,
        commit: CommitInfo,
        *,
        time_column: str,
        start: datetime,
        end: datetime,
        merge_schema: bool = False,
    ) -> int:
        start_us, end_us = epoch_micros(start), epoch_micros(end)
        if start_us >= end_us:
            raise StorageError(
                f"Delta table {self.path}: replace_range needs start < end, got "
                f"{to_utc(start).isoformat()} >= {to_utc(end).isoformat()}.",
                path=self.path,
            )
        require_time_column(df.schema, time_column, path=self.path)
        in_range = _in_range(time_column, start_us, end_us)
        guard = RangeGuard(time_column, start_us, end_us)
        # Fail the Spark job on the first out-of-range row: no second pass over df is needed.
        violation = F.concat(
            F.lit(f"{_RANGE_MARKER} {time_column}="),
            F.coalesce(F.col(time_column).cast("string"), F.lit("null")),
        )
        checked = df.withColumn(
            time_column,
            F.when(in_range, F.col(time_column)).otherwise(F.raise_error(violation)),
        )
        if not self.exists():
            schema = table_schema_of(df)
            return self._write(checked, commit, schema, None, time_column, guard=guard)
        table = self._table()
        self._check_writable(table)
        current = _spark_schema(table)
        frame, schema = align(checked, current, path=self.path, merge_schema=merge_schema)
        frame = _constrained(frame, table)
        if len(schema) != len(current):
            # Rows with a null time are outside every range: kept (``~in_range`` is null).
            kept_rows = self._live_rows(table, current).where(~F.coalesce(in_range, F.lit(False)))
            outside = _widened(kept_rows, schema)
            return self._write(
                frame,
                commit,
                schema,
                table.version(),
                time_column,
                kept=_split_at(outside, time_column, start_us),
                guard=guard,
                widen=True,
            )
        inside, straddling = _plan_range(table, time_column, start_us, end_us)
        kept: list[DataFrame] = []
        if straddling:
            root = self.path.rstrip("/")
            files = [_spark_uri(f"{root}/{f.path}") for f in straddling]
            outside = _read_files(self.spark, schema, files).where(~in_range)
            kept = _split_at(outside, time_column, start_us)
        return self._write(
            frame,
            commit,
            schema,
            table.version(),
            time_column,
            removes=inside + straddling,
            kept=kept,
            guard=guard,
        )

    def _write(
        self,
        df: DataFrame | pa.Table,
        commit: CommitInfo,
        schema: StructType,
        read_version: int | None,
        time_column: str | None,
        *,
        overwrite: bool = False,
        removes: Sequence[RemovedFile] = (),
        kept: Sequence[DataFrame] = (),
        guard: RangeGuard | None = None,
        widen: bool = False,
    ) -> int:
        """Stage ``df`` (and ``kept``) and commit them with ``removes`` as one transaction.

        ``df`` may be Arrow rows on the driver: pyarrow writes them as one file.

        ``widen``: ``schema`` adds columns to the table's. delta-rs writes a new schema only in
        a commit that replaces every live file, so ``kept`` must then hold every row the table
        keeps (``removes`` is implied: all live files).
        """
        txn_id = uuid.uuid4().hex
        staging = f"data/{txn_id}"
        try:
            if isinstance(df, pa.Table):
                adds = self._stage_rows(df, f"{staging}/new")
            else:
                adds = self._stage(df, f"{staging}/new", time_column)
            for index, rows in enumerate(kept):  # apart from the new rows: in-range files stay pure
                adds += self._stage(rows, f"{staging}/kept{index}", time_column)
            return commit_mod.commit_files(
                self.path,
                read_version=read_version,
                adds=adds,
                removes=list(removes),
                schema_json=schema.json(),
                commit=commit,
                txn_id=txn_id,
                guard=guard,
                overwrite=overwrite,
                widen=widen,
            )
        except BaseException as exc:
            landed = _safe_find(self.path, txn_id, -1 if read_version is None else read_version)
            if landed is None:
                self._discard(staging)
            if _CONSTRAINT_MARKER in str(exc):
                raise StorageError(
                    f"Delta table {self.path}: rows violate the table's constraint "
                    f"{_marker_detail(exc, _CONSTRAINT_MARKER)}; nothing was committed.",
                    path=self.path,
                ) from None
            if _RANGE_MARKER in str(exc):
                raise StorageError(
                    f"Delta table {self.path}: replace_range got rows outside "
                    f"[{guard and _iso(guard.start_us)}, {guard and _iso(guard.end_us)}) or "
                    f"with a null {time_column} ({_marker_detail(exc)}); filter the frame to "
                    "the range or widen the range. Nothing was committed.",
                    path=self.path,
                    column=time_column,
                ) from None
            raise

    def _stage(self, df: DataFrame, relative_dir: str, time_column: str | None) -> list[StagedFile]:
        frame = df
        if time_column:
            frame = frame.repartitionByRange(F.col(time_column)).sortWithinPartitions(time_column)
        target = f"{self._spark_root.rstrip('/')}/{relative_dir}"
        with _parquet_write_conf(self.spark):
            writer = frame.write.mode("error")  # "errorifexists" is unknown to Spark Connect
            writer = writer.option("compression", "snappy")
            # No _SUCCESS marker: the Delta log, not the directory, says what was written.
            writer = writer.option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
            run_settled(self.spark, lambda: writer.parquet(target))
        return self._staged_files(relative_dir)

    def _stage_rows(self, rows: pa.Table, relative_dir: str) -> list[StagedFile]:
        """Arrow rows written by pyarrow as one Parquet file (INT64 micros, as Spark's)."""
        filesystem, root = filesystem_for(self.path)
        directory = f"{root.rstrip('/')}/{relative_dir}"
        filesystem.create_dir(directory, recursive=True)
        name = f"part-00000-{uuid.uuid4().hex}.snappy.parquet"
        pq.write_table(
            rows,
            f"{directory}/{name}",
            filesystem=filesystem,
            compression="snappy",
            coerce_timestamps="us",
        )
        return self._staged_files(relative_dir)

    def _staged_files(self, relative_dir: str) -> list[StagedFile]:
        """The Parquet files written into ``relative_dir``, with their Delta stats."""
        filesystem, root = filesystem_for(self.path)
        selector = pafs.FileSelector(f"{root.rstrip('/')}/{relative_dir}", recursive=False)
        infos = [
            i
            for i in filesystem.get_file_info(selector)
            if i.is_file and i.base_name.endswith(".parquet") and not i.base_name.startswith("_")
        ]
        with ThreadPoolExecutor(max_workers=8) as pool:
            stats = list(pool.map(lambda i: file_stats(filesystem, i.path), infos))
        staged = []
        for info, (rows, stats_json) in zip(infos, stats, strict=True):
            if rows == 0:  # Spark writes empty files (empty partitions); Delta needs none
                with contextlib.suppress(OSError):  # unreferenced either way
                    filesystem.delete_file(info.path)
                continue
            mtime = info.mtime or datetime.now(timezone.utc)
            staged.append(
                StagedFile(
                    path=f"{relative_dir}/{info.base_name}",
                    size=int(info.size or 0),
                    modification_time=int(mtime.timestamp() * 1000),
                    stats=stats_json,
                )
            )
        return staged

    def _live_rows(self, table: DeltaTable, schema: StructType) -> DataFrame:
        """Every row of the snapshot ``table`` (the files it references, read as ``schema``)."""
        files = _data_files(table)
        if not files:
            return self.spark.createDataFrame([], schema)
        return _read_files(self.spark, schema, files)

    def _discard(self, relative_dir: str) -> None:
        filesystem, root = filesystem_for(self.path)
        # Nothing staged yet, or already gone: unreferenced files are invisible anyway.
        with contextlib.suppress(OSError):
            filesystem.delete_dir(f"{root.rstrip('/')}/{relative_dir}")


@contextmanager
def _session_conf(spark: SparkSession, wanted: dict[str, str]) -> Iterator[None]:
    """The session's SQL ``wanted`` settings for the block; their previous values after it."""
    previous: dict[str, str | None] = {key: spark.conf.get(key, None) for key in wanted}
    for key, value in wanted.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def _parquet_write_conf(spark: SparkSession) -> contextlib.AbstractContextManager[None]:
    """Write timestamps as INT64 micros (not INT96) and dates proleptically, as Delta expects."""
    return _session_conf(
        spark,
        {
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
            "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
        },
    )


def _read_files(spark: SparkSession, schema: StructType, files: list[str]) -> DataFrame:
    """Spark's read of the log's ``files`` as ``schema``.

    Spark looks up every path it is given; past 32 paths it does so in a Spark job of one
    task per path (300 files: a 300-task job, seconds before the read starts). The log already
    says which files exist, so the lookup gets one task per ``_FILES_PER_LISTING_TASK`` paths.
    On a classic session the lookup runs here; on Spark Connect when the plan is analysed,
    which asking for its schema does.
    """
    from mesh.session import is_connect

    tasks = max(1, -(-len(files) // _FILES_PER_LISTING_TASK))
    with _session_conf(spark, {_LISTING_PARALLELISM: str(tasks)}):
        frame = spark.read.schema(schema).parquet(*files)
        if is_connect(spark):
            frame.schema  # noqa: B018 - the server analyses the read: its paths are looked up
    return frame


def _arrow_to_spark(schema: pa.Schema) -> StructType:
    """The Delta schema of Arrow rows: Spark's types, every column nullable."""
    converted = as_nullable(from_arrow_schema(schema))
    assert isinstance(converted, StructType)
    return converted


def _spark_schema(table: DeltaTable) -> StructType:
    # The Delta schema JSON is Spark's StructType JSON (the protocol borrowed it).
    return StructType.fromJson(json.loads(table.schema().to_json()))


def _absolute(root: str, path: str) -> str:
    """A log path (relative and percent-encoded, or an absolute URI) as a file location."""
    if "://" in path or path.startswith("/"):
        return path
    return f"{root}/{unquote(path)}"


def _data_files(table: DeltaTable) -> list[str]:
    """The snapshot's data files as Spark reads them: delta-rs gives percent-encoded URIs
    (``my%20warehouse``), which Hadoop would encode again; it takes the plain path."""
    return [_spark_uri(unquote(uri)) for uri in table.file_uris()]


def _not_null_columns(table: DeltaTable) -> list[str]:
    """The table's ``NOT NULL`` columns."""
    fields = json.loads(table.schema().to_json())["fields"]
    return [f["name"] for f in fields if not f["nullable"]]


def _checks(table: DeltaTable) -> dict[str, str]:
    """The table's CHECK constraints (``delta.constraints.<name>``): name -> SQL predicate."""
    prefix = "delta.constraints."
    config = table.metadata().configuration
    return {k.removeprefix(prefix): str(v) for k, v in config.items() if k.startswith(prefix)}


def _constrained(frame: DataFrame, table: DeltaTable) -> DataFrame:
    """``frame`` failing its write's Spark job on the first row that violates one of the
    table's constraints (a CHECK must be true: null violates it, as in Delta)."""
    constraints = {f"{c} NOT NULL": f"`{c}` IS NOT NULL" for c in _not_null_columns(table)}
    constraints.update(_checks(table))
    first = frame.columns[0]
    checked = F.col(first)
    for name, predicate in reversed(constraints.items()):
        failed = ~F.coalesce(F.expr(predicate), F.lit(False))
        message = F.lit(f"{_CONSTRAINT_MARKER} {name} ({predicate})")
        checked = F.when(failed, F.raise_error(message)).otherwise(checked)
    return frame.withColumn(first, checked) if constraints else frame


def _check_rows(rows: pa.Table, table: DeltaTable, path: str) -> bool:
    """Arrow rows against the table's NOT NULL columns (``StorageError`` on a null); whether
    the table also has CHECK constraints, which only Spark evaluates (SQL predicates)."""
    for column in _not_null_columns(table):
        if column in rows.column_names and rows.column(column).null_count:
            raise StorageError(
                f"Delta table {path}: rows violate the table's constraint {column} NOT NULL; "
                "nothing was committed.",
                path=path,
            )
    return bool(_checks(table))


def _spark_uri(uri: str) -> str:
    return f"file://{uri}" if uri.startswith("/") else uri


def _in_range(column: str, start_us: int, end_us: int) -> Column:
    value = F.col(column)
    start = F.timestamp_micros(F.lit(start_us))
    end = F.timestamp_micros(F.lit(end_us))
    # Null time values are outside every range: coalesce keeps the predicate two-valued.
    return F.coalesce((value >= start) & (value < end), F.lit(False))


def _plan_range(
    table: DeltaTable, column: str, start_us: int, end_us: int
) -> tuple[list[RemovedFile], list[RemovedFile]]:
    """Split live files into (entirely inside the range, possibly straddling it) by stats."""
    files = pa.table(table.get_add_actions(flatten=True))
    names = set(files.column_names)

    def micros(kind: str) -> list[int | None]:
        name = f"{kind}.{column}"
        if name not in names:
            return [None] * files.num_rows
        values = files.column(name).cast(pa.timestamp("us", tz="UTC"))
        return pc.cast(values, pa.int64()).to_pylist()

    lows = micros("min")
    highs = [h if h is None else h + commit_mod.STATS_MAX_SLACK_US for h in micros("max")]
    nulls = (
        files.column(f"null_count.{column}").to_pylist()
        if f"null_count.{column}" in names
        else [None] * files.num_rows
    )
    inside: list[RemovedFile] = []
    straddling: list[RemovedFile] = []
    for path, size, rows, low, high, null_count in zip(
        files.column("path").to_pylist(),
        files.column("size_bytes").to_pylist(),
        files.column("num_records").to_pylist(),
        lows,
        highs,
        nulls,
        strict=True,
    ):
        ref = RemovedFile(path, size)
        if low is None or high is None:
            if not (rows is not None and null_count == rows):  # unknown: rewrite to be safe
                straddling.append(ref)
        elif high < start_us or low >= end_us:
            continue
        elif low >= start_us and high < end_us and null_count == 0:
            inside.append(ref)
        else:  # crosses a boundary, or holds null times that must be kept
            straddling.append(ref)
    return inside, straddling


def _widened(df: DataFrame, schema: StructType) -> DataFrame:
    """``df`` with the columns of ``schema`` it lacks, as typed nulls, in ``schema``'s order."""
    present = set(df.columns)
    return df.select(
        *[
            F.col(f.name) if f.name in present else F.lit(None).cast(f.dataType).alias(f.name)
            for f in schema
        ]
    )


def _split_at(rows: DataFrame, time_column: str, start_us: int) -> list[DataFrame]:
    # Rows before and after a replaced range go to separate files so that none of the
    # rewritten files straddles the range again on the next run.
    before = F.col(time_column) < F.timestamp_micros(F.lit(start_us))
    return [rows.where(before), rows.where(~F.coalesce(before, F.lit(False)))]


def _safe_find(path: str, txn_id: str, after: int) -> int | None:
    try:
        return commit_mod.find_committed_version(path, txn_id, after)
    except Exception:
        return None


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc).isoformat()


def _marker_detail(exc: BaseException, marker: str = _RANGE_MARKER) -> str:
    text = str(exc)
    at = text.find(marker)
    if at < 0:
        return ""
    line = text[at + len(marker) :].strip().splitlines()[0]
    return re.sub(r"\s*SQLSTATE: \w+\s*$", "", line)[:160]
