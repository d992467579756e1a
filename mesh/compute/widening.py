"""Minor versions share their major version's feature table: they may only add columns.

The table lives at ``features/<domain>/<name>/v<major>``, so a minor version that adds a feature
writes into the table its earlier versions wrote. Its new columns are added to the table (rows
written before read them as null); a column the table has and the definition no longer
computes, or computes with another type, is a breaking change that needs a new major version
(a new table).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesh.definitions.base import parse_semver
from mesh.errors import ComputeError

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

    from mesh.definitions import AnyFeatureSet


def added_columns(fs: AnyFeatureSet, path: str, table: StructType, frame: StructType) -> list[str]:
    """Columns of ``frame`` (a run's rows) that the feature table at ``path`` does not have yet.

    ``ComputeError`` when the change is not pure widening: a table column missing from the
    frame, or present with another type (names the columns and the major version to use).
    """
    have = {f.name: f.dataType.simpleString() for f in frame}
    removed = [f.name for f in table if f.name not in have]
    changed = [
        f"{f.name} ({f.dataType.simpleString()} -> {have[f.name]})"
        for f in table
        if f.name in have and have[f.name] != f.dataType.simpleString()
    ]
    if removed or changed:
        major = parse_semver(fs.version)[0]
        expected = f"{major + 1}.0.0"
        problems = []
        if removed:
            problems.append(f"no longer computed: {', '.join(removed)}")
        if changed:
            problems.append(f"type changed: {', '.join(changed)}")
        raise ComputeError(
            f"Feature set `{fs.qualified_name}` {fs.version}: its feature table {path} (shared "
            f"by the {major}.x versions) holds columns this definition does not compute as "
            f"they are ({'; '.join(problems)}). Only added features fit a minor version; "
            f"removing a feature or changing its type needs a new major version: set version "
            f"to {expected} (a new table, v{major + 1}).",
            feature_set=fs.qualified_name,
            version=fs.version,
            path=path,
            removed=removed,
            changed=changed,
            expected_version=expected,
        )
    known = {f.name for f in table}
    return [f.name for f in frame if f.name not in known]
