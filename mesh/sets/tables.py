"""Where a feature set's feature tables live: one per major version, under the warehouse.

Feature set ``domain.name`` at major version M is written to and read from
``<warehouse>/features/<domain>/<name>/v<M>`` (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mesh.storage import in_warehouse

if TYPE_CHECKING:
    from mesh.definitions import AnyFeatureSet, MeshDefinition

_MAJOR_DIR = re.compile(r"^v(\d+)$")


def feature_table_location(domain: str, name: str, major: int) -> str:
    """Path of a feature table relative to the warehouse: ``features/<domain>/<name>/v<major>``."""
    return f"features/{domain}/{name}/v{major}"


def existing_majors(mesh: MeshDefinition, definition: AnyFeatureSet) -> list[int]:
    """The majors of ``definition`` whose feature-table folder exists, for messages: empty
    when the folder cannot be listed."""
    from pyarrow import fs as pafs

    from mesh.errors import StorageError
    from mesh.storage.commit import filesystem_for

    root = in_warehouse(mesh, f"features/{definition.domain}/{definition.name}")
    try:
        filesystem, base = filesystem_for(root)
        entries = filesystem.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except (OSError, ValueError, StorageError):  # only for the message; never hide the real one
        return []
    return sorted(
        int(m.group(1)) for e in entries if (m := _MAJOR_DIR.match(e.base_name)) is not None
    )
