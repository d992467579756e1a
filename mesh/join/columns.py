"""Internal column names and small column helpers shared by the join modules."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F

AVAIL = "__mesh_avail"  # time from which a source row is known (spine rows: t)
TAG = "__mesh_tag"  # order among rows with equal AVAIL (see pit.py)
SPINE = "__mesh_spine"  # the whole spine row, as a struct
BUCKET = "__mesh_bucket"  # time bucket of a hot key (0 otherwise)
BOUNDS = "__mesh_bounds"  # cut points (epoch micros) of a hot key's buckets


# Order among rows with equal AVAIL: a source row known *at* t sorts before the spine row
# (eligible), one that must be strictly before t (strict mode, feature_ts binding) after it.
BEFORE, AT_SPINE, AFTER = 0, 1, 2


def availability(ft: Column, ct: Column | None, strict: bool) -> tuple[Column, Column]:
    """``(AVAIL, TAG)`` of a source row: when it becomes known, and its order at that time.

    ``ct`` is the created timestamp when it gates availability, else None. A row is
    eligible at ``t`` iff ``AVAIL < t``, or ``AVAIL == t`` and its tag is ``BEFORE``.
    """
    not_ready = AFTER if strict else BEFORE
    if ct is None:
        return ft, F.lit(not_ready)
    avail = F.greatest(ft, ct)  # greatest skips nulls: null created_ts -> ft
    # Known only from created_ts > ft: then created_ts <= t (inclusive) binds.
    return avail, F.when(ct > ft, F.lit(BEFORE)).otherwise(F.lit(not_ready))


def col(name: str) -> Column:
    """A column by exact name: dots and backticks in names are not parsed."""
    return F.col("`" + name.replace("`", "``") + "`")


def src(index: int) -> str:
    return f"__mesh_src{index}"


def prefix_of(index: int) -> str:
    return f"__mesh_pre{index}"


def keys_not_null(keys: Sequence[str]) -> Column:
    return reduce(lambda a, b: a & b, [col(k).isNotNull() for k in keys])
