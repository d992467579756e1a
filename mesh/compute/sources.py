"""Reading a feature set's data product and putting every row on the time line.

Each source row gets three integer columns (microseconds since the epoch, UTC):

* ``_e_us``: event time (``DataProduct.event_timestamp``);
* ``_ar_us``: arrival time (``DataProduct.created_timestamp``; the event time when absent);
* ``_av_us``: availability, the first moment the row may influence a value: the later of the
  two when the feature set excludes late data, else the event time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mesh.definitions import DataProduct, FeatureSet, MeshDefinition
from mesh.errors import ComputeError, first_line
from mesh.storage import in_warehouse

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

E_US = "_e_us"
AR_US = "_ar_us"
AV_US = "_av_us"
ENGINE_COLUMNS = (E_US, AR_US, AV_US)  # what ``on_time_line`` adds to the source's rows


@dataclass(frozen=True)
class SourceRead:
    """A source as read by one run: rows, where they came from and the Delta version read."""

    product: DataProduct
    path: str
    df: DataFrame
    version: int | None  # None for Parquet sources (no versions to record)


def source_product(mesh: MeshDefinition, fs: FeatureSet) -> DataProduct:
    """The data product a feature set reads; ``ComputeError`` when it is not defined."""
    product = mesh.product(fs.source, fs.domain)
    if product is None:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}` (source): data product {fs.source!r} is not "
            f"defined; define it under conf/domains/{fs.domain}/ or fix `source`.",
            feature_set=fs.qualified_name,
            source=fs.source,
        )
    return product


def read_source(
    spark: SparkSession,
    mesh: MeshDefinition,
    fs: FeatureSet,
    *,
    version: int | None = None,
) -> SourceRead:
    """Read the feature set's data product (Delta at ``version``, latest when None; or Parquet).

    The Delta version actually read is returned so a run can record it.
    """
    from mesh.storage import open_table

    product = source_product(mesh, fs)
    path = in_warehouse(mesh, product.location)
    if product.format == "parquet":
        try:
            df = spark.read.parquet(path)
        except Exception as exc:  # AnalysisException: path does not exist
            raise _missing(fs, product, path, exc) from exc
        return SourceRead(product, path, df, None)
    table = open_table(spark, path, backend=mesh.standards.storage.backend)
    if not table.exists():
        raise _missing(fs, product, path, None)
    pinned = table.latest_version() if version is None else version
    return SourceRead(product, path, table.read(version=pinned), pinned)


def _missing(
    fs: FeatureSet, product: DataProduct, path: str, exc: Exception | None
) -> ComputeError:
    reason = f" ({first_line(exc)})" if exc else ""
    return ComputeError(
        f"Feature set `{fs.qualified_name}` (source): data product {product.qualified_name} has "
        f"no {product.format} table at {path}{reason}; publish the data product first or fix "
        "its `path` (relative paths are under the warehouse, see MESH_WAREHOUSE).",
        feature_set=fs.qualified_name,
        source=product.qualified_name,
        path=path,
    )


def own_columns(rows: DataFrame) -> DataFrame:
    """``rows`` (the source's, from ``on_time_line``) without the columns the engine added:
    a user's expression is analysed against these, so Spark's "did you mean" for a
    misspelt column names only columns the user can write."""
    return rows.select(*[f"`{c}`" for c in rows.columns if c not in ENGINE_COLUMNS])


def uses_arrival(fs: FeatureSet, product: DataProduct) -> bool:
    """True when arrival time keeps rows out of values computed before they arrived."""
    return fs.exclude_late_data and product.created_timestamp is not None


def on_time_line(df: DataFrame, fs: FeatureSet, product: DataProduct, keys: list[str]) -> DataFrame:
    """Rows with the entity keys and ``_e_us``/``_ar_us``/``_av_us`` added.

    Rows with a null key or a null event time cannot belong to an entity's history and are
    left out; a null arrival time is read as "arrived at the event time".
    """
    from pyspark.sql import functions as F

    missing = [c for c in [*keys, product.event_timestamp] if c not in df.columns]
    if product.created_timestamp and product.created_timestamp not in df.columns:
        missing.append(product.created_timestamp)
    if missing:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}` (source {product.qualified_name}): column(s) "
            f"{', '.join(missing)} are missing from the table (columns: {', '.join(df.columns)}); "
            "fix the data product's event/created timestamp or the entity's key names.",
            feature_set=fs.qualified_name,
            source=product.qualified_name,
            missing=missing,
        )
    event = F.unix_micros(F.col(product.event_timestamp).cast("timestamp"))
    arrival = event
    if product.created_timestamp:
        arrival = F.coalesce(
            F.unix_micros(F.col(product.created_timestamp).cast("timestamp")), event
        )
    out = df.withColumn(E_US, event).withColumn(AR_US, arrival)
    available = F.greatest(F.col(E_US), F.col(AR_US)) if uses_arrival(fs, product) else F.col(E_US)
    out = out.withColumn(AV_US, available)
    return out.dropna(subset=[*keys, E_US])
