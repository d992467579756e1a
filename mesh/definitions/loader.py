"""Load ``conf/``: parse YAML, validate every definition, cross-check references.

Every problem found is collected (file, field, what was found, how to fix it) and raised
together as one ``ConfigError``, never as a Python traceback.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mesh.definitions.base import spark_form
from mesh.definitions.columns import name_clashes, spellings_note
from mesh.definitions.feature_set import (
    AggregationFeature,
    ColumnFeature,
    ExpressionFeature,
    FeatureSet,
)
from mesh.definitions.global_set import GlobalFeatureSet
from mesh.definitions.mesh import MeshDefinition
from mesh.definitions.source import DataProduct
from mesh.definitions.standards import Standards
from mesh.definitions.training import TrainingSet
from mesh.errors import ConfigError, ConfigProblem

KINDS: dict[str, type[BaseModel]] = {
    "data_product": DataProduct,
    "feature_set": FeatureSet,
    "global_feature_set": GlobalFeatureSet,
    "training_set": TrainingSet,
}
_FEATURE_KINDS: dict[str, type[BaseModel]] = {
    "aggregation": AggregationFeature,
    "expression": ExpressionFeature,
    "column": ColumnFeature,
}
_UNION_TAGS = set(_FEATURE_KINDS)


def load_mesh(conf_dir: str | Path = "conf") -> MeshDefinition:
    """Load and cross-check every definition under ``conf_dir``.

    Layout: ``mesh.yaml`` (standards), ``domains/<domain>/*.yaml`` (data products and
    feature sets; ``domain`` defaults to the folder name), ``global/*.yaml`` and
    ``training/*.yaml`` (a definition in another folder is a problem). A file may hold
    several YAML documents, each with a ``kind``.
    Raises ``ConfigError`` listing every problem found.
    """
    mesh, problems = read_definitions(conf_dir)
    if mesh is not None:
        _cross_check(mesh, problems)
    if problems or mesh is None:
        raise ConfigError(problems)
    return mesh


def read_definitions(
    conf_dir: str | Path = "conf",
) -> tuple[MeshDefinition | None, list[ConfigProblem]]:
    """Every definition that validates on its own, and the problems of those that do not.

    No cross-reference check runs (``load_mesh`` adds it). The mesh is ``None`` when
    ``mesh.yaml`` itself is invalid; a missing ``mesh.yaml`` raises ``ConfigError``.
    """
    root = Path(conf_dir)
    problems: list[ConfigProblem] = []
    standards_file = root / "mesh.yaml"
    if not standards_file.is_file():
        raise ConfigError(
            [
                ConfigProblem(
                    str(standards_file),
                    "-",
                    "the standards file is missing",
                    hint="point to the conf folder that holds mesh.yaml, e.g. with --conf "
                    f"(looked in {root.resolve()})",
                )
            ]
        )
    docs = _read_yaml(standards_file, problems)
    if not docs:
        # Not YAML, not UTF-8 or empty (a problem each): the standards are unknown, and
        # checking the definitions against the defaults (no entity, no domain declared)
        # would add an error per definition that is not theirs.
        return None, problems
    if len(docs) > 1:
        # A second document would be ignored: rules written there would silently not apply.
        problems.append(
            ConfigProblem(
                f"{standards_file}#2",
                "-",
                f"mesh.yaml holds {len(docs)} YAML documents; the standards are one document",
                found=len(docs),
                hint="merge them into the first one (remove the `---` separators)",
            )
        )
    standards = _validate(Standards, docs[0], str(standards_file), problems)
    if standards is None:
        return None, problems
    mesh = MeshDefinition(standards=standards, conf_dir=str(root))
    for path in sorted(root.rglob("*.y*ml")):
        if path == standards_file or path.suffix not in {".yaml", ".yml"}:
            continue
        for index, doc in enumerate(_read_yaml(path, problems)):
            _load_document(mesh, path, root, index, doc, problems)
    return mesh, problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a key repeated in one mapping (YAML says keys are unique;
    PyYAML would keep the last one silently, e.g. a second ``features:`` hiding the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, problems: list[ConfigProblem]) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            ConfigProblem(
                str(path), f"byte {exc.start}", "not UTF-8 text", hint="save the file as UTF-8"
            )
        )
        return []
    try:
        docs = [d for d in yaml.load_all(text, Loader=_UniqueKeyLoader) if d is not None]
        if not docs:
            problems.append(
                ConfigProblem(
                    str(path),
                    "-",
                    "the file holds no definition",
                    hint="add a definition or remove the file",
                )
            )
        return docs
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "-"
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(
            ConfigProblem(
                str(path),
                where,
                f"not valid YAML: {reason}",
                hint="fix the YAML syntax at that position",
            )
        )
        return []


def _load_document(
    mesh: MeshDefinition,
    path: Path,
    root: Path,
    index: int,
    doc: Any,
    problems: list[ConfigProblem],
) -> None:
    where = f"{path}" + (f"#{index + 1}" if index else "")
    if not isinstance(doc, dict):
        problems.append(
            ConfigProblem(
                where,
                "-",
                f"expected a mapping, found {type(doc).__name__}",
                found=doc,
                hint="each YAML document is one definition",
            )
        )
        return
    kind = doc.get("kind")
    if kind not in KINDS:
        problems.append(_document_kind_problem(where, kind))
        return
    parts = path.relative_to(root).parts
    misplaced = _misplaced(kind, parts)
    if misplaced:
        hint = f"move it to {_place(kind, doc.get('domain'))}"
        problems.append(ConfigProblem(where, "kind", misplaced, found=kind, hint=hint))
        _remember_invalid(mesh, doc)
        return
    if parts[0] == "domains":
        folder_domain = parts[1]
        if "domain" not in doc:
            doc = {**doc, "domain": folder_domain}
        elif doc["domain"] != folder_domain:
            problems.append(
                ConfigProblem(
                    where,
                    "domain",
                    f"domain {doc['domain']!r} differs from the folder domains/{folder_domain}/",
                    found=doc["domain"],
                    hint="a domain's definitions live in its own folder",
                )
            )
            return
    model = _validate(KINDS[kind], doc, where, problems)
    if model is None:
        _remember_invalid(mesh, doc)
        return
    registries: dict[str, dict[str, Any]] = {
        "data_product": mesh.products,
        "feature_set": mesh.feature_sets,
        "global_feature_set": mesh.global_sets,
        "training_set": mesh.training_sets,
    }
    registry = registries[kind]
    name = model.qualified_name
    taken = name in mesh.feature_sets or name in mesh.global_sets or name in registry
    if taken:
        problems.append(
            ConfigProblem(
                where,
                "name",
                f"{name} is defined twice (also in {mesh.files.get(name)})",
                found=name,
                hint="rename one of them",
            )
        )
        return
    registry[name] = model
    mesh.files[name] = where


def _defined_hint(name: str, defined: list[str]) -> str:
    """The defined set closest to ``name``, or how a reference is written."""
    close = difflib.get_close_matches(name, defined, n=1)
    return f"did you mean {close[0]!r}?" if close else "write domain.feature_set.feature"


def _document_kind_problem(where: str, kind: Any) -> ConfigProblem:
    """A document whose ``kind`` is missing or unknown: the kinds, the closest first."""
    kinds = ", ".join(KINDS)
    if kind is None:
        return ConfigProblem(
            where, "kind", "required field `kind` is missing", hint=f"add `kind:` one of {kinds}"
        )
    close = difflib.get_close_matches(str(kind), list(KINDS), n=1)
    hint = f"did you mean `{close[0]}`? (kinds: {kinds})" if close else f"use one of {kinds}"
    return ConfigProblem(where, "kind", f"unknown kind {kind!r}", found=kind, hint=hint)


def _remember_invalid(mesh: MeshDefinition, doc: dict[str, Any]) -> None:
    """Remember a refused definition's name, so references to it are not reported again as
    undefined (they say it does not load)."""
    if isinstance(doc.get("domain"), str) and isinstance(doc.get("name"), str):
        mesh.invalid.add(f"{doc['domain']}.{doc['name']}")


def _place(kind: str, domain: Any) -> str:
    """The folder a definition of ``kind`` lives in."""
    if kind in ("data_product", "feature_set"):
        return f"domains/{domain if isinstance(domain, str) else '<its domain>'}/"
    return "global/" if kind == "global_feature_set" else "training/"


def _misplaced(kind: str, parts: tuple[str, ...]) -> str | None:
    """Why a definition of ``kind`` may not live at ``parts`` (relative to the conf folder),
    or ``None``. A domain's definitions live in its folder, where its owners review them
    (a feature set under ``global/`` would escape them); global and training sets in theirs.
    """
    top = parts[0] if len(parts) > 1 else ""
    if kind in ("data_product", "feature_set"):
        if top == "domains" and len(parts) >= 3:
            return None
        return f"a {kind} lives in its domain's folder domains/<domain>/, not in {_folder(parts)}"
    wanted = "global" if kind == "global_feature_set" else "training"
    if top == wanted:
        return None
    return f"a {kind} lives in {wanted}/, not in {_folder(parts)}"


def _folder(parts: tuple[str, ...]) -> str:
    return "/".join(parts[:-1]) + "/" if len(parts) > 1 else "the conf folder itself"


def _validate(model: type[BaseModel], doc: Any, where: str, problems: list[ConfigProblem]) -> Any:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems.extend(validation_problems(model, exc, where))
        return None


def validation_problems(
    model: type[BaseModel], exc: ValidationError, where: str
) -> list[ConfigProblem]:
    """``exc`` (``model``'s validation of a document from ``where``) as one problem per
    invalid field: its location (``features[2].window``), what is wrong and what was found."""
    errors = exc.errors()
    misspelt = _misspelt_required(model, errors)
    return [
        _problem_from(model, e, where)
        for e in errors
        if not _follows_from_items(e, errors) and tuple(e["loc"]) not in misspelt
    ]


def _misspelt_required(model: type[BaseModel], errors: list[Any]) -> set[tuple[Any, ...]]:
    """Locations of required fields reported missing only because they were misspelt: an
    unknown field beside them is closest to them (``funtion:`` for ``function:``). The unknown
    field's "did you mean" says it all; "`function` is missing" too would read as a second
    mistake."""
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    found = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            close = _closest_field(model, err["loc"])
            if close is not None and (*err["loc"][:-1], close) in missing:
                found.add((*err["loc"][:-1], close))
    return found


def _closest_field(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The allowed field closest to the unknown field at ``loc``, if any is close."""
    close = difflib.get_close_matches(str(loc[-1]), _allowed_fields(model, loc[:-1]), n=1)
    return close[0] if close else None


def _follows_from_items(err: Any, errors: list[Any]) -> bool:
    """A "too short" list whose items were reported as invalid: pydantic counts only the
    valid items, so three invalid features would also read as "at least 1 item, not 0"."""
    loc = tuple(err["loc"])
    return err["type"] == "too_short" and any(
        len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc for other in errors
    )


def _problem_from(model: type[BaseModel], err: Any, where: str) -> ConfigProblem:
    loc = _format_loc(err["loc"])
    kind = err["type"]
    found = err.get("input")
    if kind == "missing":
        return ConfigProblem(
            where, loc, f"required field `{loc.split('.')[-1]}` is missing", hint="add it"
        )
    if kind == "extra_forbidden":
        name = str(err["loc"][-1])
        close = _closest_field(model, err["loc"])
        allowed = ", ".join(_allowed_fields(model, err["loc"][:-1]))
        hint = f"did you mean `{close}`?" if close else f"allowed: {allowed}"
        return ConfigProblem(where, loc, f"unknown field `{name}`", found=found, hint=hint)
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return _kind_problem(err, where, loc)
    if kind in ("tuple_type", "list_type"):
        # pydantic says "a valid tuple": the definition is YAML, where it is a list.
        scalar = isinstance(found, str | int | float) and not isinstance(found, bool)
        return ConfigProblem(
            where,
            loc or "-",
            f"expected a list (found {found!r})",
            found=found,
            hint=f"write it as a YAML list: [{found}]" if scalar else "write a YAML list: [a, b]",
        )
    message = str(err["msg"]).removeprefix("Value error, ")
    return ConfigProblem(where, loc or "-", f"{message} (found {found!r})", found=found)


def _kind_problem(err: Any, where: str, loc: str) -> ConfigProblem:
    """A feature whose ``kind`` is missing or unknown: the kinds allowed, the closest first."""
    ctx = err.get("ctx") or {}
    tag = ctx.get("tag")
    allowed = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
    allowed = allowed or list(_FEATURE_KINDS)
    field = f"{loc}.kind" if loc else "kind"
    kinds = ", ".join(allowed)
    if err["type"] == "union_tag_not_found":
        return ConfigProblem(
            where, field, "required field `kind` is missing", hint=f"add `kind:` one of {kinds}"
        )
    close = difflib.get_close_matches(str(tag), allowed, n=1)
    hint = f"did you mean `{close[0]}`? (kinds: {kinds})" if close else f"use one of {kinds}"
    return ConfigProblem(where, field, f"unknown kind {tag!r}", found=tag, hint=hint)


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in _UNION_TAGS and i > 0 and isinstance(loc[i - 1], int):
            continue  # the discriminated-union tag pydantic inserts; not a field
        else:
            text += f".{part}" if text else str(part)
    return text


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        if part in _UNION_TAGS:
            current = _FEATURE_KINDS[part]
            continue
        fields = getattr(current, "model_fields", {})
        info = fields.get(part)
        current = _model_in(info.annotation) if info else None
    return sorted(getattr(current, "model_fields", {}) or [])


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _cross_check(mesh: MeshDefinition, problems: list[ConfigProblem]) -> None:
    std = mesh.standards

    def add(name: str, field: str, message: str, found: Any = None, hint: str = "") -> None:
        problems.append(ConfigProblem(mesh.files.get(name, name), field, message, found, hint))

    def check_domain(name: str, domain: str) -> None:
        if std.domains and domain not in std.domains:
            add(
                name,
                "domain",
                f"domain {domain!r} is not declared in mesh.yaml",
                domain,
                f"declare it under domains: (known: {', '.join(sorted(std.domains))})",
            )

    def check_entity(name: str, entity: str) -> bool:
        if entity in std.entities:
            return True
        close = difflib.get_close_matches(entity, list(std.entities), n=1)
        add(
            name,
            "entity",
            f"entity {entity!r} is not registered in mesh.yaml",
            entity,
            f"did you mean {close[0]!r}?"
            if close
            else f"register it under entities: (registered: {', '.join(sorted(std.entities))})",
        )
        return False

    for name, data_product in mesh.products.items():
        check_domain(name, data_product.domain)
        for column, field in (
            (data_product.event_timestamp, "event_timestamp"),
            (data_product.created_timestamp, "created_timestamp"),
        ):
            if column and data_product.columns and column not in data_product.columns:
                add(
                    name,
                    field,
                    f"column {column!r} is not among the product's columns",
                    column,
                    f"columns: {', '.join(data_product.columns)}",
                )

    for name, fs in mesh.feature_sets.items():
        check_domain(name, fs.domain)
        has_entity = check_entity(name, fs.entity)
        product = mesh.product(fs.source, fs.domain)
        if product is None:
            add(
                name,
                "source",
                f"data product {fs.source!r} is not defined",
                fs.source,
                "define it with kind: data_product, or write domain.product",
            )
        elif product.columns:
            if has_entity:
                for key, key_type in std.entities[fs.entity].keys.items():
                    if key not in product.columns:
                        add(
                            name,
                            "entity",
                            f"key column {key!r} of entity {fs.entity!r} is "
                            f"missing from source {product.qualified_name}",
                            key,
                            "add it to the data product's columns, or key the set on an entity "
                            "whose keys the source holds",
                        )
                    elif spark_form(product.columns[key]) != spark_form(key_type):
                        add(
                            name,
                            "entity",
                            f"key {key!r} is {product.columns[key]} in "
                            f"{product.qualified_name} but {key_type} in the entity registry",
                            product.columns[key],
                            "cast the key in the source or fix the registry",
                        )
            for i, feature in enumerate(fs.features):
                column = getattr(feature, "column", None)
                if feature.kind == "column":
                    column = column or feature.name
                if column and column not in product.columns:
                    add(
                        name,
                        f"features[{i}].column",
                        f"column {column!r} is not in source {product.qualified_name}",
                        column,
                        f"columns: {', '.join(product.columns)}",
                    )
        for spellings in name_clashes(fs.output_names()).values():
            add(
                name,
                "features",
                f"feature name {spellings[0]!r} appears more than once{spellings_note(spellings)}",
                spellings[0],
                "give every feature a unique name",
            )

    for name, gs in mesh.global_sets.items():
        check_domain(name, gs.domain)
        check_entity(name, gs.entity)
        for alias, ref in gs.input_refs().items():
            target = mesh.feature_sets.get(ref.set_name) or mesh.global_sets.get(ref.set_name)
            if target is None and ref.set_name in mesh.invalid:
                continue
            if target is None:
                add(
                    name,
                    f"inputs.{alias}",
                    f"feature set {ref.set_name!r} is not defined",
                    str(ref),
                    _defined_hint(ref.set_name, [*mesh.feature_sets, *mesh.global_sets]),
                )
                continue
            if ref.feature not in target.output_names():
                add(
                    name,
                    f"inputs.{alias}",
                    f"{ref.set_name} has no feature {ref.feature!r}",
                    ref.feature,
                    f"outputs: {', '.join(target.output_names())}",
                )
            if target.entity != gs.entity and target.entity in std.entities:
                add(
                    name,
                    f"inputs.{alias}",
                    f"input entity {target.entity!r} differs from "
                    f"the global set's entity {gs.entity!r}",
                    target.entity,
                    "combine features of the same entity",
                )
    if mesh.global_sets and not problems:
        try:
            mesh.build_order()
        except Exception as exc:
            cycle = getattr(exc, "params", {}).get("cycle", [])
            add(
                cycle[0] if cycle else "global",
                "inputs",
                str(exc),
                cycle,
                "break the cycle: a global feature set cannot read itself",
            )

    for name, ts in mesh.training_sets.items():
        check_domain(name, ts.domain)
        for i, ref in enumerate(ts.refs()):
            target = mesh.feature_sets.get(ref.set_name) or mesh.global_sets.get(ref.set_name)
            if target is None and ref.set_name in mesh.invalid:
                continue
            if target is None:
                add(
                    name,
                    f"features[{i}]",
                    f"feature set {ref.set_name!r} is not defined",
                    str(ref),
                    _defined_hint(ref.set_name, [*mesh.feature_sets, *mesh.global_sets]),
                )
            elif ref.feature != "*" and ref.feature not in target.output_names():
                add(
                    name,
                    f"features[{i}]",
                    f"{ref.set_name} has no feature {ref.feature!r}",
                    ref.feature,
                    f"outputs: {', '.join(target.output_names())}",
                )
            entity = std.entities.get(target.entity) if target is not None else None
            unknown = [k for k, _ in ref.spine_keys if entity is not None and k not in entity.keys]
            if entity is not None and unknown:
                add(
                    name,
                    f"features[{i}]",
                    f"lookup keys {unknown} are not key columns of entity {entity.name!r}",
                    unknown,
                    f"map the entity's keys ({', '.join(entity.keys)}) to spine columns",
                )
