"""Entities: registered business keys that make features from different domains joinable."""

from __future__ import annotations

from pydantic import Field, field_validator

from mesh.definitions.base import SparkType, StrictModel, check_type


class Entity(StrictModel):
    """A business key, e.g. ``customer: {keys: {customer_id: bigint}}``."""

    name: str
    keys: dict[str, SparkType] = Field(min_length=1)
    description: str = ""

    @field_validator("keys")
    @classmethod
    def _key_types(cls, value: dict[str, str]) -> dict[str, str]:
        for column, type_name in value.items():
            check_type(type_name)
            if not column.isidentifier():
                raise ValueError(f"key column {column!r} is not a valid column name")
        return value

    @property
    def key_columns(self) -> list[str]:
        return list(self.keys)
