"""Data products: tables a domain publishes, which feature sets read."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mesh.definitions.base import SparkType, StrictModel, check_type, referable_name

# Types of a timestamp column the engine reads as an instant (``CAST(column AS timestamp)``,
# compared with timestamps): other types (a double of epoch seconds) fail the computation.
TIME_TYPES = ("timestamp", "timestamp_ntz", "date", "string")


class DataProduct(StrictModel):
    """A Delta (or Parquet) table published by a domain.

    ``path`` is relative to the warehouse unless absolute. ``event_timestamp`` is when the
    event happened; ``created_timestamp`` (optional) is when the row arrived, so late rows
    and corrections can be kept out of the past.
    """

    kind: Literal["data_product"] = "data_product"
    name: str
    domain: str
    path: str | None = None
    format: Literal["delta", "parquet"] = "delta"
    event_timestamp: str
    created_timestamp: str | None = None
    columns: dict[str, SparkType] = Field(default_factory=dict)
    description: str = ""
    owner: str | None = None

    @field_validator("name")
    @classmethod
    def _referable(cls, value: str) -> str:
        return referable_name(value, "data product name")

    @field_validator("columns")
    @classmethod
    def _column_types(cls, value: dict[str, str]) -> dict[str, str]:
        for type_name in value.values():
            check_type(type_name)
        return value

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}.{self.name}"

    @property
    def location(self) -> str:
        """Path relative to the warehouse (default ``products/<domain>/<name>``)."""
        return self.path or f"products/{self.domain}/{self.name}"
