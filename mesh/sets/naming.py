"""Output column names of pinned inputs: the feature's name, qualified where it would repeat.

A feature's column is its name after the lookup's prefix. A name that repeats across inputs or
clashes with a column already taken (the spine's) becomes ``<domain>__<feature_set>__<name>``,
and ``<domain>__<feature_set>__v<pin>__<name>`` for a set read at several pins (``v1_0``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mesh.sets.errors import SetBuildError

if TYPE_CHECKING:
    from mesh.sets.manifest import InputPin


def assign_columns(pins: list[InputPin], taken: Iterable[str], sensitive: bool) -> list[InputPin]:
    """Output column per feature; names are compared as the session compares them
    (``sensitive``: ``spark.sql.caseSensitive``), so under Spark's default a feature
    ``amount`` next to a spine column ``Amount`` is renamed like an exact repeat."""
    from mesh.join.resolve import fold_name

    def fold(name: str) -> str:
        return fold_name(name, sensitive)

    counts: dict[str, int] = {}
    pins_of: dict[str, set[str | None]] = {}
    for pin in pins:
        pins_of.setdefault(pin.feature_set, set()).add(pin.pin)
        for feature in pin.features:
            name = fold(pin.prefix + feature)
            counts[name] = counts.get(name, 0) + 1
    result = []
    reserved = {fold(name) for name in taken}
    used = set(reserved)
    for pin in pins:
        mapping = {}
        prefix = qualified_prefix(pin.feature_set, pin.pin, len(pins_of[pin.feature_set]) > 1)
        for feature in pin.features:
            out = pin.prefix + feature
            if counts[fold(out)] > 1 or fold(out) in reserved:
                out = f"{prefix}__{out}"
            if fold(out) in used:
                raise SetBuildError(
                    f"Feature {pin.feature_set}.{feature}: output column {out!r} is already "
                    "used by another reference or a spine column; reference it once, give "
                    "each lookup of the set its own prefix, or rename the spine column.",
                    feature_set=pin.feature_set,
                    feature=feature,
                    column=out,
                )
            used.add(fold(out))
            mapping[feature] = out
        result.append(pin.model_copy(update={"features": mapping}))
    return result


def qualified_prefix(feature_set: str, pin: str | None, several: bool) -> str:
    """What an output name that repeats is qualified with: ``<domain>__<set>``, and
    ``__v<pin>`` after it (``__v1_0``) for a pinned read of a set read at ``several`` pins."""
    prefix = feature_set.replace(".", "__")
    if several and pin is not None:
        # One set read at several pins: each pin's columns say which.
        prefix = f"{prefix}__v{pin.replace('.', '_')}"
    return prefix
