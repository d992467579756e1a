"""Definitions of the mesh: pydantic models only, never pyspark."""

from mesh.definitions.base import Duration, format_duration, parse_duration
from mesh.definitions.entity import Entity
from mesh.definitions.feature_set import (
    AggregationFeature,
    ColumnFeature,
    ExpressionFeature,
    Feature,
    FeatureSet,
    Metadata,
)
from mesh.definitions.global_set import GlobalFeatureSet
from mesh.definitions.loader import load_mesh
from mesh.definitions.mesh import AnyFeatureSet, MeshDefinition
from mesh.definitions.references import FeatureLookup, FeatureRef
from mesh.definitions.source import DataProduct
from mesh.definitions.standards import Standards
from mesh.definitions.training import Spine, TrainingSet

__all__ = [
    "AggregationFeature",
    "AnyFeatureSet",
    "ColumnFeature",
    "DataProduct",
    "Duration",
    "Entity",
    "ExpressionFeature",
    "Feature",
    "FeatureLookup",
    "FeatureRef",
    "FeatureSet",
    "GlobalFeatureSet",
    "MeshDefinition",
    "Metadata",
    "Spine",
    "Standards",
    "TrainingSet",
    "format_duration",
    "load_mesh",
    "parse_duration",
]
