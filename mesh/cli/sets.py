"""``mesh training build|rebuild``, ``mesh inference`` and ``mesh global build``."""

from __future__ import annotations

import argparse
import uuid
from datetime import datetime
from typing import Any

from mesh.cli.catalog import at_least
from mesh.errors import MeshError
from mesh.times import as_utc


def register(sub: Any) -> None:
    """Add the set sub-commands to the ``mesh`` parser."""
    training = sub.add_parser("training", help="build and rebuild training sets")
    tsub = training.add_subparsers(dest="training_command", metavar="ACTION", required=True)
    build = tsub.add_parser("build", help="build a training set and its manifest")
    build.add_argument("name", help="training set, domain.name (conf/training/*.yaml)")
    build.add_argument(
        "--output",
        help="table location; a relative one is under the warehouse (default: the spec's location)",
    )
    _common(build)
    _unpublished(build)
    build.set_defaults(func=_training_build)
    rebuild = tsub.add_parser("rebuild", help="rebuild a training set from its manifest")
    rebuild.add_argument("manifest", help="_manifest.json file or the training table folder")
    rebuild.add_argument(
        "--output",
        help="table location; a relative one is under the warehouse (default: the manifest's "
        "table)",
    )
    _common(rebuild)
    rebuild.set_defaults(func=_training_rebuild)

    inference = sub.add_parser("inference", help="latest feature values of entities as of a time")
    inference.add_argument(
        "features", nargs="*", help="references domain.set[@pin].feature (or --training)"
    )
    inference.add_argument(
        "--training",
        metavar="NAME",
        help="the features (lookups included) and strict option of this training set "
        "(domain.name), instead of listing references",
    )
    group = inference.add_mutually_exclusive_group(required=True)
    group.add_argument("--entities", help="Delta (or --entities-format parquet) table of keys")
    group.add_argument(
        "--key",
        action="append",
        metavar="COLUMN[:TYPE]=V1,V2",
        help="one column of the entity rows, e.g. customer_id=1,2,3 (repeat for compound keys "
        "or other columns). Key columns take the entity's key types; another column takes "
        "TYPE (a Spark SQL type, e.g. amount:double=1.5,2) or else bigint, double, boolean "
        "or string, whichever holds its values",
    )
    inference.add_argument("--entities-format", choices=("delta", "parquet"), default="delta")
    inference.add_argument("--as-of", help="ISO time, UTC unless an offset is given (default: now)")
    inference.add_argument(
        "--output",
        help="write the result as a Delta table here (a relative path is from the working "
        "directory, like --entities)",
    )
    inference.add_argument(
        "--limit", type=at_least(0), default=20, help="rows to print (default 20)"
    )
    _common(inference, run_id=False)
    _unpublished(inference)
    inference.set_defaults(func=_inference)

    global_ = sub.add_parser("global", help="global feature sets")
    gsub = global_.add_subparsers(dest="global_command", metavar="ACTION", required=True)
    gbuild = gsub.add_parser("build", help="compute global feature sets from their inputs")
    gbuild.add_argument(
        "names", nargs="*", help="domain.name (default: every global set, upstream first)"
    )
    _common(gbuild)
    gbuild.set_defaults(func=_global_build)


def _common(parser: argparse.ArgumentParser, run_id: bool = True) -> None:
    parser.add_argument("--identity", help="caller as user@domain (default: MESH_IDENTITY)")
    if run_id:
        parser.add_argument("--run-id", help="run id recorded in the commit (default: random)")


def _unpublished(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-unpublished",
        action="store_true",
        help="read feature sets never published at their newest commit (with a warning) "
        "instead of refusing them; for development",
    )


def _mesh(args: argparse.Namespace) -> Any:
    """The mesh. Every command here reads governed data of the warehouse, so a warehouse
    that is not there and a missing identity are refused here, before Spark starts (the
    build checks the identity again, with the grants); so is a name the mesh does not
    define, by each command before it calls ``_spark``."""
    from mesh.catalog.access import current_identity
    from mesh.cli.warehouse import require_existing_warehouse
    from mesh.definitions import load_mesh

    mesh = load_mesh(args.conf)
    require_existing_warehouse(mesh, args.conf)
    current_identity(mesh.standards, args.identity)
    return mesh


def _spark() -> Any:
    from mesh.session import get_spark

    return get_spark("mesh-sets")


def _training_build(args: argparse.Namespace) -> int:
    from mesh.sets import build_training_set
    from mesh.sets.training import training_spec

    mesh = _mesh(args)
    spec = training_spec(mesh, args.name)
    result = build_training_set(
        _spark(),
        mesh,
        spec,
        output=args.output,
        identity=args.identity,
        run_id=args.run_id,
        allow_unpublished=args.allow_unpublished,
    )
    print(
        f"training set {result.manifest.training_set}: {result.row_count} rows -> "
        f"{result.path} (Delta version {result.delta_version}); manifest {result.manifest_path}"
    )
    return 0


def _training_rebuild(args: argparse.Namespace) -> int:
    from mesh.sets import read_manifest, rebuild_training_set

    mesh = _mesh(args)
    manifest = read_manifest(args.manifest)
    result = rebuild_training_set(
        _spark(),
        mesh,
        manifest,
        output=args.output,
        identity=args.identity,
        run_id=args.run_id,
        manifest_path=args.manifest,
    )
    print(
        f"training set {result.manifest.training_set} rebuilt from run "
        f"{result.manifest.rebuilt_from}: {result.row_count} rows -> {result.path} "
        f"(Delta version {result.delta_version}); manifest {result.manifest_path}"
    )
    return 0


def _inference(args: argparse.Namespace) -> int:
    from mesh.catalog.access import current_identity, hidden_sets
    from mesh.sets import build_inference_set, entities_from_text
    from mesh.sets.output import INFERENCE_OPERATION, check_output, feature_tables
    from mesh.sets.references import check_references
    from mesh.storage import CommitInfo, normalize_path, open_table

    if bool(args.features) == bool(args.training):
        raise MeshError("mesh inference: give feature references or --training NAME (one).")
    as_of = _parse_time(args.as_of) if args.as_of is not None else None  # "": an error
    given = _key_columns(args.key) if args.key else None  # argument errors before Spark starts
    mesh = _mesh(args)
    features, options = _inference_features(mesh, args)
    # Before Spark starts: unknown sets are named, listing only those the caller may see.
    who = current_identity(mesh.standards, args.identity)
    check_references(mesh, features, hidden_sets(mesh, who, []))
    spark = _spark()
    if args.output:
        # Paths given here are the caller's (relative to the working directory), not the
        # warehouse's: made absolute before the check places them.
        reads = feature_tables(mesh, features)
        if args.entities:
            reads.append(("the entity table", normalize_path(args.entities)))
        check_output(spark, mesh, normalize_path(args.output), reads, operation=INFERENCE_OPERATION)
    if given is not None:
        columns, types = given
        entities = entities_from_text(spark, mesh, features, columns, types)
    else:
        from mesh.sets.access import authorize_table_path

        # A table of the warehouse is governed data: checked (and audited) before it is read.
        authorize_table_path(
            spark, mesh, args.entities, (), "inference set (entities)", args.identity
        )
        if args.entities_format == "parquet":
            entities = spark.read.parquet(args.entities)
        else:
            entities = open_table(spark, args.entities).read()
    df = build_inference_set(
        spark,
        mesh,
        features,
        entities,
        as_of=as_of,
        identity=args.identity,
        allow_unpublished=args.allow_unpublished,
        **options,
    )
    if args.output:
        extra: dict[str, Any] = {"features": list(args.features)}
        if args.training:
            extra = {"training_set": args.training, "features": _as_json(features)}
        commit = CommitInfo(run_id=uuid.uuid4().hex, operation=INFERENCE_OPERATION, extra=extra)
        version = open_table(spark, args.output).create(df, commit, overwrite=True)
        print(f"inference set: {df.count()} rows -> {args.output} (Delta version {version})")
    else:
        df.show(args.limit, truncate=False)
    return 0


def _inference_features(mesh: Any, args: argparse.Namespace) -> tuple[list[Any], dict[str, bool]]:
    """The references to read and the join options: given, or a training set's."""
    if not args.training:
        return list(args.features), {}
    from mesh.sets.training import training_spec

    spec = training_spec(mesh, args.training)
    options = {"strict": spec.strict, "exclude_late_data": spec.exclude_late_data}
    return list(spec.features), options


def _as_json(features: list[Any]) -> list[Any]:
    return [f if isinstance(f, str) else f.model_dump(mode="json") for f in features]


def _global_build(args: argparse.Namespace) -> int:
    from mesh.session import lazy_spark
    from mesh.sets import build_global_feature_set
    from mesh.sets.global_features import check_before_build, global_spec

    mesh = _mesh(args)
    names = args.names or [n for n in mesh.build_order() if n in mesh.global_sets]
    specs = [global_spec(mesh, name) for name in names]
    # Every set's checks before any is built (a refusal leaves every table as it was); on the
    # embedded backend they read catalog records before Spark starts.
    catalog = lazy_spark("mesh-sets")
    for spec in specs:
        check_before_build(catalog, mesh, spec, args.identity)
    spark = _spark()
    for spec in specs:
        result = build_global_feature_set(
            spark,
            mesh,
            spec,
            identity=args.identity,
            run_id=args.run_id,
            checked=True,  # check_before_build, above: the catalog is read for it once
        )
        print(
            f"global feature set {result.feature_set} {result.semantic_version}: "
            f"{result.row_count} rows -> {result.path} (Delta version {result.delta_version});"
            f" inputs: "
            + ", ".join(
                f"{e.source}.{e.source_feature}@{e.source_version}#{e.source_delta_version}"
                for e in result.lineage
            )
        )
    return 0


def _parse_time(text: str) -> datetime:
    return as_utc(text, "--as-of")


def _key_columns(specs: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """``COLUMN[:TYPE]=V1,V2`` options as (values as text by column, types given)."""
    columns: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        column, colon, type_name = name.partition(":")
        column, type_name = column.strip(), type_name.strip()
        if not sep or not column or not values or (colon and not type_name):
            raise MeshError(
                f"--key {spec!r}: expected COLUMN=V1,V2,... such as customer_id=1,2,3, or "
                "COLUMN:TYPE=V1,V2,... such as amount:double=1.5,2.",
                argument="--key",
                found=spec,
            )
        columns[column] = values.split(",")
        if type_name:
            types[column] = type_name
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise MeshError(
            "--key: every key column needs the same number of values (one per entity); found "
            + ", ".join(f"{c}: {len(v)}" for c, v in columns.items())
            + ".",
            argument="--key",
            found={c: len(v) for c, v in columns.items()},
        )
    return columns, types
