"""Static rules across definitions: entities and key types, sources and columns, feature
types, global-set inputs, their visibility and PII lineage, cycles, training-set references.

A global set republishes what it reads, so it may be no easier to read than its inputs:

* ``visibility.input``: every domain that may read the global set (owning domain, plus
  ``allowed_domains`` when ``internal``, or everyone when ``public``, exactly as
  ``mesh.catalog.access.decide`` rules) may read each input too;
* ``pii.lineage``: a global feature's PII class is at least the highest class of the inputs
  its expression uses (``none`` < ``pii`` < ``sensitive``). An input counts as used when its
  alias appears in any letter case (Spark resolves column names case-insensitively) or the
  expression expands ``*`` (``hash(*)``, ``struct(*)``: every input).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from mesh.definitions.base import spark_form
from mesh.definitions.columns import FEATURE_TS
from mesh.definitions.feature_set import (
    PII_ORDER,
    PROTECTED_PII,
    AggregationFeature,
    FeatureSet,
)
from mesh.definitions.global_set import GlobalFeatureSet
from mesh.definitions.mesh import AnyFeatureSet
from mesh.definitions.references import FeatureRef
from mesh.definitions.source import TIME_TYPES, DataProduct
from mesh.definitions.training import TrainingSet
from mesh.governance.sql_names import misspelt_columns, not_row_level, not_row_level_reason
from mesh.governance.static_sets import SetRules

# ``*`` as a whole function argument (``hash(*)``, ``struct(*)``) or the whole expression.
_STAR = re.compile(r"(^|[(,])\s*\*\s*($|[),])")
NUMERIC = re.compile(r"^(tinyint|smallint|int|bigint|float|double|decimal\(\d+,\s*\d+\))$")
# Aggregations whose input must be numeric; the others accept any comparable column.
_NUMERIC_INPUT = {"sum", "mean", "stddev"}


class ReferenceRules(SetRules):
    """Rules across definitions, on top of the per-set rules."""

    def entity(self, name: str, entity: str) -> bool:
        known = sorted(self.std.entities)
        ok = entity in known
        self.add(
            "entity.registered",
            name,
            None,
            ok,
            entity,
            known,
            f"{name}: entity {entity!r} is not registered in mesh.yaml; register it under "
            f"`entities:` or use one of {', '.join(known) or 'none'}",
            "entity",
        )
        return ok

    def type_allowed(
        self, name: str, output: str, type_name: str | None, field: str, why: str = ""
    ) -> None:
        allowed = list(self.std.allowed_types)
        if type_name is None:
            why = why or "the source declares no columns; declare `columns:` in the data product"
            self.add(
                "types.allowed",
                name,
                output,
                False,
                None,
                allowed,
                f"{name}: the type of {output!r} cannot be derived because {why} or set "
                "`type:` on the feature",
                field,
                "warning",
            )
            return
        self.add(
            "types.allowed",
            name,
            output,
            spark_form(type_name) in {spark_form(t) for t in allowed},
            type_name,
            allowed,
            f"{name}: feature {output!r} has type {type_name}, not allowed by mesh.yaml "
            f"(allowed_types: {', '.join(allowed)}); cast it in the expression or set "
            "`type:` to an allowed type",
            field,
        )

    def product(self, name: str, product: DataProduct) -> None:
        self.domain(name, product.domain)
        if not product.columns:
            return
        columns = list(product.columns)
        for field in ("event_timestamp", "created_timestamp"):
            column = getattr(product, field)
            if column is None:
                continue
            self.add(
                "references.timestamp_column",
                name,
                None,
                column in columns,
                column,
                columns,
                f"{name}: {field} {column!r} is not among the product's "
                f"columns ({', '.join(columns)}); fix the column name",
                field,
            )
            declared = product.columns.get(column)
            if declared is None:
                continue
            self.add(
                "references.timestamp_type",
                name,
                None,
                declared in TIME_TYPES,
                declared,
                list(TIME_TYPES),
                f"{name}: {field} {column!r} is declared {declared}, which the engine cannot "
                f"read as a time (types: {', '.join(TIME_TYPES)}); convert it in the data "
                "product (e.g. timestamp_seconds(epoch)) and declare its type",
                f"columns.{column}",
            )

    def feature_set(self, name: str, fs: FeatureSet) -> None:
        self.common(name, fs)
        self.accuracy(name, fs)
        has_entity = self.entity(name, fs.entity)
        product = self.mesh.product(fs.source, fs.domain)
        self.add(
            "references.source",
            name,
            None,
            product is not None,
            fs.source,
            "a defined data product",
            f"{name}: source {fs.source!r} is not a defined data product; define it with "
            "`kind: data_product` or write domain.product",
            "source",
        )
        columns = dict(product.columns) if product else {}
        if product is not None and columns and has_entity:
            self.keys_match(name, fs.entity, product)
        for i, feature in enumerate(fs.features):
            input_type: str | None = None
            column = getattr(feature, "column", None)
            if feature.kind == "column":
                column = column or feature.name
            if column and columns:
                present = column in columns
                self.add(
                    "references.column",
                    name,
                    feature.name,
                    present,
                    column,
                    sorted(columns),
                    f"{name} (features[{i}].column): column {column!r} is not in source "
                    f"{fs.source} (columns: {', '.join(columns)}); fix the column name",
                    f"features[{i}].column",
                )
                input_type = columns.get(column)
            self.sql_columns(name, i, fs, columns)
            field = f"features[{i}].type"
            if isinstance(feature, AggregationFeature):
                self.agg_input(name, feature, input_type, f"features[{i}].column")
                self.agg_cast(name, feature, input_type, field)
                unknown = feature.column is not None and input_type is None
                out_type = None if unknown and not feature.type else feature.output_type(input_type)
                why = (
                    f"column {feature.column!r} is not among the source's columns; fix the "
                    "column name"
                    if columns
                    else ""
                )
                for output in feature.output_names():
                    self.type_allowed(name, output, out_type, field, why)
            else:
                self.type_allowed(name, feature.name, feature.type, field)

    def sql_columns(
        self, name: str, index: int, fs: FeatureSet, columns: Mapping[str, str]
    ) -> None:
        """A feature's filter or expression naming a column the source does not have but
        has one close to (``chanel`` for ``channel``): compute would fail on it."""
        feature = fs.features[index]
        attribute = "filter" if isinstance(feature, AggregationFeature) else "expr"
        sql = getattr(feature, attribute, None)
        if not sql or not columns:
            return
        self.misspelt_sql(
            name,
            feature.name,
            sql,
            list(columns),
            f"features[{index}].{attribute}",
            f"which source {fs.source} does not have; use its columns ({', '.join(columns)})",
        )

    def misspelt_sql(
        self, name: str, feature: str, sql: str, names: list[str], field: str, fix: str
    ) -> None:
        """``references.sql``: ``sql`` names something close to one of ``names`` but none of
        them (``misspelt_columns``); ``fix`` says what it is not and what to use."""
        misspelt = misspelt_columns(sql, names)
        fixes = ", ".join(f"{wrong!r} (did you mean {right!r}?)" for wrong, right in misspelt)
        self.add(
            "references.sql",
            name,
            feature,
            not misspelt,
            [wrong for wrong, _ in misspelt],
            sorted(names),
            f"{name} ({field}): {sql!r} names {fixes}, {fix}",
            field,
        )

    def agg_input(
        self, name: str, feature: AggregationFeature, input_type: str | None, field: str
    ) -> None:
        if feature.function not in _NUMERIC_INPUT or input_type is None:
            return
        ok = NUMERIC.match(input_type) is not None
        self.add(
            "types.aggregation_input",
            name,
            feature.name,
            ok,
            input_type,
            "numeric",
            f"{name}: {feature.function}({feature.column}) needs a numeric column, "
            f"{feature.column!r} is {input_type}; aggregate a numeric column or use "
            "count/last/approx_distinct",
            field,
        )

    def agg_cast(
        self, name: str, feature: AggregationFeature, input_type: str | None, field: str
    ) -> None:
        """A declared ``type:`` must be the function's own type over the source column: the
        engine casts to it, and publish refuses a cast (``data.aggregation_type``)."""
        if not feature.type or (feature.column is not None and input_type is None):
            return
        derived = feature.result_type(spark_form(input_type) if input_type else None)
        if derived is None:  # a decimal sum/mean: the declared type is the contract
            return
        declared, derived = spark_form(feature.type), spark_form(derived)
        self.add(
            "types.aggregation_cast",
            name,
            feature.name,
            declared == derived,
            declared,
            derived,
            f"{name}: {feature.name} declares type {declared}, but "
            f"{feature.function}({feature.column or ''}) gives {derived}; remove `type:` or "
            f"set it to {derived} (publish refuses a cast)",
            field,
        )

    def keys_match(self, name: str, entity: str, product: DataProduct) -> None:
        for key, key_type in self.std.entities[entity].keys.items():
            found = product.columns.get(key)
            if found is None:
                self.add(
                    "entity.key_missing",
                    name,
                    key,
                    False,
                    None,
                    key_type,
                    f"{name}: key column {key!r} of entity {entity!r} is missing from "
                    f"source {product.qualified_name}; add it to the data product",
                    "entity",
                )
                continue
            self.add(
                "entity.key_type",
                name,
                key,
                spark_form(found) == spark_form(key_type),
                found,
                key_type,
                f"{name}: key {key!r} is {found} in source {product.qualified_name} but "
                f"{key_type} in the entity registry; cast the key in the source or fix "
                "the registry",
                "entity",
            )

    def global_set(self, name: str, gs: GlobalFeatureSet) -> None:
        self.common(name, gs)
        self.entity(name, gs.entity)
        resolved: dict[str, AnyFeatureSet] = {}
        for alias, ref in gs.input_refs().items():
            field = f"inputs.{alias}"
            target = self.mesh.all_sets().get(ref.set_name)
            self.add(
                "references.input",
                name,
                alias,
                target is not None,
                str(ref),
                "a defined feature set",
                f"{name} ({field}): feature set {ref.set_name!r} "
                + _missing_set(ref.set_name, self.mesh.invalid, "the reference"),
                field,
            )
            if target is None:
                continue
            outputs = target.output_names()
            self.add(
                "references.input_feature",
                name,
                alias,
                ref.feature in outputs,
                ref.feature,
                outputs,
                f"{name} ({field}): {ref.set_name} has no feature {ref.feature!r} "
                f"(outputs: {', '.join(outputs)})",
                field,
            )
            self.add(
                "references.input_entity",
                name,
                alias,
                target.entity == gs.entity,
                target.entity,
                gs.entity,
                f"{name} ({field}): input entity {target.entity!r} differs from the "
                f"global set's entity {gs.entity!r}; combine features of one entity",
                field,
            )
            self.input_visibility(name, gs, alias, target)
            resolved[alias] = target
        self.pii_lineage(name, gs, resolved)
        for i, feature in enumerate(gs.features):
            self.type_allowed(name, feature.name, feature.type, f"features[{i}].type")
            self.global_expression(name, gs, i)

    def global_expression(self, name: str, gs: GlobalFeatureSet, index: int) -> None:
        """A global feature's expression naming an alias close to a declared one (``spnd``
        for ``spend``), or not row-level and deterministic (``not_row_level``): its build
        would refuse it."""
        feature, field = gs.features[index], f"features[{index}].expr"
        self.misspelt_sql(
            name,
            feature.name,
            feature.expr,
            [*gs.inputs, FEATURE_TS],
            field,
            f"which is no input alias; use the aliases declared under `inputs:` "
            f"({', '.join(gs.inputs)}) or {FEATURE_TS}",
        )
        found = not_row_level(feature.expr, gs.inputs)
        self.add(
            "globals.row_level",
            name,
            feature.name,
            not found,
            found,
            "row-level, deterministic SQL",
            f"{name} ({field}): {feature.expr!r} {not_row_level_reason(found)}",
            field,
        )

    def input_visibility(
        self, name: str, gs: GlobalFeatureSet, alias: str, target: AnyFeatureSet
    ) -> None:
        mine, theirs = self.audience(gs), self.audience(target)
        ok = theirs is None or (mine is not None and mine <= theirs)
        field = f"inputs.{alias}"
        source = target.qualified_name
        message = ""
        if theirs is not None and not ok:
            gained = (
                f"domains other than {', '.join(sorted(theirs))}"
                if mine is None
                else ", ".join(sorted(mine - theirs))
            )
            others = sorted(theirs - {gs.domain})
            if gs.domain not in theirs:
                fix = f"its own domain {gs.domain} may not read {source} either"
            elif others:
                fix = f"set visibility: internal with allowed_domains within [{', '.join(others)}]"
            else:
                fix = "set visibility: private"
            message = (
                f"{name} ({field}): {name} is readable by {_readers(mine)} but its input "
                f"{source} ({self.effective_visibility(target)}) only by {_readers(theirs)}, "
                f"so {gained} would read {source} through it; {fix}, or ask the "
                f"{target.domain} team to open {source} to them"
            )
        self.add(
            "visibility.input",
            name,
            alias,
            ok,
            _audience_value(mine),
            _audience_value(theirs),
            message,
            field,
        )

    def pii_lineage(
        self, name: str, gs: GlobalFeatureSet, resolved: dict[str, AnyFeatureSet]
    ) -> None:
        # A global feature must keep the strongest PII class it reads, or the
        # classification would be laundered away by one SQL expression.
        refs = gs.input_refs()
        for i, feature in enumerate(gs.features):
            sources = []
            needed = 0
            for alias, target in resolved.items():
                if not _reads(feature.expr, alias):
                    continue
                pii = _input_pii(target, refs[alias])
                if pii in PROTECTED_PII:
                    sources.append(f"{alias}={refs[alias]} ({pii})")
                    needed = max(needed, PII_ORDER.index(pii))
            if not sources:
                continue
            accepted = list(PII_ORDER[needed:])
            self.add(
                "pii.lineage",
                name,
                feature.name,
                feature.pii in accepted,
                feature.pii,
                accepted,
                f"{name}: feature {feature.name!r} is computed from {PII_ORDER[needed]} inputs "
                f"({', '.join(sources)}) but is classified {feature.pii!r}; a global feature "
                f"is at least as protected as its inputs ({' < '.join(PII_ORDER)}): classify "
                f"it {' or '.join(f'`{c}`' for c in accepted)}",
                f"features[{i}].pii",
            )

    def cycles(self) -> None:
        graph = {name: self.mesh.upstream(name) for name in self.mesh.global_sets}
        in_cycle = _cycle_members(graph)
        for name in sorted(graph):
            members = in_cycle.get(name)
            self.add(
                "globals.cycle",
                name,
                None,
                members is None,
                members,
                "no cycle",
                f"{name}: global feature sets read each other in a cycle "
                f"({' -> '.join(members or [])}); a global set cannot depend on itself, "
                "break the cycle",
                "inputs",
            )

    def grants(self) -> None:
        """Each ``access.grants`` entry names a declared domain and a defined set or feature.

        A misspelt grant would grant nothing, silently: the reader is then refused the
        feature it was meant to read, with no hint that mesh.yaml has a typo.
        """
        where = f"{self.mesh.conf_dir}/mesh.yaml"
        domains = sorted(self.std.domains)
        sets = self.mesh.all_sets()
        for reader, refs in sorted(self.std.access.grants.items()):
            field = f"access.grants.{reader}"
            if domains:
                self.add(
                    "access.grant",
                    "mesh.yaml",
                    None,
                    reader in domains,
                    reader,
                    domains,
                    f"mesh.yaml ({field}): grants to domain {reader!r}, which is not declared "
                    f"(domains: {', '.join(domains)}); fix the name, or declare the domain "
                    "under `domains:` (a reader outside them is given grants only once declared)",
                    field,
                    file=where,
                )
            for ref in refs:
                problem = _grant_problem(ref, sets, self.mesh.invalid)
                self.add(
                    "access.grant",
                    "mesh.yaml",
                    None,
                    problem is None,
                    ref,
                    "domain.set or domain.set.feature",
                    f"mesh.yaml ({field}): grant {ref!r} grants nothing: {problem}",
                    field,
                    file=where,
                )

    def training_set(self, name: str, ts: TrainingSet) -> None:
        self.domain(name, ts.domain)
        for i, ref in enumerate(ts.refs()):
            target = self.mesh.all_sets().get(ref.set_name)
            ok = target is not None and (ref.feature == "*" or ref.feature in target.output_names())
            expected = target.output_names() if target else "a defined feature set"
            self.add(
                "references.training",
                name,
                ref.feature,
                ok,
                str(ref),
                expected,
                f"{name} (features[{i}]): {ref} does not resolve; "
                + (
                    f"{ref.set_name} has outputs {', '.join(target.output_names())}"
                    if target
                    else f"feature set {ref.set_name!r} "
                    + _missing_set(ref.set_name, self.mesh.invalid, "the reference")
                ),
                f"features[{i}]",
            )


def _missing_set(name: str, invalid: Collection[str], what: str) -> str:
    """Why a referenced set is missing: it does not load (its definition's own results say
    why: it is defined), or it is not defined at all."""
    if name in invalid:
        return "does not load (see its config.invalid result); fix its definition"
    return f"is not defined; check {what} domain.feature_set.feature"


def _grant_problem(
    ref: str, sets: Mapping[str, AnyFeatureSet], invalid: Collection[str]
) -> str | None:
    """Why the grant ``ref`` matches no feature set or feature (``None``: it matches)."""
    parts = ref.split(".")
    if len(parts) not in (2, 3):
        return "expected `domain.set` (every feature) or `domain.set.feature`"
    name = ".".join(parts[:2])
    target = sets.get(name)
    if target is None:
        if name in invalid:
            return f"feature set {name!r} does not load (see its config.invalid result)"
        return f"feature set {name!r} is not defined"
    if len(parts) == 2:
        return None
    # Access accepts an output name or a feature's base name (every window of it).
    names = sorted({*target.output_names(), *(f.name for f in target.features)})
    if parts[2] in names:
        return None
    return f"{name} has no feature {parts[2]!r} (features: {', '.join(names)})"


def _reads(expr: str, alias: str) -> bool:
    """Whether a global feature's expression may read the input named ``alias``."""
    if _STAR.search(expr):
        return True
    return re.search(rf"\b{re.escape(alias)}\b", expr, re.IGNORECASE) is not None


def _readers(audience: frozenset[str] | None) -> str:
    return "every domain" if audience is None else f"domains {', '.join(sorted(audience))}"


def _audience_value(audience: frozenset[str] | None) -> str | list[str]:
    return "public" if audience is None else sorted(audience)


def _input_pii(target: AnyFeatureSet, ref: FeatureRef) -> str | None:
    for feature in target.features:
        if ref.feature in feature.output_names():
            return feature.pii
    return None


def _cycle_members(graph: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each node on a cycle -> one cycle through it (as a path back to itself)."""
    found: dict[str, list[str]] = {}
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, []):
                if nxt == start:
                    found[start] = [*path, start]
                    stack.clear()
                    break
                if nxt not in seen and nxt in graph:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found
