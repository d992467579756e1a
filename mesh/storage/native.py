"""Native backend: delta-spark does the writing, time travel and conflict detection.

Used when the Delta Lake extension is on the session's classpath (Databricks, or a cluster
started with ``--packages io.delta:delta-spark_2.13:<ver>``). Each operation is one
``DataFrameWriter`` save, hence one Delta commit, with the CommitInfo JSON in ``userMetadata``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from mesh.errors import (
    CommitConflictError,
    StorageError,
    TableNotFoundError,
    VersionNotFoundError,
)
from mesh.storage.base import (
    CommitInfo,
    CommitRecord,
    DeltaFeatureTable,
    epoch_micros,
    parse_history_entry,
    to_utc,
)
from mesh.storage.schema import align, require_time_column

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, DataFrameWriter
    from pyspark.sql.types import StructType


def _conflict_types() -> tuple[type[BaseException], ...]:
    from delta.exceptions import (
        ConcurrentAppendException,
        ConcurrentDeleteDeleteException,
        ConcurrentDeleteReadException,
        ConcurrentTransactionException,
        MetadataChangedException,
        ProtocolChangedException,
    )

    return (
        ConcurrentAppendException,
        ConcurrentDeleteDeleteException,
        ConcurrentDeleteReadException,
        ConcurrentTransactionException,
        MetadataChangedException,
        ProtocolChangedException,
    )


# Commits searched for a write's own before the whole history: other writers' commits that
# land between the save and the search.
_RECENT = 32
_TXN_KEY = "txn_id"


def _tagged(commit: CommitInfo, txn_id: str) -> str:
    """``commit``'s userMetadata JSON plus the write's nonce (``from_json`` ignores it)."""
    payload = json.loads(commit.to_json())
    payload[_TXN_KEY] = txn_id
    return json.dumps(payload, sort_keys=True)


def _txn_of(user_metadata: str | None) -> str | None:
    try:
        payload = json.loads(user_metadata or "")
    except ValueError:
        return None
    return payload.get(_TXN_KEY) if isinstance(payload, dict) else None


class NativeDeltaTable(DeltaFeatureTable):
    """Delta table written through delta-spark (``format("delta")``)."""

    backend = "native"

    def _delta(self) -> Any:
        from delta.tables import DeltaTable

        if not self.exists():
            raise TableNotFoundError(
                f"No Delta table at {self.path}: expected a _delta_log with at least one "
                "commit; check the path, or create the table first (create/append).",
                path=self.path,
            )
        return DeltaTable.forPath(self.spark, self.path)

    def exists(self) -> bool:
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(self.spark, self.path))

    def latest_version(self) -> int:
        return int(self._delta().history(1).collect()[0]["version"])

    def schema(self) -> StructType:
        return self._delta().toDF().schema

    def history(self) -> list[CommitRecord]:
        rows = self._delta().history().orderBy(F.col("version").desc()).collect()
        return [
            parse_history_entry(row.asDict(recursive=True), int(row["version"])) for row in rows
        ]

    def read(self, version: int | None = None, timestamp: datetime | None = None) -> DataFrame:
        if version is not None and timestamp is not None:
            raise StorageError(
                f"Delta table {self.path}: read() got both version and timestamp; pass one.",
                path=self.path,
            )
        self._delta()  # TableNotFoundError first
        reader = self.spark.read.format("delta")
        if version is not None:
            latest = self.latest_version()
            if not 0 <= version <= latest:
                raise VersionNotFoundError(
                    f"Delta table {self.path}: version {version} does not exist (versions 0 "
                    f"to {latest}); pick one from history().",
                    path=self.path,
                    version=version,
                    latest=latest,
                )
            reader = reader.option("versionAsOf", version)
        elif timestamp is not None:
            reader = reader.option("timestampAsOf", to_utc(timestamp).isoformat())
        try:
            frame = reader.load(self.path)
            frame.schema  # noqa: B018 - resolves the snapshot now, so errors surface here
        except Exception as exc:
            if version is None and timestamp is None:
                raise
            raise VersionNotFoundError(
                f"Delta table {self.path}: cannot time travel to "
                f"{version if version is not None else timestamp} ({exc}); "
                "pick a version or timestamp listed by history().",
                path=self.path,
                version=version,
                timestamp=timestamp,
            ) from exc
        return frame

    def _save(self, writer: DataFrameWriter, commit: CommitInfo) -> int:
        # The save does not say which version it committed, and the table's latest version
        # can already be another writer's: the commit is found by a nonce in its metadata.
        txn_id = uuid.uuid4().hex
        try:
            writer.option("userMetadata", _tagged(commit, txn_id)).save(self.path)
        except _conflict_types() as exc:
            raise CommitConflictError(
                f"Delta table {self.path}: a concurrent commit conflicts with this run "
                f"({type(exc).__name__}); nothing was committed. Re-run it.",
                path=self.path,
            ) from exc
        return self._committed_version(txn_id)

    def _committed_version(self, txn_id: str) -> int:
        """The version whose userMetadata carries ``txn_id`` (newest commits searched first)."""
        delta = self._delta()
        for history in (delta.history(_RECENT), delta.history()):
            for row in history.select("version", "userMetadata").collect():
                if _txn_of(row["userMetadata"]) == txn_id:
                    return int(row["version"])
        raise StorageError(
            f"Delta table {self.path}: the write succeeded but no commit in the table's history "
            f"carries its transaction id {txn_id}; check the table's history before writing "
            "again (a concurrent VACUUM or log cleanup may have removed it).",
            path=self.path,
            txn_id=txn_id,
        )

    @staticmethod
    def _cluster(df: DataFrame, time_column: str | None) -> DataFrame:
        if not time_column:
            return df
        return df.repartitionByRange(F.col(time_column)).sortWithinPartitions(time_column)

    def create(
        self,
        df: DataFrame,
        commit: CommitInfo,
        *,
        time_column: str | None = None,
        overwrite: bool = False,
    ) -> int:
        if self.exists() and not overwrite:
            raise StorageError(
                f"Delta table {self.path} already exists; use append/replace_range, or "
                "create(..., overwrite=True) to replace it.",
                path=self.path,
            )
        writer = self._cluster(df, time_column).write.format("delta")
        writer = writer.mode("overwrite").option("overwriteSchema", "true")
        return self._save(writer, commit)

    def append(
        self,
        df: DataFrame,
        commit: CommitInfo,
        *,
        time_column: str | None = None,
        merge_schema: bool = False,
    ) -> int:
        frame = df
        if self.exists():
            frame, _ = align(df, self.schema(), path=self.path, merge_schema=merge_schema)
        writer = self._cluster(frame, time_column).write.format("delta").mode("append")
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        return self._save(writer, commit)

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
        require_time_column(df.schema, time_column, path=self.path)
        if epoch_micros(start) >= epoch_micros(end):
            raise StorageError(
                f"Delta table {self.path}: replace_range needs start < end.", path=self.path
            )
        frame = df
        if not self.exists():
            outside = df.where(
                ~F.coalesce(
                    (F.col(time_column) >= F.lit(to_utc(start)))
                    & (F.col(time_column) < F.lit(to_utc(end))),
                    F.lit(False),
                )
            ).limit(1)
            if outside.count():
                raise StorageError(
                    f"Delta table {self.path}: replace_range got rows outside the range or "
                    f"with a null {time_column}; filter the frame to the range.",
                    path=self.path,
                    column=time_column,
                )
            return self.create(df, commit, time_column=time_column)
        frame, _ = align(df, self.schema(), path=self.path, merge_schema=merge_schema)
        # Epoch micros keep the predicate exact and independent of the session time zone.
        predicate = (
            f"`{time_column}` >= timestamp_micros({epoch_micros(start)}) AND "
            f"`{time_column}` < timestamp_micros({epoch_micros(end)})"
        )
        # delta-spark checks that every written row satisfies replaceWhere (constraint check).
        writer = self._cluster(frame, time_column).write.format("delta").mode("overwrite")
        writer = writer.option("replaceWhere", predicate)
        if merge_schema:
            # New columns join the table's schema in this same commit (older rows read null);
            # align() has already refused type changes, which mergeSchema could not apply.
            writer = writer.option("mergeSchema", "true")
        return self._save(writer, commit)
