"""Training sets: spine + feature references -> a Delta table and a manifest pinning every input.

A build reads the spine, pins each referenced feature set to a Delta version of its feature
table (see :mod:`mesh.sets.resolve`), point-in-time joins them onto the spine, writes the
result as one commit of the training table (``TrainingSet.location`` under the warehouse) and
writes the manifest into that table's folder (:mod:`mesh.sets.manifest`). A rebuild reads the
inputs at the pinned Delta versions and the spine at its pinned version, checks the spine's
fingerprint, and produces the same rows, whatever landed in the feature tables since.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from typing import TYPE_CHECKING

from mesh.definitions import MeshDefinition, Spine, TrainingSet
from mesh.definitions.base import fingerprint
from mesh.sets.access import (
    access_requests,
    authorize,
    authorize_table_path,
    check_visible_references,
)
from mesh.sets.commits import verify_inputs
from mesh.sets.errors import ManifestError, SetBuildError, SpineError, UnknownReferenceError
from mesh.sets.manifest import (
    BUILD_OPERATION,
    InputPin,
    Manifest,
    OutputPin,
    located,
    read_manifest,
    write_manifest,
)
from mesh.sets.output import check_output, feature_tables
from mesh.sets.pinned import verify_options
from mesh.sets.resolve import resolve_inputs
from mesh.sets.sources import load_sources
from mesh.sets.spine import (
    case_hints,
    check_key_types,
    pin_spine,
    read_spine,
    spine_spelling,
    verify_spine,
)
from mesh.storage import in_warehouse, normalize_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class TrainingSetResult:
    """What a build wrote: the training table (path, Delta version, rows) and its manifest."""

    path: str
    delta_version: int
    row_count: int
    manifest: Manifest
    manifest_path: str


def training_definition_hash(training_set: TrainingSet) -> str:
    """Fingerprint of everything in a training-set spec that changes its rows."""
    return fingerprint(training_set.model_dump(mode="json", exclude={"description"}))


def build_training_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    training_set: TrainingSet | str,
    *,
    output: str | None = None,
    identity: str | None = None,
    run_id: str | None = None,
    allow_unpublished: bool = False,
) -> TrainingSetResult:
    """Build a training set and its manifest.

    Every spine row gets, for each reference, the feature value of the referenced feature set
    as of the row's timestamp (point-in-time: ``feature_ts <= t``, or ``<`` with
    ``strict``; rows created after ``t`` are excluded when both the training set and the
    feature set say ``exclude_late_data``; the set's TTL applies; no match gives null). The
    output has the spine's columns unchanged, then one column per feature (named as the
    feature; ``<domain>__<set>__<feature>`` when a name would repeat), one row per spine row.

    ``training_set`` is a spec or the qualified name of one in ``mesh``; ``output`` overrides
    its location. The caller must be allowed to read every feature (``identity`` defaults to
    the standards' identity variable). Each build is one new commit of the training table.
    Features are read at their sets' newest published versions; a set never published is
    refused (``NotPublishedError``) unless ``allow_unpublished`` (read with a warning).
    An output the build must not overwrite (the catalog, feature tables, another domain's
    training tables, a table it reads, another writer's table or files) is refused with
    ``OutputPathError`` before anything is read (:mod:`mesh.sets.output`).
    """
    from mesh.join.source import require_bool

    require_bool(allow_unpublished, "allow_unpublished", "build_training_set ", SetBuildError)
    spec = training_spec(mesh, training_set)
    location = output or spec.location
    reads = [("the spine", spec.spine.path), *feature_tables(mesh, spec.features)]
    check_output(
        spark, mesh, location, reads, operation=BUILD_OPERATION, training_set=spec.qualified_name
    )
    purpose = f"training set {spec.qualified_name}"
    spine_path = in_warehouse(mesh, spec.spine.path)
    authorize_table_path(spark, mesh, spine_path, (), f"{purpose} (spine)", identity)
    # Its columns are checked as read, before the references (a catalog read) or any job.
    spine_df, spine_version, spine = read_spine(spark, mesh, spec.spine)
    check_visible_references(spark, mesh, spec.features, purpose, identity)
    inputs = resolve_inputs(
        spark,
        mesh,
        spec.features,
        exclude_late_data=spec.exclude_late_data,
        taken=spine_df.columns,
        allow_unpublished=allow_unpublished,
    )
    inputs = _match_spine_keys(spine, spine_df, inputs)
    authorize(
        spark,
        mesh,
        access_requests(spark, mesh, inputs),
        f"training set {spec.qualified_name}",
        identity,
    )
    # The spine's own spelling of its columns: a rebuild finds them in any session.
    spine_pin = pin_spine(spine, spine_df, spine_version)
    spine_pin = spine_pin.model_copy(update={"path": _place(mesh, spine.path)})
    run = run_id or uuid.uuid4().hex
    columns = _output_columns(spine_df.columns, inputs)
    version = _join_and_write(
        spark,
        mesh,
        spine_df,
        spine.timestamp,
        inputs,
        spec.strict,
        location,
        run,
        training_definition_hash(spec),
        spec.qualified_name,
        spine_version,
        columns,
    )
    manifest = Manifest(
        training_set=spec.qualified_name,
        definition_hash=training_definition_hash(spec),
        engine_version=engine_version(),
        run_id=run,
        built_at=datetime.now(timezone.utc),
        warehouse=normalize_path(mesh.warehouse),
        strict=spec.strict,
        spine=spine_pin,
        inputs=tuple(inputs),
        columns=columns,
        output=OutputPin(
            path=_place(mesh, location), delta_version=version, row_count=spine_pin.row_count
        ),
    )
    return _finish(spark, mesh, manifest, spec, identity)


def rebuild_training_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    manifest: Manifest | str,
    *,
    output: str | None = None,
    identity: str | None = None,
    run_id: str | None = None,
    manifest_path: str | None = None,
) -> TrainingSetResult:
    """Rebuild a training set exactly as a manifest describes it.

    Every feature table is read at its pinned Delta version with the pinned keys, features,
    TTL and late-data rule (the current definitions in ``conf/`` are only used for the access
    check), and a Delta spine at its pinned version. ``SpineChangedError`` when the spine's
    row count, checksum or columns differ from the manifest. ``manifest`` is a ``Manifest``,
    a manifest file, or a training table folder; ``output`` defaults to the manifest's table
    (the rebuild becomes its newest commit). A new manifest (``rebuilt_from`` = original run
    id) is written beside the output. The output is checked as a build's is
    (``OutputPathError``): the set's own table, or a new or empty folder, is fine.

    Before the spine or any input is read, the manifest is checked against the definitions
    it pins (``ManifestError``, naming ``manifest``'s path, or ``manifest_path`` for a
    ``Manifest`` read from a file): its inputs' read options, keys, lookups and column names
    (:mod:`mesh.sets.pinned`).
    """
    from mesh.catalog.search import versions_by_name

    pinned = read_manifest(manifest) if isinstance(manifest, str) else manifest
    # Its tables as places in this warehouse (an earlier engine's absolute paths included).
    pinned = located(pinned, mesh.warehouse, mesh.standards.storage.moved_from)
    path = manifest if isinstance(manifest, str) else manifest_path
    spine = Spine(
        path=pinned.spine.path,
        format=pinned.spine.format,
        timestamp=pinned.spine.timestamp,
        keys=pinned.spine.keys,
        labels=pinned.spine.labels,
    )
    location = output or pinned.output.path
    reads = [("the spine", spine.path)]
    reads += [(f"the feature table of {pin.feature_set}", pin.table) for pin in pinned.inputs]
    check_output(
        spark, mesh, location, reads, operation=BUILD_OPERATION, training_set=pinned.training_set
    )
    purpose = f"training set {pinned.training_set} (rebuild)"
    spine_path = in_warehouse(mesh, spine.path)
    authorize_table_path(spark, mesh, spine_path, (), f"{purpose} (spine)", identity)
    for pin in pinned.inputs:
        if pin.feature_set not in mesh.all_sets():
            raise UnknownReferenceError(
                f"Manifest of {pinned.training_set}: feature set {pin.feature_set} is no longer "
                "defined, so the read cannot be access-checked; restore its definition under "
                "conf/ to rebuild.",
                feature_set=pin.feature_set,
                reference=pin.feature_set,
            )
    authorize(
        spark,
        mesh,
        access_requests(spark, mesh, pinned.inputs),
        f"training set {pinned.training_set} (rebuild)",
        identity,
    )
    verify_inputs(spark, mesh, pinned.inputs)
    spec = mesh.training_sets.get(pinned.training_set)
    same = spec if spec and training_definition_hash(spec) == pinned.definition_hash else None
    # Refused before any Spark job: the spine's fingerprint is the first one.
    verify_options(mesh, pinned, versions_by_name(spark, mesh), same, path)
    spine_df, _, spine = read_spine(spark, mesh, spine, version=pinned.spine.delta_version)
    verify_spine(pinned.spine, spine_df)
    if pinned.engine_version != engine_version():
        warnings.warn(
            f"Rebuilding {pinned.training_set} with engine {engine_version()}; it was built "
            f"with {pinned.engine_version}. Rows are identical unless the join semantics changed.",
            RuntimeWarning,
            stacklevel=2,
        )
    run = run_id or uuid.uuid4().hex
    version = _join_and_write(
        spark,
        mesh,
        spine_df,
        spine.timestamp,
        list(pinned.inputs),
        pinned.strict,
        location,
        run,
        pinned.definition_hash,
        pinned.training_set,
        pinned.spine.delta_version,
        _pinned_columns(pinned, spine_df.columns),
    )
    manifest = pinned.model_copy(
        update={
            "engine_version": engine_version(),
            "run_id": run,
            "built_at": datetime.now(timezone.utc),
            "warehouse": normalize_path(mesh.warehouse),
            "output": OutputPin(
                path=_place(mesh, location), delta_version=version, row_count=pinned.spine.row_count
            ),
            "rebuilt_from": pinned.run_id,
        }
    )
    return _finish(spark, mesh, manifest, mesh.training_sets.get(pinned.training_set), identity)


def _place(mesh: MeshDefinition, location: str) -> str:
    """``location`` (relative: under the warehouse) as a manifest records it: its place in the
    warehouse when it lies there, else absolute or the URI (see ``mesh.catalog.paths``)."""
    from mesh.catalog.paths import stored_path

    return stored_path(mesh.warehouse, in_warehouse(mesh, location))


def engine_version() -> str:
    """The installed feature-mesh version (what ``mesh.__version__`` reports)."""
    # Read from the distribution, not ``mesh.__version__``: an editable install made before
    # mesh/__init__.py existed imports ``mesh`` as a namespace package without it.
    try:
        return metadata.version("feature-mesh")
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0+local"


def training_spec(mesh: MeshDefinition, training_set: TrainingSet | str) -> TrainingSet:
    """``training_set`` itself, or the spec of that qualified name in ``mesh``.

    Raises ``UnknownReferenceError`` (naming the defined ones) for an unknown name.
    """
    if isinstance(training_set, TrainingSet):
        return training_set
    spec = mesh.training_sets.get(training_set)
    if spec is None:
        known = sorted(mesh.training_sets)
        raise UnknownReferenceError(
            f"Training set {training_set!r} is not defined (defined: "
            f"{', '.join(known) or 'none'}); add it under conf/training/ or check the name "
            "(domain.name).",
            reference=training_set,
            available=known,
        )
    return spec


def _match_spine_keys(spine: Spine, df: DataFrame, inputs: Sequence[InputPin]) -> list[InputPin]:
    """``inputs`` matched on the spine's spelling of their key columns (``spine_spelling``),
    or ``SpineError`` naming the key columns the spine lacks."""
    from mesh.join.resolve import case_sensitive

    sensitive = case_sensitive(df.sparkSession)
    matched = []
    for pin in inputs:
        spelled, missing = spine_spelling(pin, df.columns, sensitive)
        if missing:
            wanted = pin.spine_columns
            looked_up = "" if pin.spine_keys is None else f", looked up as {', '.join(wanted)},"
            raise SpineError(
                f"Spine {spine.path}: feature set {pin.feature_set} is keyed on "
                f"{', '.join(pin.keys)}{looked_up} but the spine lacks {', '.join(missing)} "
                f"(columns: {', '.join(df.columns)}){case_hints(df.columns, missing)}; add "
                "the key column(s) to the spine.",
                path=spine.path,
                feature_set=pin.feature_set,
                missing=missing,
            )
        matched.append(spelled)
    return matched


def _output_columns(spine_columns: Sequence[str], inputs: Sequence[InputPin]) -> tuple[str, ...]:
    return (*spine_columns, *[out for pin in inputs for out in pin.features.values()])


def _pinned_columns(pinned: Manifest, spine_columns: Sequence[str]) -> tuple[str, ...]:
    """The output columns in the order the original build wrote them (``columns``).

    The manifest's ``features`` mappings are stored with sorted keys, so they do not keep
    that order; ``columns`` does. It must hold exactly the columns the rebuild produces.
    """
    produced = _output_columns(spine_columns, pinned.inputs)
    if sorted(pinned.columns) != sorted(produced):
        raise ManifestError(
            f"Manifest of {pinned.training_set}: its columns ({', '.join(pinned.columns)}) "
            f"are not the spine's and inputs' ({', '.join(produced)}); the manifest was "
            "edited or is damaged: rebuild from another one (_manifests/<version>.json).",
            training_set=pinned.training_set,
            columns=list(pinned.columns),
            produced=list(produced),
        )
    return pinned.columns


def _join_and_write(
    spark: SparkSession,
    mesh: MeshDefinition,
    spine_df: DataFrame,
    spine_timestamp: str,
    inputs: Sequence[InputPin],
    strict: bool,
    location: str,
    run_id: str,
    definition_hash: str,
    name: str,
    spine_version: int | None,
    columns: Sequence[str],
) -> int:
    """Join, then write the table with ``columns`` in that order (the manifest's)."""
    from mesh.join import point_in_time_join
    from mesh.join.columns import col
    from mesh.storage import CommitInfo, open_table

    sources = load_sources(spark, mesh, inputs)
    check_key_types(f"Spine of training set {name}", spine_df, inputs, sources)
    joined = point_in_time_join(spine_df, sources, spine_timestamp=spine_timestamp, strict=strict)
    # By exact name: a spine column `a.b` is a column, not the field b of a struct a.
    joined = joined.select(*[col(c) for c in columns])
    commit = CommitInfo(
        run_id=run_id,
        operation=BUILD_OPERATION,
        definition_hash=definition_hash,
        source_versions={pin.table: pin.delta_version for pin in inputs},
        extra={"training_set": name, "spine_version": spine_version},
    )
    return open_table(spark, in_warehouse(mesh, location)).create(joined, commit, overwrite=True)


def _finish(
    spark: SparkSession,
    mesh: MeshDefinition,
    manifest: Manifest,
    spec: TrainingSet | None,
    identity: str | None,
) -> TrainingSetResult:
    """Write the manifest beside the table, then record it and its lineage in the catalog.

    A rebuild of a training set no longer defined is recorded nowhere (with a warning): the
    catalog files training sets under their definition's domain.
    """
    from mesh.catalog.access import current_identity
    from mesh.catalog.lineage import record_training_set

    absolute = normalize_path(in_warehouse(mesh, manifest.output.path))
    path = write_manifest(manifest, absolute)
    if spec is None:
        warnings.warn(
            f"Training set {manifest.training_set} is not among the mesh's training sets "
            "(conf/, or mesh.training_sets for one defined in Python): this build is not "
            "recorded in the catalog (its manifest is beside the table).",
            RuntimeWarning,
            stacklevel=3,
        )
    else:
        record_training_set(
            spark,
            mesh,
            spec,
            manifest.model_dump(mode="json"),
            table_path=absolute,
            recorder=str(current_identity(mesh.standards, identity)),
        )
    return TrainingSetResult(
        path=absolute,
        delta_version=manifest.output.delta_version,
        row_count=manifest.output.row_count,
        manifest=manifest,
        manifest_path=path,
    )
