"""What a feature set takes from other definitions: its entity's keys, its data product's
location and timestamp columns.

A feature set's file names its entity and source; their meaning lives in ``mesh.yaml`` and the
data product's file. A change there changes the set's values (other rows, other event times,
other keys) as surely as a change of its own fields, so the data hash and the contract check
cover the resolved ``Binding``. The catalog stores it with every published definition (the
``binding`` key of ``definition_json``) so the next publish can compare against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from mesh.definitions.base import SparkType, StrictModel
from mesh.definitions.entity import Entity
from mesh.definitions.source import DataProduct

BINDING_KEY = "binding"  # where a published definition's JSON holds its binding


class Binding(StrictModel):
    """The resolved entity keys (column -> type) and, for a domain feature set, its data
    product's location (relative to the warehouse unless absolute), event timestamp column
    and arrival (created) timestamp column. A global set reads feature sets, whose own
    bindings cover their sources, so its binding is its keys only."""

    keys: dict[str, SparkType] = Field(min_length=1)
    location: str | None = None
    event_timestamp: str | None = None
    created_timestamp: str | None = None

    @classmethod
    def of(cls, entity: Entity, product: DataProduct | None = None) -> Binding:
        """The binding of a set keyed on ``entity`` reading ``product`` (none: global set)."""
        if product is None:
            return cls(keys=dict(entity.keys))
        return cls(
            keys=dict(entity.keys),
            location=product.location,
            event_timestamp=product.event_timestamp,
            created_timestamp=product.created_timestamp,
        )


def published_definition(definition: StrictModel, binding: Binding) -> dict[str, Any]:
    """The JSON the catalog stores for a published version: the definition's own fields and
    the binding it was published with."""
    return {**definition.model_dump(mode="json"), BINDING_KEY: binding.model_dump(mode="json")}


def split_published(value: Mapping[str, Any]) -> tuple[dict[str, Any], Binding | None]:
    """A stored definition (``published_definition``) as its own fields and its binding;
    ``None`` for a definition published before bindings were recorded."""
    fields = dict(value)
    raw = fields.pop(BINDING_KEY, None)
    return fields, (Binding.model_validate(raw) if raw is not None else None)
