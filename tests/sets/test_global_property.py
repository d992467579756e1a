"""Global features against an obviously-correct reference, on random inputs.

The contract of a global feature table: read as of any time ``t`` (its latest row at or before
``t``, as a point-in-time join reads it; its ``created_ts`` is its ``feature_ts``), it equals
the expressions evaluated over every input as of ``t``. The reference evaluates the inputs with
the plain-Python point-in-time join of ``tests/join`` at every time where something can change
(each row's event, arrival and expiry, and a microsecond either side), with ties, late rows,
null arrivals and values, TTLs down to zero, and entities with no history in one input.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sets_data import CONF

from mesh.definitions import load_mesh
from mesh.join import FeatureSource
from mesh.sets import InputPin, compute_global_features

sys.path.insert(0, str(Path(__file__).parents[1] / "join"))
from _pit_oracle import OracleSource, oracle_join

HOUR = 3_600_000_000  # microseconds
KEYS = [1, 2, 3]
SPEND = "customer_id long, ft long, ct long, amount double"
TICKETS = "customer_id long, ft long, ct long, tickets long"


def _rows(value: st.SearchStrategy[Any]) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Rows ``(key, feature hour, arrival delay in hours or None, value)``: ties are frequent."""
    row = st.tuples(
        st.sampled_from(KEYS),
        st.integers(0, 12),
        st.one_of(st.none(), st.integers(0, 6)),
        value,
    )
    return st.lists(row, max_size=10)


def _micros(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(k, h * HOUR, None if d is None else (h + d) * HOUR, v) for k, h, d, v in rows]


def _pin(name: str, feature: str, ttl_hours: int | None, late: bool) -> InputPin:
    return InputPin(
        feature_set=name,
        semantic_version="1.0.0",
        delta_version=0,
        table=f"features/{name}",
        keys=("customer_id",),
        features={feature: feature},
        ttl_seconds=None if ttl_hours is None else ttl_hours * 3600.0,
        exclude_late_data=late,
    )


def _source(spark: Any, rows: list[tuple[Any, ...]], schema: str, pin: InputPin) -> FeatureSource:
    df = spark.createDataFrame(rows, schema).selectExpr(
        "customer_id",
        "timestamp_micros(ft) AS feature_ts",
        "timestamp_micros(ct) AS created_ts",
        *pin.features,
    )
    return FeatureSource(
        df,
        keys=["customer_id"],
        timestamp="feature_ts",
        created_timestamp="created_ts",
        ttl=pin.ttl_seconds,
        features=list(pin.features),
        name=pin.feature_set,
        exclude_not_yet_created=pin.exclude_late_data,
    )


def _expected(spend: Any, tickets: Any) -> tuple[Any, Any]:
    """``risk.combo`` in Python with SQL's nulls: ratio, big."""
    if spend is None:
        return None, None
    return spend / ((tickets or 0) + 1), spend > 25


_PHASES = (
    list(Phase)
    if os.environ.get("MESH_HYPOTHESIS_SHRINK")
    else [Phase.explicit, Phase.reuse, Phase.generate]
)


@settings(
    max_examples=int(os.environ.get("MESH_HYPOTHESIS_EXAMPLES", "30")) // 2,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=_PHASES,
)
@given(
    spend=_rows(st.one_of(st.none(), st.sampled_from([10.0, 30.0, 60.0]))),
    tickets=_rows(st.one_of(st.none(), st.integers(0, 3))),
    ttl_spend=st.one_of(st.none(), st.integers(0, 8)),
    ttl_tickets=st.one_of(st.none(), st.integers(0, 8)),
    late=st.booleans(),
)
# A row that expires with nothing after it, another hidden by a newer one before it expires.
@example(
    spend=[(1, 0, 0, 60.0), (1, 2, 1, 10.0), (2, 1, None, 30.0)],
    tickets=[(1, 1, 0, 2)],
    ttl_spend=3,
    ttl_tickets=None,
    late=True,
)
def test_global_values_equal_inputs_as_of_every_time(
    spark: Any,
    spend: list[tuple[Any, ...]],
    tickets: list[tuple[Any, ...]],
    ttl_spend: int | None,
    ttl_tickets: int | None,
    late: bool,
) -> None:
    mesh = load_mesh(CONF)
    spec = mesh.global_sets["risk.combo"]
    pins = [
        _pin("payments.spend", "amount", ttl_spend, late),
        _pin("support.tickets", "tickets", ttl_tickets, late),
    ]
    spend, tickets = _micros(spend), _micros(tickets)
    sources = [_source(spark, spend, SPEND, pins[0]), _source(spark, tickets, TICKETS, pins[1])]
    with mock.patch("mesh.sets.global_features.load_sources", return_value=sources):
        table = compute_global_features(spark, mesh, spec, pins)
    got: dict[int, list[tuple[int, Any, Any]]] = {}
    for r in table.selectExpr(
        "customer_id",
        "unix_micros(feature_ts) AS t",
        "unix_micros(created_ts) AS c",
        "ratio",
        "big",
    ).collect():
        assert r["t"] == r["c"]
        got.setdefault(r["customer_id"], []).append((r["t"], r["ratio"], r["big"]))
    for rows in got.values():
        times = [t for t, _, _ in rows]
        assert times == sorted(set(times)), "one row per (key, time)"

    # Every time where an input's value can change, and a microsecond either side.
    ttls = {0: ttl_spend, 1: ttl_tickets}
    edges = {0}
    for index, rows in enumerate((spend, tickets)):
        for _, ft, ct, _ in rows:
            edges |= {ft, ct or ft}
            if ttls[index] is not None:
                edges.add(ft + ttls[index] * HOUR + 1)
    times = sorted({t + d for t in edges for d in (-1, 0, 1)})
    probes = [{"customer_id": k, "t": t} for k in KEYS for t in times]

    def oracle(rows: list[tuple[Any, ...]], feature: str, ttl: int | None) -> OracleSource:
        return OracleSource(
            rows=[dict(zip(("customer_id", "ft", "ct", feature), r, strict=True)) for r in rows],
            keys=["customer_id"],
            timestamp="ft",
            features=[feature],
            created_timestamp="ct",
            exclude_not_yet_created=late,
            ttl=None if ttl is None else ttl * HOUR,  # type: ignore[arg-type]  # micros
        )

    inputs = oracle_join(
        probes,
        ["customer_id", "t"],
        "t",
        [oracle(spend, "amount", ttl_spend), oracle(tickets, "tickets", ttl_tickets)],
        strict=False,
    )
    for key, t, amount, count in inputs:
        before = [row for row in got.get(key, []) if row[0] <= t]
        read = before[-1][1:] if before else (None, None)
        assert read == _expected(amount, count), (key, t, amount, count, got.get(key))
