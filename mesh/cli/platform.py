"""Platform sub-commands: ``mesh demo``, ``mesh generate``, ``mesh show-config``.

Thin: parse, load ``conf/``, call one library function, print. Spark and the generator are
imported only by the commands that need them, so ``mesh --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timezone
from typing import Any

from mesh.definitions import MeshDefinition, load_mesh
from mesh.definitions.base import format_duration


def register(sub: Any) -> None:
    """Add the platform sub-commands to the ``mesh`` parser's sub-parsers."""
    demo = sub.add_parser(
        "demo",
        help="generate the example data and run the whole mesh on it",
        description="Generate the example data (small scale by default), "
        "compute, publish, build global features and training sets, and "
        "print a summary of every table produced.",
    )
    _knobs(demo)
    demo.add_argument(
        "--sample-rows",
        type=int,
        default=3,
        help="rows shown per table in the summary (default: 3)",
    )
    demo.add_argument(
        "--steps",
        type=lambda text: [s for s in text.split(",") if s],
        help="comma-separated subset of generate,compute,publish,global,training,"
        "summary (default: all)",
    )
    demo.set_defaults(func=_demo)

    gen = sub.add_parser(
        "generate",
        help="write the example data products as Delta tables",
        description="Write customers.customer_profiles, payments.transactions, "
        "support.tickets and the churn spine; deterministic for a seed.",
    )
    _knobs(gen)
    gen.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="only this product or training-set spine (repeatable), e.g. payments.transactions",
    )
    gen.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing tables (older versions stay readable)",
    )
    gen.add_argument(
        "--append-day",
        action="store_true",
        help="append the next day of transactions to an existing generation",
    )
    gen.set_defaults(func=_generate)

    show = sub.add_parser(
        "show-config",
        help="validate conf/ and print what it defines",
        description="Load and cross-check conf/ and print the standards, "
        "entities, data products, feature sets (with their data and "
        "metadata hashes), global feature sets and training sets.",
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show_config)


def _knobs(parser: argparse.ArgumentParser) -> None:
    from mesh.datagen.config import DEFAULT_SEED, SCALES

    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="small",
        help="size preset (default: small); the knobs below override it",
    )
    parser.add_argument("--customers", type=int, help="number of customers")
    parser.add_argument("--days", type=int, help="days of events from --start")
    parser.add_argument(
        "--events-per-customer-day", type=float, help="transactions per active customer and day"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"same seed, same rows (default: {DEFAULT_SEED})",
    )
    parser.add_argument("--start", type=_date, help="first day, YYYY-MM-DD (default: 2024-01-01)")


def _date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--start expects a date like 2024-01-01, found {text!r}"
        ) from None


def _load(args: argparse.Namespace) -> MeshDefinition:
    # `mesh.cli.main` has already exported --warehouse as MESH_WAREHOUSE.
    return load_mesh(args.conf)


def _config(args: argparse.Namespace) -> Any:
    from mesh.datagen.config import config_for_scale

    return config_for_scale(
        args.scale,
        customers=args.customers,
        days=args.days,
        events_per_customer_day=args.events_per_customer_day,
        seed=args.seed,
        start=args.start,
    )


def _spark() -> Any:
    from mesh.session import get_spark

    return get_spark("feature-mesh")


def _demo(args: argparse.Namespace) -> int:
    from mesh.datagen.demo import check_fresh_warehouse, check_steps, run_demo

    mesh = _load(args)
    config = _config(args)  # knob errors before Spark starts
    check_fresh_warehouse(mesh.warehouse, check_steps(args.steps))
    print(
        f"feature mesh demo: conf {os.path.abspath(args.conf)}, warehouse "
        f"{os.path.abspath(mesh.warehouse)}"
    )
    run_demo(
        _spark(),
        mesh,
        mesh.warehouse,
        config=config,
        sample_rows=args.sample_rows,
        steps=args.steps,
    )
    return 0


def _generate(args: argparse.Namespace) -> int:
    from mesh.datagen.generator import append_day, generate_example_mesh
    from mesh.datagen.summary import describe_table

    mesh = _load(args)
    spark_backend = mesh.standards.storage.backend
    if args.append_day:
        product = append_day(_spark(), mesh)
        print(f"appended one day to {product.name}: {product.path} version {product.version}")
        return 0
    config = _config(args)
    written = generate_example_mesh(
        _spark(), mesh, config=config, only=args.only, overwrite=args.overwrite
    )
    print(
        f"generated {len(written)} tables ({config.customers} customers, {config.days} days "
        f"from {config.start.date()}, seed {config.seed}):"
    )
    for name, product in written.items():
        print(
            describe_table(
                _spark(), f"{product.kind} {name}", product.path, spark_backend, sample_rows=0
            )
        )
    return 0


def _show_config(args: argparse.Namespace) -> int:
    mesh = _load(args)
    summary = describe_mesh(mesh)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    std = mesh.standards
    print(
        f"mesh {std.name}  (conf: {mesh.conf_dir}, warehouse: {mesh.warehouse}, "
        f"backend: {std.storage.backend})"
    )
    print("domains:")
    for name, domain in sorted(std.domains.items()):
        print(f"  {name:<12} {domain.owner}")
    print("entities:")
    for name, entity in sorted(std.entities.items()):
        keys = ", ".join(f"{k} {t}" for k, t in entity.keys.items())
        print(f"  {name:<12} {keys}")
    print("data products:")
    for item in summary["data_products"]:
        print(f"  {item['name']:<30} {item['location']}  ({len(item['columns'])} columns)")
    print("feature sets:")
    for item in summary["feature_sets"]:
        print(
            f"  {item['name']:<30} v{item['version']} {item['entity']} {item['accuracy']:<8} "
            f"{len(item['outputs'])} features  data {item['data_hash']}  "
            f"meta {item['metadata_hash']}"
        )
    print("global feature sets:")
    for item in summary["global_sets"]:
        print(
            f"  {item['name']:<30} v{item['version']} {item['entity']} reads "
            f"{', '.join(item['reads'])}  data {item['data_hash']}  "
            f"meta {item['metadata_hash']}"
        )
    print("training sets:")
    for item in summary["training_sets"]:
        print(f"  {item['name']:<30} spine {item['spine']}  {len(item['features'])} features")
    return 0


def describe_mesh(mesh: MeshDefinition) -> dict[str, Any]:
    """A JSON-able summary of the loaded definitions (what ``mesh show-config`` prints)."""
    return {
        "name": mesh.standards.name,
        "conf_dir": mesh.conf_dir,
        "warehouse": mesh.warehouse,
        "backend": mesh.standards.storage.backend,
        "domains": sorted(mesh.standards.domains),
        "entities": {n: dict(e.keys) for n, e in sorted(mesh.standards.entities.items())},
        "data_products": [
            {
                "name": n,
                "location": p.location,
                "event_timestamp": p.event_timestamp,
                "created_timestamp": p.created_timestamp,
                "columns": dict(p.columns),
                "file": mesh.files.get(n),
            }
            for n, p in sorted(mesh.products.items())
        ],
        "feature_sets": [
            {
                "name": n,
                "version": fs.version,
                "entity": fs.entity,
                "source": fs.source,
                "accuracy": fs.accuracy,
                "ttl": format_duration(fs.ttl) if fs.ttl else None,
                "outputs": fs.output_names(),
                "data_hash": mesh.data_hash(fs),
                "metadata_hash": fs.metadata_hash(),
                "file": mesh.files.get(n),
            }
            for n, fs in sorted(mesh.feature_sets.items())
        ],
        "global_sets": [
            {
                "name": n,
                "version": gs.version,
                "entity": gs.entity,
                "reads": mesh.upstream(n),
                "outputs": gs.output_names(),
                "data_hash": mesh.data_hash(gs),
                "metadata_hash": gs.metadata_hash(),
                "file": mesh.files.get(n),
            }
            for n, gs in sorted(mesh.global_sets.items())
        ],
        "training_sets": [
            {
                "name": n,
                "spine": ts.spine.path,
                "features": list(ts.features),
                "location": ts.location,
                "file": mesh.files.get(n),
            }
            for n, ts in sorted(mesh.training_sets.items())
        ],
        "build_order": mesh.build_order(),
    }
