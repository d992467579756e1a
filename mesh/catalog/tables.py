"""The catalog's Delta tables under ``<warehouse>/_catalog/<table>``.

Every table is append-only, so concurrent writers (two publishes, a publish and a read audit)
never conflict: ``mesh.storage`` rebases concurrent appends, and a conflict that still
surfaces is retried here. Rows are never updated; the current state is derived when reading
(for example the latest ``feature_sets`` row per name).

A publish writes several tables; the ``versions`` row is its commit point. Readers only see
``feature_sets``, ``statistics``, ``checks`` and ``lineage`` rows whose ``publish_id`` has a
``versions`` row (or, for training sets, a ``manifests`` row), so a publish that died half-way
leaves rows nobody reads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mesh.errors import CatalogError, CommitConflictError, StorageError
from mesh.storage import CommitInfo, normalize_path, open_table

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

CATALOG_DIR = "_catalog"
RETRIES = 5

# name -> list of (column, Spark SQL type). Kept as text so this module reads without Spark.
SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "feature_sets": [
        ("publish_id", "string"),
        ("name", "string"),
        ("domain", "string"),
        ("set_name", "string"),
        ("kind", "string"),
        ("entity", "string"),
        ("owner", "string"),
        ("description", "string"),
        ("tags", "array<string>"),
        ("visibility", "string"),
        ("allowed_domains", "array<string>"),
        ("sources", "array<string>"),
        ("features_json", "string"),
        ("semantic_version", "string"),
        ("published_at", "timestamp"),
    ],
    "versions": [
        ("publish_id", "string"),
        ("name", "string"),
        ("domain", "string"),
        ("semantic_version", "string"),
        ("major", "int"),
        ("delta_version", "bigint"),
        ("table_path", "string"),
        ("data_hash", "string"),
        ("metadata_hash", "string"),
        ("definition_json", "string"),
        ("bump", "string"),
        ("reasons", "array<string>"),
        ("range_start", "timestamp"),
        ("range_end", "timestamp"),
        ("row_count", "bigint"),
        ("published_at", "timestamp"),
        ("publisher", "string"),
        ("run_id", "string"),
    ],
    "statistics": [
        ("publish_id", "string"),
        ("name", "string"),
        ("semantic_version", "string"),
        ("feature", "string"),
        ("stats_json", "string"),
        ("published_at", "timestamp"),
    ],
    "checks": [
        ("publish_id", "string"),
        ("name", "string"),
        ("semantic_version", "string"),
        ("check", "string"),
        ("feature", "string"),
        ("passed", "boolean"),
        ("record_json", "string"),
        ("published_at", "timestamp"),
    ],
    "lineage": [
        ("publish_id", "string"),
        ("from_kind", "string"),
        ("from_name", "string"),
        # The version of the source a global set's publish read; null for data products and
        # for edges recorded before versions were.
        ("from_version", "string"),
        ("to_kind", "string"),
        ("to_name", "string"),
        ("to_version", "string"),
        ("recorded_at", "timestamp"),
    ],
    "manifests": [
        ("publish_id", "string"),
        ("name", "string"),
        ("domain", "string"),
        ("manifest_json", "string"),
        ("table_path", "string"),
        ("recorded_at", "timestamp"),
        ("recorder", "string"),
    ],
    "audit": [
        ("event_id", "string"),
        ("at", "timestamp"),
        ("user", "string"),
        ("domain", "string"),
        ("action", "string"),
        ("purpose", "string"),
        ("feature_set", "string"),
        ("features", "array<string>"),
        ("decision", "string"),
        ("denied_features", "array<string>"),
        ("missing_grants", "array<string>"),
        ("reason", "string"),
        # The domain whose data the row is about, when it is no feature set's: the owner of
        # a training table a read was refused. Null otherwise and in rows written before.
        ("owner_domain", "string"),
        # The version a read resolved (allowed or denied): semantic, and the Delta commit when
        # known. Null when none was resolved (refused before) and in rows written before.
        ("semantic_version", "string"),
        ("delta_version", "bigint"),
    ],
}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """Spark's ``collect`` gives naive local datetimes; make them aware UTC."""
    if value is None:
        return None
    return value.astimezone(timezone.utc)


# How a Python caller chooses the warehouse (the CLI says --warehouse).
LOOKUP_HINT = (
    "set MESH_WAREHOUSE or storage.warehouse in conf/mesh.yaml (a relative path is taken "
    "from the working directory)"
)


def require_warehouse(warehouse: str, hint: str) -> None:
    """Refuse to read the catalog of a local warehouse folder that does not exist.

    Without it a lookup answers as an empty catalog, which reads as "nothing published"
    when the path is wrong. URIs (s3://, abfss://, dbfs:/ ...) are not checked: an object
    store has no folders, so a missing warehouse and an empty one look the same there.
    ``hint`` says how the caller chooses the warehouse.
    """
    location = normalize_path(warehouse)
    if not os.path.isabs(location) or os.path.isdir(location):
        return
    shown = warehouse if warehouse == location else f"{warehouse} ({location})"
    raise CatalogError(
        f"no warehouse at {shown}; {hint}, or create it: `mesh generate` writes the example "
        "data products into it, `mesh demo` the whole example mesh, `mesh publish` a feature "
        "set",
        warehouse=warehouse,
        path=location,
    )


def spark_schema(table: str) -> StructType:
    """The Spark schema of catalog table ``table``, built without a session (``fromDDL``
    parses in the JVM; the catalog's records are read and written without one)."""
    from pyspark.sql import types as T

    atomic: dict[str, T.DataType] = {
        "string": T.StringType(),
        "timestamp": T.TimestampType(),
        "int": T.IntegerType(),
        "bigint": T.LongType(),
        "boolean": T.BooleanType(),
    }

    def parse(kind: str) -> T.DataType:
        if kind.startswith("array<") and kind.endswith(">"):
            return T.ArrayType(parse(kind[len("array<") : -1]))
        return atomic[kind]

    return T.StructType([T.StructField(name, parse(kind)) for name, kind in SCHEMAS[table]])


def arrow_rows(table: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """``rows`` of catalog table ``table`` as Arrow, with its columns and Spark's types.

    Timestamps are UTC instants (naive datetimes are taken as UTC, as everywhere in mesh).
    """
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(spark_schema(table), timezone="UTC")
    columns = {f.name: [row.get(f.name) for row in rows] for f in schema}
    return pa.Table.from_pydict(columns, schema=schema)


class Catalog:
    """Handle on the catalog tables of one warehouse; cheap to create, nothing read yet."""

    def __init__(self, spark: SparkSession, warehouse: str, backend: str = "auto") -> None:
        self.spark = spark
        self.warehouse = warehouse.rstrip("/")
        self.backend = backend

    def path(self, table: str) -> str:
        return f"{self.warehouse}/{CATALOG_DIR}/{table}"

    def report_path(self, name: str, version: str, publish_id: str | None = None) -> str:
        """HTML report of one publish (``publish_id``) of a version, never overwritten.

        Without ``publish_id``: the version's stable page, a copy of the report of its
        newest landed publish.
        """
        base = self._reports(name, version)
        return f"{base}/{publish_id}.html" if publish_id else f"{base}.html"

    def refusal_report_path(self, name: str, version: str, attempt_id: str) -> str:
        """HTML report of a publish that governance refused (no version was recorded)."""
        return f"{self._reports(name, version)}/refused/{attempt_id}.html"

    def _reports(self, name: str, version: str) -> str:
        # Absolute (or the URI): the paths are given to the user, who may be elsewhere.
        return f"{normalize_path(self.warehouse)}/{CATALOG_DIR}/reports/{name}/{version}"

    def _check(self, table: str) -> None:
        if table not in SCHEMAS:
            raise CatalogError(
                f"catalog table {table!r} does not exist; expected one of {', '.join(SCHEMAS)}",
                table=table,
            )

    @contextmanager
    def _readable(self, table: str) -> Iterator[None]:
        """A catalog table whose files cannot be read (a damaged or foreign ``_delta_log``,
        a file where its folder should be) as one ``CatalogError`` naming it, not delta-rs's
        ``OSError``/``DeltaError`` from deep inside a command."""
        from deltalake.exceptions import DeltaError

        from mesh.storage.commit import delta_rs_detail

        try:
            yield
        except (OSError, DeltaError, StorageError) as exc:
            # The storage layer's own words are about tables in general: its cause is ours.
            cause = exc.__cause__ if isinstance(exc, StorageError) else None
            detail = delta_rs_detail(cause or exc)
            raise CatalogError(
                f"catalog table {table} at {self.path(table)} cannot be read ({detail}); "
                f"restore its files (the Delta log under {CATALOG_DIR}/{table}/_delta_log) "
                "from a backup or the storage's versioning",
                table=table,
                path=self.path(table),
            ) from exc

    def append(self, table: str, rows: Sequence[Mapping[str, Any]], commit: CommitInfo) -> int:
        """Append ``rows`` (dicts keyed by column) to ``table`` in one Delta commit.

        Retries a ``CommitConflictError`` a few times (appends never overlap, so a retry only
        rebases). Returns the committed version; ``-1`` when there is nothing to write.
        """
        self._check(table)
        if not rows:
            return -1
        columns = [name for name, _ in SCHEMAS[table]]
        unknown = sorted({key for row in rows for key in row} - set(columns))
        if unknown:
            raise CatalogError(
                f"catalog table {table}: unknown column(s) {', '.join(unknown)}; "
                f"columns are {', '.join(columns)}",
                table=table,
                columns=unknown,
            )
        data = arrow_rows(table, rows)
        handle = open_table(self.spark, self.path(table), backend=self.backend)
        # A table an earlier engine created may lack a column added since: the first append
        # adds it (its earlier rows read it as null).
        with self._readable(table):
            widen = handle.exists() and not set(columns) <= set(handle.schema().names)
        for attempt in range(RETRIES):
            try:
                return handle.append_rows(data, commit, merge_schema=widen)
            except CommitConflictError:
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def version(self, table: str) -> int | None:
        """Latest Delta version of a catalog table, ``None`` when it does not exist yet."""
        self._check(table)
        handle = open_table(self.spark, self.path(table), backend=self.backend)
        with self._readable(table):
            return handle.latest_version() if handle.exists() else None

    def rows(self, table: str, **equal: Any) -> list[dict[str, Any]]:
        """Every row of ``table`` (optionally where ``column == value``) as plain dicts.

        Timestamps come back as aware UTC datetimes; a column the table lacks (created by an
        earlier engine) as None. A table that does not exist yet has no rows.
        """
        import pyarrow.compute as pc

        self._check(table)
        handle = open_table(self.spark, self.path(table), backend=self.backend)
        with self._readable(table):
            if not handle.exists():
                return []
            data = handle.read_rows()
        for column, value in equal.items():
            data = data.filter(pc.equal(data[column], value))
        stamps = [n for n, kind in SCHEMAS[table] if kind == "timestamp"]
        out = []
        for row in data.to_pylist():
            item = {name: None for name, _ in SCHEMAS[table]} | row
            for column in stamps:
                item[column] = as_utc(item.get(column))
            out.append(item)
        return out

    def published_ids(self) -> set[str]:
        """``publish_id`` of every landed publish (versions) and recorded training set."""
        ids = {r["publish_id"] for r in self.rows("versions")}
        return ids | {r["publish_id"] for r in self.rows("manifests")}
