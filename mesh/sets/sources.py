"""Pinned inputs read as the point-in-time join's sources, each at its pinned Delta version.

Every source is read with the columns the feature-table contract gives it (the entity's keys,
``feature_ts``, ``created_ts``, the features), its features renamed to their output columns
(:mod:`mesh.sets.naming`) and its read options (TTL, late data, lookup keys) from its pin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mesh.definitions import MeshDefinition
from mesh.definitions.columns import CREATED_TS, FEATURE_TS
from mesh.errors import VersionFilesRemovedError
from mesh.sets.errors import InputChangedError, UnknownReferenceError
from mesh.sets.manifest import InputPin
from mesh.storage import in_warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.join import FeatureSource


def load_sources(
    spark: SparkSession, mesh: MeshDefinition, inputs: Sequence[InputPin]
) -> list[FeatureSource]:
    """One ``FeatureSource`` per pinned input, read at its pinned Delta version.

    Feature columns are renamed to their output names here, so the join never has to
    disambiguate.
    """
    from pyspark.sql import functions as F

    from mesh.join import FeatureSource
    from mesh.storage import open_table

    sources = []
    for pin in inputs:
        table = open_table(spark, in_warehouse(mesh, pin.table))
        try:
            df = table.read(version=pin.delta_version)
        except VersionFilesRemovedError as exc:
            raise InputChangedError(
                f"Feature set {pin.feature_set}: Delta version {pin.delta_version} of "
                f"{table.path} (semantic version {pin.semantic_version}) can no longer be "
                f"read: {len(exc.params['missing'])} of its data files were removed (e.g. by "
                "VACUUM, which removes the files only older versions reference), so its rows "
                "cannot be reproduced. Restore the files, or read a version whose files are "
                "there (for a manifest's rebuild: build the training set anew; for a build: "
                "publish the feature set again).",
                feature_set=pin.feature_set,
                path=table.path,
                delta_version=pin.delta_version,
                changed=["data_files"],
                missing=exc.params["missing"],
            ) from exc
        needed = [*pin.keys, FEATURE_TS, CREATED_TS, *pin.features]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise UnknownReferenceError(
                f"Feature set {pin.feature_set} (table {pin.table}, Delta version "
                f"{pin.delta_version}, semantic version {pin.semantic_version}) has no column(s) "
                f"{', '.join(missing)}; columns there: {', '.join(df.columns)}. Reference a "
                "feature that exists in that version or pin another version.",
                feature_set=pin.feature_set,
                missing=missing,
                available=list(df.columns),
            )
        df = df.select(
            *pin.keys,
            FEATURE_TS,
            CREATED_TS,
            *[F.col(name).alias(out) for name, out in pin.features.items()],
        )
        sources.append(
            FeatureSource(
                df,
                keys=list(pin.keys),
                timestamp=FEATURE_TS,
                created_timestamp=CREATED_TS,
                ttl=pin.ttl_seconds,
                features=list(pin.features.values()),
                name=pin.feature_set,
                exclude_not_yet_created=pin.exclude_late_data,
                spine_keys=pin.spine_keys,
            )
        )
    return sources
