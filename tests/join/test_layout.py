"""The pre-sort long orders a partition as the window's sort wants it, so that sort is cheap."""

from __future__ import annotations

import random

from pyspark.sql import functions as F

from mesh.join.bounds import micros_range
from mesh.join.columns import AVAIL, TAG
from mesh.join.layout import HISTORY_MICROS, _order

DAY = 86_400_000_000  # micros
LOW, HIGH = 1_704_067_200_000_000, 1_704_067_200_000_000 + 10 * DAY  # the spine's range


def frame(spark, rows, avail_type="timestamp"):
    df = spark.createDataFrame(rows, f"cid long, us long, {TAG} tinyint")
    avail = F.expr("timestamp_micros(us)")
    if avail_type == "timestamp_ntz":
        avail = avail.cast("timestamp_ntz")
    return df.withColumn(AVAIL, avail)


def presort(df, low=LOW, high=HIGH):
    order = _order(df, ["cid"], micros_range(low, high))
    return [(r.cid, r.us, r[TAG]) for r in df.orderBy(F.expr(order)).collect()]


def window_order(rows):
    """(key, AVAIL nulls first, TAG): the window's order within a key."""
    return sorted(rows, key=lambda r: (r[0], r[1] is not None, r[1] or 0, r[2]))


def test_rows_sorted_by_the_long_are_in_the_windows_order_within_each_key(spark):
    rng = random.Random(7)
    keys = [0, 1, 42, 10**12, -3]
    # Whole seconds over the spine's range and the year before it, some of them twice.
    seconds = [rng.randrange(-366 * 86_400 + 1, 10 * 86_400 + 1) for _ in range(150)]
    rows = [
        (rng.choice(keys), LOW + s * 1_000_000, rng.randrange(3)) for s in seconds + seconds[:30]
    ]
    rows += [(k, LOW + 3 * i, tag) for i, k in enumerate(keys) for tag in (2, 1, 0)]  # ties
    rows += [(k, None, 1) for k in keys]  # spine rows without a time
    for avail_type in ("timestamp", "timestamp_ntz"):
        ordered = presort(frame(spark, rows, avail_type))
        # Each key's rows are contiguous (no hash collisions among these keys) ...
        runs = [k for i, (k, _, _) in enumerate(ordered) if i == 0 or ordered[i - 1][0] != k]
        assert sorted(runs) == sorted(keys)
        # ... and within a key exactly in the window's order: its sort has nothing to do.
        for k in keys:
            mine = [r for r in ordered if r[0] == k]
            assert mine == window_order(mine)


def test_rows_older_than_the_scale_share_its_first_slot_and_keep_only_the_tag_order(spark):
    old = LOW - HISTORY_MICROS - 1  # one microsecond before the scale starts
    first = LOW - HISTORY_MICROS + 1_000_000  # one second into the scale
    rows = [(5, old - 3 * DAY, 2), (5, old, 0), (5, first, 1), (5, HIGH, 1)]
    ordered = presort(frame(spark, rows))
    # The two oldest rows tie on time (slot 0): ordered by tag only, the window's sort
    # puts them right. Rows on the scale keep their time order.
    assert ordered[:2] == [(5, old, 0), (5, old - 3 * DAY, 2)]
    assert ordered[2:] == [(5, first, 1), (5, HIGH, 1)]


def test_a_range_of_one_instant_still_orders_the_year_before_it(spark):
    """An inference set "as of now": every source row is older than the spine's one time."""
    rng = random.Random(3)
    rows = [
        (7, HIGH - rng.randrange(1, 366 * 86_400) * 1_000_000, rng.randrange(3)) for _ in range(60)
    ]
    rows += [(7, HIGH, 1)]
    ordered = presort(frame(spark, rows), low=HIGH)
    assert ordered == window_order(ordered)
