"""The example mesh's data products as DataFrames: built from ``spark.range`` and hashes only.

Nothing here loops over rows in Python or collects: every column is an expression of the row
id and the seed (see ``exprs``), so a billion rows cost the same code as a hundred.

What makes the data worth testing an engine on:

* skewed keys: a power law picks each transaction's customer, so a few customers own a large
  share of the rows (hot keys in every shuffle);
* late rows: ``ingested_ts`` is minutes after the event for most rows, hours for
  ``late_rate`` of them, days for ``very_late_rate``;
* corrections: ``correction_rate`` of transactions get a second row with the same ``tx_id``
  and ``event_ts``, a later ``ingested_ts`` and a changed amount;
* nulls: some amounts, segments and satisfaction scores are null;
* edges: about 1% of transactions happen exactly at midnight (window boundaries), and
  every tenth customer has a profile but no transactions and no tickets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from mesh.datagen.config import GeneratorConfig
from mesh.datagen.exprs import between, choice, normal, seconds_to_ts, uniform

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DAY = 86_400
HOUR = 3_600


def _start_epoch(cfg: GeneratorConfig) -> int:
    return int(cfg.start.timestamp())


def _active_customer(cfg: GeneratorConfig, u: Column, skew: float) -> Column:
    """The customer id of the k-th active customer, k drawn by a power law over ``u``."""
    n_active = cfg.active_customers
    k = F.least(F.floor(F.lit(n_active) * F.pow(u, F.lit(skew))), F.lit(n_active - 1))
    # Active ids skip every multiple of 10: k = 0..8 -> 1..9, 9..17 -> 11..19, ...
    return (F.floor(k / 9) * 10 + k % 9 + 1).cast("long")


def _arrival_lag(cfg: GeneratorConfig, salt: str, row: Column) -> Column:
    """Seconds between an event and its arrival in the lake: minutes, hours or days."""
    seed = cfg.seed
    kind = uniform(seed, salt + ".kind", row)
    size = uniform(seed, salt + ".size", row)
    return F.floor(
        F.when(kind < cfg.very_late_rate, between(size, DAY, 3 * DAY))
        .when(kind < cfg.very_late_rate + cfg.late_rate, between(size, HOUR, 12 * HOUR))
        .otherwise(between(size, 30, 1800))
    )


def transactions(
    spark: SparkSession, cfg: GeneratorConfig, first_day: int = 0, end_day: int | None = None
) -> DataFrame:
    """Card transactions of days ``[first_day, end_day)`` (default: the configured days).

    Row ``i`` of the whole history is always the same transaction, so a day appended later
    equals the day generated with a longer range.
    """
    end_day = cfg.days if end_day is None else end_day
    per_day = cfg.transactions_per_day
    seed = cfg.seed
    row = F.col("id")
    n_merchants = max(5, cfg.customers // 4)
    day = F.floor(row / per_day)
    second = F.when(uniform(seed, "tx.midnight", row) < 0.01, F.lit(0)).otherwise(
        F.floor(uniform(seed, "tx.second", row) * DAY)
    )
    event_s = F.lit(_start_epoch(cfg)) + day * DAY + second
    raw_amount = F.greatest(F.round(F.exp(3.0 + normal(seed, "tx.amount", row)), 2), F.lit(0.01))
    # A correction moves the amount by 5-45%, never to the same value, never below a cent.
    delta = F.greatest(
        F.round(raw_amount * between(uniform(seed, "tx.fix", row), 0.05, 0.45), 2), F.lit(0.01)
    )
    corrected_amount = F.when(
        (uniform(seed, "tx.fix_dir", row) < 0.5) & (raw_amount - delta >= 0.01), raw_amount - delta
    ).otherwise(raw_amount + delta)
    base = spark.range(first_day * per_day, end_day * per_day).select(
        (row + 1).alias("tx_id"),
        _active_customer(cfg, uniform(seed, "tx.customer", row), cfg.skew).alias("customer_id"),
        (F.floor(F.lit(n_merchants) * F.pow(uniform(seed, "tx.merchant", row), F.lit(2.0))) + 1)
        .cast("long")
        .alias("merchant_id"),
        event_s.alias("event_s"),
        (event_s + _arrival_lag(cfg, "tx.lag", row)).alias("ingested_s"),
        F.when(uniform(seed, "tx.null", row) < cfg.amount_null_rate, F.lit(None))
        .otherwise(raw_amount)
        .alias("amount"),
        F.round(corrected_amount, 2).alias("corrected_amount"),
        F.floor(between(uniform(seed, "tx.fix_lag", row), HOUR, 48 * HOUR)).alias("fix_lag"),
        choice(
            uniform(seed, "tx.currency", row), [("EUR", 0.8), ("USD", 0.15), ("GBP", 0.05)]
        ).alias("currency"),
        choice(
            uniform(seed, "tx.channel", row),
            [("online", 0.5), ("in_store", 0.35), ("contactless", 0.15)],
        ).alias("channel"),
        (uniform(seed, "tx.refund", row) < cfg.refund_rate).alias("is_refund"),
        F.when(uniform(seed, "tx.correct", row) < cfg.correction_rate, F.array(F.lit(0), F.lit(1)))
        .otherwise(F.array(F.lit(0)))
        .alias("revisions"),
    )
    revision = F.col("revision")
    return base.select("*", F.explode("revisions").alias("revision")).select(
        "tx_id",
        "customer_id",
        "merchant_id",
        seconds_to_ts(F.col("event_s")).alias("event_ts"),
        seconds_to_ts(
            F.col("ingested_s") + F.when(revision == 1, F.col("fix_lag")).otherwise(F.lit(0))
        ).alias("ingested_ts"),
        F.when(revision == 1, F.col("corrected_amount")).otherwise(F.col("amount")).alias("amount"),
        "currency",
        "channel",
        "is_refund",
    )


def tickets(spark: SparkSession, cfg: GeneratorConfig) -> DataFrame:
    """Support tickets, one row per ticket opened; only active customers open tickets."""
    per_day = cfg.tickets_per_day
    seed = cfg.seed
    row = F.col("id")
    opened_s = (
        F.lit(_start_epoch(cfg))
        + F.floor(row / per_day) * DAY
        + F.floor(uniform(seed, "tk.second", row) * DAY)
    )
    return spark.range(0, cfg.days * per_day).select(
        (row + 1).alias("ticket_id"),
        _active_customer(cfg, uniform(seed, "tk.customer", row), 1.5).alias("customer_id"),
        seconds_to_ts(opened_s).alias("opened_ts"),
        seconds_to_ts(opened_s + _arrival_lag(cfg, "tk.lag", row)).alias("ingested_ts"),
        choice(
            uniform(seed, "tk.channel", row), [("email", 0.5), ("phone", 0.3), ("chat", 0.2)]
        ).alias("channel"),
        choice(
            uniform(seed, "tk.priority", row), [(1, 0.4), (2, 0.35), (3, 0.18), (4, 0.07)]
        ).alias("priority"),
        F.when(uniform(seed, "tk.csat_null", row) < cfg.csat_null_rate, F.lit(None))
        .otherwise(F.floor(between(uniform(seed, "tk.csat", row), 1, 6)).cast("double"))
        .alias("csat"),
    )


def customer_profiles(spark: SparkSession, cfg: GeneratorConfig) -> DataFrame:
    """One to three profile versions per customer (every customer, active or not).

    The first version predates the generated range (30 days to 2 years before ``start``), so
    every customer has a profile from the first day; later versions fall inside the range.
    """
    seed = cfg.seed
    cid = F.col("customer_id")
    rev = F.col("revision")
    versions = F.col("versions")
    start = _start_epoch(cfg)
    span = cfg.days * DAY
    first_s = F.lit(start) - F.floor(between(uniform(seed, "pf.first", cid), 30, 730) * DAY)
    change_s = F.lit(start) + F.floor(
        (rev - 1 + uniform(seed, "pf.change", cid, rev)) / F.greatest(versions - 1, F.lit(1)) * span
    )
    updated_s = F.when(rev == 0, first_s).otherwise(change_s)
    lag_kind = uniform(seed, "pf.lag_kind", cid, rev)
    lag = F.floor(
        F.when(lag_kind < 0.1, between(uniform(seed, "pf.lag", cid, rev), DAY, 7 * DAY)).otherwise(
            between(uniform(seed, "pf.lag", cid, rev), 600, 2 * HOUR)
        )
    )
    customers = spark.range(1, cfg.customers + 1).select(F.col("id").alias("customer_id"))
    return (
        customers.select(
            "customer_id",
            (F.lit(1) + F.floor(uniform(seed, "pf.versions", cid) * 3))
            .cast("int")
            .alias("versions"),
        )
        .select("*", F.explode(F.sequence(F.lit(0), versions - 1)).alias("revision"))
        .select(
            "customer_id",
            seconds_to_ts(updated_s).alias("updated_ts"),
            seconds_to_ts(updated_s + lag).alias("ingested_ts"),
            choice(
                uniform(seed, "pf.country", cid),
                [("DE", 0.35), ("FR", 0.2), ("NL", 0.15), ("ES", 0.15), ("IT", 0.1), ("PL", 0.05)],
            ).alias("country"),
            F.when(uniform(seed, "pf.segment_null", cid, rev) < cfg.segment_null_rate, F.lit(None))
            .otherwise(
                choice(
                    uniform(seed, "pf.segment", cid, rev),
                    [("mass", 0.6), ("affluent", 0.2), ("business", 0.12), ("student", 0.08)],
                )
            )
            .alias("segment"),
            (F.lit(1945) + F.floor(uniform(seed, "pf.birth", cid) * 60))
            .cast("int")
            .alias("birth_year"),
            choice(
                uniform(seed, "pf.limit", cid, rev),
                [(500.0, 0.2), (1000.0, 0.3), (2500.0, 0.25), (5000.0, 0.15), (10000.0, 0.1)],
            ).alias("credit_limit"),
        )
    )


def churn_labels(spark: SparkSession, cfg: GeneratorConfig) -> DataFrame:
    """The churn training set's spine: one or two labelled points in time per customer.

    Labels fall in the last three quarters of the range (so features have history); a fifth
    of them sit exactly at midnight, on the snapshot grid. Inactive customers churn more
    often, and so do the less active of the active ones.
    """
    seed = cfg.seed
    cid = F.col("customer_id")
    i = F.col("label")
    n = F.col("labels")
    start = _start_epoch(cfg)
    span = cfg.days * DAY
    offset = F.floor(
        (F.lit(0.25) + F.lit(0.75) * (i + uniform(seed, "cl.when", cid, i)) / n) * span
    )
    offset = F.when(
        uniform(seed, "cl.midnight", cid, i) < 0.2, F.floor(offset / DAY) * DAY
    ).otherwise(offset)
    inactive = cid % 10 == 0
    activity_rank = (cid - F.floor(cid / 10) - 1) / F.lit(max(cfg.active_customers, 1))
    p_churn = F.when(inactive, F.lit(0.6)).otherwise(F.lit(0.05) + F.lit(0.25) * activity_rank)
    customers = spark.range(1, cfg.customers + 1).select(F.col("id").alias("customer_id"))
    return (
        customers.select(
            "customer_id",
            (F.lit(1) + F.floor(uniform(seed, "cl.n", cid) * 2)).cast("int").alias("labels"),
        )
        .select("*", F.explode(F.sequence(F.lit(0), n - 1)).alias("label"))
        .select(
            "customer_id",
            seconds_to_ts(F.lit(start) + offset).alias("label_ts"),
            (uniform(seed, "cl.churned", cid, i) < p_churn).alias("churned"),
        )
        .dropDuplicates(["customer_id", "label_ts"])
    )
