"""Ctrl-C in a ``mesh`` command: cancel Spark's jobs, no Py4J tracebacks, one line, exit 130.

An interrupt reaches the command as ``KeyboardInterrupt`` when it lands in Python code, but a
Py4J call it cuts short logs tracebacks (``py4j``'s loggers, and the root logger for
"KeyboardInterrupt while sending command.") and a call made while unwinding (a ``finally``
that unpersists a frame) can fail with a ``Py4JError`` or a ``PySparkException`` instead.
``interrupt_guard`` installs a SIGINT handler that marks the run interrupted and silences
those logs before raising ``KeyboardInterrupt``; ``caused_by_interrupt`` then tells the
command's exception apart from a real failure.

The storage layer makes every Delta commit land whole or not at all (an interrupted write's
staged files are deleted unless its commit landed; an interrupted publish undoes its
feature-table commit unless its catalog version row landed), so the message can say what
is kept: the commits completed before the interrupt.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

from mesh.session import silence

SETTLE_SECONDS = 10.0  # longest wait for cancelled tasks to end
EXIT_CODE = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
MESSAGE = (
    "interrupted; running Spark jobs were cancelled. Each Delta commit lands whole or not at "
    "all: only the commits completed before the interrupt were kept"
)
# Loggers that report the failed Py4J call or the Spark error an interrupt causes.
NOISY_LOGGERS = (
    "py4j",
    "py4j.clientserver",
    "py4j.java_gateway",
    "pyspark",
    "DataFrameQueryContextLogger",
    "SQLQueryContextLogger",
)


class _State:
    interrupted = False
    silenced: list[logging.Logger] = []


_state = _State()


class _DropPy4JRecords(logging.Filter):
    """Drops what Py4J logs on the root logger (``logging.exception(...)``) after an interrupt."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _state.interrupted:
            return True
        path = record.pathname.replace(os.sep, "/")
        return "/py4j/" not in path and "/pyspark/" not in path


_ROOT_FILTER = _DropPy4JRecords()


class SigintHandler:
    """Marks the run interrupted, silences Py4J's logs, raises ``KeyboardInterrupt``.

    ``keep_over_spark``: ``mesh.session.get_spark`` puts this handler back after PySpark's
    SparkContext installs its own (which cancels jobs from inside the interrupted Py4J call).
    """

    keep_over_spark = True

    def __call__(self, signum: int, frame: FrameType | None) -> NoReturn:
        mark_interrupted()
        raise KeyboardInterrupt


def mark_interrupted() -> None:
    """From now on, drop the logs of Py4J and PySpark: what they report is the interrupt."""
    _state.interrupted = True
    _state.silenced += silence(NOISY_LOGGERS)


def was_interrupted() -> bool:
    return _state.interrupted


@contextmanager
def interrupt_guard() -> Iterator[None]:
    """SIGINT handled by ``SigintHandler`` (main thread only) while the command runs."""
    _state.interrupted = False
    root = logging.getLogger()
    root.addFilter(_ROOT_FILTER)
    previous: Any = None
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        previous = signal.signal(signal.SIGINT, SigintHandler())
    try:
        yield
    finally:
        if on_main:
            signal.signal(signal.SIGINT, previous)
        root.removeFilter(_ROOT_FILTER)
        for logger in _state.silenced:
            logger.disabled = False
        _state.silenced = []
        _state.interrupted = False


def caused_by_interrupt(exc: BaseException) -> bool:
    """True when the run was interrupted (the handler ran: whatever the command raised then,
    a ``Py4JError`` or ``PySparkException`` of a call cut short included, is the interrupt's)
    or ``exc`` is, or was raised while handling, a ``KeyboardInterrupt`` (its context or
    cause, also Py4J's ``cause``)."""
    if was_interrupted():
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KeyboardInterrupt) or isinstance(
            getattr(current, "cause", None), KeyboardInterrupt
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def cancel_spark_jobs(wait: float = SETTLE_SECONDS) -> None:
    """Cancel every job of this process's SparkContext, if one runs, and wait (up to ``wait``
    seconds) until none of their tasks runs, so the JVM does not shut down under running
    tasks (it logs their failures then); a Spark Connect session's operations are
    interrupted on its server. Never raises."""
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        from mesh.session import is_connect

        session = SparkSession.getActiveSession()
        if session is not None and is_connect(session):
            session.interruptAll()  # the server's operations of this session
        context = SparkContext._active_spark_context
        if context is None:
            return
        context.cancelAllJobs()
        tracker = context.statusTracker()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _running(tracker):
            time.sleep(0.05)
    except Exception:  # the JVM may be gone already; there is nothing left to cancel then
        pass


def _running(tracker: Any) -> bool:
    if tracker.getActiveJobsIds():
        return True
    for stage in tracker.getActiveStageIds():
        info = tracker.getStageInfo(stage)
        if info is not None and info.numActiveTasks:
            return True
    return False


def interrupted() -> int:
    """Cancel Spark's jobs, print the one line, return the exit code."""
    import sys

    mark_interrupted()
    cancel_spark_jobs()
    print(MESSAGE, file=sys.stderr)
    return EXIT_CODE
