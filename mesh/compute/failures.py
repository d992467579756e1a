"""A domain feature set's computation failing on the data, as one ``ComputeError``.

Spark raises such failures from the action that runs the computation (a chunk's write, a
publish's checks), with a JVM or Python-worker stack trace that names no feature set. The
cases are a window sum of ``bigint`` values out of range (Spark's ANSI ``sum`` with the SQL
engine, ``SUM_OVERFLOW`` from the kernel) and an expression, filter or cast that fails on a
value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mesh.compute.kernel import SUM_OVERFLOW
from mesh.definitions import FeatureSet
from mesh.errors import ComputeError, data_failures, first_line


@contextmanager
def computing(fs: FeatureSet) -> Iterator[None]:
    """Raise a failure of ``fs``'s computation on the data as a ``ComputeError`` naming it."""
    from pyspark.errors import PythonException

    try:
        yield
    except data_failures() as exc:
        raise _failed(fs, first_line(exc), exc) from exc
    except PythonException as exc:
        line = next((x for x in str(exc).splitlines() if SUM_OVERFLOW in x), None)
        if line is None:
            raise
        raise _failed(fs, line.strip(), exc) from exc


def _failed(fs: FeatureSet, reason: str, exc: BaseException) -> ComputeError:
    return ComputeError(
        f"Feature set `{fs.qualified_name}`: its computation failed on the data ({reason}); "
        "nothing was written. A sum of integers past the bigint range needs the column as a "
        "decimal or a double in the data product; an expression or filter must hold for "
        "every value (try_cast, try_divide, nullif).",
        feature_set=fs.qualified_name,
        error_class=getattr(exc, "getCondition", lambda: None)(),
    )
