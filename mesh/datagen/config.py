"""Knobs of the example-data generator: size, time range, seed and the rates of messy data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from mesh.errors import MeshError

DEFAULT_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DEFAULT_SEED = 7


class DataGenError(MeshError):
    """The generator was asked for something it cannot produce (bad knob, unknown product)."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines the generated rows: same config, same rows, on any cluster.

    Customers are ids ``1..customers``; every tenth id (10, 20, ...) is an *inactive* customer
    with a profile but no transactions and no tickets. Transactions and tickets are generated
    per day (``events_per_customer_day`` and ``tickets_per_customer_day`` per active customer),
    so day ``d`` holds the same rows whether it was generated with the rest or appended later.
    ``skew`` is the exponent of the power law picking a transaction's customer (``u ** skew``
    over the active customers): the top 1% of customers own about ``0.01 ** (1/skew)`` of the
    transactions (22% with the default 3).
    """

    start: datetime = DEFAULT_START
    days: int = 60
    customers: int = 200
    seed: int = DEFAULT_SEED
    events_per_customer_day: float = 2.0
    tickets_per_customer_day: float = 0.05
    skew: float = 3.0
    late_rate: float = 0.12  # arrive 1-12 hours after the event
    very_late_rate: float = 0.03  # arrive 1-3 days after the event
    correction_rate: float = 0.02  # a second row: same tx_id and event time, new amount, later
    amount_null_rate: float = 0.01
    segment_null_rate: float = 0.05
    csat_null_rate: float = 0.4
    refund_rate: float = 0.03

    def __post_init__(self) -> None:
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=timezone.utc)
        object.__setattr__(self, "start", start.astimezone(timezone.utc))
        for name in ("days", "customers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise DataGenError(
                    f"Generator knob `{name}` must be a whole number >= 1, found {value!r}; "
                    f"pass e.g. --{name} 30.",
                    knob=name,
                    found=value,
                )
        for name in ("events_per_customer_day", "tickets_per_customer_day", "skew"):
            value = getattr(self, name)
            if not value > 0:
                raise DataGenError(
                    f"Generator knob `{name}` must be > 0, found {value!r}.", knob=name, found=value
                )
        for field in dataclasses.fields(self):
            if field.name.endswith("_rate"):
                value = getattr(self, field.name)
                if not 0 <= value <= 1:
                    raise DataGenError(
                        f"Generator knob `{field.name}` is a share of rows between 0 and 1, "
                        f"found {value!r}.",
                        knob=field.name,
                        found=value,
                    )
        if self.late_rate + self.very_late_rate > 1:
            raise DataGenError(
                "Generator knobs `late_rate` + `very_late_rate` must not exceed 1, found "
                f"{self.late_rate + self.very_late_rate!r}.",
                knob="late_rate",
                found=self.late_rate,
            )

    @property
    def end(self) -> datetime:
        """End (exclusive) of the generated event time range."""
        return self.start + timedelta(days=self.days)

    @property
    def history_start(self) -> datetime:
        """Earliest event time in the data: first profile versions predate ``start`` by <= 730d."""
        return self.start - timedelta(days=731)

    @property
    def arrival_end(self) -> datetime:
        """After the latest arrival: very late rows (<= 3d) and their corrections (<= 2d more)."""
        return self.end + timedelta(days=6)

    @property
    def active_customers(self) -> int:
        """Customers that have transactions and tickets (ids not divisible by 10)."""
        return self.customers - self.customers // 10

    @property
    def transactions_per_day(self) -> int:
        return max(1, round(self.active_customers * self.events_per_customer_day))

    @property
    def tickets_per_day(self) -> int:
        return max(1, round(self.active_customers * self.tickets_per_customer_day))

    def day_start(self, day: int) -> datetime:
        return self.start + timedelta(days=day)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored in the commit metadata so ``append_day`` can continue."""
        data = dataclasses.asdict(self)
        data["start"] = self.start.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("start"), str):
            values["start"] = datetime.fromisoformat(values["start"])
        return cls(**values)


# Presets for --scale; explicit --customers/--days/--events-per-customer-day override them.
SCALES: dict[str, dict[str, Any]] = {
    # The demo: ~22k transactions. Dense enough that the 1d windows of the example feature
    # sets stay under the standards' null-rate limit (sparser data fails governance).
    "small": {"customers": 200, "days": 60, "events_per_customer_day": 2.0},
    # A realistic laptop run: ~2.2M transactions.
    "medium": {"customers": 20_000, "days": 120, "events_per_customer_day": 1.0},
    # For a cluster: ~66M transactions over a year.
    "large": {"customers": 200_000, "days": 365, "events_per_customer_day": 1.0},
}


def config_for_scale(scale: str = "small", **overrides: Any) -> GeneratorConfig:
    """A ``GeneratorConfig`` from a preset; ``None`` overrides are ignored."""
    if scale not in SCALES:
        raise DataGenError(
            f"Generator scale {scale!r} is unknown; use one of {', '.join(SCALES)}.",
            knob="scale",
            found=scale,
        )
    values = {**SCALES[scale], **{k: v for k, v in overrides.items() if v is not None}}
    return GeneratorConfig(**values)
