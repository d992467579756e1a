"""Times given to the API and the command line (``mesh.times``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from mesh.errors import ComputeError, MeshError
from mesh.times import as_utc, optional_utc

UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2024, 1, 31, 12), datetime(2024, 1, 31, 12, tzinfo=UTC)),  # naive: UTC
        (
            datetime(2024, 1, 31, 12, tzinfo=timezone(timedelta(hours=1))),
            datetime(2024, 1, 31, 11, tzinfo=UTC),
        ),
        (date(2024, 1, 31), datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024-01-31T12:00:00", datetime(2024, 1, 31, 12, tzinfo=UTC)),
        ("2024-01-31T12:00:00+01:00", datetime(2024, 1, 31, 11, tzinfo=UTC)),
        ("2024-01-31T12:00:00Z", datetime(2024, 1, 31, 12, tzinfo=UTC)),
        (" 2024-01-31 12:30 ", datetime(2024, 1, 31, 12, 30, tzinfo=UTC)),
    ],
)
def test_accepted_forms(value, expected):
    got = as_utc(value, "start")
    assert got == expected
    assert got.tzinfo == UTC


def test_none_is_left_to_the_default():
    assert optional_utc(None, "as_of") is None


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", ""])
def test_bad_strings_name_the_argument(value):
    with pytest.raises(ComputeError) as info:
        as_utc(value, "end", ComputeError)
    assert info.value.message.startswith(f"end: {value!r} is not an ISO date or time")
    assert info.value.params == {"argument": "end", "found": value}


@pytest.mark.parametrize("value", [1706700000, 1.5, ["2024-01-31"]])
def test_other_types_are_refused(value):
    with pytest.raises(MeshError, match=r"as_of: expected a datetime, a date or an ISO string"):
        as_utc(value, "as_of")  # type: ignore[arg-type]
