"""The ``mesh`` command. Each area registers its sub-commands from its own module.

One handler turns a ``MeshError`` into a one-line message and exit code 1;
``MESH_DEBUG=1`` shows the traceback instead. Spark's own logs of that failure stay quiet: a
local session the command starts logs only FATAL, and PySpark's query-context loggers are
off while it runs (``MESH_DEBUG`` or ``MESH_SPARK_LOG_LEVEL`` keeps them). An interrupt
(Ctrl-C) cancels Spark's jobs and is one line and exit code 130 (``mesh.cli.interrupt``).
A reader that closes the output early (``mesh ... | head -1``) ends the command quietly
with exit code 141, what a shell reports for a command ended by SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from mesh.cli.interrupt import caused_by_interrupt, interrupt_guard, interrupted
from mesh.definitions.mesh import WAREHOUSE_ENV
from mesh.errors import ConfigError, MeshError
from mesh.session import quiet_local_session

CLOSED_OUTPUT_EXIT = 141  # 128 + SIGPIPE

# Modules that expose ``register(subparsers)``; each sub-command sets ``func(args) -> int``.
COMMAND_MODULES = (
    "mesh.cli.platform",
    "mesh.cli.compute",
    "mesh.cli.sets",
    "mesh.cli.governance",
    "mesh.cli.catalog",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesh", description="Feature mesh: domain features, point-in-time joins, governance."
    )
    parser.add_argument(
        "--conf",
        default=os.environ.get("MESH_CONF", "conf"),
        help="folder with mesh.yaml and the domain definitions (default: conf)",
    )
    parser.add_argument(
        "--warehouse", default=None, help="warehouse root (default: storage.warehouse in mesh.yaml)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    _accept_common_options_everywhere(parser)
    return parser


def _accept_common_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``--conf``/``--warehouse`` also follow any sub-command (``mesh demo --warehouse x``).

    SUPPRESS keeps a value given before the sub-command from being reset by a default here.
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in set(action.choices.values()):
            for flag, help_text in (
                ("--conf", "folder with mesh.yaml (default: conf)"),
                ("--warehouse", "warehouse root"),
            ):
                if flag not in child._option_string_actions:
                    child.add_argument(flag, default=argparse.SUPPRESS, help=help_text)
            _accept_common_options_everywhere(child)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _warehouse(args.warehouse), quiet_local_session():
            code = _run(args)
            sys.stdout.flush()  # a closed output shows here, not at the interpreter's exit
    except BrokenPipeError:
        return _output_closed()
    return code


def _output_closed() -> int:
    """The reader of stdout went away: nothing more to write, no traceback.

    As the Python documentation recommends (signal module, "Note on SIGPIPE"): stdout is
    pointed at devnull, so the interpreter's last flush at exit does not fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor behind stdout (captured output)
        pass
    return CLOSED_OUTPUT_EXIT


@contextmanager
def _warehouse(root: str | None) -> Iterator[None]:
    """``--warehouse`` as ``MESH_WAREHOUSE`` for one command, and the variable as it was after.

    ``main`` also runs inside long-lived processes (a notebook, a driver running several
    jobs, the tests): one command's warehouse must not become the next one's default.
    """
    previous = os.environ.get(WAREHOUSE_ENV)
    if root:
        os.environ[WAREHOUSE_ENV] = root
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(WAREHOUSE_ENV, None)
        else:
            os.environ[WAREHOUSE_ENV] = previous


def _run(args: argparse.Namespace) -> int:
    with interrupt_guard():
        try:
            return int(args.func(args) or 0)
        except BaseException as exc:
            if not caused_by_interrupt(exc):
                if isinstance(exc, MeshError):
                    return _error(exc)
                raise
            if os.environ.get("MESH_DEBUG"):
                traceback.print_exc()
            return interrupted()


def _error(exc: MeshError) -> int:
    if os.environ.get("MESH_DEBUG"):
        traceback.print_exc()
    text = str(exc) if isinstance(exc, ConfigError) else str(exc).splitlines()[0]
    print(f"error: {text}", file=sys.stderr)
    if not os.environ.get("MESH_DEBUG"):
        print("(set MESH_DEBUG=1 for the traceback)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
