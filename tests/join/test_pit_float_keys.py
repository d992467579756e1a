"""Float and double keys match as in a Spark equi-join: 0.0 = -0.0, NaN = NaN, null never."""

from __future__ import annotations

import struct

import pytest

from mesh.join import FeatureSource, point_in_time_join

SPINE = """SELECT * FROM VALUES
    (1, -0.0D, 'a', TIMESTAMP'2024-01-02 00:00:00'),
    (2, CAST('NaN' AS DOUBLE), 'a', TIMESTAMP'2024-01-02 00:00:00'),
    (3, -CAST('NaN' AS DOUBLE), 'a', TIMESTAMP'2024-01-02 00:00:00'),
    (4, CAST(NULL AS DOUBLE), 'a', TIMESTAMP'2024-01-02 00:00:00'),
    (5, 0.0D, 'a', TIMESTAMP'2024-01-02 00:00:00'),
    (6, 1.5D, 'a', TIMESTAMP'2024-01-02 00:00:00')
    AS t(id, k, k2, ts)"""
SOURCE = """SELECT * FROM VALUES
    (0.0D, 'a', TIMESTAMP'2024-01-01 00:00:00', 10.0D),
    (-CAST('NaN' AS DOUBLE), 'a', TIMESTAMP'2024-01-01 00:00:00', 20.0D),
    (CAST(NULL AS DOUBLE), 'a', TIMESTAMP'2024-01-01 00:00:00', 30.0D)
    AS t(k, k2, fts, v)"""


def bits(value: float | None) -> str | None:
    """A double's bit pattern: tells -0.0 from 0.0 and one NaN from another."""
    return None if value is None else struct.pack(">d", value).hex()


@pytest.mark.parametrize("key_type", ["double", "float"])
@pytest.mark.parametrize("keys", [["k"], ["k", "k2"]])
@pytest.mark.parametrize(
    ("strategy", "skew"), [("sorted", False), ("indexed", False), ("indexed", [{"k": 0.0}])]
)
def test_float_keys_match_as_in_a_spark_equi_join(spark, key_type, keys, strategy, skew):
    spine = spark.sql(SPINE).selectExpr("id", f"CAST(k AS {key_type}) AS k", "k2", "ts")
    source = spark.sql(SOURCE).selectExpr(f"CAST(k AS {key_type}) AS k", "k2", "fts", "v")
    if skew and len(keys) == 2:
        skew = [{"k": 0.0, "k2": "a"}]
    # The reference: Spark's own equi-join (every source row is eligible: fts < ts).
    reference = {r["id"]: r["v"] for r in spine.join(source, keys, "left").collect()}
    assert reference == {1: 10.0, 2: 20.0, 3: 20.0, 4: None, 5: 10.0, 6: None}

    out = point_in_time_join(
        spine,
        FeatureSource(source, keys, "fts", features=["v"]),
        "ts",
        strategy=strategy,
        skew=skew,
    )
    rows = out.collect()
    assert {r["id"]: r["v"] for r in rows} == reference
    # The spine's keys come out exactly as given: -0.0 stays -0.0, each NaN its own bits.
    given = {r["id"]: bits(r["k"]) for r in spine.collect()}
    assert {r["id"]: bits(r["k"]) for r in rows} == given
    assert out.schema == spine.schema.add("v", "double")
