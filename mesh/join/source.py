"""A feature table as one side of a point-in-time join: keys, timestamps, TTL, features."""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mesh.errors import JoinError, MeshError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


# Microseconds per unit of numpy's timedelta64, as (numerator, denominator). Months and
# years have no fixed length and are not listed; neither is the unit-less "generic" one.
_NUMPY_UNITS = {
    "W": (7 * 86_400_000_000, 1),
    "D": (86_400_000_000, 1),
    "h": (3_600_000_000, 1),
    "m": (60_000_000, 1),
    "s": (1_000_000, 1),
    "ms": (1_000, 1),
    "us": (1, 1),
    "ns": (1, 1_000),
    "ps": (1, 1_000_000),
    "fs": (1, 1_000_000_000),
    "as": (1, 1_000_000_000_000),
}
_MAX_MICROS = dt.timedelta.max // dt.timedelta(microseconds=1)


def _numpy_duration(ttl: Any) -> dt.timedelta:
    """A numpy ``timedelta64`` (a pandas column's value) as the duration its unit says.

    numpy registers ``timedelta64`` as an integer, but its count is of its unit, not of
    seconds: ``timedelta64(7, 'D')`` is 7 days. Converted with Python integers (numpy's own
    conversion wraps around beyond its range and turns months into average lengths),
    truncated to the microsecond, the precision of Spark's times.
    """
    import numpy as np  # installed: the value is numpy's

    unit, step = np.datetime_data(ttl.dtype)
    factor = _NUMPY_UNITS.get(unit)
    micros = None
    if factor is not None and not np.isnat(ttl):
        micros = int(ttl.astype(np.int64)) * step * factor[0] // factor[1]
    if micros is None or abs(micros) > _MAX_MICROS:
        raise JoinError(
            f"FeatureSource ttl: {ttl!r} is not a fixed duration a timedelta holds (NaT, no "
            "unit, months or years, or beyond 999,999,999 days); pass e.g. "
            "ttl=timedelta(days=30) or numpy.timedelta64(30, 'D'), or None for no expiry.",
            argument="ttl",
            expected="timedelta | seconds | None",
            found=ttl,
        )
    return dt.timedelta(microseconds=micros)


def _normalise_ttl(ttl: object) -> dt.timedelta | None:
    if ttl is None:
        return None
    given = ttl
    if getattr(getattr(ttl, "dtype", None), "kind", None) == "m":
        ttl = _numpy_duration(ttl)
    # bool is an int subclass; ``ttl=True`` is almost certainly a mistake, not one second.
    # Other integers and reals (numpy's, read from pandas or a config) are seconds too.
    if isinstance(ttl, numbers.Real) and not isinstance(ttl, (bool, int, float)):
        ttl = int(ttl) if isinstance(ttl, numbers.Integral) else float(ttl)
    if isinstance(ttl, bool) or not isinstance(ttl, (dt.timedelta, int, float)):
        raise JoinError(
            f"FeatureSource ttl: expected a datetime.timedelta, a number of seconds or None, "
            f"found {ttl!r} ({type(ttl).__name__}); pass e.g. ttl=timedelta(days=7).",
            argument="ttl",
            expected="timedelta | seconds | None",
            found=ttl,
        )
    try:
        value = ttl if isinstance(ttl, dt.timedelta) else dt.timedelta(seconds=ttl)
    except (ValueError, OverflowError):  # nan, inf, more than timedelta holds
        raise JoinError(
            f"FeatureSource ttl: {ttl!r} seconds is not a duration; pass a finite number of "
            "seconds (at most about 2.7 million years) or a datetime.timedelta, or None for "
            "no expiry.",
            argument="ttl",
            expected="finite seconds",
            found=ttl,
        ) from None
    if value < dt.timedelta(0):
        raise JoinError(
            f"FeatureSource ttl: expected a non-negative duration, found {value}; "
            "use None for no expiry.",
            argument="ttl",
            expected=">= 0",
            found=given,
        )
    return value


def require_bool(
    value: object, argument: str, where: str = "", error: type[MeshError] = JoinError
) -> bool:
    """``value`` if it is a bool; a truthy string like ``"no"`` must not pass as True.

    ``error`` is the ``MeshError`` raised (the training and inference APIs raise theirs).
    """
    if isinstance(value, bool):
        return value
    raise error(
        f"{where}{argument}: expected True or False, found {value!r} ({type(value).__name__}); "
        f"pass a bool, e.g. {argument}=True.",
        argument=argument,
        expected="bool",
        found=value,
    )


def _normalise_names(value: object, argument: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else value
    if (
        not isinstance(names, Sequence)
        or not names
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise JoinError(
            f"FeatureSource {argument}: expected a column name or a non-empty list of column "
            f"names, found {value!r}.",
            argument=argument,
            expected="non-empty list of column names",
            found=value,
        )
    if len(set(names)) != len(names):
        raise JoinError(
            f"FeatureSource {argument}: column names must be unique, found {list(names)!r}.",
            argument=argument,
            expected="unique column names",
            found=list(names),
        )
    return tuple(names)


@dataclass(frozen=True, eq=False)
class FeatureSource:
    """One feature table to join onto a spine, with its point-in-time semantics.

    Args:
        df: the feature history, one row per (keys, ``timestamp``[, ``created_timestamp``]).
        keys: entity key column(s); the spine must have columns of the same names and types.
        timestamp: event time of a row (``feature_ts``): when the values became true.
        created_timestamp: optional arrival/computation time (``created_ts``). It breaks ties
            on ``timestamp`` and, with ``exclude_not_yet_created``, hides rows that had not
            arrived yet at the spine time (late data never leaks into the past).
        ttl: maximum age ``t - feature_ts`` of a usable row, as a ``timedelta`` (pandas'
            ``Timedelta`` and numpy's ``timedelta64`` too, in their units) or a number of
            seconds; ``None`` means values never expire. A row exactly ``ttl`` old is still valid.
        features: feature columns to return; default every column that is not a key or a
            timestamp.
        name: label used in error messages and, when two sources return the same feature
            name, as the prefix ``<name>__`` that disambiguates them.
        exclude_not_yet_created: exclude rows with ``created_ts > t`` (only meaningful with
            ``created_timestamp``).
        prefix: string prepended to every returned feature column name.
        spine_keys: the spine columns ``keys`` are matched against, in the same order;
            default the same names. For a spine that names the entity otherwise, or holds
            it in several roles: a transfer's ``sender_id`` and ``receiver_id`` both look up
            a customer table keyed by ``customer_id``, as two sources with a ``prefix``
            each. The returned features are the same; only the match changes.

    ``keys``, ``spine_keys``, ``features`` and ``ttl`` are normalised on construction
    (tuples, ``timedelta``).
    Equality is identity: DataFrames have no value equality.
    """

    df: DataFrame
    keys: str | Sequence[str]
    timestamp: str
    created_timestamp: str | None = None
    ttl: dt.timedelta | float | None = None
    features: Sequence[str] | None = None
    name: str | None = None
    exclude_not_yet_created: bool = True
    prefix: str | None = None
    spine_keys: str | Sequence[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", _normalise_names(self.keys, "keys"))
        if self.spine_keys is not None:
            spine_keys = _normalise_names(self.spine_keys, "spine_keys")
            if len(spine_keys) != len(self.keys):
                raise JoinError(
                    f"FeatureSource spine_keys: expected one spine column per key "
                    f"({list(self.keys)}), found {list(spine_keys)}.",
                    argument="spine_keys",
                    expected=f"{len(self.keys)} column name(s)",
                    found=list(spine_keys),
                )
            object.__setattr__(self, "spine_keys", spine_keys)
        if self.features is not None:
            object.__setattr__(self, "features", _normalise_names(self.features, "features"))
        object.__setattr__(self, "ttl", _normalise_ttl(self.ttl))
        require_bool(self.exclude_not_yet_created, "exclude_not_yet_created", "FeatureSource ")
        for argument in ("timestamp", "created_timestamp", "name", "prefix"):
            value = getattr(self, argument)
            if value is not None and not (isinstance(value, str) and value):
                raise JoinError(
                    f"FeatureSource {argument}: expected a non-empty string, found {value!r}.",
                    argument=argument,
                    expected="non-empty string",
                    found=value,
                )
        if self.timestamp is None:
            raise JoinError(
                "FeatureSource timestamp: expected the event-time column name, found None.",
                argument="timestamp",
                expected="column name",
                found=None,
            )

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The key column names as a tuple."""
        return tuple(self.keys)

    @property
    def spine_key_columns(self) -> tuple[str, ...]:
        """The spine columns the keys are matched against (the keys' own names by default)."""
        return tuple(self.spine_keys) if self.spine_keys is not None else self.key_columns

    @property
    def ttl_delta(self) -> dt.timedelta | None:
        """The TTL as a ``timedelta`` (or ``None``)."""
        assert self.ttl is None or isinstance(self.ttl, dt.timedelta)
        return self.ttl
