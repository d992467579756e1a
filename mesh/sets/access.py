"""The one place where set builds ask the catalog whether the caller may read features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.access import Identity
    from mesh.definitions import AnyFeatureSet, MeshDefinition


def authorize(
    spark: SparkSession,
    mesh: MeshDefinition,
    requests: Sequence[tuple[AnyFeatureSet, list[str]]],
    purpose: str,
    identity: str | Identity | None = None,
) -> None:
    """Check (and audit) that the caller may read ``requests`` before any feature is read.

    ``requests`` pairs each feature set definition with the feature names read from it;
    ``identity`` (``user@domain`` or ``domain``) defaults to the variable named by
    ``access.identity_env`` in the standards. Raises ``AccessDeniedError`` when a grant is
    missing; the attempt is audited either way.
    """
    # Imported here: the catalog pulls in Spark-side modules the definitions must not need.
    from mesh.catalog.access import authorize_read, current_identity

    who = current_identity(mesh.standards, identity)
    authorize_read(spark, mesh, who, list(requests), purpose)
