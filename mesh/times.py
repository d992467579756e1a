"""Times given to the engine: datetimes, dates or ISO strings, made aware UTC datetimes.

One rule for the Python API and the command line: a naive time is UTC, a date is its
midnight UTC, a string is ISO 8601 (``2024-01-31``, ``2024-01-31T12:00:00+01:00``, a
trailing ``Z``). Anything else is a one-line error naming the argument.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone

from mesh.errors import MeshError


def as_utc(
    value: datetime | date | str, argument: str, error: type[MeshError] = MeshError
) -> datetime:
    """``value`` as an aware UTC datetime; ``error`` (a ``MeshError``) when it is none."""
    if isinstance(value, str):
        try:
            text = value.strip()
            # Python 3.10's fromisoformat does not read a trailing Z.
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise error(
                f"{argument}: {value!r} is not an ISO date or time; use e.g. 2024-01-31, "
                "2024-01-31T12:00:00 (UTC) or 2024-01-31T12:00:00+01:00.",
                argument=argument,
                found=value,
            ) from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    elif not isinstance(value, datetime):
        raise error(
            f"{argument}: expected a datetime, a date or an ISO string, found "
            f"{type(value).__name__} {value!r}.",
            argument=argument,
            found=repr(value),
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def optional_utc(
    value: datetime | date | str | None, argument: str, error: type[MeshError] = MeshError
) -> datetime | None:
    """``as_utc``, passing ``None`` through (an argument left to its default)."""
    return None if value is None else as_utc(value, argument, error)


__all__ = ["as_utc", "optional_utc"]
