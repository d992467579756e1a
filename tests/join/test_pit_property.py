"""Property test: the engine equals the plain-Python oracle on random small data."""

from __future__ import annotations

import datetime as dt
import os

from _pit_oracle import OracleSource, oracle_join, row_sort_key
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from mesh.join import FeatureSource, SkewConfig, point_in_time_join, reduction, spine_index

BASE = dt.datetime(2024, 1, 1)
SPINE_SCHEMA = "id int, cid long, mid long, t timestamp"
A_SCHEMA = "cid long, fts timestamp, cts timestamp, x int, s string"
B_SCHEMA = "cid long, mid long, fts timestamp, y int"


def hours(h: int | None) -> dt.datetime | None:
    return None if h is None else BASE + dt.timedelta(hours=h)


# Few distinct times and keys: many ties, collisions and a hot key (1).
hour = st.integers(0, 8)
maybe_hour = st.one_of(hour, hour, hour, hour, st.none())
cid = st.sampled_from([1, 1, 1, 1, 2, 3, None])
mid = st.sampled_from([10, 10, 20, None])

spine_rows = st.lists(
    st.fixed_dictionaries(
        {"id": st.integers(0, 3), "cid": cid, "mid": mid, "t": maybe_hour.map(hours)}
    ),
    max_size=14,
)


@st.composite
def a_row(draw):
    ft = draw(maybe_hour)
    delay = draw(st.one_of(st.none(), st.integers(-1, 3)))
    ct = None if ft is None or delay is None else ft + delay
    return {
        "cid": draw(cid),
        "fts": hours(ft),
        "cts": hours(ct),
        "x": draw(st.one_of(st.none(), st.integers(0, 3))),
        "s": draw(st.sampled_from(["p", "q", None])),
    }


b_rows = st.lists(
    st.fixed_dictionaries(
        {"cid": cid, "mid": mid, "fts": maybe_hour.map(hours), "y": st.integers(0, 9)}
    ),
    max_size=10,
)


def frame(spark, rows, schema):
    names = [part.split()[0] for part in schema.split(",")]
    return spark.createDataFrame([tuple(r[n] for n in names) for r in rows], schema)


SKEWS = {
    "off": False,
    "explicit": SkewConfig(
        hot_keys=[{"cid": 1}], sample_fraction=1.0, rows_per_bucket=2, max_buckets=4
    ),
    "auto": SkewConfig(sample_fraction=1.0, min_rows=5, rows_per_bucket=3, max_buckets=5),
}


_EDGES = {
    "spine": [
        {"id": 0, "cid": 1, "mid": 10, "t": hours(2)},
        {"id": 1, "cid": 1, "mid": 10, "t": hours(8)},
    ],
    "a": [
        {"cid": 1, "fts": hours(1), "cts": hours(1), "x": 1, "s": "p"},
        {"cid": 1, "fts": hours(8), "cts": hours(8), "x": 2, "s": "q"},
    ],
    "b": [{"cid": 1, "mid": 10, "fts": hours(8), "y": 3}],
    "strict": False,
    "exclude": True,
    "ttl_a": 1,
    "ttl_b": None,
    "skew": "off",
}


# Shrinking a failure through Spark can take many minutes; MESH_HYPOTHESIS_SHRINK=1 turns it on.
_PHASES = (
    list(Phase)
    if os.environ.get("MESH_HYPOTHESIS_SHRINK")
    else [Phase.explicit, Phase.reuse, Phase.generate]
)


@settings(
    max_examples=int(os.environ.get("MESH_HYPOTHESIS_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=_PHASES,
)
@given(
    spine=spine_rows,
    a=st.lists(a_row(), max_size=14),
    b=b_rows,
    strict=st.booleans(),
    exclude=st.booleans(),
    ttl_a=st.one_of(st.none(), st.integers(0, 4)),
    ttl_b=st.one_of(st.none(), st.integers(0, 4)),
    skew=st.sampled_from(sorted(SKEWS)),
    strategy=st.sampled_from(["sorted", "indexed", "indexed-crowded", "indexed-partitioned"]),
)
# The time-range pruning's edges, always run: rows at exactly the spine's last time, and
# one exactly `ttl` old at its first (random draws rarely hit both at the default count).
@example(**_EDGES, strategy="sorted")
@example(**_EDGES, strategy="indexed")
@example(**_EDGES, strategy="indexed-partitioned")
def test_engine_matches_oracle(spark, spine, a, b, strict, exclude, ttl_a, ttl_b, skew, strategy):
    ttl_a_delta = None if ttl_a is None else dt.timedelta(hours=ttl_a)
    ttl_b_delta = None if ttl_b is None else dt.timedelta(hours=ttl_b)
    spine_df = frame(spark, spine, SPINE_SCHEMA)
    a_df = frame(spark, a, A_SCHEMA)
    b_df = frame(spark, b, B_SCHEMA)
    # "indexed-crowded": cells of ~3 spine times and 1 slot, so many source rows fall in
    # crowded cells and stay unreduced next to reduced ones.
    crowded = strategy == "indexed-crowded"
    # "indexed-partitioned": inputs already hash-partitioned by their keys, so each source's
    # per-bucket aggregate runs where the rows are (grouped by the keys too).
    if strategy == "indexed-partitioned":
        spine_df, a_df = spine_df.repartition(3, "cid"), a_df.repartition(3, "cid")
        b_df = b_df.repartition(2, "cid", "mid")
    slots, per_cell = reduction.SLOTS, spine_index.PER_CELL
    reduction.SLOTS, spine_index.PER_CELL = (1, 3) if crowded else (slots, per_cell)
    try:
        actual = _join(
            spine_df, a_df, b_df, strict, exclude, ttl_a_delta, ttl_b_delta, skew, strategy
        )
    finally:
        reduction.SLOTS, spine_index.PER_CELL = slots, per_cell
    expected = oracle_join(
        spine,
        ["id", "cid", "mid", "t"],
        "t",
        [
            OracleSource(a, ["cid"], "fts", ["x", "s"], "cts", exclude, ttl_a_delta),
            OracleSource(b, ["cid", "mid"], "fts", ["y"], ttl=ttl_b_delta),
        ],
        strict,
    )
    assert sorted(actual, key=row_sort_key) == sorted(expected, key=row_sort_key)


def _join(spine_df, a_df, b_df, strict, exclude, ttl_a_delta, ttl_b_delta, skew, strategy):
    result = point_in_time_join(
        spine_df,
        [
            FeatureSource(
                a_df, "cid", "fts", "cts", ttl=ttl_a_delta, exclude_not_yet_created=exclude
            ),
            FeatureSource(b_df, ["cid", "mid"], "fts", ttl=ttl_b_delta),
        ],
        "t",
        strict=strict,
        skew=SKEWS[skew],
        strategy=strategy.split("-")[0],
    )
    assert result.columns == ["id", "cid", "mid", "t", "x", "s", "y"]
    return [tuple(r) for r in result.collect()]
