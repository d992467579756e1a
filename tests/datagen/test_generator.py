"""The example-data generator: deterministic, shaped like conf/, messy in the documented ways."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mesh.datagen import products as build
from mesh.datagen.config import DataGenError, GeneratorConfig, config_for_scale
from mesh.datagen.generator import append_day, generate_example_mesh
from mesh.definitions import load_mesh

CONF = Path(__file__).resolve().parents[2] / "conf"
START = datetime(2024, 3, 1, tzinfo=timezone.utc)
# Many events on few days: enough rows for the rates to show, few rows to write.
DENSE = GeneratorConfig(
    start=START,
    days=4,
    customers=50,
    seed=11,
    events_per_customer_day=12.0,
    tickets_per_customer_day=0.5,
)


@pytest.fixture(scope="module")
def mesh() -> Any:
    return load_mesh(CONF)


@pytest.fixture(scope="module")
def tx(spark: Any) -> Any:
    return build.transactions(spark, DENSE).cache()


def _rows(df: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.collect())


def test_same_seed_same_rows_other_seed_other_rows(spark: Any) -> None:
    small = GeneratorConfig(start=START, days=2, customers=20, seed=3)
    other = GeneratorConfig(start=START, days=2, customers=20, seed=4)
    for make in (build.transactions, build.tickets, build.customer_profiles, build.churn_labels):
        first = _rows(make(spark, small))
        assert first, f"{make.__name__} produced no rows"
        assert first == _rows(make(spark, small)), f"{make.__name__} is not deterministic"
        assert first != _rows(make(spark, other)), f"{make.__name__} ignores the seed"


def test_rows_do_not_depend_on_partitioning(spark: Any) -> None:
    cfg = GeneratorConfig(start=START, days=2, customers=20, seed=3)
    df = build.transactions(spark, cfg)
    assert _rows(df) == _rows(df.repartition(7)) == _rows(df.coalesce(1))


def test_keys_are_skewed_and_inactive_customers_have_no_events(spark: Any, tx: Any) -> None:
    from pyspark.sql import functions as F

    per_customer = [
        r["n"]
        for r in tx.groupBy("customer_id")
        .agg(F.count("*").alias("n"))
        .orderBy(F.desc("n"))
        .collect()
    ]
    total = sum(per_customer)
    top_tenth = sum(per_customer[: max(1, DENSE.customers // 10)])
    assert top_tenth / total > 0.3, f"top 10% of customers own only {top_tenth / total:.0%}"
    tickets = build.tickets(spark, DENSE)
    for df in (tx, tickets):
        ids = {r[0] for r in df.select("customer_id").distinct().collect()}
        assert not {i for i in ids if i % 10 == 0}, "inactive customers (id % 10 == 0) have rows"
        assert ids <= set(range(1, DENSE.customers + 1))
    profiles = {
        r[0]
        for r in build.customer_profiles(spark, DENSE).select("customer_id").distinct().collect()
    }
    assert profiles == set(range(1, DENSE.customers + 1))


def test_late_rows_and_corrections(tx: Any) -> None:
    from pyspark.sql import functions as F

    lag = F.col("ingested_ts").cast("long") - F.col("event_ts").cast("long")
    stats = tx.agg(
        F.min(lag).alias("min_lag"),
        F.sum((lag > 3600).cast("int")).alias("hours_late"),
        F.sum((lag > 86400).cast("int")).alias("days_late"),
        F.sum((F.col("event_ts") == F.date_trunc("day", "event_ts")).cast("int")).alias("midnight"),
    ).first()
    assert stats["min_lag"] >= 0, "a row arrived before its event"
    assert stats["hours_late"] > 0 and stats["days_late"] > 0
    assert stats["midnight"] > 0, "no event on a window boundary"
    revisions = (
        tx.groupBy("tx_id")
        .agg(
            F.count("*").alias("n"),
            F.countDistinct("event_ts").alias("event_times"),
            F.min("ingested_ts").alias("first"),
            F.max("ingested_ts").alias("last"),
            F.min("amount").alias("low"),
            F.max("amount").alias("high"),
        )
        .where("n > 1")
        .collect()
    )
    assert revisions, "no corrections generated"
    for r in revisions:
        assert r["n"] == 2 and r["event_times"] == 1 and r["last"] > r["first"]
        assert r["low"] != r["high"], f"correction of tx {r['tx_id']} kept the amount"


def test_null_rates_follow_the_knobs(spark: Any, tx: Any) -> None:
    from pyspark.sql import functions as F

    def null_rate(df: Any, column: str) -> float:
        row = df.agg(F.avg(F.col(column).isNull().cast("double")).alias("r")).first()
        return float(row["r"])

    assert 0 < null_rate(tx, "amount") < 0.05
    assert 0.2 < null_rate(build.tickets(spark, DENSE), "csat") < 0.6
    assert null_rate(build.customer_profiles(spark, DENSE), "segment") < 0.2
    quiet = GeneratorConfig(
        start=START, days=1, customers=20, amount_null_rate=0.0, csat_null_rate=0.0
    )
    assert null_rate(build.transactions(spark, quiet), "amount") == 0
    assert null_rate(build.tickets(spark, quiet), "csat") == 0


def test_churn_spine_points_into_the_range(spark: Any) -> None:
    from pyspark.sql import functions as F

    labels = build.churn_labels(spark, DENSE)
    row = labels.agg(
        F.min("label_ts").alias("lo"),
        F.max("label_ts").alias("hi"),
        F.countDistinct("churned").alias("classes"),
        F.count("*").alias("n"),
    ).first()
    assert row["lo"].replace(tzinfo=timezone.utc) >= START
    assert row["hi"].replace(tzinfo=timezone.utc) < DENSE.end
    assert row["classes"] == 2 and row["n"] >= DENSE.customers
    assert labels.dropDuplicates(["customer_id", "label_ts"]).count() == row["n"]


def test_bad_knobs_are_refused_before_spark() -> None:
    with pytest.raises(DataGenError) as info:
        GeneratorConfig(days=0)
    assert info.value.params == {"knob": "days", "found": 0}
    with pytest.raises(DataGenError) as info:
        config_for_scale("huge")
    assert info.value.params["knob"] == "scale"
    with pytest.raises(DataGenError) as info:
        GeneratorConfig(late_rate=0.9, very_late_rate=0.2)
    assert info.value.params["knob"] == "late_rate"
    assert config_for_scale("small", customers=None, days=5).days == 5


def test_config_round_trips_through_commit_metadata() -> None:
    assert GeneratorConfig.from_dict(DENSE.to_dict()) == DENSE


@pytest.fixture(scope="module")
def generated(spark: Any, mesh: Any, tmp_path_factory: Any) -> tuple[str, dict[str, Any]]:
    warehouse = str(tmp_path_factory.mktemp("warehouse"))
    cfg = GeneratorConfig(start=START, days=2, customers=20, seed=5)
    return warehouse, generate_example_mesh(spark, mesh, config=cfg, warehouse=warehouse)


def test_writes_every_product_as_defined_in_conf(
    spark: Any, mesh: Any, generated: tuple[str, dict[str, Any]]
) -> None:
    from mesh.storage import open_table

    warehouse, written = generated
    assert set(written) == {*mesh.products, *mesh.training_sets}
    for name, product in mesh.products.items():
        table = open_table(spark, written[name].path)
        assert written[name].path == str(Path(warehouse) / product.location)
        schema = {f.name: f.dataType.simpleString() for f in table.schema().fields}
        assert schema == dict(product.columns), name
        record = table.history()[0]
        assert record.info is not None and record.info.operation == "generate"
        assert record.info.extra["generator"]["seed"] == 5
    spine = mesh.training_sets["risk.churn"].spine
    columns = open_table(spark, written["risk.churn"].path).read().columns
    assert {spine.timestamp, *spine.keys, *spine.labels} <= set(columns)


def test_existing_tables_are_not_overwritten_silently(
    spark: Any, mesh: Any, generated: tuple[str, dict[str, Any]]
) -> None:
    warehouse, _ = generated
    with pytest.raises(DataGenError) as info:
        generate_example_mesh(
            spark, mesh, warehouse=warehouse, days=1, customers=5, only=["support.tickets"]
        )
    assert info.value.params["paths"][0].endswith("products/support/tickets")


def test_unknown_product_is_refused(spark: Any, mesh: Any, tmp_path: Path) -> None:
    with pytest.raises(DataGenError) as info:
        generate_example_mesh(spark, mesh, warehouse=str(tmp_path), only=["payments.refunds"])
    assert info.value.params["missing"] == ["payments.refunds"]


def test_append_day_adds_the_next_day_as_a_longer_run_would(
    spark: Any, mesh: Any, generated: tuple[str, dict[str, Any]]
) -> None:
    from pyspark.sql import functions as F

    from mesh.storage import open_table

    warehouse, written = generated
    table = open_table(spark, written["payments.transactions"].path)
    before = table.latest_version()
    appended = append_day(spark, mesh, warehouse=warehouse)
    assert appended.version == before + 1
    info = table.history()[0].info
    assert info is not None and info.operation == "append"
    assert (info.range_start, info.range_end) == (
        START + timedelta(days=2),
        START + timedelta(days=3),
    )
    new_rows = table.read().exceptAll(table.read(version=before))
    longer = GeneratorConfig(start=START, days=3, customers=20, seed=5)
    expected = build.transactions(spark, longer).where(
        F.col("event_ts") >= F.lit(START + timedelta(days=2))
    )
    assert _rows(new_rows) == _rows(expected.select(*new_rows.columns))
    with pytest.raises(DataGenError) as refused:
        append_day(spark, mesh, warehouse=warehouse, day=1)
    assert refused.value.params == {"day": 1, "next_day": 3}
