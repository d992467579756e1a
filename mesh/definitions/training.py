"""Training-set specs: a spine of keys, times and labels plus feature references."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mesh.definitions.base import StrictModel
from mesh.definitions.references import FeatureLookup, FeatureRef, expand_references


class Spine(StrictModel):
    """Where the spine comes from: a table (relative to the warehouse unless absolute)."""

    path: str
    format: Literal["delta", "parquet"] = "delta"
    timestamp: str
    keys: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


class TrainingSet(StrictModel):
    """Spine + features -> a Delta table and a manifest that pins every input."""

    kind: Literal["training_set"] = "training_set"
    name: str
    domain: str
    spine: Spine
    features: tuple[str | FeatureLookup, ...] = Field(min_length=1)
    strict: bool = False
    exclude_late_data: bool = True
    output: str | None = None
    description: str = ""

    @field_validator("features")
    @classmethod
    def _refs(cls, value: tuple[str | FeatureLookup, ...]) -> tuple[str | FeatureLookup, ...]:
        looked_up = [(str(r), r.role) for r in expand_references(value)]
        if len(set(looked_up)) != len(looked_up):
            raise ValueError("features repeat; list each reference once (per keys and prefix)")
        return value

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}.{self.name}"

    def refs(self) -> list[FeatureRef]:
        """Every reference; those of a ``FeatureLookup`` carry its keys and prefix."""
        return expand_references(self.features)

    @property
    def location(self) -> str:
        return self.output or f"training/{self.domain}/{self.name}"
