"""Feature sets: a domain's features over its data products, with metadata and fingerprints."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mesh.definitions.base import (
    Duration,
    SparkType,
    StrictModel,
    check_type,
    fingerprint,
    format_duration,
    legacy_format_duration,
    normalise_type,
    parse_semver,
)
from mesh.definitions.binding import Binding
from mesh.definitions.standards import Visibility

PiiClass = Literal["none", "pii", "sensitive"]
PII_ORDER: tuple[PiiClass, ...] = ("none", "pii", "sensitive")  # least to most protected
PROTECTED_PII = PII_ORDER[1:]  # personal data: reads need a grant, values stay out of the catalog
AggFunction = Literal["count", "sum", "mean", "min", "max", "stddev", "last", "approx_distinct"]

# Data-changing output type of each aggregation, given the input column type.
_AGG_TYPES: dict[str, str | None] = {
    "count": "bigint",
    "approx_distinct": "bigint",
    "mean": "double",
    "stddev": "double",
    "sum": None,
    "min": None,
    "max": None,
    "last": None,
}
# Spark sums integers as bigint and floating point as double (both engines sum with F.sum).
_SUM_TYPES = {t: "bigint" for t in ("tinyint", "smallint", "int", "bigint")} | {
    "float": "double",
    "double": "double",
}


class _FeatureBase(StrictModel):
    name: str
    description: str = ""
    pii: PiiClass | None = None
    tags: tuple[str, ...] = ()

    def data_payload(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude={"description", "pii", "tags"})


class AggregationFeature(_FeatureBase):
    """A windowed aggregation: one output column ``<name>_<window>`` per window.

    ``column`` is aggregated (not needed for ``count``); ``filter`` is an optional SQL
    predicate over source rows.
    """

    kind: Literal["aggregation"] = "aggregation"
    function: AggFunction
    column: str | None = None
    windows: tuple[Duration, ...] = Field(min_length=1)
    filter: str | None = None
    type: SparkType | None = None

    @field_validator("type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        return check_type(value) if value is not None else None

    @model_validator(mode="after")
    def _needs_column(self) -> AggregationFeature:
        if self.function != "count" and not self.column:
            raise ValueError(f"function {self.function!r} needs a `column` to aggregate")
        if len(set(self.windows)) != len(self.windows):
            raise ValueError("windows repeat; list each window once")
        return self

    def output_names(self) -> list[str]:
        return [f"{self.name}_{format_duration(w)}" for w in self.windows]

    def legacy_output_names(self) -> list[str]:
        """The column names engines before ``format_duration`` dropped years gave (``_1y``)."""
        return [f"{self.name}_{legacy_format_duration(w)}" for w in self.windows]

    def result_type(self, input_type: str | None) -> str | None:
        """The Spark type the engine produces over a source column of ``input_type``.

        The declared ``type:`` is not applied here (the engine casts to it afterwards).
        ``None`` when it cannot be known: the input type is unknown (for functions whose
        type follows it), or a ``sum``/``mean`` of a decimal, whose precision Spark widens
        with every sum of the window.
        """
        decimal = input_type is not None and input_type.startswith("decimal")
        if decimal and self.function in ("sum", "mean"):
            return None
        if self.function == "sum":
            return _SUM_TYPES.get(input_type or "", input_type)
        return _AGG_TYPES[self.function] or input_type

    def output_type(self, input_type: str | None) -> str | None:
        """The declared type, else the engine's (``result_type``), else the input's."""
        return self.type or self.result_type(input_type) or _AGG_TYPES[self.function] or input_type

    def data_payload(self) -> dict[str, object]:
        payload = super().data_payload()
        if self.type is not None and normalise_type(self.type) == _AGG_TYPES[self.function]:
            payload["type"] = None  # spelled out, the function's own type changes nothing
        return payload


class ExpressionFeature(_FeatureBase):
    """A row-level SQL expression over one source row, e.g. ``amount * fx_rate``."""

    kind: Literal["expression"] = "expression"
    expr: str = Field(min_length=1)
    type: SparkType

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return check_type(value)

    def output_names(self) -> list[str]:
        return [self.name]


class ColumnFeature(_FeatureBase):
    """A column taken as it is from a table the domain already computes elsewhere."""

    kind: Literal["column"] = "column"
    column: str | None = None
    type: SparkType

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return check_type(value)

    @property
    def source_column(self) -> str:
        return self.column or self.name

    def data_payload(self) -> dict[str, object]:
        payload = super().data_payload()
        payload["column"] = None if self.source_column == self.name else self.column
        return payload

    def output_names(self) -> list[str]:
        return [self.name]


Feature = Annotated[
    AggregationFeature | ExpressionFeature | ColumnFeature, Field(discriminator="kind")
]


class Metadata(StrictModel):
    """Who owns a feature set and who may see it. Changes here never change data."""

    owner: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    visibility: Visibility | None = None
    allowed_domains: tuple[str, ...] = ()


class QualityOverrides(StrictModel):
    """Per-feature-set data-check thresholds (override the standards)."""

    max_null_rate: dict[str, float] = Field(default_factory=dict)
    ranges: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    freshness: Duration | None = None
    max_psi: float | None = None


class FeatureSet(StrictModel):
    """Features owned by one domain over one data product, keyed on one registered entity.

    ``accuracy``: ``snapshot`` computes values on a grid (every ``interval`` boundary) for
    every entity with activity in its windows; ``event`` emits a new value as of each
    source event. ``exclude_late_data`` keeps rows whose arrival time is after a point in
    time out of that point's values (and out of joins at that time).
    """

    kind: Literal["feature_set"] = "feature_set"
    name: str
    domain: str
    version: str = "1.0.0"
    entity: str
    source: str
    accuracy: Literal["snapshot", "event"] = "snapshot"
    interval: Duration = timedelta(days=1)
    ttl: Duration | None = None
    exclude_late_data: bool = True
    features: tuple[Feature, ...] = Field(min_length=1)
    metadata: Metadata = Metadata()
    quality: QualityOverrides = QualityOverrides()

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        parse_semver(value)
        return value

    @field_validator("features")
    @classmethod
    def _kinds_do_not_mix(cls, value: tuple[Feature, ...]) -> tuple[Feature, ...]:
        kinds = {f.kind for f in value}
        if "aggregation" in kinds and len(kinds) > 1:
            raise ValueError(
                "aggregations cannot be mixed with row-level (expression/column) features in "
                "one feature set; split them into two feature sets"
            )
        return value

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}.{self.name}"

    @property
    def is_aggregation(self) -> bool:
        return self.features[0].kind == "aggregation"

    def output_names(self) -> list[str]:
        return [name for f in self.features for name in f.output_names()]

    def off_grid_windows(self) -> list[tuple[int, AggregationFeature, timedelta]]:
        """(index, feature, window) of each window of a ``snapshot`` set that is not a whole
        number of its ``interval``: values exist only on the grid, so compute refuses them."""
        if self.accuracy != "snapshot":
            return []
        return [
            (i, feature, window)
            for i, feature in enumerate(self.features)
            if isinstance(feature, AggregationFeature)
            for window in feature.windows
            if window % self.interval
        ]

    @property
    def row_level_off_event(self) -> bool:
        """A row-level (expression/column) set not at ``accuracy: event``: its values are
        one per source row, so compute refuses any other accuracy."""
        return not self.is_aggregation and self.accuracy != "event"

    def legacy_output_names(self) -> list[str]:
        """``output_names`` as engines that named 365-day windows ``_1y`` wrote them."""
        return [
            name
            for f in self.features
            for name in (
                f.legacy_output_names() if isinstance(f, AggregationFeature) else f.output_names()
            )
        ]

    @property
    def local_source(self) -> str:
        """The source as its own domain names it (``payments.transactions`` -> ``transactions``)."""
        return self.source.removeprefix(f"{self.domain}.")

    def data_hash(self, binding: Binding) -> str:
        """Changes when anything that changes values changes: this set's source, entity,
        timestamp semantics and features, and its ``binding`` (the entity's keys, the data
        product's location and timestamp columns; ``MeshDefinition.binding``)."""
        return fingerprint({**self._data_payload(), "binding": binding.model_dump(mode="json")})

    def legacy_data_hash(self) -> str:
        """The data hash as recorded before it covered the binding: this set's own fields,
        durations written as then (``legacy_format_duration``: 365 days as ``1y``).

        Only to recognise hashes that catalogs and feature tables recorded then
        (``MeshDefinition.match_data_hash``); never recorded now.
        """
        return fingerprint(self._data_payload(legacy_format_duration))

    def _data_payload(self, fmt: Callable[[timedelta], str] = format_duration) -> dict[str, object]:
        # Spelling that reads the same data hashes the same: the source with or without its
        # own domain, and an event set's interval (used by snapshot sets only) left out.
        interval = self.interval if self.accuracy == "snapshot" else timedelta(days=1)
        features = []
        for feature in self.features:
            payload = feature.data_payload()
            if isinstance(feature, AggregationFeature):
                payload["windows"] = [fmt(w) for w in feature.windows]
            features.append(payload)
        return {
            "entity": self.entity,
            "source": self.local_source,
            "accuracy": self.accuracy,
            "interval": fmt(interval),
            "ttl": fmt(self.ttl) if self.ttl else None,
            "exclude_late_data": self.exclude_late_data,
            "features": features,
        }

    def metadata_hash(self) -> str:
        """Changes with owner, description, tags, visibility, PII classes; never with data."""
        return fingerprint(
            {
                "metadata": self.metadata.model_dump(mode="json"),
                "features": [
                    {"name": f.name, "description": f.description, "pii": f.pii, "tags": f.tags}
                    for f in self.features
                ],
                "quality": self.quality.model_dump(mode="json"),
            }
        )
