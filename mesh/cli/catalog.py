"""``mesh publish`` and ``mesh catalog search|show|versions|lineage|export|duplicates|audit``."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from mesh.times import optional_utc


def register(sub: Any) -> None:
    """Add the catalog sub-commands to the ``mesh`` parser."""
    publish = sub.add_parser("publish", help="compute, check and publish a feature set")
    publish.add_argument("name", help="feature set, domain.name")
    publish.add_argument("--start", help="ISO time: first feature_ts of the range (inclusive)")
    publish.add_argument("--end", help="ISO time: end of the range (exclusive)")
    publish.add_argument(
        "--metadata-only",
        action="store_true",
        help="re-publish a metadata-only change (patch) without computing",
    )
    publish.add_argument(
        "--as-of",
        help="ISO time the data must be fresh at for quality.freshness (default: now); a "
        "backfill's publish gives its range's end",
    )
    publish.add_argument("--identity", help="publisher as user@domain (default: MESH_IDENTITY)")
    publish.add_argument("--run-id", help="run id recorded in the commit (default: random)")
    publish.set_defaults(func=_publish)

    catalog = sub.add_parser("catalog", help="discover published feature sets")
    csub = catalog.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    search = csub.add_parser("search", help="search by text, domain, entity, owner, tag")
    search.add_argument("text", nargs="?", help="words in names, descriptions and tags")
    for option in ("domain", "entity", "owner", "tag"):
        search.add_argument(f"--{option}")
    _identity(search)
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(func=_search)
    for action, text in (
        ("show", "entry, versions, statistics and checks"),
        ("versions", "published versions, newest first"),
    ):
        parser = csub.add_parser(action, help=text)
        parser.add_argument("name", help="feature set, domain.name")
        parser.add_argument("--json", action="store_true", help="print JSON")
        _identity(parser)
        parser.set_defaults(func=_show if action == "show" else _versions)
    lineage = csub.add_parser("lineage", help="lineage edges of a feature set")
    lineage.add_argument("name", help="domain.name (or kind:domain.name)")
    lineage.add_argument("--direction", choices=("upstream", "downstream", "both"), default="both")
    lineage.add_argument("--depth", type=at_least(1), help="hops to follow (default: all)")
    lineage.add_argument(
        "--version", help="published version of the set whose inputs to follow (default: newest)"
    )
    lineage.add_argument("--json", action="store_true", help="print JSON")
    _identity(lineage)
    lineage.set_defaults(func=_lineage)
    export = csub.add_parser("export", help="export to Atlas/Purview, OpenLineage, DataHub, ODCS")
    export.add_argument("format", choices=("atlas", "openlineage", "datahub", "odcs", "all"))
    export.add_argument("--out", default="catalog-export", help="output folder")
    _identity(export)
    export.set_defaults(func=_export)
    dups = csub.add_parser("duplicates", help="likely duplicate features across sets")
    dups.add_argument(
        "--threshold", type=_share, default=0.99, help="least share of equal values, 0-1"
    )
    dups.add_argument("--min-overlap", type=at_least(1), default=10)
    dups.add_argument("--json", action="store_true", help="print JSON")
    _identity(dups)
    dups.set_defaults(func=_duplicates)
    audit = csub.add_parser("audit", help="read audit log, newest first")
    audit.add_argument("--feature-set")
    audit.add_argument("--decision", choices=("allowed", "denied"))
    audit.add_argument("--limit", type=at_least(0), default=50)
    audit.add_argument("--json", action="store_true", help="print JSON")
    _identity(audit)
    audit.set_defaults(func=_audit)


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected at least {low}, found {value}")
        return value

    return parse


def _share(text: str) -> float:
    """An argparse type: a number above 0 and at most 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share above 0 and at most 1, found {text}")
    return value


def _identity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--identity",
        help="caller as user@domain (default: MESH_IDENTITY); sets it may not see are hidden",
    )


def _context(
    args: argparse.Namespace,
    *,
    lookup: bool = True,
    defines: str | None = None,
    publishes: bool = False,
    check: Callable[[Any, Any], None] | None = None,
    lazy: bool = False,
) -> tuple[Any, Any]:
    """Spark and the mesh; a ``lookup`` (every catalog command but publish, which creates the
    warehouse) is refused when the warehouse is a local folder that does not exist, a
    feature set ``defines`` names that ``conf/`` does not define (a training set's name
    too: those are built, not published), (``publishes``) a caller who does not act for
    its domain, and what ``check(mesh, fs)`` refuses of that set, before Spark starts.

    A lookup's session starts only when first used (``lazy_spark``): on the embedded
    backend, reading and appending catalog records needs none, so ``search``, ``show``,
    ``versions``, ``lineage``, ``audit`` and ``export`` start no JVM. A ``lazy`` session
    without the lookup's warehouse check: a metadata-only publish computes nothing either.
    """
    from mesh.cli.warehouse import require_existing_warehouse
    from mesh.definitions import load_mesh
    from mesh.session import get_spark, lazy_spark

    mesh = load_mesh(args.conf)
    if lookup:
        require_existing_warehouse(mesh, args.conf)
    if defines is not None:
        if defines in mesh.training_sets and defines not in mesh.all_sets():
            from mesh.errors import CatalogError

            raise CatalogError(
                f"{defines!r} is a training set, not a feature set: training sets are built, "
                f"not published; build it with `mesh training build {defines}`",
                training_set=defines,
            )
        fs = mesh.any_set(defines)
        if publishes:
            from mesh.catalog.access import authorize_publish, current_identity

            authorize_publish(current_identity(mesh.standards, args.identity), fs)
        if check is not None:
            check(mesh, fs)
    return (lazy_spark if lookup or lazy else get_spark)("mesh-catalog"), mesh


def _iso(value: Any) -> str:
    """JSON for what ``json`` cannot write: times as ISO 8601, anything else as text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def parse_time(text: str | None, option: str) -> datetime | None:
    """ISO time; UTC unless it carries an offset."""
    return optional_utc(text, option)


def _publish(args: argparse.Namespace) -> int:
    from mesh.catalog.publish import publish_definition
    from mesh.catalog.run import check_range, publish_range, require_range

    given = (("--start", args.start), ("--end", args.end), ("--as-of", args.as_of))
    if args.metadata_only and any(value for _, value in given):
        from mesh.errors import CatalogError

        # A metadata-only publish computes and checks no rows: a range or the time of a
        # freshness check would be silently ignored.
        raise CatalogError(
            "mesh publish: --metadata-only computes nothing, so it takes no "
            "--start/--end/--as-of; leave them out, or publish without --metadata-only to "
            "compute that range.",
            argument="--metadata-only",
            found=[option for option, value in given if value],
        )
    start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
    as_of = parse_time(args.as_of, "--as-of")
    check_range(args.name, start, end)  # before Spark starts

    def before_compute(mesh: Any, fs: Any) -> None:
        from mesh.catalog.publish import refuse_version_before_compute
        from mesh.session import lazy_spark

        require_range(fs, start, end)
        # A version the definition alone refuses: on the embedded backend the catalog is
        # read without Spark, so the refusal comes before the session starts. On the native
        # backend lazy_spark starts it and delta-spark reads the catalog: delta-rs cannot
        # stand in for it there (reader features such as deletion vectors, the session's
        # storage credentials). publish_range is told below that this check was made.
        refuse_version_before_compute(lazy_spark("mesh-catalog"), mesh, fs)

    spark, mesh = _context(
        args,
        lookup=False,
        defines=args.name,
        publishes=True,
        check=None if args.metadata_only else before_compute,
        lazy=args.metadata_only,
    )
    if args.metadata_only:
        result = publish_definition(spark, mesh, mesh.any_set(args.name), identity=args.identity)
    else:
        result = publish_range(
            spark,
            mesh,
            args.name,
            start=start,
            end=end,
            identity=args.identity,
            run_id=args.run_id,
            as_of=as_of,
            version_checked=True,  # before_compute, above: the catalog is read for it once
        )
    print(
        f"published {result.name} {result.semantic_version} ({result.bump}"
        f"{': ' + '; '.join(result.reasons) if result.reasons else ''}): {result.row_count} "
        f"rows, Delta version {result.delta_version} of {result.table_path}; "
        f"report {result.report_path}"
    )
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from mesh.catalog.search import search

    spark, mesh = _context(args)
    found = search(
        spark,
        mesh,
        args.text,
        domain=args.domain,
        entity=args.entity,
        owner=args.owner,
        tag=args.tag,
        identity=args.identity,
    )
    if args.json:
        print(json.dumps([e.to_dict() for e in found], indent=2, default=str))
        return 0
    for e in found:
        print(
            f"{e.name:40} {e.semantic_version:8} {e.visibility:9} {e.entity:10} "
            f"{e.owner or '-'}  {e.description or ''}"
        )
    print(f"{len(found)} feature set(s)")
    if not found:
        for hint in _unknown_filters(
            ("--domain", args.domain, mesh.standards.domains, "declared", "conf/mesh.yaml"),
            ("--entity", args.entity, mesh.standards.entities, "declared", "conf/mesh.yaml"),
        ):
            print(hint)
    return 0


def _unknown_filters(*filters: tuple[str, str | None, Iterable[str], str, str]) -> list[str]:
    """Notes on filter values ``conf/`` does not know (a typo finds nothing, silently
    otherwise); each filter is (option, value, the known values, how and where they are
    made known: ``declared``, ``conf/mesh.yaml``)."""
    notes = []
    for option, value, known, verb, where in filters:
        names = sorted(known)
        if value is None or value in names:
            continue
        close = difflib.get_close_matches(value, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"{verb}: {', '.join(names)}"
        notes.append(f"note: {option} {value!r} is not {verb} in {where}; {hint}")
    return notes


def _show(args: argparse.Namespace) -> int:
    from mesh.catalog.search import show

    spark, mesh = _context(args)
    print(json.dumps(show(spark, mesh, args.name, identity=args.identity), indent=2, default=str))
    return 0


def _versions(args: argparse.Namespace) -> int:
    from mesh.catalog.search import versions

    spark, mesh = _context(args)
    found = versions(spark, mesh, args.name, identity=args.identity)
    if not found and not args.json:
        print(f"no published version of {args.name}")
        return 0
    if args.json:
        print(json.dumps([v.to_dict() for v in found], indent=2, default=str))
        return 0
    for v in found:
        why = "; ".join(v.reasons)
        print(
            f"{v.semantic_version:8} delta v{v.delta_version:<4} {v.bump:8} "
            f"{v.published_at:%Y-%m-%d %H:%M} {v.publisher}  {why}"
        )
    return 0


def _lineage(args: argparse.Namespace) -> int:
    from mesh.catalog.lineage import lineage

    spark, mesh = _context(args)
    edges = lineage(
        spark,
        mesh,
        args.name,
        args.direction,
        args.depth,
        identity=args.identity,
        version=args.version,
    )
    if args.json:
        print(json.dumps([{"source": e.source, "target": e.target} for e in edges], indent=2))
        return 0
    for edge in edges:
        print(edge)
    if not edges:
        scope = "" if args.direction == "both" else f" {args.direction}"
        print(f"no{scope} lineage edges of {args.name}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from mesh.catalog.export import FORMATS, export_catalog

    spark, mesh = _context(args)
    for fmt in FORMATS if args.format == "all" else (args.format,):
        for path in export_catalog(spark, mesh, fmt, args.out, identity=args.identity):
            print(path)
    return 0


def _duplicates(args: argparse.Namespace) -> int:
    from mesh.catalog.duplicates import find_duplicates

    spark, mesh = _context(args)
    found = find_duplicates(
        spark,
        mesh,
        threshold=args.threshold,
        min_overlap=args.min_overlap,
        identity=args.identity,
    )
    if args.json:
        print(json.dumps([dataclasses.asdict(d) for d in found], indent=2))
        return 0
    for dup in found:
        print(dup)
    print(f"{len(found)} likely duplicate(s)")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from mesh.catalog.audit import audit_log

    spark, mesh = _context(args)
    rows = audit_log(
        spark,
        mesh,
        feature_set=args.feature_set,
        decision=args.decision,
        identity=args.identity,
    )
    if args.json:
        print(json.dumps(rows[: args.limit], indent=2, default=_iso))
        return 0
    if not rows:
        print("no audit entries" + (" match these filters" if _filtered(args) else ""))
        # A set conf/ no longer defines may still have entries: only a name without any is
        # noted.
        for hint in _unknown_filters(
            ("--feature-set", args.feature_set, mesh.all_sets(), "defined", "conf/")
        ):
            print(hint)
    for row in rows[: args.limit]:
        print(
            f"{row['at']:%Y-%m-%d %H:%M:%S} {row['user']}@{row['domain']} {row['decision']:7} "
            # A refused read of a path without a feature set: its reason names the path.
            f"{row['feature_set'] or row['reason']}{_version_read(row)} "
            f"[{', '.join(row['features'])}] "
            f"{row['purpose']}"
            + (f" missing: {', '.join(row['missing_grants'])}" if row["missing_grants"] else "")
        )
    return 0


def _version_read(row: dict[str, Any]) -> str:
    """``@1.0.0#3``: the version an audited read resolved (semantic, then Delta commit), as
    lineage names the version read; empty when none was (refused before, or written before
    versions were audited)."""
    if row["semantic_version"] is None:
        return ""
    delta = row["delta_version"]
    return f"@{row['semantic_version']}" + (f"#{delta}" if delta is not None else "")


def _filtered(args: argparse.Namespace) -> bool:
    return args.feature_set is not None or args.decision is not None
