"""Write the example mesh's data products (and the churn spine) as Delta tables.

Each table is created in one Delta commit through ``mesh.storage``; the commit metadata keeps
the generator's config, so ``append_day`` can add the next day of transactions later (to demo
and test incremental refresh) without being told the knobs again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mesh.datagen import products as build
from mesh.datagen.config import DEFAULT_SEED, DEFAULT_START, DataGenError, GeneratorConfig
from mesh.definitions import DataProduct, MeshDefinition

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Builder = Callable[["SparkSession", GeneratorConfig], "DataFrame"]

# Data products (qualified name) and training-set spines (training set name) the generator
# knows how to make; anything else defined in conf/ must be written by its owners.
PRODUCT_BUILDERS: dict[str, Builder] = {
    "customers.customer_profiles": build.customer_profiles,
    "payments.transactions": build.transactions,
    "support.tickets": build.tickets,
}
SPINE_BUILDERS: dict[str, Builder] = {"risk.churn": build.churn_labels}
TRANSACTIONS = "payments.transactions"


@dataclass(frozen=True)
class GeneratedProduct:
    """One table the generator wrote: where, which Delta version, and its time column."""

    name: str
    path: str
    version: int
    time_column: str
    kind: str  # "data_product" or "spine"


def table_path(warehouse: str, location: str) -> str:
    """``location`` under the warehouse unless it is absolute or a URI; local paths absolute."""
    if "://" in location or os.path.isabs(location):
        return location
    if "://" in warehouse:
        return f"{warehouse.rstrip('/')}/{location}"
    return os.path.abspath(os.path.join(warehouse, location))


def generate_example_mesh(
    spark: SparkSession,
    mesh: MeshDefinition,
    *,
    start: datetime = DEFAULT_START,
    days: int = 60,
    customers: int = 200,
    seed: int = DEFAULT_SEED,
    events_per_customer_day: float = 2.0,
    config: GeneratorConfig | None = None,
    warehouse: str | None = None,
    only: Iterable[str] | None = None,
    overwrite: bool = False,
    run_id: str | None = None,
) -> dict[str, GeneratedProduct]:
    """Generate and write every data product of the example mesh, plus the churn spine.

    Deterministic: the same knobs (``start``, ``days``, ``customers``, ``seed``, rates) give
    the same rows, whatever the cluster. ``config`` replaces the individual knobs (see
    ``GeneratorConfig`` for the rates of late rows, corrections and nulls). Tables go to
    ``<warehouse>/<product.location>`` (warehouse default: ``mesh.warehouse``), each created
    in one Delta commit whose metadata records the config. ``only`` restricts the run to some
    names (``payments.transactions``, ``risk.churn``); otherwise every data product and
    training set in ``mesh`` must be one the generator knows. An existing table is an error
    unless ``overwrite`` (the previous content stays readable by time travel).

    Returns the written tables by name (data products by qualified name, spines by training
    set name).
    """
    from mesh.storage import CommitInfo

    cfg = config or GeneratorConfig(
        start=start,
        days=days,
        customers=customers,
        seed=seed,
        events_per_customer_day=events_per_customer_day,
    )
    root = warehouse or mesh.warehouse
    plan = _plan(mesh, only)
    run_id = run_id or f"datagen-{uuid.uuid4().hex[:12]}"
    tables = {
        name: _open(spark, mesh, table_path(root, location))
        for name, (location, _, _, _) in plan.items()
    }
    existing = [t.path for t in tables.values() if t.exists()]
    if existing and not overwrite:
        raise DataGenError(
            f"Tables already exist at {', '.join(existing)}; pass overwrite=True (CLI: "
            "--overwrite) to replace them, or point --warehouse at an empty folder.",
            paths=existing,
        )
    written: dict[str, GeneratedProduct] = {}
    for name, (_, time_column, kind, frame) in plan.items():
        commit = CommitInfo(
            run_id=run_id,
            operation="generate",
            range_start=cfg.start,
            range_end=cfg.end,
            extra={"generator": cfg.to_dict(), "table": name, "first_day": 0, "end_day": cfg.days},
        )
        version = tables[name].create(
            frame(spark, cfg), commit, time_column=time_column, overwrite=overwrite
        )
        written[name] = GeneratedProduct(name, tables[name].path, version, time_column, kind)
    return written


def append_day(
    spark: SparkSession,
    mesh: MeshDefinition,
    *,
    warehouse: str | None = None,
    day: int | None = None,
    config: GeneratorConfig | None = None,
    run_id: str | None = None,
) -> GeneratedProduct:
    """Append one more day of transactions (with its late rows and corrections), one commit.

    The config and the next day come from the newest generator commit of the transactions
    table unless given (``day`` counts from the config's ``start``, so ``day == days`` is the
    first day after a fresh generation). The appended rows equal that day's rows of a longer
    generation with the same config. Days already in the table are refused (they would be
    duplicated). The commit's range is the day's event-time range; some of its rows arrive
    (``ingested_ts``) after it, as late data does.
    """
    from mesh.storage import CommitInfo

    product = mesh.products.get(TRANSACTIONS)
    if product is None:
        raise DataGenError(
            f"append_day adds rows to {TRANSACTIONS}, which is not defined in "
            f"{mesh.conf_dir}; define it or use the example conf/.",
            product=TRANSACTIONS,
        )
    table = _open(spark, mesh, table_path(warehouse or mesh.warehouse, product.location))
    if not table.exists():
        raise DataGenError(
            f"No transactions table at {table.path}; run `mesh generate` first.", path=table.path
        )
    recorded_cfg, next_day = _last_generated(table)
    cfg = config or recorded_cfg
    day = next_day if day is None else day
    if day < next_day:
        raise DataGenError(
            f"Day {day} is already in {table.path} (it holds days up to {next_day - 1}); "
            f"append day {next_day} or later.",
            day=day,
            next_day=next_day,
        )
    frame = _conform(build.transactions(spark, cfg, day, day + 1), product, TRANSACTIONS)
    commit = CommitInfo(
        run_id=run_id or f"datagen-{uuid.uuid4().hex[:12]}",
        operation="append",
        range_start=cfg.day_start(day),
        range_end=cfg.day_start(day + 1),
        extra={
            "generator": cfg.to_dict(),
            "table": TRANSACTIONS,
            "first_day": day,
            "end_day": day + 1,
        },
    )
    version = table.append(frame, commit)
    return GeneratedProduct(
        TRANSACTIONS, table.path, version, product.event_timestamp, "data_product"
    )


def _open(spark: SparkSession, mesh: MeshDefinition, path: str) -> Any:
    from mesh.storage import open_table

    backend = os.environ.get("MESH_STORAGE_BACKEND") or mesh.standards.storage.backend
    return open_table(spark, path, backend=backend)


def _last_generated(table: Any) -> tuple[GeneratorConfig, int]:
    for record in table.history():
        extra = record.info.extra if record.info else {}
        if "generator" in extra:
            return GeneratorConfig.from_dict(dict(extra["generator"])), int(extra["end_day"])
    raise DataGenError(
        f"{table.path} was not written by the generator (no generator config in its commit "
        "history); pass config= and day= explicitly.",
        path=table.path,
    )


def _plan(
    mesh: MeshDefinition, only: Iterable[str] | None
) -> dict[str, tuple[str, str, str, Builder]]:
    """name -> (location, time column, kind, frame builder conformed to the definition)."""
    wanted = set(only) if only is not None else None
    known = sorted([*PRODUCT_BUILDERS, *SPINE_BUILDERS])
    unknown = [
        n
        for n in [*mesh.products, *mesh.training_sets]
        if (wanted is None or n in wanted) and n not in known
    ]
    missing = sorted((wanted or set()) - set(mesh.products) - set(mesh.training_sets))
    if unknown or missing:
        reasons = []
        if unknown:
            reasons.append(
                f"{', '.join(unknown)} (no generator for it; it knows {', '.join(known)})"
            )
        if missing:
            reasons.append(f"{', '.join(missing)} (not defined in {mesh.conf_dir})")
        raise DataGenError(
            f"The generator cannot write {'; '.join(reasons)}. Restrict the run with "
            "only=[...] (CLI: --only).",
            unknown=unknown,
            missing=missing,
        )
    plan: dict[str, tuple[str, str, str, Builder]] = {}
    for name, product in mesh.products.items():
        if wanted is None or name in wanted:
            plan[name] = (
                product.location,
                product.event_timestamp,
                "data_product",
                _conformed(PRODUCT_BUILDERS[name], product, name),
            )
    for name, training in mesh.training_sets.items():
        if wanted is None or name in wanted:
            spine = training.spine
            needed = [spine.timestamp, *spine.keys, *spine.labels]
            plan[name] = (
                spine.path,
                spine.timestamp,
                "spine",
                _with_columns(SPINE_BUILDERS[name], needed, name),
            )
    return plan


def _conformed(builder: Builder, product: DataProduct, name: str) -> Builder:
    return lambda spark, cfg: _conform(builder(spark, cfg), product, name)


def _conform(df: DataFrame, product: DataProduct, name: str) -> DataFrame:
    """The definition is the contract: its columns, in its order, cast to its types."""
    from pyspark.sql import functions as F

    if not product.columns:
        return df
    absent = [c for c in product.columns if c not in df.columns]
    if absent:
        raise DataGenError(
            f"Data product {name} declares columns {', '.join(absent)} that the generator does "
            f"not produce (it makes {', '.join(df.columns)}); remove them from the definition "
            "or extend mesh/datagen/products.py.",
            product=name,
            columns=absent,
        )
    return df.select([F.col(c).cast(t).alias(c) for c, t in product.columns.items()])


def _with_columns(builder: Builder, needed: list[str], name: str) -> Builder:
    def make(spark: SparkSession, cfg: GeneratorConfig) -> DataFrame:
        df = builder(spark, cfg)
        absent = [c for c in needed if c not in df.columns]
        if absent:
            raise DataGenError(
                f"Training set {name}'s spine needs columns {', '.join(absent)} that the "
                f"generator does not produce (it makes {', '.join(df.columns)}).",
                training_set=name,
                columns=absent,
            )
        return df

    return make
