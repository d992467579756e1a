"""One exception tree for the engine: every error a user can act on is a ``MeshError``.

Each error carries structured parameters (``params``) so tests and callers can check what
went wrong without parsing the message.
"""

from __future__ import annotations

from typing import Any


class MeshError(Exception):
    """Root of every error the engine raises on purpose."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params: dict[str, Any] = params

    def __str__(self) -> str:
        return self.message


class ConfigProblem:
    """One problem found while loading definitions: where, what was found, how to fix it."""

    __slots__ = ("field", "file", "found", "hint", "message")

    def __init__(self, file: str, field: str, message: str, found: Any = None, hint: str = ""):
        self.file = file
        self.field = field
        self.message = message
        self.found = found
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.file} ({self.field}): {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return text

    def __repr__(self) -> str:
        return f"ConfigProblem({self!s})"


class ConfigError(MeshError):
    """Definitions under ``conf/`` (or given in Python) are invalid. Lists every problem."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        lines = [f"{len(problems)} problem(s) in the mesh definitions:"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines), problems=problems)


class StorageError(MeshError):
    """A Delta table operation failed."""


class CommitConflictError(StorageError):
    """Another writer committed a conflicting change first; nothing of this run was committed."""


class TableNotFoundError(StorageError):
    """No Delta table at the given location."""


class VersionNotFoundError(StorageError):
    """The requested version or timestamp does not exist in the table's history."""


class VersionFilesRemovedError(VersionNotFoundError):
    """The version is in the log, but data files it references are gone (e.g. by VACUUM)."""


class JoinError(MeshError):
    """A point-in-time join was given inputs it cannot join (missing columns, bad types)."""


class ComputeError(MeshError):
    """A feature computation could not run as defined."""


class GovernanceError(MeshError):
    """A publish was refused by governance checks; ``report`` names every failing check."""

    def __init__(self, message: str, report: Any = None, **params: Any) -> None:
        super().__init__(message, report=report, **params)
        self.report = report


class AccessDeniedError(MeshError):
    """A read was refused: names who, what, and which grant is missing."""


class CatalogError(MeshError):
    """The catalog could not answer or record something."""


class WarehouseMovedError(MeshError):
    """A catalog record or manifest names a table of a warehouse that has since been moved
    or copied, and the table is gone from there: names both places (``recorded``,
    ``current``)."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message with text in it (Spark's may start with one
    that is empty)."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), repr(exc))


def data_failures() -> tuple[type[BaseException], ...]:
    """Spark's errors of an expression failing on a value (an overflow, a division by zero
    under ANSI mode, a cast or a date that does not parse): ``except data_failures()``."""
    from pyspark.errors import ArithmeticException, DateTimeException, NumberFormatException

    return (ArithmeticException, NumberFormatException, DateTimeException)
