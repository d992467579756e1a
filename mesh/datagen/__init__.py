"""Deterministic generator of the example mesh's data products, and the end-to-end demo.

``generate_example_mesh`` writes customers.customer_profiles, payments.transactions,
support.tickets and the churn training set's spine as Delta tables; ``append_day`` adds the
next day of transactions; ``run_demo`` runs the whole example from data to training set.
Names load on first use, so importing the package (or the CLI) does not import pyspark.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesh.datagen.config import SCALES, DataGenError, GeneratorConfig, config_for_scale
    from mesh.datagen.demo import DemoReport, StepResult, run_demo
    from mesh.datagen.generator import GeneratedProduct, append_day, generate_example_mesh

_LAZY = {
    "SCALES": "mesh.datagen.config",
    "DataGenError": "mesh.datagen.config",
    "GeneratorConfig": "mesh.datagen.config",
    "config_for_scale": "mesh.datagen.config",
    "DemoReport": "mesh.datagen.demo",
    "StepResult": "mesh.datagen.demo",
    "run_demo": "mesh.datagen.demo",
    "GeneratedProduct": "mesh.datagen.generator",
    "append_day": "mesh.datagen.generator",
    "generate_example_mesh": "mesh.datagen.generator",
}

__all__ = [
    "SCALES",
    "DataGenError",
    "DemoReport",
    "GeneratedProduct",
    "GeneratorConfig",
    "StepResult",
    "append_day",
    "config_for_scale",
    "generate_example_mesh",
    "run_demo",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mesh.datagen' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
