"""Consumers' side of the mesh: training sets (with manifests), inference sets, global features.

Everything reads feature tables through the point-in-time join (:mod:`mesh.join`), pins the
Delta version of every input, and asks the catalog's access control before reading.
"""

from mesh.sets.entities import entities_from_text
from mesh.sets.errors import (
    InputChangedError,
    InputNotBuiltError,
    ManifestError,
    NewInputMajorError,
    NotPublishedError,
    OutputPathError,
    SetBuildError,
    SpineChangedError,
    SpineError,
    UnknownReferenceError,
    VersionPinError,
)
from mesh.sets.global_features import (
    GlobalBuildResult,
    LineageEdge,
    build_global_feature_set,
    compute_global_features,
)
from mesh.sets.inference import build_inference_set
from mesh.sets.manifest import InputPin, Manifest, SpinePin, read_manifest
from mesh.sets.resolve import resolve_inputs
from mesh.sets.tables import feature_table_location
from mesh.sets.training import (
    TrainingSetResult,
    build_training_set,
    rebuild_training_set,
)

__all__ = [
    "GlobalBuildResult",
    "InputChangedError",
    "InputNotBuiltError",
    "InputPin",
    "LineageEdge",
    "Manifest",
    "ManifestError",
    "NewInputMajorError",
    "NotPublishedError",
    "OutputPathError",
    "SetBuildError",
    "SpineChangedError",
    "SpineError",
    "SpinePin",
    "TrainingSetResult",
    "UnknownReferenceError",
    "VersionPinError",
    "build_global_feature_set",
    "build_inference_set",
    "build_training_set",
    "compute_global_features",
    "entities_from_text",
    "feature_table_location",
    "read_manifest",
    "rebuild_training_set",
    "resolve_inputs",
]
