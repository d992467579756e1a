"""Column names the engine adds next to features: no feature may take them.

Feature tables hold ``feature_ts`` and ``created_ts``; inference outputs ``as_of_ts``; the
engine's working columns during a computation or a join start with ``_`` (``_e_us``,
``__mesh_avail``). Spark resolves column names without regard to case, so ``Feature_TS``
is ``feature_ts`` to it, and ``Amount`` and ``amount`` are one column.
"""

from __future__ import annotations

from collections.abc import Iterable

FEATURE_TS = "feature_ts"
CREATED_TS = "created_ts"
AS_OF_TS = "as_of_ts"
ENGINE_COLUMNS = (FEATURE_TS, CREATED_TS, AS_OF_TS)
ENGINE_PREFIX = "_"


def engine_column(name: str) -> str | None:
    """The engine column (or ``_*`` for its working columns) ``name`` stands for in Spark,
    or ``None`` when a feature may take the name."""
    folded = name.lower()
    if folded in ENGINE_COLUMNS:
        return folded
    return f"{ENGINE_PREFIX}*" if name.startswith(ENGINE_PREFIX) else None


def same_name(a: str, b: str) -> bool:
    """Whether Spark reads ``a`` and ``b`` as one column name (it ignores letter case)."""
    return a.lower() == b.lower()


def spellings_note(spellings: list[str]) -> str:
    """`` (as 'Amount', 'amount': Spark ignores letter case)`` for one name spelt several
    ways, else nothing: how a duplicate name is reported."""
    if len(set(spellings)) < 2:
        return ""
    return f" (as {', '.join(map(repr, spellings))}: Spark ignores letter case)"


def name_clashes(names: Iterable[str]) -> dict[str, list[str]]:
    """Names Spark cannot tell apart: lower-cased name -> the spellings, for each name given
    more than once (exact repeats included), in the order given."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.lower(), []).append(name)
    return {folded: found for folded, found in groups.items() if len(found) > 1}
