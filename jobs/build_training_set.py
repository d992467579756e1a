"""spark-submit entry point: `mesh training build` (same arguments; --conf/--warehouse anywhere)."""

from __future__ import annotations

import argparse
import sys

from mesh.cli import main


def run(argv: list[str]) -> int:
    top = argparse.ArgumentParser(add_help=False)
    top.add_argument("--conf")
    top.add_argument("--warehouse")
    known, rest = top.parse_known_args(argv)
    prefix = [f"--{k}={v}" for k, v in vars(known).items() if v is not None]
    return main([*prefix, "training", "build", *rest])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
