"""Global feature sets: features of several domains combined by SQL, point-in-time correct.

Build steps:

1. pin every input reference to a Delta version of its feature table (as training sets do);
2. timeline: the distinct ``(keys, time)`` at which any input's value changes: the
   availability time of each input row, ``greatest(feature_ts, created_ts)`` -- the moment its
   value could be known (just ``feature_ts`` for an input that admits late data) -- and, for
   an input with a TTL, the first moment each row is expired (``feature_ts + ttl + 1 µs``);
3. point-in-time join every input onto the timeline (inputs' TTLs apply), name each input
   column by its alias, evaluate the expressions; a time that is only an expiry and leaves
   every output as it was is dropped (it would change nothing, and would look like a newer
   value to the global set's own TTL);
4. write the result as the global set's feature table (``features/<domain>/<name>/v<major>``,
   same schema contract, ``created_ts = feature_ts``) in one commit whose ``CommitInfo``
   records the Delta version of every input and ``definition_hash = mesh.data_hash(spec)``.

So the value stamped ``t`` uses exactly what every input held at ``t``, and holds until the
next row of the same keys: late input rows create a new value at their arrival time and
never rewrite the past, and an input's expiry gives a new value when it happens.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mesh.definitions import GlobalFeatureSet, MeshDefinition
from mesh.definitions.base import parse_semver
from mesh.definitions.columns import CREATED_TS, FEATURE_TS
from mesh.errors import data_failures, first_line
from mesh.sets.access import access_requests, authorize, check_visible_references
from mesh.sets.errors import NewInputMajorError, SetBuildError, UnknownReferenceError
from mesh.sets.manifest import InputPin
from mesh.sets.resolve import resolve_inputs
from mesh.sets.sources import load_sources
from mesh.sets.tables import feature_table_location
from mesh.storage import in_warehouse

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from mesh.catalog.access import Identity


_EXPIRY = "__expiry_only"  # a timeline time that is only some input row's expiry
_LONGEST_TTL = dt.timedelta(microseconds=1 << 62)  # as the join clamps it: no overflow
_LAST_MICROS = 253_402_300_799_999_999  # 9999-12-31 23:59:59.999999 UTC, Spark's last time


@dataclass(frozen=True)
class LineageEdge:
    """One input feature of a global feature set -> the global set version built from it.

    ``target_features`` are the outputs whose expression mentions the input's alias.
    """

    source: str
    source_feature: str
    source_version: str
    source_delta_version: int
    target: str
    target_version: str
    target_delta_version: int
    alias: str
    target_features: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "target_features": list(self.target_features)}


@dataclass(frozen=True)
class GlobalBuildResult:
    """What a global build wrote: the table, its Delta version, inputs read and lineage."""

    feature_set: str
    semantic_version: str
    path: str
    delta_version: int
    row_count: int
    inputs: tuple[InputPin, ...]
    source_versions: dict[str, int]
    lineage: tuple[LineageEdge, ...]


def compute_global_features(
    spark: SparkSession,
    mesh: MeshDefinition,
    global_set: GlobalFeatureSet,
    inputs: Sequence[InputPin],
) -> DataFrame:
    """The global set's feature rows from already pinned ``inputs`` (no access check, no write).

    Columns: the entity keys, ``feature_ts`` (availability time), ``created_ts`` (equal to
    ``feature_ts``: the value is known as soon as its inputs are), then the features cast to
    their declared types. One row per distinct (keys, availability time) of the inputs, and
    per input row's expiry that changes an output.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from mesh.join import point_in_time_join

    refuse_not_row_level(mesh, global_set)
    keys = mesh.entity(global_set.entity).key_columns
    columns = _alias_columns(global_set, inputs, keys)
    sources = load_sources(spark, mesh, inputs)
    parts = []
    for pin, source in zip(inputs, sources, strict=True):
        available = (
            F.greatest(F.col(FEATURE_TS), F.col(CREATED_TS))
            if pin.exclude_late_data
            else F.col(FEATURE_TS)
        )
        parts.append(
            source.df.select(*keys, available.alias(FEATURE_TS), F.lit(False).alias(_EXPIRY))
        )
        ttl_us = _ttl_micros(pin.ttl_seconds)
        if ttl_us is not None:
            # The first instant the row is expired: its age then exceeds the TTL by 1 µs
            # (the join keeps a row exactly ``ttl`` old). Only where it was known before.
            expiry_us = F.unix_micros(F.col(FEATURE_TS)) + F.lit(ttl_us + 1)
            expires = F.timestamp_micros(expiry_us)
            parts.append(
                source.df.where((expiry_us <= F.lit(_LAST_MICROS)) & (expires > available)).select(
                    *keys, expires.alias(FEATURE_TS), F.lit(True).alias(_EXPIRY)
                )
            )
    timeline = parts[0]  # a global set has at least one input
    for part in parts[1:]:
        timeline = timeline.unionByName(part)
    # A time that is both an availability and an expiry is kept whatever it gives.
    timeline = timeline.dropna().groupBy(*keys, FEATURE_TS).agg(F.min(_EXPIRY).alias(_EXPIRY))
    joined = point_in_time_join(timeline, sources, spine_timestamp=FEATURE_TS)
    named = joined.select(
        *keys,
        FEATURE_TS,
        _EXPIRY,
        *[F.col(column).alias(alias) for alias, column in columns.items()],
    )
    outputs = []
    file = _definition_file(mesh, global_set)
    for i, feature in enumerate(global_set.features):
        try:
            named.select(F.expr(feature.expr)).schema  # noqa: B018 - analysis only, to name the culprit
        except AnalysisException as exc:  # a ParseException too (its text starts with "\n")
            raise SetBuildError(
                f"Global feature set {global_set.qualified_name} feature {feature.name!r} "
                f"({file}: features[{i}].expr): "
                f"expression `{feature.expr}` cannot be evaluated over the inputs "
                f"({first_line(exc)}); use only the input aliases "
                f"({', '.join(columns)}) and SQL functions.",
                feature_set=global_set.qualified_name,
                feature=feature.name,
                expr=feature.expr,
                aliases=list(columns),
            ) from exc
        outputs.append(F.expr(feature.expr).cast(feature.type).alias(feature.name))
    rows = named.select(*keys, FEATURE_TS, _EXPIRY, *outputs)
    names = [feature.name for feature in global_set.features]
    if len(parts) > len(inputs):  # some input has a TTL: drop expiries that change nothing
        values = F.struct(*names)
        previous = F.lag(values).over(Window.partitionBy(*keys).orderBy(FEATURE_TS))
        unchanged = F.col(_EXPIRY) & previous.eqNullSafe(values)
        rows = rows.withColumn(_EXPIRY, unchanged).where(~F.col(_EXPIRY))
    return rows.select(*keys, FEATURE_TS, F.col(FEATURE_TS).alias(CREATED_TS), *names)


def _ttl_micros(ttl_seconds: float | None) -> int | None:
    """An input's TTL in microseconds, as the join applies it; None: no TTL, no expiry."""
    if ttl_seconds is None:
        return None
    ttl = min(dt.timedelta(seconds=ttl_seconds), _LONGEST_TTL)
    return ttl // dt.timedelta(microseconds=1)


def build_global_feature_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    global_set: GlobalFeatureSet | str,
    *,
    identity: str | Identity | None = None,
    run_id: str | None = None,
    checked: bool = False,
) -> GlobalBuildResult:
    """Compute a global feature set from its inputs' feature tables and write its feature table.

    Each build recomputes the whole history from the inputs' pinned Delta versions and
    replaces the table's content in one commit (older builds stay readable by time travel).
    The caller must be allowed to read every input (checked and audited first). The rows go
    to the table of the major ``version:`` names; an input that resolves to another major
    than the set's last publish read it at needs a new major of the set first, and is
    refused before anything is read (``check_before_build``). Returns the written version
    and one :class:`LineageEdge` per input for the catalog to record.
    ``checked``: the caller has just asked ``check_before_build`` itself (``mesh global
    build`` does, for every set before any is built), so the catalog is not read for it
    again here; the read of the inputs is still authorized (and audited) below.
    """
    from mesh.storage import CommitInfo, open_table

    spec = global_spec(mesh, global_set)
    if not checked:
        check_before_build(spark, mesh, spec, identity)
    purpose = build_purpose(spec)
    # A pipeline step: the inputs' newest commits (``mesh publish`` of a global set reads
    # the published ones).
    inputs = resolve_inputs(spark, mesh, list(spec.inputs.values()), published=False)
    who = authorize(
        spark,
        mesh,
        access_requests(spark, mesh, inputs),
        purpose,
        identity,
    )
    df = compute_global_features(spark, mesh, spec, inputs)
    major = parse_semver(spec.version)[0]
    location = feature_table_location(spec.domain, spec.name, major)
    sources = {pin.table: pin.delta_version for pin in inputs}
    commit = CommitInfo(
        run_id=run_id or uuid.uuid4().hex,
        operation="global_build",
        definition_hash=mesh.data_hash(spec),
        source_versions=sources,
        extra={
            "feature_set": spec.qualified_name,
            "semantic_version": spec.version,
            "metadata_hash": spec.metadata_hash(),
            "inputs": {pin.feature_set: pin.semantic_version for pin in inputs},
            "identity": str(who),  # the builder: any domain that may read every input
        },
    )
    table = open_table(spark, in_warehouse(mesh, location))
    with evaluating(spec):
        version = table.create(df, commit, time_column=FEATURE_TS, overwrite=True)
    rows = table.read(version=version).count()
    lineage = _lineage(spec, inputs, version)
    return GlobalBuildResult(
        feature_set=spec.qualified_name,
        semantic_version=spec.version,
        path=table.path,
        delta_version=version,
        row_count=rows,
        inputs=tuple(inputs),
        source_versions=sources,
        lineage=lineage,
    )


def check_before_build(
    spark: SparkSession,
    mesh: MeshDefinition,
    global_set: GlobalFeatureSet | str,
    identity: str | Identity | None = None,
) -> None:
    """What a build of ``global_set`` checks before it reads, computes or audits anything:
    its inputs are defined and visible to the caller (``check_visible_references``), and no
    input resolves to another major than the set's last publish read it at while the set's
    ``version:`` keeps that publish's major (``NewInputMajorError``: those rows belong to a
    new major of the set, which its publish would require). Reads catalog records only.
    """
    spec = global_spec(mesh, global_set)
    refuse_not_row_level(mesh, spec)
    check_visible_references(spark, mesh, list(spec.inputs.values()), build_purpose(spec), identity)
    _refuse_new_input_majors(spark, mesh, spec)


def refuse_not_row_level(mesh: MeshDefinition, spec: GlobalFeatureSet) -> None:
    """A ``SetBuildError`` for the first expression whose value is not a function of its
    row's inputs (``not_row_level``: an aggregate or window over other rows and times, a
    random or clock value): the value stamped ``t`` must be what the inputs as of ``t`` give,
    the same in every build. Static: nothing is read."""
    from mesh.governance.sql_names import not_row_level, not_row_level_reason

    for i, feature in enumerate(spec.features):
        found = not_row_level(feature.expr, spec.inputs)
        if found:
            raise SetBuildError(
                f"Global feature set {spec.qualified_name} feature {feature.name!r} "
                f"({_definition_file(mesh, spec)}: features[{i}].expr): "
                f"`{feature.expr}` {not_row_level_reason(found)}. "
                "Nothing was read or written.",
                feature_set=spec.qualified_name,
                feature=feature.name,
                expr=feature.expr,
                found=found,
            )


def _definition_file(mesh: MeshDefinition, spec: GlobalFeatureSet) -> str:
    """Where ``spec`` is defined (a set built from Python has no file: its folder)."""
    return mesh.files.get(spec.qualified_name, "conf/global/")


def build_purpose(spec: GlobalFeatureSet) -> str:
    """The purpose a build of ``spec`` reads (and audits) its inputs with."""
    return f"global feature set {spec.qualified_name}"


def _refuse_new_input_majors(
    spark: SparkSession, mesh: MeshDefinition, spec: GlobalFeatureSet
) -> None:
    from mesh.catalog.publish import last_publish_inputs
    from mesh.governance.contract import input_major_reason
    from mesh.governance.gate import inputs_at_new_majors

    previous, read = last_publish_inputs(spark, mesh, spec)
    if previous is None:
        return
    changed = inputs_at_new_majors(mesh, spec, previous.semantic_version, read)
    if not changed:
        return
    name, major = spec.qualified_name, parse_semver(spec.version)[0]
    required = parse_semver(previous.semantic_version)[0] + 1
    reasons = "; ".join(input_major_reason(n, old, new) for n, (old, new) in changed.items())
    pins = ", ".join(f"{n}@{old[0]}.<feature>" for n, (old, _) in changed.items())
    raise NewInputMajorError(
        f"Global feature set {name} {spec.version}: {reasons} since its last publish, "
        f"{previous.semantic_version}. Built now, its rows would be computed from another "
        f"major of {'that input' if len(changed) == 1 else 'those inputs'} into the table "
        f"of its major {major} ({feature_table_location(spec.domain, spec.name, major)}), a "
        f"change its publish accepts only as a new major of {name}. Bump its major: set "
        f"{name}'s `version:` in conf/ to {required}.0.0 (its rows then go to "
        f"{feature_table_location(spec.domain, spec.name, required)}), or pin the input to "
        f"the major its last publish read ({pins}). Nothing was read or written.",
        feature_set=name,
        version=spec.version,
        published_version=previous.semantic_version,
        inputs={n: {"published": old, "read": new} for n, (old, new) in changed.items()},
        required_version=f"{required}.0.0",
    )


@contextmanager
def evaluating(spec: GlobalFeatureSet) -> Iterator[None]:
    """A global set's expressions failing on the data (division by zero, a cast of a value
    that does not parse, an invalid date) as one ``SetBuildError`` naming the set and its
    expressions, not Spark's stack trace: the error is raised by the action, once the
    expressions run over every row, where no single feature can be named any more."""
    try:
        yield
    except data_failures() as exc:
        expressions = "; ".join(f"{f.name}: `{f.expr}` ({f.type})" for f in spec.features)
        raise SetBuildError(
            f"Global feature set {spec.qualified_name}: an expression failed on the data "
            f"({first_line(exc)}); its expressions are {expressions}. Make them total over "
            "the inputs (try_divide, try_cast, nullif, coalesce; a value that may not fit the "
            "declared type).",
            feature_set=spec.qualified_name,
            error_class=getattr(exc, "getCondition", lambda: None)(),
            expressions={f.name: f.expr for f in spec.features},
        ) from exc


def global_spec(mesh: MeshDefinition, global_set: GlobalFeatureSet | str) -> GlobalFeatureSet:
    """``global_set`` itself, or the spec of that qualified name in ``mesh``.

    Raises ``UnknownReferenceError`` (naming the defined ones) for an unknown name.
    """
    if isinstance(global_set, GlobalFeatureSet):
        return global_set
    spec = mesh.global_sets.get(global_set)
    if spec is None:
        known = sorted(mesh.global_sets)
        raise UnknownReferenceError(
            f"Global feature set {global_set!r} is not defined (defined: "
            f"{', '.join(known) or 'none'}); add it under conf/global/ or check the name "
            "(domain.name).",
            reference=global_set,
            available=known,
        )
    return spec


def _alias_columns(
    spec: GlobalFeatureSet, inputs: Sequence[InputPin], keys: Sequence[str]
) -> dict[str, str]:
    """Alias -> column of the joined frame holding that input."""
    columns = {}
    for alias, ref in spec.input_refs().items():
        if alias in keys or alias in (FEATURE_TS, CREATED_TS):
            raise SetBuildError(
                f"Global feature set {spec.qualified_name} input alias {alias!r}: the name is "
                f"taken by a key or timestamp column ({', '.join([*keys, FEATURE_TS, CREATED_TS])}"
                "); choose another alias.",
                feature_set=spec.qualified_name,
                alias=alias,
            )
        pin = next(p for p in inputs if p.feature_set == ref.set_name and p.pin == ref.version)
        if tuple(pin.keys) != tuple(keys):
            raise SetBuildError(
                f"Global feature set {spec.qualified_name} input {alias!r} ({ref}): keyed on "
                f"{', '.join(pin.keys)}, but the set's entity {spec.entity!r} is keyed on "
                f"{', '.join(keys)}; combine features of the same entity.",
                feature_set=spec.qualified_name,
                alias=alias,
                expected=list(keys),
                found=list(pin.keys),
            )
        columns[alias] = pin.features[ref.feature]
    return columns


def _lineage(
    spec: GlobalFeatureSet, inputs: Sequence[InputPin], delta_version: int
) -> tuple[LineageEdge, ...]:
    edges = []
    for alias, ref in spec.input_refs().items():
        pin = next(p for p in inputs if p.feature_set == ref.set_name and p.pin == ref.version)
        # A token match is enough here: aliases are identifiers and expressions are short.
        token = re.compile(rf"(?<![\w.]){re.escape(alias)}(?!\w)", re.IGNORECASE)
        users = tuple(f.name for f in spec.features if token.search(f.expr))
        edges.append(
            LineageEdge(
                source=ref.set_name,
                source_feature=ref.feature,
                source_version=pin.semantic_version,
                source_delta_version=pin.delta_version,
                target=spec.qualified_name,
                target_version=spec.version,
                target_delta_version=delta_version,
                alias=alias,
                target_features=users,
            )
        )
    return tuple(edges)
