"""spark-submit entry point: compute a feature set over a range and publish it.

    spark-submit jobs/publish.py payments.customer_spend --start 2024-01-01 --end 2024-02-01 \
        [--conf conf] [--identity etl@payments] [--run-id ID]

Same as ``mesh publish``; errors print one line and exit 1 (``MESH_DEBUG=1``: traceback).
"""

from __future__ import annotations

import sys

from mesh.cli import main


def run(argv: list[str]) -> int:
    """``mesh [--conf C] publish ARGS``: global options go before the sub-command."""
    head: list[str] = []
    rest = list(argv)
    for option in ("--conf", "--warehouse"):
        if option in rest:
            i = rest.index(option)
            head += rest[i : i + 2]
            del rest[i : i + 2]
    return main([*head, "publish", *rest])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
