"""Where a set build may write: outputs that would destroy data others own are refused.

A training set build or rebuild and ``mesh inference --output`` overwrite their output table.
Before anything is read or written, :func:`check_output` refuses an output that

* lies in a managed area of the warehouse: the catalog (``_catalog*``), the feature tables
  (``features/``), the ``training/`` folder itself and, for a training set, another domain's
  training tables (``training/<domain>/``), for an inference set all of ``training/``; or
  holds the whole warehouse;
* is, holds or lies inside a table the build reads: the spine or the entity table, the
  referenced feature tables, any data product defined in the mesh;
* is something else already: a Delta table whose newest commit another kind of build wrote
  (for a training set: a build of another training set, or no mesh build), a folder that is
  not empty and no Delta table, a file; or lies inside a Delta table (whose VACUUM would
  delete the files written there).

A missing or empty folder, or a table the same kind of build wrote, is fine. Local paths are
compared resolved (symbolic links, ``..``), URIs (``s3://``, ``dbfs:``) by their text.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from mesh.definitions.references import FeatureLookup, FeatureRef, expand_references
from mesh.sets.errors import OutputPathError
from mesh.sets.manifest import BUILD_OPERATION
from mesh.sets.tables import feature_table_location
from mesh.storage import in_warehouse, normalize_path, open_table, parts_below

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.definitions import MeshDefinition
    from mesh.storage import CommitRecord

INFERENCE_OPERATION = "inference"  # the commits of `mesh inference --output`


def feature_tables(
    mesh: MeshDefinition, references: Iterable[str | FeatureRef | FeatureLookup]
) -> list[tuple[str, str]]:
    """(description, location) of the feature table each reference reads, for ``reads``.

    The table of the pinned major version, else of the major ``conf/`` defines. A set the mesh
    does not define is left out: the build refuses the reference itself.
    """
    tables: dict[str, str] = {}
    known = mesh.all_sets()
    for ref in expand_references(references):
        definition = known.get(ref.set_name)
        if definition is None:
            continue
        major = int((ref.version or definition.version).split(".")[0])
        location = feature_table_location(ref.domain, ref.feature_set, major)
        tables[location] = f"the feature table of {ref.set_name}"
    return [(what, location) for location, what in tables.items()]


def check_output(
    spark: SparkSession,
    mesh: MeshDefinition,
    path: str,
    reads: Sequence[tuple[str, str]],
    *,
    operation: str,
    training_set: str | None = None,
) -> None:
    """Refuse an output a build must not overwrite (``OutputPathError``); see the module doc.

    ``path`` is the output; ``reads`` pairs a description with each table the build reads
    besides the mesh's data products (spine or entities, feature tables: see
    :func:`feature_tables`); locations are relative to the warehouse unless absolute or URIs.
    ``operation`` is what the build records in its commit (``BUILD_OPERATION`` or
    ``INFERENCE_OPERATION``); ``training_set`` the qualified name of the training set built
    (``None`` for an inference set). Call it before anything is read: only the last checks
    look at storage (the output's folder and the newest commit of a table there).
    """
    target = normalize_path(in_warehouse(mesh, path))
    domain = training_set.partition(".")[0] if training_set else None

    def refuse(reason: str, **params: Any) -> NoReturn:
        subject = f"training set {training_set}" if training_set else "inference set"
        if training_set:
            hint = (
                "Choose another output (the spec's `output:` or --output): a new or empty "
                f"folder, e.g. under training/{domain}/, or a table training set "
                f"{training_set} wrote before."
            )
        else:
            hint = (
                "Choose another --output: a new or empty folder, or a table an earlier "
                "`mesh inference --output` wrote."
            )
        raise OutputPathError(
            f"Output {target} of {subject}: {reason}, and a build overwrites its output. {hint}",
            path=target,
            reason=reason,
            **params,
        )

    warehouse = normalize_path(mesh.warehouse)
    if parts_below(target, warehouse) is not None:
        refuse(f"it holds the whole warehouse {warehouse}")
    parts = parts_below(warehouse, target) or []
    if parts[:1] and parts[0].startswith("_catalog"):
        refuse("it is in the catalog's area (_catalog) of the warehouse")
    if parts[:1] == ["features"]:
        refuse(
            "it is in the feature tables' area (features/) of the warehouse, written only by "
            "each domain's compute and publish"
        )
    if parts == ["training"]:
        refuse("it holds the training tables of every domain (training/)")
    if parts[:1] == ["training"] and not training_set:
        refuse(
            "it is in the training tables' area (training/) of the warehouse, which holds "
            "training set builds only"
        )
    if domain and parts[:1] == ["training"] and parts[1] != domain:
        refuse(
            f"it is in the training area of domain {parts[1]} (training/{parts[1]}/), and "
            f"training set {training_set} belongs to domain {domain}",
            domain=parts[1],
        )
    products = [(f"data product {name}", p.location) for name, p in sorted(mesh.products.items())]
    for what, location in [*reads, *products]:
        read = normalize_path(in_warehouse(mesh, location))
        if parts_below(read, target) == []:
            relation = "is"
        elif parts_below(read, target) is not None:
            relation = "lies inside"
        elif parts_below(target, read) is not None:
            relation = "holds"
        else:
            continue
        refuse(f"it {relation} {what} ({read}), which this build reads", conflict=read)
    _check_existing(spark, target, operation, training_set, refuse)


def _check_existing(
    spark: SparkSession,
    target: str,
    operation: str,
    training_set: str | None,
    refuse: Callable[..., NoReturn],
) -> None:
    """Refuse what is at ``target`` already unless it is a table the same kind of build wrote."""
    from pyarrow import fs as pafs

    from mesh.storage.commit import filesystem_for

    filesystem, base = filesystem_for(target)
    kind = filesystem.get_file_info(base).type
    if kind == pafs.FileType.File:
        refuse("it is a file")
    if kind == pafs.FileType.Directory:
        table = open_table(spark, target)
        if table.exists():
            newest = table.history()[0]
            info = newest.info
            if (
                info is None
                or info.operation != operation
                or (training_set is not None and info.extra.get("training_set") != training_set)
            ):
                wanted = f"training set {training_set}" if training_set else "an inference set"
                refuse(
                    f"it is a Delta table whose newest commit (version {newest.version}) is "
                    f"{_writer(newest)}, not a build of {wanted}",
                    found_operation=newest.operation,
                    found_training_set=info.extra.get("training_set") if info else None,
                )
            return
        entries = filesystem.get_file_info(pafs.FileSelector(base))
        if entries:
            names = ", ".join(sorted(posixpath.basename(e.path) for e in entries)[:3])
            refuse(
                f"it is a folder holding {len(entries)} entries ({names}) and no Delta table "
                "(if they are leftovers of a failed build of yours, delete the folder)",
                entries=len(entries),
            )
    parent, child = posixpath.dirname(base.rstrip("/")), base.rstrip("/")
    while parent and parent != child:
        log = filesystem.get_file_info(posixpath.join(parent, "_delta_log"))
        if log.type == pafs.FileType.Directory:
            refuse(
                f"it lies inside the Delta table {parent}, whose VACUUM would delete the "
                "files written here",
                conflict=parent,
            )
        parent, child = posixpath.dirname(parent), parent


def _writer(record: CommitRecord) -> str:
    info = record.info
    if info is None:
        return f"no mesh build (operation {record.operation})"
    name = info.extra.get("training_set")
    if info.operation == BUILD_OPERATION and name:
        return f"a build of training set {name}"
    return f"a mesh {info.operation} run" + (f" (training set {name})" if name else "")
