"""Internal column names and small column helpers shared by the join modules.

The join builds its plans mostly from SQL text (``ident``, ``availability``, ``row_struct``,
``not_null``): PySpark makes a JVM round trip for every function, alias, cast and column
reference of a ``Column`` expression (plus, in Spark 4, a call-site capture), so a join of
n sources that builds O(n) columns per part costs O(n^2) round trips. A SQL string is one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    CalendarIntervalType,
    DataType,
    DateType,
    DayTimeIntervalType,
    MapType,
    NumericType,
    StringType,
    StructType,
    TimestampNTZType,
    TimestampType,
    TimeType,
    VariantType,
    YearMonthIntervalType,
)

AVAIL = "__mesh_avail"  # time from which a source row is known (spine rows: t)
TAG = "__mesh_tag"  # order among rows with equal AVAIL (see pit.py)
SPINE = "__mesh_spine"  # the whole spine row, as a struct
BUCKET = "__mesh_bucket"  # time bucket of a hot key (0 otherwise)
BOUNDS = "__mesh_bounds"  # cut points (epoch micros) of a hot key's buckets


# Order among rows with equal AVAIL: a source row known *at* t sorts before the spine row
# (eligible), one that must be strictly before t (strict mode, feature_ts binding) after it.
BEFORE, AT_SPINE, AFTER = 0, 1, 2

_MICROSECOND = dt.timedelta(microseconds=1)
# More than the span between any two timestamps (years 1 to 9999), less than a long's range
# of microseconds: a longer TTL expires no row either, and overflows no arithmetic.
_LONGEST = dt.timedelta(microseconds=1 << 62)


def availability(timestamp: str, created: str | None, strict: bool) -> tuple[str, str]:
    """``(AVAIL, TAG)`` of a source row, as SQL: when it becomes known, its order at that time.

    ``timestamp`` and ``created`` are column names; ``created`` is the created timestamp when
    it gates availability, else None. A row is eligible at ``t`` iff ``AVAIL < t``, or
    ``AVAIL == t`` and its tag is ``BEFORE``.
    """
    not_ready = AFTER if strict else BEFORE
    ft = ident(timestamp)
    if created is None:
        return ft, str(not_ready)
    ct = ident(created)
    # greatest skips nulls: null created_ts -> ft. Known only from created_ts > ft: then
    # created_ts <= t (inclusive) binds.
    return f"greatest({ft}, {ct})", f"CASE WHEN {ct} > {ft} THEN {BEFORE} ELSE {not_ready} END"


def epoch_micros(t: str, times: DataType) -> str:
    """SQL: the time ``t`` (an expression of type ``times``) as a long of epoch micros.

    A timestamp gives its instant; a timestamp_ntz gives its wall-clock reading taken as UTC,
    computed from its fields so that no time zone enters: exact and strictly monotonic.
    (``CAST(t AS TIMESTAMP)``, and ``timestampdiff`` on timestamp_ntz, use the session time
    zone: a time in a spring-forward gap, 02:30, moves to 03:30, after 03:15.)
    """
    if isinstance(times, TimestampType):
        return f"unix_micros({t})"
    return (
        f"(unix_date(CAST({t} AS DATE)) * 86400000000L + hour({t}) * 3600000000L"
        f" + minute({t}) * 60000000L + CAST(date_part('SECOND', {t}) * 1000000 AS BIGINT))"
    )


def ident(name: str) -> str:
    """``name`` quoted as a SQL identifier: dots and backticks in names are not parsed."""
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> Column:
    """A column by exact name: dots and backticks in names are not parsed."""
    return F.col(ident(name))


def src(index: int) -> str:
    return f"__mesh_src{index}"


def prefix_of(index: int) -> str:
    return f"__mesh_pre{index}"


def row_struct(
    timestamp: str, created: str | None, features: Sequence[str], keys: Sequence[str] = ()
) -> str:
    """SQL: a source row as ``struct(ft, [ct,] v0, v1, ..., [k0, k1, ...])`` (column names in).

    Its order is the winner rule: greatest ``ft``, then ``ct`` (null first), then the feature
    values. Keys ride at the end: equal among the rows of one key, they never decide.
    """
    fields = [("ft", timestamp), *([("ct", created)] if created is not None else [])]
    fields += [(f"v{j}", f) for j, f in enumerate(features)]
    fields += [(f"k{j}", k) for j, k in enumerate(keys)]
    return "named_struct(" + ", ".join(f"'{alias}', {ident(c)}" for alias, c in fields) + ")"


def not_null(names: Sequence[str]) -> str:
    """SQL: none of the columns ``names`` is null."""
    return " AND ".join(f"{ident(n)} IS NOT NULL" for n in names)


def within_ttl(feature_ts: str, t: str, ttl: dt.timedelta, times: DataType) -> str:
    """SQL: a row with ``feature_ts`` is still valid at time ``t`` (exactly ``ttl`` old is).

    ``times`` is the type of both. ``timestamp`` values are instants: the age ``t -
    feature_ts`` is an exact duration, in epoch microseconds, whatever the session time zone
    (``t - INTERVAL '7' DAY`` would step over calendar days in it: 167 hours across a spring
    daylight-saving change). ``timestamp_ntz`` values are local date-times, whose difference
    involves no time zone: the interval is exact there. Either way ``feature_ts`` stands
    alone on its side, so with a literal ``t`` the scan can push the filter down.
    """
    ttl = min(ttl, _LONGEST)
    if isinstance(times, TimestampType):
        return f"{feature_ts} >= timestamp_micros(unix_micros({t}) - {ttl // _MICROSECOND})"
    return f"{feature_ts} >= {t} - {interval(ttl)}"


def interval(delta: dt.timedelta) -> str:
    """SQL day-time interval literal of ``delta`` (non-negative), exact to the microsecond."""
    micros = delta // _MICROSECOND
    days, rest = divmod(micros, 86_400_000_000)
    hours, rest = divmod(rest, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micros = divmod(rest, 1_000_000)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}' DAY TO SECOND"


def non_null_default(data_type: DataType) -> str | None:
    """SQL: a constant of ``data_type`` that is not null, nor holds a null at any depth.

    An empty array or map, a struct of its fields' defaults, a zero, an empty string, the
    epoch. ``coalesce(c, default)`` returns ``c``'s values with ``c``'s type, nested
    nullability included (Spark merges the two types' flags, and the default's are all
    false), and is itself never null. None for a type without such a constant (null,
    user-defined and spatial types).
    """
    if isinstance(data_type, ArrayType):
        return "array()"
    if isinstance(data_type, MapType):
        return "map()"
    if isinstance(data_type, StructType):
        fields = []
        for field in data_type.fields:
            default = non_null_default(field.dataType)
            if default is None:
                return None
            fields.append(f"{default} AS {ident(field.name)}")
        return "struct(" + ", ".join(fields) + ")"
    constant = {
        BooleanType: "false",
        BinaryType: "X''",
        DateType: "DATE '1970-01-01'",
        TimestampType: "TIMESTAMP '1970-01-01 00:00:00'",
        TimestampNTZType: "TIMESTAMP_NTZ '1970-01-01 00:00:00'",
        CalendarIntervalType: "make_interval(0)",
        VariantType: "parse_json('null')",
    }.get(type(data_type))
    if constant is not None:
        return constant
    zero = None
    if isinstance(data_type, NumericType):
        zero = "0"
    elif isinstance(data_type, StringType):  # its collation too
        zero = "''"
    elif isinstance(data_type, DayTimeIntervalType):
        zero = "INTERVAL '0' SECOND"
    elif isinstance(data_type, YearMonthIntervalType):
        zero = "INTERVAL '0' MONTH"
    elif isinstance(data_type, TimeType):  # midnight, at the column's precision
        zero = "TIME '00:00:00'"
    return None if zero is None else f"CAST({zero} AS {data_type.simpleString()})"
