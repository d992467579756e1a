"""Building blocks of every definition: strict immutable models, durations, type names."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|y)\s*$")
_MONTHS = re.compile(r"^\s*\d+\s*M\s*$")  # upper-case M: months, not minutes
# A unit written out (``7 days``, ``12hours``): refused, with the form to write instead.
_SPELLED = re.compile(
    r"^\s*(\d+)\s*(seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|years?|yrs?"
    r"|months?)\s*$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_MAX_SECONDS = (timedelta.max.days + 1) * 86400  # timedelta cannot hold this many


class StrictModel(BaseModel):
    """Base of all definitions: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def parse_duration(value: Any) -> timedelta:
    """Parse ``30s``, ``30m``, ``1h``, ``7d``, ``2w``, ``1y`` (365 days), or a timedelta.

    Units are read in any case (``7D``), except ``M``: months have no fixed length, and
    ``1M`` read as one minute would be a silent surprise.

    A bare number is refused: ``ttl: 7`` reads as seven seconds to the engine and as seven
    days to many readers, so a duration always names its unit.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; use forms like 1h, 7d, 30d")
    elif isinstance(value, int | float):
        raise ValueError(
            f"{value!r} is not a duration: a bare number has no unit; use forms like 1h, 7d, "
            f"30d (e.g. '{value}d' for days, '{value}s' for seconds)"
        )
    elif isinstance(value, str):
        if _MONTHS.match(value):
            raise ValueError(
                f"{value!r} is not a duration: months have no fixed length; use days "
                "(e.g. 30d); `m` is minutes"
            )
        match = _DURATION.match(value.lower())
        if not match:
            raise ValueError(f"{value!r} is not a duration; {_spelled_hint(value)}")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration; use forms like 1h, 7d, 30d")
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration; use forms like 1h, 7d, 30d")
    if seconds >= _MAX_SECONDS:
        raise ValueError(
            f"{value!r} is too long for a duration (at most {timedelta.max.days}d); use forms "
            "like 1h, 7d, 30d"
        )
    return timedelta(seconds=seconds)


def _spelled_hint(value: str) -> str:
    """What to write instead of ``value``: its short form when it spells its unit out."""
    spelled = _SPELLED.match(value)
    if spelled is None:
        return "use forms like 1h, 7d, 30d"
    number, unit = spelled.group(1), spelled.group(2).lower()
    if unit.startswith("mo"):
        return "months have no fixed length; use days (e.g. 30d)"
    letter = "m" if unit.startswith("mi") else unit[0]
    return f"write {number}{letter}: a number and one letter (s, m, h, d, w or y)"


def format_duration(value: timedelta) -> str:
    """The shortest ``<n><unit>`` text for a duration in days, hours, minutes or seconds
    (``7d``, ``90m``, ``365d``): it names feature columns (``amount_sum_365d``) and parses
    back to the same duration. Weeks and years are written in days, as a window of
    ``2w``/``1y`` is a number of days, and ``365d`` reads as what it is."""
    return _format(value, ("d", "h", "m"))


def legacy_format_duration(value: timedelta) -> str:
    """A duration as engines before ``format_duration`` dropped years wrote it (365 days as
    ``1y``): only to recompute the data hashes and column names they recorded."""
    return _format(value, ("y", "d", "h", "m"))


def _format(value: timedelta, units: tuple[str, ...]) -> str:
    seconds = int(value.total_seconds())
    for unit in units:
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]

# Spark SQL type names a definition may declare; checked without importing pyspark.
SPARK_TYPE = re.compile(
    r"^(boolean|tinyint|smallint|int|bigint|float|double|string|binary|date|timestamp"
    r"|timestamp_ntz|decimal\(\d+,\s*\d+\)|array<[a-z0-9_<>(), ]+>)$"
)
_TYPE_ALIASES = {
    "integer": "int",
    "long": "bigint",
    "short": "smallint",
    "byte": "tinyint",
    "bool": "boolean",
    "str": "string",
    "real": "float",
}


def normalise_type(value: Any) -> Any:
    """Lower-case a Spark type name and map common aliases (``long`` -> ``bigint``)."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    return _TYPE_ALIASES.get(text, text)


def spark_form(name: str) -> str:
    """A type name as Spark writes it (``simpleString``): aliases mapped, no spaces
    (``decimal(10, 2)`` -> ``decimal(10,2)``). Compare type names in this form; definitions
    keep their own spelling (it is part of their data hash)."""
    return str(normalise_type(name)).replace(" ", "")


_REFERABLE = re.compile(r"^[^.\s`]+$")


def referable_name(value: str, what: str) -> str:
    """A name other definitions refer to as a part of ``domain.name[.feature]``: no dot,
    space or backquote, or no reference could ever name it."""
    if not _REFERABLE.match(value):
        raise ValueError(
            f"{what} {value!r} cannot be referred to (references are domain.name[.feature]); "
            "use letters, digits and underscores"
        )
    return value


def check_type(value: str) -> str:
    if not SPARK_TYPE.match(value):
        raise ValueError(
            f"{value!r} is not a Spark SQL type; use e.g. bigint, int, double, string, "
            "boolean, timestamp, date, decimal(10,2)"
        )
    return value


SparkType = Annotated[str, BeforeValidator(normalise_type)]

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def parse_semver(text: str) -> tuple[int, int, int]:
    match = SEMVER.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a semantic version; use MAJOR.MINOR.PATCH like 1.0.0")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def fingerprint(payload: Any) -> str:
    """A stable sha256 of a JSON-able payload (sorted keys), shortened to 16 hex chars."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
