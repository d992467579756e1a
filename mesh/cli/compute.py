"""``mesh compute`` and ``mesh refresh``: domain feature jobs (thin: parse, load, call)."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from mesh.errors import ComputeError
from mesh.times import optional_utc


def register(subparsers: argparse._SubParsersAction) -> None:
    compute = subparsers.add_parser(
        "compute",
        help="compute feature sets over a time range (one commit per set)",
        description="Compute feature sets into their feature tables. TARGETS are feature sets "
        "(domain.name) or domains; none means the whole mesh. Each set is one Delta commit.",
    )
    _targets(compute)
    compute.add_argument("--start", help="range start, ISO date/time, UTC (default: first event)")
    compute.add_argument("--end", help="range end, exclusive (default: just after the data)")
    _chunk(compute)
    _identity(compute)
    compute.set_defaults(func=run_compute)

    refresh = subparsers.add_parser(
        "refresh",
        help="recompute only what changed in the sources since the last full run",
        description="Refresh feature sets: read each source's Delta changes since the version "
        "recorded by the last run that left the whole table in step with its source (a compute "
        "over all data, or a refresh; not a --start/--end run), recompute the affected range, "
        "then rebuild global sets that read them.",
    )
    _targets(refresh)
    _chunk(refresh)
    _identity(refresh)
    refresh.set_defaults(func=run_refresh)


def run_compute(args: argparse.Namespace) -> int:
    from mesh.cli.warehouse import require_existing_warehouse
    from mesh.compute import compute_targets, resolve_targets
    from mesh.compute.job import check_range
    from mesh.compute.runner import require_caller
    from mesh.definitions import load_mesh
    from mesh.session import get_spark

    start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
    check_range(start, end)  # before Spark starts
    chunk = parse_chunk(args.chunk)
    mesh = load_mesh(args.conf)
    require_existing_warehouse(mesh, args.conf)  # its sources are read: before Spark starts
    selected = resolve_targets(mesh, args.targets)  # so is an unknown target
    require_caller(mesh, selected, args.identity)  # so is a missing caller
    results = compute_targets(
        get_spark("mesh-compute"),
        mesh,
        args.targets,
        start=start,
        end=end,
        chunk=chunk,
        identity=args.identity,
    )
    return 0 if results else 1


def run_refresh(args: argparse.Namespace) -> int:
    from mesh.cli.warehouse import require_existing_warehouse
    from mesh.compute import refresh_targets, resolve_targets
    from mesh.compute.runner import require_caller
    from mesh.definitions import load_mesh
    from mesh.session import get_spark

    chunk = parse_chunk(args.chunk)
    mesh = load_mesh(args.conf)
    require_existing_warehouse(mesh, args.conf)  # its sources are read: before Spark starts
    selected = resolve_targets(mesh, args.targets)  # so is an unknown target
    require_caller(mesh, selected, args.identity, refresh=True)  # so is a missing caller
    refresh_targets(
        get_spark("mesh-refresh"), mesh, args.targets, chunk=chunk, identity=args.identity
    )
    return 0


def parse_time(text: str | None, argument: str) -> datetime | None:
    """ISO date or date-time; naive values are UTC."""
    return optional_utc(text, argument, ComputeError)


def parse_chunk(text: str | None) -> timedelta | None:
    from mesh.definitions import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError:
        raise ComputeError(
            f"--chunk: {text!r} is not a duration; use forms like 7d, 30d, 12h.",
            argument="--chunk",
            found=text,
        ) from None


def _targets(parser: argparse.ArgumentParser) -> None:
    # Also accepted after the sub-command, so jobs/*.py can pass them through unchanged.
    parser.add_argument("--conf", default=argparse.SUPPRESS, help="folder with mesh.yaml")
    parser.add_argument("--warehouse", default=argparse.SUPPRESS, help="warehouse root")
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="feature set (domain.name) or domain; none = the whole mesh",
    )


def _identity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--identity",
        help="caller user@domain for the global sets the run builds, which read other "
        "domains' features (default: $MESH_IDENTITY)",
    )


def _chunk(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chunk",
        help="compute long ranges in pieces of this size (e.g. 30d); "
        "still one commit per feature set",
    )
