"""``mesh validate``: load the definitions and run every static governance check (no Spark)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "validate",
        help="check every definition under conf/ against the standards (no Spark, no data)",
        description="Load conf/ and run the static governance checks; exit 1 on any failure.",
    )
    # SUPPRESS: without --conf here, the global `mesh --conf DIR validate` value stays.
    parser.add_argument(
        "--conf", default=argparse.SUPPRESS, help="folder with mesh.yaml and the domain definitions"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="list passed checks too")
    parser.add_argument("--json", action="store_true", help="print the results as JSON lines")
    parser.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from mesh.errors import ConfigError
    from mesh.governance.validate import problems_report, validate_conf

    try:
        report = validate_conf(args.conf)
    except ConfigError as exc:  # no mesh.yaml there
        if not args.json:
            raise
        # As a JSON line too: a CI job reading stdout sees the problem, not an empty report.
        report = problems_report(exc.problems)
    if args.json:
        for record in report.to_records():
            if args.verbose or not record["passed"]:
                print(json.dumps(record, sort_keys=True))
    else:
        print(report.render_text(verbose=args.verbose))
    if not report.ok:
        # With --json, stdout holds JSON lines only: the summary goes to stderr.
        print(
            f"validate: {len(report.failed)} check(s) failed in {args.conf}; fix the "
            "definitions above and run `mesh validate` again",
            file=sys.stderr if args.json else sys.stdout,
        )
        return 1
    return 0
