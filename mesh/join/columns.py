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


def col(name: str) -> Column:
    """A column by exact name: dots and backticks in names are not parsed."""
    return F.col("`" + name.replace("`", "``") + "`")


def src(index: int) -> str:
    return f"__mesh_src{index}"


def prefix_of(index: int) -> str:
    return f"__mesh_pre{index}"


def keys_not_null(keys: Sequence[str]) -> Column:
    return reduce(lambda a, b: a & b, [col(k).isNotNull() for k in keys])
