"""Feature mesh: data mesh for machine-learning features on Spark and Delta Lake.

``import mesh`` stays light (no pyspark import): the Spark-backed parts load on first use,
so definitions can be validated where Spark is not installed or started.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

from mesh.errors import MeshError

try:
    __version__ = metadata.version("feature-mesh")
except metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+local"

if TYPE_CHECKING:
    from mesh.catalog import publish_feature_set
    from mesh.compute import compute_targets, refresh_targets
    from mesh.definitions import load_mesh
    from mesh.join import FeatureSource, point_in_time_join
    from mesh.session import get_spark
    from mesh.sets import (
        build_global_feature_set,
        build_inference_set,
        build_training_set,
        rebuild_training_set,
    )
    from mesh.storage import open_table

_LAZY = {
    "FeatureSource": "mesh.join",
    "point_in_time_join": "mesh.join",
    "load_mesh": "mesh.definitions",
    "get_spark": "mesh.session",
    "open_table": "mesh.storage",
    "compute_targets": "mesh.compute",
    "refresh_targets": "mesh.compute",
    "build_training_set": "mesh.sets",
    "rebuild_training_set": "mesh.sets",
    "build_inference_set": "mesh.sets",
    "build_global_feature_set": "mesh.sets",
    "publish_feature_set": "mesh.catalog",
}

__all__ = [
    "FeatureSource",
    "MeshError",
    "__version__",
    "build_global_feature_set",
    "build_inference_set",
    "build_training_set",
    "compute_targets",
    "get_spark",
    "load_mesh",
    "open_table",
    "point_in_time_join",
    "publish_feature_set",
    "rebuild_training_set",
    "refresh_targets",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mesh' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
