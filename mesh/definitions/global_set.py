"""Global feature sets: features combined from several domains' feature sets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from mesh.definitions.base import (
    Duration,
    StrictModel,
    fingerprint,
    format_duration,
    legacy_format_duration,
    parse_semver,
)
from mesh.definitions.binding import Binding
from mesh.definitions.feature_set import ExpressionFeature, Metadata, QualityOverrides
from mesh.definitions.references import FeatureRef


class GlobalFeatureSet(StrictModel):
    """Inputs (alias -> feature reference) combined by SQL expressions over the aliases.

    Each output value at time ``t`` uses every input as of ``t`` (point-in-time join);
    output rows are produced at every time an input changes for an entity.
    """

    kind: Literal["global_feature_set"] = "global_feature_set"
    name: str
    domain: str
    version: str = "1.0.0"
    entity: str
    inputs: dict[str, str] = Field(min_length=1)
    features: tuple[ExpressionFeature, ...] = Field(min_length=1)
    ttl: Duration | None = None
    metadata: Metadata = Metadata()
    quality: QualityOverrides = QualityOverrides()

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        parse_semver(value)
        return value

    @field_validator("inputs")
    @classmethod
    def _refs(cls, value: dict[str, str]) -> dict[str, str]:
        for alias, ref in value.items():
            if not alias.isidentifier():
                raise ValueError(f"input alias {alias!r} is not a valid column name")
            parsed = FeatureRef.parse(ref)
            if parsed.feature == "*":
                raise ValueError(f"input {alias!r}: name one feature, not `*`")
        return value

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}.{self.name}"

    def input_refs(self) -> dict[str, FeatureRef]:
        return {alias: FeatureRef.parse(ref) for alias, ref in self.inputs.items()}

    def output_names(self) -> list[str]:
        return [f.name for f in self.features]

    def data_hash(self, binding: Binding) -> str:
        """Changes with the entity, its keys (``binding``), inputs, TTL and expressions."""
        return fingerprint({**self._data_payload(), "binding": binding.model_dump(mode="json")})

    def legacy_data_hash(self) -> str:
        """The data hash as recorded before it covered the binding (see ``FeatureSet``)."""
        return fingerprint(self._data_payload(legacy_format_duration))

    def legacy_output_names(self) -> list[str]:
        """Expression outputs were always named as written: ``output_names``."""
        return self.output_names()

    def _data_payload(self, fmt: Callable[[timedelta], str] = format_duration) -> dict[str, object]:
        return {
            "entity": self.entity,
            "inputs": self.inputs,
            "ttl": fmt(self.ttl) if self.ttl else None,
            "features": [f.data_payload() for f in self.features],
        }

    def metadata_hash(self) -> str:
        """Changes with owner, description, tags, visibility, PII classes and quality
        thresholds; never with data. Without ``quality:`` it is the hash recorded before it
        covered them."""
        payload: dict[str, object] = {
            "metadata": self.metadata.model_dump(mode="json"),
            "features": [
                {"name": f.name, "description": f.description, "pii": f.pii, "tags": f.tags}
                for f in self.features
            ],
        }
        if self.quality != QualityOverrides():
            payload["quality"] = self.quality.model_dump(mode="json")
        return fingerprint(payload)
