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
    from mesh.definitions import load_mesh
    from mesh.join import FeatureSource, point_in_time_join
    from mesh.session import get_spark

_LAZY = {
    "FeatureSource": "mesh.join",
    "point_in_time_join": "mesh.join",
    "load_mesh": "mesh.definitions",
    "get_spark": "mesh.session",
}

__all__ = ["FeatureSource", "MeshError", "__version__", "get_spark", "load_mesh",
           "point_in_time_join"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mesh' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
