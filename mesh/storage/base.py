"""The storage interface: commit metadata records and the ``DeltaFeatureTable`` contract.

Both backends (``native``: delta-spark; ``embedded``: Spark-written Parquet committed with
delta-rs) implement :class:`DeltaFeatureTable` and write the same standard Delta tables, so a
table written by one is readable by the other and by any Delta reader.

Tables are never Hive-partitioned: a feature table is one flat set of Parquet files, clustered
by its time column when one is given (range-partitioned and sorted), so a time range maps to
few files through the per-file min/max statistics in the Delta log.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mesh.errors import StorageError, VersionFilesRemovedError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

# Marker inside the userMetadata JSON so a reader can tell a mesh commit from any other.
COMMIT_FORMAT = "mesh.commit/1"


def to_utc(value: datetime) -> datetime:
    """Normalise a datetime to aware UTC; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def epoch_micros(value: datetime) -> int:
    """Exact microseconds since the epoch (float arithmetic would lose the last digits)."""
    delta = to_utc(value) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass(frozen=True)
class CommitInfo:
    """What one job run records in its single Delta commit (stored as the commit's userMetadata).

    ``source_versions`` maps each source table (path or name) to the Delta version that was
    read, so the run can be reproduced; ``extra`` holds anything else worth keeping (row
    counts, feature set name, semantic version) and must be JSON-serialisable.
    """

    run_id: str
    operation: str
    definition_hash: str | None = None
    range_start: datetime | None = None
    range_end: datetime | None = None
    source_versions: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> str:
        """Serialise to the JSON stored in ``userMetadata`` (datetimes as UTC ISO-8601)."""
        payload = {
            "format": COMMIT_FORMAT,
            "run_id": self.run_id,
            "operation": self.operation,
            "definition_hash": self.definition_hash,
            "range_start": to_utc(self.range_start).isoformat() if self.range_start else None,
            "range_end": to_utc(self.range_end).isoformat() if self.range_end else None,
            "source_versions": {str(k): int(v) for k, v in self.source_versions.items()},
            "extra": dict(self.extra),
        }
        try:
            return json.dumps(payload, sort_keys=True, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise StorageError(
                f"Commit metadata of run `{self.run_id}` cannot be stored: {exc}; "
                "keep CommitInfo.extra to strings, numbers, booleans, lists and dicts.",
                run_id=self.run_id,
            ) from exc

    @classmethod
    def from_json(cls, text: str | None) -> CommitInfo | None:
        """Parse ``userMetadata`` back; ``None`` when it is absent or not a mesh commit."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("format") != COMMIT_FORMAT:
            return None
        start, end = data.get("range_start"), data.get("range_end")
        return cls(
            run_id=data["run_id"],
            operation=data["operation"],
            definition_hash=data.get("definition_hash"),
            range_start=datetime.fromisoformat(start) if start else None,
            range_end=datetime.fromisoformat(end) if end else None,
            source_versions=MappingProxyType(dict(data.get("source_versions") or {})),
            extra=MappingProxyType(dict(data.get("extra") or {})),
        )

    def top_level_keys(self) -> dict[str, str]:
        """Flat ``mesh.*`` keys added next to userMetadata so log readers can filter cheaply."""
        keys = {"mesh.runId": self.run_id, "mesh.operation": self.operation}
        if self.definition_hash:
            keys["mesh.definitionHash"] = self.definition_hash
        return keys


@dataclass(frozen=True)
class CommitRecord:
    """One entry of a table's history: the Delta commit plus the mesh CommitInfo, if any."""

    version: int
    timestamp: datetime
    operation: str
    info: CommitInfo | None
    raw: dict[str, Any]


class DeltaFeatureTable(ABC):
    """A versioned Delta table holding feature rows; every write is exactly one Delta commit.

    Writes return the committed version. Reads without arguments see the latest version; with
    ``version`` or ``timestamp`` they see the snapshot as of then (time travel).
    """

    backend: str = ""

    def __init__(self, spark: SparkSession, path: str) -> None:
        self.spark = spark
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, backend={self.backend!r})"

    @abstractmethod
    def exists(self) -> bool:
        """True when a Delta table (a ``_delta_log`` with at least one commit) is at ``path``."""

    @abstractmethod
    def latest_version(self) -> int:
        """Newest committed version; ``TableNotFoundError`` when there is no table."""

    @abstractmethod
    def create(
        self,
        df: DataFrame,
        commit: CommitInfo,
        *,
        time_column: str | None = None,
        overwrite: bool = False,
    ) -> int:
        """Create the table from ``df`` in one commit and return its version.

        With ``overwrite=False`` an existing table is an error; with ``overwrite=True`` the
        existing content and schema are replaced (older versions stay readable by time travel).
        ``time_column`` only clusters the written files; it is not a partition column.
        """

    @abstractmethod
    def append(
        self,
        df: DataFrame,
        commit: CommitInfo,
        *,
        time_column: str | None = None,
        merge_schema: bool = False,
    ) -> int:
        """Add the rows of ``df`` in one commit (creating the table if absent); return the version.

        The frame's columns must match the table's (any order). With ``merge_schema=True``
        new columns are added to the table in the same commit (earlier rows read them as
        null). Concurrent appends never conflict with each other.
        """

    @abstractmethod
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
        """Replace rows with ``start <= time_column < end`` by the rows of ``df`` in one commit.

        All rows of ``df`` must lie in ``[start, end)`` (a ``StorageError`` otherwise, before
        anything is committed). Rows outside the range are kept, including those in files that
        straddle a boundary (such files are rewritten without their in-range rows). Running the
        same replacement twice gives the same content. A concurrent writer that changed rows
        in the same range first makes this call fail with ``CommitConflictError``. Naive
        datetimes are taken as UTC. Creates the table if absent.

        With ``merge_schema=True`` the frame's new columns are added to the table in the same
        commit (the kept rows read them as null); a type change is still refused.
        """

    @abstractmethod
    def read(self, version: int | None = None, timestamp: datetime | None = None) -> DataFrame:
        """The table as of ``version``, or as of ``timestamp`` (the newest commit at or before it).

        ``VersionNotFoundError`` when the version does not exist or the timestamp is before the
        first commit; ``TableNotFoundError`` when there is no table.
        """

    @abstractmethod
    def history(self) -> list[CommitRecord]:
        """Every commit, newest first, with the mesh ``CommitInfo`` parsed from userMetadata."""

    @abstractmethod
    def schema(self) -> StructType:
        """Spark schema of the latest version."""

    def _files_removed(self, version: int, files: Sequence[str]) -> None:
        """``VersionFilesRemovedError`` when any of ``files`` (the data files of ``version``
        as the log lists them) no longer exists; nothing when all do."""
        from pyarrow.fs import FileType

        from mesh.storage.commit import filesystem_for

        gone = []
        for uri in files:
            filesystem, path = filesystem_for(uri)
            if filesystem.get_file_info(path).type == FileType.NotFound:
                gone.append(uri)
        if gone:
            raise VersionFilesRemovedError(
                f"Delta table {self.path}: version {version} is in the log but {len(gone)} of "
                f"its {len(files)} data file(s) were removed (e.g. {gone[0]}), as VACUUM "
                "removes the files only older versions reference; it can no longer be read. "
                "Read a newer version, or restore the files from a backup.",
                path=self.path,
                version=version,
                missing=gone,
            )

    # -- small tables (the catalog's records) --------------------------------------------

    def append_rows(self, rows: pa.Table, commit: CommitInfo, *, merge_schema: bool = False) -> int:
        """``append`` for a few rows held on the driver as Arrow (catalog records).

        Through Spark here; the embedded backend writes and commits them without a Spark job.
        """
        frame = self.spark.createDataFrame(rows)
        return self.append(frame, commit, merge_schema=merge_schema)

    def read_rows(self) -> pa.Table:
        """The latest version's rows as Arrow, for tables small enough to hold on the driver.

        Through Spark here; the embedded backend reads the files without a Spark job.
        """
        return self.read().toArrow()


def parse_history_entry(raw: dict[str, Any], version: int) -> CommitRecord:
    """Build a CommitRecord from a commitInfo dict (delta-rs or delta-spark shaped)."""
    info = CommitInfo.from_json(raw.get("userMetadata"))
    ts = raw.get("timestamp")
    if isinstance(ts, datetime):
        stamp = to_utc(ts)
    else:
        stamp = datetime.fromtimestamp(int(ts or 0) / 1000, tz=timezone.utc)
    operation = info.operation if info else str(raw.get("operation", "UNKNOWN"))
    return CommitRecord(version=version, timestamp=stamp, operation=operation, info=info, raw=raw)
