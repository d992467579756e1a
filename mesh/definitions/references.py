"""Feature references: ``domain.feature_set[@version].feature`` (``*`` for every feature)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import Field, field_validator

from mesh.definitions.base import StrictModel

_REF = re.compile(
    r"^(?P<domain>[a-z][a-z0-9_]*)\.(?P<fs>[a-z][a-z0-9_]*)"
    r"(?:@(?P<version>\d+(?:\.\d+){0,2}))?\.(?P<feature>[a-z][a-z0-9_]*|\*)$"
)


# How a reference is looked up: (entity key, spine column) pairs where they differ, prefix.
Role = tuple[tuple[tuple[str, str], ...], str]


class FeatureRef(StrictModel):
    """A parsed reference; ``version`` is ``None`` (latest), a major (``2``) or exact.

    ``spine_keys`` and ``prefix`` say how it is looked up (see ``FeatureLookup``): pairs of
    (entity key column, spine column) where they differ, and the output name's prefix.
    """

    domain: str
    feature_set: str
    version: str | None = None
    feature: str
    spine_keys: tuple[tuple[str, str], ...] = ()
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> FeatureRef:
        match = _REF.match(text.strip()) if isinstance(text, str) else None
        if not match:
            lower = text.strip().lower() if isinstance(text, str) else ""
            case = (
                f" (names in a reference are lower case: did you mean {lower!r}?)"
                if _REF.match(lower)
                else ""
            )
            raise ValueError(
                f"{text!r} is not a feature reference{case}; use domain.feature_set.feature "
                "or domain.feature_set@1.2.0.feature (or .* for all features)"
            )
        return cls(
            domain=match["domain"],
            feature_set=match["fs"],
            version=match["version"],
            feature=match["feature"],
        )

    def looked_up(self, keys: dict[str, str], prefix: str) -> FeatureRef:
        """This reference matched on other spine columns (entity key -> spine column)."""
        pairs = tuple(sorted((k, v) for k, v in keys.items() if k != v))
        return self.model_copy(update={"spine_keys": pairs, "prefix": prefix})

    @property
    def role(self) -> Role:
        """How it is looked up: references with the same set, pin and role are read together."""
        return self.spine_keys, self.prefix

    @property
    def set_name(self) -> str:
        return f"{self.domain}.{self.feature_set}"

    def __str__(self) -> str:
        pin = f"@{self.version}" if self.version else ""
        return f"{self.set_name}{pin}.{self.feature}"


class FeatureLookup(StrictModel):
    """Features looked up with spine columns named otherwise than the entity's keys.

    ``keys`` maps an entity key column to the spine column holding it (keys not listed keep
    their names); ``prefix`` is prepended to each output column. One feature set can so be
    read in several roles, e.g. a transfer's sender and receiver, each a customer::

        - features: [customers.profile.segment]
          keys: {customer_id: sender_id}
          prefix: sender_
    """

    features: tuple[str, ...] = Field(min_length=1)
    keys: dict[str, str] = Field(default_factory=dict)
    prefix: str = ""

    @field_validator("features")
    @classmethod
    def _refs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for ref in value:
            FeatureRef.parse(ref)
        return value

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not k or not v for k, v in value.items()):
            raise ValueError("keys: map each entity key column to a spine column (non-empty)")
        if len(set(value.values())) != len(value):
            raise ValueError("keys: two entity keys map to the same spine column")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("prefix: no leading or trailing whitespace")
        return value

    def refs(self) -> list[FeatureRef]:
        return [FeatureRef.parse(r).looked_up(self.keys, self.prefix) for r in self.features]


def expand_references(items: Iterable[str | FeatureRef | FeatureLookup]) -> list[FeatureRef]:
    """References as ``FeatureRef``s: text parsed, lookups expanded into their references.

    Raises ``ValueError`` for text that is not a reference.
    """
    refs: list[FeatureRef] = []
    for item in items:
        if isinstance(item, FeatureLookup):
            refs.extend(item.refs())
        elif isinstance(item, FeatureRef):
            refs.append(item)
        else:
            refs.append(FeatureRef.parse(item))
    return refs
