"""The warehouse a ``mesh`` command reads: refused before Spark starts when it is not there."""

from __future__ import annotations

import os
from typing import Any


def require_existing_warehouse(mesh: Any, conf: str) -> None:
    """Refuse a local warehouse folder that does not exist (``--warehouse`` misspelt or
    missing), saying how to choose it, for every command that reads an existing warehouse;
    ``generate``, ``demo`` and ``publish`` create it. Without this a read answers "no table"
    with the wrong fix (compute or publish it first)."""
    from mesh.catalog.tables import require_warehouse

    require_warehouse(
        mesh.warehouse_as_given,
        "pass --warehouse or set MESH_WAREHOUSE (default: storage.warehouse in "
        f"{os.path.join(conf, 'mesh.yaml')})",
    )
