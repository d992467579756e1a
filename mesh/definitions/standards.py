"""The platform team's global standards (``conf/mesh.yaml``): the rules every domain obeys."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from mesh.definitions.base import Duration, SparkType, StrictModel, check_type, referable_name
from mesh.definitions.entity import Entity

Visibility = Literal["private", "internal", "public"]


class NamingRules(StrictModel):
    """Naming rules for feature sets and features."""

    feature_pattern: str = r"^[a-z][a-z0-9_]*$"
    feature_set_pattern: str = r"^[a-z][a-z0-9_]*$"
    max_length: int = Field(default=64, gt=0)
    reserved: tuple[str, ...] = ("feature_ts", "created_ts", "_run_id")

    @field_validator("feature_pattern", "feature_set_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"{value!r} is not a regular expression ({exc}); fix it, e.g. '^[a-z][a-z0-9_]*$'"
            ) from None
        return value


class QualityDefaults(StrictModel):
    """Data-check thresholds applied on publish unless a feature set overrides them."""

    min_rows: int = Field(default=1, ge=0)
    max_null_rate: float = Field(default=0.5, ge=0, le=1)
    max_key_null_rate: float = Field(default=0.0, ge=0, le=1)
    freshness: Duration | None = None
    max_psi: float = Field(default=0.25, ge=0)


class AccessDefaults(StrictModel):
    """Access defaults: visibility when unset, where the caller's identity comes from."""

    default_visibility: Visibility = "internal"
    identity_env: str = "MESH_IDENTITY"
    grants: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="domain -> feature sets or 'domain.feature_set.feature' PII grants",
    )


class StorageSettings(StrictModel):
    """Where tables live and which Delta backend writes them."""

    warehouse: str = "./warehouse"
    backend: Literal["auto", "native", "embedded"] = "auto"
    # Earlier roots of this warehouse (it was moved or copied from there): catalog records and
    # manifests an earlier engine wrote with absolute paths under them are read under the
    # warehouse instead (see mesh.catalog.paths).
    moved_from: tuple[str, ...] = ()


DomainName = Annotated[str, AfterValidator(lambda name: referable_name(name, "domain name"))]


class Domain(StrictModel):
    """A domain team of the mesh."""

    owner: str
    description: str = ""


class Standards(StrictModel):
    """Everything in ``conf/mesh.yaml``."""

    name: str = "feature-mesh"
    storage: StorageSettings = StorageSettings()
    domains: dict[DomainName, Domain] = Field(default_factory=dict)
    entities: dict[str, Entity] = Field(default_factory=dict)
    naming: NamingRules = NamingRules()
    required_metadata: tuple[Literal["owner", "description", "tags", "visibility"], ...] = (
        "owner",
        "description",
    )
    allowed_types: tuple[SparkType, ...] = (
        "boolean",
        "int",
        "bigint",
        "float",
        "double",
        "string",
        "date",
        "timestamp",
    )
    quality: QualityDefaults = QualityDefaults()
    access: AccessDefaults = AccessDefaults()

    @field_validator("allowed_types")
    @classmethod
    def _types_are_spark_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            check_type(item)
        return value

    @field_validator("entities", mode="before")
    @classmethod
    def _entity_names(cls, value: object) -> object:
        # Entities are written as a mapping name -> spec; the name lives in the spec too.
        if isinstance(value, dict):
            return {
                name: ({"name": name, **spec} if isinstance(spec, dict) else spec)
                for name, spec in value.items()
            }
        return value
