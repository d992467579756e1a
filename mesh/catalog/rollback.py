"""Undo of a publish's feature-table commit when its catalog record fails to land.

The ``versions`` row is a publish's commit point: a feature-table commit without one must not
stay visible, so it is undone by a new commit that writes back what the table held before.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from mesh.definitions.columns import FEATURE_TS
from mesh.errors import CatalogError, MeshError
from mesh.storage import CommitInfo
from mesh.storage.commit import filesystem_for

if TYPE_CHECKING:
    from mesh.storage import DeltaFeatureTable


def undo_commit(
    table: DeltaFeatureTable,
    existed: bool,
    before: int | None,
    written: int,
    start: datetime,
    end: datetime,
    cause: BaseException,
    *,
    widened: bool = False,
) -> None:
    """Put the feature table's content back as it was before commit ``written``.

    A commit that widened the schema is undone by writing the whole earlier version back
    (its schema too): a range replacement cannot remove columns.
    """
    try:
        if not existed and table.latest_version() == written:
            filesystem, inner = filesystem_for(table.path)
            filesystem.delete_dir(inner)
            return
        history = {r.version: r for r in table.history()}
        previous_info = history[before].info if before is not None else None
        extra = dict(previous_info.extra) if previous_info else {}
        extra.update({"rolled_back_version": written, "rollback_reason": repr(cause)[:500]})
        info = CommitInfo(
            run_id=uuid.uuid4().hex,
            operation="publish_rollback",
            definition_hash=previous_info.definition_hash if previous_info else None,
            range_start=start,
            range_end=end,
            extra=extra,
        )
        from pyspark.sql import functions as F

        if widened and before is not None:
            # Writes every range back: only while nothing landed after the publish's commit.
            if table.latest_version() != written:
                raise CatalogError(
                    f"another commit landed on {table.path} after version {written}",
                    path=table.path,
                )
            table.create(table.read(version=before), info, time_column=FEATURE_TS, overwrite=True)
            return
        if before is None:
            restored = table.read(version=written).limit(0)
        else:
            restored = table.read(version=before).where(
                (F.col(FEATURE_TS) >= F.lit(start)) & (F.col(FEATURE_TS) < F.lit(end))
            )
        table.replace_range(restored, info, time_column=FEATURE_TS, start=start, end=end)
    except (MeshError, OSError) as undo_error:
        raise CatalogError(
            f"publish failed after the feature table {table.path} committed version {written} "
            f"({cause!r}), and undoing that commit failed too ({undo_error}); the catalog does "
            "not reference that version. Re-run the publish for the same range to repair it.",
            path=table.path,
            version=written,
        ) from undo_error
