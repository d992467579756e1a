"""Static rules about one feature set on its own: domain, naming, metadata, visibility, PII,
duplicate names, quality overrides.

Names are compared as Spark resolves them, without regard to letter case: ``Amount`` and
``amount`` are one column, ``Feature_TS`` is the engine's ``feature_ts``.

PII in ``public`` feature sets: a ``pii`` feature is a *warning* (it stays readable only
with an explicit grant, which access control enforces on every read); a ``sensitive``
feature in a ``public`` set *fails*: move it to an ``internal``/``private`` set.
"""

from __future__ import annotations

import re

from mesh.definitions.base import format_duration
from mesh.definitions.columns import (
    ENGINE_COLUMNS,
    ENGINE_PREFIX,
    engine_column,
    name_clashes,
    same_name,
    spellings_note,
)
from mesh.definitions.feature_set import PROTECTED_PII, AggregationFeature, FeatureSet
from mesh.definitions.mesh import AnyFeatureSet
from mesh.governance.static_collector import Collector


def snake_case(value: str) -> str:
    """``value`` in lower-case words joined by single underscores (``TxAmounts``,
    ``Online-Count``, ``HTTPErrors`` -> ``tx_amounts``, ``online_count``, ``http_errors``)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", value)
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")


class SetRules(Collector):
    """Rules every domain and global feature set obeys on its own."""

    def common(self, name: str, fs: AnyFeatureSet) -> None:
        self.domain(name, fs.domain)
        self.naming(name, fs)
        self.metadata(name, fs)
        self.visibility(name, fs)
        self.pii(name, fs)
        self.duplicates(name, fs)
        self.quality(name, fs)

    def domain(self, name: str, domain: str) -> None:
        known = sorted(self.std.domains)
        if not known:
            return
        self.add(
            "domain.declared",
            name,
            None,
            domain in known,
            domain,
            known,
            f"{name}: domain {domain!r} is not declared in mesh.yaml; declare it under "
            f"`domains:` (known: {', '.join(known)})",
            "domain",
        )

    def naming(self, name: str, fs: AnyFeatureSet) -> None:
        rules = self.std.naming
        self.pattern(
            "naming.feature_set_pattern", name, None, fs.name, rules.feature_set_pattern, "name"
        )
        self.length(name, None, fs.name, "name")
        keys = self.keys(fs.entity)
        for i, feature in enumerate(fs.features):
            where = f"features[{i}].name"
            self.pattern(
                "naming.feature_pattern",
                name,
                feature.name,
                feature.name,
                rules.feature_pattern,
                where,
            )
            for output in feature.output_names():
                self.length(name, output, output, where)
                engine = engine_column(output)
                self.add(
                    "naming.engine_column",
                    name,
                    output,
                    engine is None,
                    output,
                    [*ENGINE_COLUMNS, f"{ENGINE_PREFIX}*"],
                    f"{name}: feature name {output!r} is the engine's column {engine!r} "
                    "(it adds feature_ts, created_ts, as_of_ts and working columns `_*`; "
                    "Spark ignores letter case), whatever naming.reserved lists; rename "
                    "the feature",
                    where,
                )
                reserved = any(
                    same_name(word, output) or same_name(word, feature.name)
                    for word in rules.reserved
                )
                self.add(
                    "naming.reserved",
                    name,
                    output,
                    not reserved,
                    output,
                    list(rules.reserved),
                    f"{name}: feature name {output!r} is reserved (reserved: "
                    f"{', '.join(rules.reserved)}); rename the feature",
                    where,
                )
                self.add(
                    "naming.key_collision",
                    name,
                    output,
                    not any(same_name(key, output) for key in keys),
                    output,
                    keys,
                    f"{name}: feature {output!r} has the name of a key column of entity "
                    f"{fs.entity!r} (Spark ignores letter case); rename the feature",
                    where,
                )

    def accuracy(self, name: str, fs: FeatureSet) -> None:
        """The grid rules compute enforces (``FeatureSet.off_grid_windows``,
        ``row_level_off_event``), reported before any computation refuses the set."""
        off_grid = {(i, w) for i, _, w in fs.off_grid_windows()}
        for i, feature in enumerate(fs.features):
            if not isinstance(feature, AggregationFeature):
                continue
            for w in feature.windows:
                self.add(
                    "accuracy.grid",
                    name,
                    feature.name,
                    (i, w) not in off_grid,
                    format_duration(w),
                    format_duration(fs.interval),
                    f"{name} (features[{i}].windows): window {format_duration(w)} is not a "
                    f"multiple of the snapshot interval {format_duration(fs.interval)}; use "
                    "whole intervals (e.g. 1d, 7d) or a smaller `interval`",
                    f"features[{i}].windows",
                )
        if not fs.is_aggregation:
            self.add(
                "accuracy.row_level",
                name,
                None,
                not fs.row_level_off_event,
                fs.accuracy,
                "event",
                f"{name} (accuracy): expression and column features are computed per source "
                f"row, found accuracy {fs.accuracy!r}; set `accuracy: event`",
                "accuracy",
            )

    def pattern(
        self, check: str, name: str, feature: str | None, value: str, pattern: str, field: str
    ) -> None:
        ok = re.fullmatch(pattern, value) is not None
        hint = snake_case(value)
        example = f", e.g. {hint!r}" if re.fullmatch(pattern, hint) else " to match"
        self.add(
            check,
            name,
            feature,
            ok,
            value,
            pattern,
            f"{name} ({field}): {value!r} does not match the naming pattern {pattern!r} "
            f"of mesh.yaml; rename it{example}",
            field,
        )

    def length(self, name: str, feature: str | None, value: str, field: str) -> None:
        limit = self.std.naming.max_length
        self.add(
            "naming.max_length",
            name,
            feature,
            len(value) <= limit,
            len(value),
            limit,
            f"{name} ({field}): name {value!r} is {len(value)} characters, more than "
            f"naming.max_length={limit}; shorten it",
            field,
        )

    def metadata(self, name: str, fs: AnyFeatureSet) -> None:
        for key in self.std.required_metadata:
            value = getattr(fs.metadata, key)
            self.add(
                "metadata.required",
                name,
                None,
                _present(value),
                value or None,
                key,
                f"{name}: metadata.{key} is required by mesh.yaml (required_metadata) but "
                f"is missing or blank; add `metadata: {{{key}: ...}}`",
                f"metadata.{key}",
            )

    def visibility(self, name: str, fs: AnyFeatureSet) -> None:
        meta = fs.metadata
        effective = self.effective_visibility(fs)
        allowed = list(meta.allowed_domains)
        ok = not allowed or effective == "internal"
        self.add(
            "visibility.allowed_domains",
            name,
            None,
            ok,
            effective,
            "internal",
            f"{name}: metadata.allowed_domains is only meaningful with visibility "
            f"`internal`, found visibility {effective!r}; set visibility: internal or "
            "remove allowed_domains",
            "metadata.allowed_domains",
        )
        known = sorted(self.std.domains)
        if known:
            for domain in allowed:
                self.add(
                    "visibility.unknown_domain",
                    name,
                    None,
                    domain in known,
                    domain,
                    known,
                    f"{name}: metadata.allowed_domains names {domain!r}, which is not "
                    f"declared in mesh.yaml (known: {', '.join(known)}); fix the name",
                    "metadata.allowed_domains",
                )

    def pii(self, name: str, fs: AnyFeatureSet) -> None:
        public = self.effective_visibility(fs) == "public"
        for i, feature in enumerate(fs.features):
            where = f"features[{i}].pii"
            self.add(
                "pii.tagged",
                name,
                feature.name,
                feature.pii is not None,
                feature.pii,
                ["none", "pii", "sensitive"],
                f"{name}: feature {feature.name!r} has no PII classification; add "
                "`pii: none | pii | sensitive`",
                where,
            )
            if public and feature.pii in PROTECTED_PII:
                sensitive = feature.pii == "sensitive"
                self.add(
                    "pii.public",
                    name,
                    feature.name,
                    False,
                    feature.pii,
                    "none" if sensitive else "pii with grant",
                    f"{name}: feature {feature.name!r} is {feature.pii} in a public feature "
                    + (
                        "set; sensitive features may not be public: move it to an internal "
                        "or private feature set"
                        if sensitive
                        else "set; readers need an explicit grant (access.grants in mesh.yaml)"
                    ),
                    where,
                    "error" if sensitive else "warning",
                )

    def duplicates(self, name: str, fs: AnyFeatureSet) -> None:
        outputs = fs.output_names()
        clashes = name_clashes(outputs)
        first = {o.lower(): o for o in reversed(outputs)}  # each name as first spelt
        for output in sorted(first.values()):
            spellings = clashes.get(output.lower(), [output])
            count = len(spellings)
            self.add(
                "features.duplicate",
                name,
                output,
                count == 1,
                count,
                1,
                f"{name}: feature name {output!r} appears {count} times"
                f"{spellings_note(spellings)}; give every feature a unique name",
                "features",
            )

    def quality(self, name: str, fs: AnyFeatureSet) -> None:
        outputs = fs.output_names()
        for key, rate in sorted(fs.quality.max_null_rate.items()):
            field = f"quality.max_null_rate.{key}"
            self.add(
                "quality.unknown_feature",
                name,
                key,
                key in outputs,
                key,
                outputs,
                f"{name}: {field} names no feature of the set; use one of {', '.join(outputs)}",
                field,
            )
            self.add(
                "quality.null_rate",
                name,
                key,
                0 <= rate <= 1,
                rate,
                [0, 1],
                f"{name}: {field} is {rate}, expected a share between 0 and 1",
                field,
            )
        for key, (low, high) in sorted(fs.quality.ranges.items()):
            field = f"quality.ranges.{key}"
            self.add(
                "quality.unknown_feature",
                name,
                key,
                key in outputs,
                key,
                outputs,
                f"{name}: {field} names no feature of the set; use one of {', '.join(outputs)}",
                field,
            )
            ok = low is None or high is None or low <= high
            self.add(
                "quality.range",
                name,
                key,
                ok,
                [low, high],
                "low <= high",
                f"{name}: {field} is [{low}, {high}], the lower bound is above the "
                "upper; swap them",
                field,
            )
        psi = fs.quality.max_psi
        if psi is not None:
            # A PSI is never negative: a negative limit would refuse every publish with a
            # previous version.
            self.add(
                "quality.max_psi",
                name,
                None,
                psi >= 0,
                psi,
                ">= 0",
                f"{name}: quality.max_psi is {psi}, but a population stability index is never "
                "negative; use a limit such as 0.25 (or 0.1 for a strict one)",
                "quality.max_psi",
            )


def _present(value: object) -> bool:
    """A required metadata value is present: text that is not blank, a list (tags) with
    such text, any other set value (visibility)."""
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple):
        return any(_present(v) for v in value)
    return value is not None
