"""Statistics against plain Python on small random data, and their JSON round trip."""

from __future__ import annotations

import json
import math
import random
import statistics as pystats
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from mesh.definitions import FeatureSet
from mesh.errors import MeshError
from mesh.governance import (
    FeatureStats,
    GovernanceReport,
    compute_statistics,
    render_html,
    stats_from_dict,
    stats_to_dict,
)
from mesh.governance.statistics import bin_edges, protected_columns, redact

SCHEMA = StructType(
    [
        StructField("n", IntegerType()),
        StructField("x", DoubleType()),
        StructField("s", StringType()),
        StructField("b", BooleanType()),
        StructField("t", TimestampType()),
    ]
)
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def random_rows(seed: int, count: int = 60) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        x = rng.choice([None, math.nan, round(rng.gauss(50, 20), 3), round(rng.uniform(0, 9), 3)])
        rows.append(
            (
                rng.choice([None, rng.randint(-5, 40)]),
                x,
                rng.choice([None, "card", "wallet", "cash", "bank", "crypto", "voucher"]),
                rng.choice([None, True, False, True]),
                rng.choice([None, START + timedelta(hours=rng.randint(0, 500))]),
            )
        )
    return rows


def clean(values: list) -> list:
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def expected_bins(values: list[float], bins: int) -> list[int]:
    edges = bin_edges(min(values), max(values), bins)
    n = len(edges) - 1
    width = (edges[-1] - edges[0]) / n
    counts = [0] * n
    for v in values:
        counts[0 if n == 1 else min(max(math.floor((v - edges[0]) / width), 0), n - 1)] += 1
    return counts


def test_statistics_match_plain_python(spark) -> None:
    rows = random_rows(seed=1)
    df = spark.createDataFrame(rows, SCHEMA)
    stats = compute_statistics(df, bins=8, top_k=4)

    for index, name in ((0, "n"), (1, "x")):
        values = [float(v) for v in clean([r[index] for r in rows])]
        st = stats[name]
        assert (st.kind, st.count, st.nulls) == ("numeric", len(rows), len(rows) - len(values))
        assert (st.min, st.max) == (min(values), max(values))
        assert st.mean == pytest.approx(pystats.fmean(values))
        assert st.stddev == pytest.approx(pystats.stdev(values))
        assert st.distinct == pytest.approx(len(set(values)), rel=0.1)
        assert st.histogram is not None and st.histogram.kind == "bins"
        assert list(st.histogram.counts) == expected_bins(values, 8)
        ordered = sorted(values)
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            nearest_rank = ordered[max(math.ceil(q * len(ordered)) - 1, 0)]
            assert st.quantiles[f"p{round(q * 100):02d}"] == nearest_rank

    for index, name in ((2, "s"), (3, "b")):
        values = [
            str(v).lower() if isinstance(v, bool) else v for v in clean([r[index] for r in rows])
        ]
        st = stats[name]
        assert (st.kind, st.nulls) == ("categorical", len(rows) - len(values))
        ranked = sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))[:4]
        assert st.histogram is not None
        assert list(zip(st.histogram.values, st.histogram.counts, strict=True)) == ranked
        assert st.histogram.other == len(values) - sum(c for _, c in ranked)

    times = clean([r[4] for r in rows])
    st = stats["t"]
    assert (st.kind, st.nulls) == ("temporal", len(rows) - len(times))
    assert (st.min, st.max) == (min(times).isoformat(), max(times).isoformat())
    assert st.histogram is not None
    assert list(st.histogram.counts) == expected_bins([t.timestamp() for t in times], 8)


def test_round_trip_through_json(spark) -> None:
    df = spark.createDataFrame(random_rows(3, 20), SCHEMA)
    stats = compute_statistics(df, ["x", "s"])
    text = json.dumps(stats_to_dict(stats), allow_nan=False)
    assert stats_from_dict(json.loads(text)) == stats
    one = stats["x"]
    assert FeatureStats.from_dict(one.to_dict()) == one


def test_constant_and_empty_columns(spark) -> None:
    df = spark.createDataFrame([(7, None), (7, None), (7, None)], "c int, e double")
    stats = compute_statistics(df)
    constant, empty = stats["c"], stats["e"]
    assert constant.histogram is not None
    assert (constant.histogram.edges, constant.histogram.counts) == ((7.0, 7.0), (3,))
    assert constant.stddev == 0.0
    assert (empty.nulls, empty.null_rate, empty.min, empty.histogram) == (3, 1.0, None, None)


def test_personal_text_columns_keep_no_values(spark) -> None:
    fs = FeatureSet.model_validate(
        {
            "name": "contact",
            "domain": "customers",
            "entity": "customer",
            "source": "profiles",
            "features": [
                {"kind": "column", "name": "email", "type": "string", "pii": "pii"},
                {"kind": "column", "name": "note", "type": "string", "pii": "sensitive"},
                {"kind": "column", "name": "birth_year", "type": "int", "pii": "pii"},
                {"kind": "column", "name": "channel", "type": "string", "pii": "none"},
            ],
        }
    )
    rows = [
        ("alice@example.com", "owes rent", 1980, "card"),
        ("bob@example.com", "owes rent", 1990, "card"),
        ("bob@example.com", None, None, "wallet"),
    ]
    df = spark.createDataFrame(rows, "email string, note string, birth_year int, channel string")
    assert protected_columns(fs) == ["email", "note", "birth_year"]
    stats = compute_statistics(df, fs.output_names(), protected=protected_columns(fs))

    email, note = stats["email"], stats["note"]
    assert (email.count, email.nulls, email.distinct, email.redacted) == (3, 0, 2, True)
    assert (note.nulls, note.distinct, note.redacted) == (1, 1, True)
    assert (email.histogram, email.min, email.max, note.histogram) == (None, None, None, None)
    stored = json.dumps(stats_to_dict(stats))
    html = render_html("customers.contact", "1.0.0", stats, GovernanceReport([]))
    for raw in ("alice@example.com", "bob@example.com", "owes rent"):
        assert raw not in stored and raw not in html
    assert "values withheld: personal data" in html
    assert stats_from_dict(json.loads(stored)) == stats
    # Numbers keep their aggregates; a `none` text column keeps its values.
    assert (stats["birth_year"].min, stats["birth_year"].max) == (1980.0, 1990.0)
    channel = stats["channel"]
    assert channel.histogram is not None and not channel.redacted
    assert channel.histogram.values == ("card", "wallet")
    # Statistics stored before a column was classified lose its values too.
    plain = compute_statistics(df)
    assert plain["email"].histogram is not None
    assert redact(plain, ["email", "birth_year"]) == {**plain, "email": stats["email"]}


def test_unknown_column_is_an_error(spark) -> None:
    df = spark.createDataFrame([(1,)], "a int")
    with pytest.raises(MeshError) as caught:
        compute_statistics(df, ["a", "nope"])
    assert caught.value.params == {"missing": ["nope"]}


def test_two_spark_jobs(spark) -> None:
    df = spark.createDataFrame(random_rows(4, 20), SCHEMA)
    tracker = spark.sparkContext.statusTracker()
    group = "gov-statistics-jobs"
    spark.sparkContext.setJobGroup(group, "count jobs")
    try:
        compute_statistics(df)
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert len(tracker.getJobIdsForGroup(group)) == 2
