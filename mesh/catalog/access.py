"""Access control: who may read which features, decided from the definitions and standards.

Rules, checked for every requested feature of every requested set:

* visibility (``metadata.visibility``, else ``access.default_visibility``): ``private`` is
  read by the owning domain only; ``internal`` by the owner and the domains listed in
  ``metadata.allowed_domains``; ``public`` by every domain;
* a feature classified ``pii`` or ``sensitive`` additionally needs an explicit grant for a
  reader outside the owning domain: ``access.grants.<reader domain>`` lists
  ``domain.set.feature`` (one feature; the output name or the feature's base name) or
  ``domain.set`` (every feature of the set). Grants never widen visibility.

A published set is refused when the rules it was published with (as the catalog records
them) or the ones ``conf/`` defines now refuse the caller, whichever is tighter
(``set_denial`` for visibility, ``decide`` for PII classes): loosening ``conf/`` opens
nothing before a publish records it, and tightening it takes effect at once. A read of a
set never published (``allow_unpublished``) has only ``conf/``. A refusal names the rule
that refused and, when ``conf/`` alone would allow the read, asks for its publish
(``mesh.catalog.refusals``). Visibility alone also
decides who sees a set in the catalog (search, show, versions, lineage), by the same rule:
the catalog shows no values of protected features, so it needs no grant.

The caller's identity is ``user@domain`` (or just ``domain``) taken from the environment
variable named by ``access.identity_env`` (``MESH_IDENTITY`` by default) unless given.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from mesh.catalog.refusals import (
    Decision,
    by_conf,
    by_record,
    described,
    kept_visibility_hint,
    pii_denial,
    refusal_text,
    visibility_denial,
)
from mesh.definitions import AnyFeatureSet, MeshDefinition, Standards
from mesh.definitions.feature_set import PROTECTED_PII
from mesh.errors import AccessDeniedError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.search import CatalogEntry


@dataclass(frozen=True)
class Identity:
    """Who is calling: a user and the domain they act for."""

    user: str
    domain: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        """``alice@risk`` -> (alice, risk); ``risk`` -> (risk, risk).

        Refused (``AccessDeniedError``): an empty user or domain (``@risk``, ``alice@``) and
        whitespace anywhere (``bob@ support`` would act for a domain named `` support``).
        The domain is not checked against the domains ``mesh.yaml`` declares: a consumer
        outside them reads what ``public`` sets offer (README, Access).
        """
        user, at, domain = text.rpartition("@")
        if not domain or (at and not user) or any(c.isspace() for c in text):
            raise AccessDeniedError(
                f"identity {text!r} is not of the form user@domain or domain (no spaces, no "
                "empty part); set it like MESH_IDENTITY=alice@risk",
                identity=text,
                feature_set=None,
                feature=None,
                missing_grant=None,
            )
        return cls(user=user or domain, domain=domain)

    def __str__(self) -> str:
        return self.domain if self.user == self.domain else f"{self.user}@{self.domain}"


def current_identity(standards: Standards, value: str | Identity | None = None) -> Identity:
    """The caller's identity: ``value`` if given, else the ``access.identity_env`` variable.

    Raises ``AccessDeniedError`` when neither is set: reads are never anonymous.
    """
    if isinstance(value, Identity):
        return value
    env = standards.access.identity_env
    text = value if value is not None else os.environ.get(env)
    if not text:
        # The identity given is empty, or none was given and the variable is unset or empty.
        why = "the identity given is empty" if value is not None else f"{env} is not set"
        raise AccessDeniedError(
            f"no caller identity: {why}; set {env}=user@domain (e.g. alice@risk), or pass "
            "--identity (identity= in Python)",
            identity=None,
            feature_set=None,
            feature=None,
            missing_grant=f"{env}",
        )
    who = Identity.parse(text)
    _refuse_recased_domain(standards, who, text)
    return who


def _refuse_recased_domain(standards: Standards, who: Identity, text: str) -> None:
    """Refuse an identity whose domain is a declared one but for letter case (``ann@RISK``).

    Domains are compared as written, so it would act for another, undeclared domain: its
    reads refused with a hint to grant that spelling, which ``mesh validate`` then refuses,
    and its publishes refused as not the owner's.
    """
    if who.domain in standards.domains:
        return
    declared = [d for d in standards.domains if d.casefold() == who.domain.casefold()]
    if declared:
        meant = f"{who.user}@{declared[0]}" if "@" in text else declared[0]
        raise AccessDeniedError(
            f"identity {text!r} acts for domain {who.domain!r}, which mesh.yaml does not "
            f"declare; domains are compared as written: did you mean {meant}?",
            identity=text,
            feature_set=None,
            feature=None,
            missing_grant=None,
        )


def visibility_of(mesh: MeshDefinition, fs: AnyFeatureSet) -> str:
    return fs.metadata.visibility or mesh.standards.access.default_visibility


def pii_of(fs: AnyFeatureSet, output: str) -> str | None:
    """PII class of an output column (aggregation outputs inherit their feature's class)."""
    for feature in fs.features:
        if output == feature.name or output in feature.output_names():
            return feature.pii
    return None


def _base_name(fs: AnyFeatureSet, output: str) -> str:
    for feature in fs.features:
        if output in feature.output_names():
            return feature.name
    return output


class Rule(NamedTuple):
    """A visibility rule: of a published version (``version``) or of ``conf/`` (``None``)."""

    domain: str
    visibility: str
    allowed_domains: Sequence[str]
    version: str | None = None


def rule_of(mesh: MeshDefinition, fs: AnyFeatureSet, *, published: bool = True) -> Rule:
    """The visibility rule a definition states (a recorded one's names its version)."""
    version = fs.version if published else None
    return Rule(fs.domain, visibility_of(mesh, fs), list(fs.metadata.allowed_domains), version)


def set_denial(
    mesh: MeshDefinition,
    identity: Identity,
    name: str,
    published: Sequence[Rule],
    kept: bool = False,
) -> Decision | None:
    """Why ``identity`` may not read or see set ``name``; ``None`` when it may.

    The one visibility rule of reads and of the catalog: every rule in ``published`` (what
    the version read, or the catalog's entry, was published with; none for a set never
    published) and the one ``conf/`` defines now, when it still defines the set, must allow
    the caller; the first refusing one is the reason. So a visibility loosened in ``conf/``
    opens nothing until it is published, and one tightened applies before the next publish.
    The decision names the rule that refused (``decided_by``); when only a published one
    does, its hint asks for the publish of ``conf/``'s definition (``mesh.catalog.refusals``).
    ``kept``: the read is kept at the versions of ``published`` (``decide``): a refusal by
    one of them speaks of that version's rule, which nothing in ``conf/`` changes.
    """
    current = mesh.all_sets().get(name)
    conf = rule_of(mesh, current, published=False) if current is not None else None
    by_conf_rule = None if conf is None else _refused_by(identity, name, conf)
    for rule in published:
        denial = _refused_by(identity, name, rule)
        if denial is not None:
            conf_allows = None
            if conf is not None and by_conf_rule is None:
                conf_allows = (
                    f"makes it {described(conf.domain, conf.visibility, conf.allowed_domains)}"
                )
            hint = None
            if kept and rule.version is not None:
                shown = described(rule.domain, rule.visibility, rule.allowed_domains)
                hint = kept_visibility_hint(rule.version, identity.domain, shown)
            return by_record(denial, rule.version, current, conf_allows, rule.domain, hint)
    if by_conf_rule is not None:
        return by_conf(by_conf_rule, [r.version for r in published if r.version])
    return None


def _refused_by(identity: Identity, name: str, rule: Rule) -> Decision | None:
    return visibility_denial(identity, name, rule.domain, rule.visibility, rule.allowed_domains)


def decide(
    mesh: MeshDefinition,
    identity: Identity,
    fs: AnyFeatureSet,
    features: Sequence[str],
    published: AnyFeatureSet | None = None,
) -> list[Decision]:
    """One decision per requested feature (every output when ``features`` is empty).

    A feature ``fs`` does not have is no read to allow or refuse: ``UnknownReferenceError``
    (params ``reference``, ``feature_set``, ``feature``: the first unknown one, ``missing``:
    all of them, ``available``) is raised before anything is decided or audited, unless the
    caller may not see the set at all: then every requested feature is refused, so that a
    refusal tells nothing of which features the set has.

    ``fs`` is the definition the read takes its features from; ``published``, the one the
    version read was published with, as the catalog records it (``None``: none is recorded,
    or it is ``fs``). The visibility and PII classes of both and of ``conf/``'s current
    definition apply, the tightest winning (``set_denial``): ``fs`` may be a published
    definition (an older major, or an older version pinned: the read is kept at it) or
    ``conf/``'s (a producer's read of a newer commit). A refusal of a read kept at a
    published version speaks of that version's rule (``mesh.catalog.refusals``).
    """
    # Imported here: the package mesh.sets loads the set builds, which a decision never needs.
    from mesh.sets.errors import UnknownReferenceError

    name = fs.qualified_name
    outputs = fs.output_names()
    wanted = list(features) or outputs
    current = mesh.all_sets().get(name)
    recorded = [d for d in (fs, published) if d is not None and d is not current]
    definitions = [*recorded, *([current] if current is not None else [])]
    # Read at a published version conf/ does not define: its record is the rule to change.
    kept = current is not None and fs is not current and fs.version != current.version
    # A set the caller may not see is refused whatever it asks for: which features it has
    # is metadata too.
    denial = set_denial(mesh, identity, name, [rule_of(mesh, d) for d in recorded], kept)
    if denial is not None:
        return [dataclasses.replace(denial, feature=f) for f in wanted]
    unknown = [f for f in wanted if f not in outputs]
    if unknown:
        raise UnknownReferenceError(
            f"Feature reference `{name}.{unknown[0]}`: {name} (version {fs.version}) has no "
            f"feature(s) {', '.join(repr(f) for f in unknown)} (features: {', '.join(outputs)}); "
            f"use one of them or `{name}.*`.",
            reference=f"{name}.{unknown[0]}",
            feature_set=name,
            feature=unknown[0],
            missing=unknown,
            available=outputs,
        )
    if identity.domain == fs.domain:
        return [Decision(name, f, True, "owning domain") for f in wanted]
    grants = set(mesh.standards.access.grants.get(identity.domain, ()))
    out = []
    visibility = visibility_of(mesh, fs)
    for output in wanted:
        classes = [pii_of(d, output) for d in definitions]
        pii = next((c for c in classes if c in PROTECTED_PII), classes[0])
        if pii not in PROTECTED_PII:
            out.append(Decision(name, output, True, f"{visibility} set, feature not PII"))
            continue
        candidates = {name, f"{name}.{output}", f"{name}.{_base_name(fs, output)}"}
        if grants & candidates:
            out.append(Decision(name, output, True, f"{pii} feature, granted"))
            continue
        out.append(_pii_refusal(identity, name, output, recorded, current, kept))
    return out


def _pii_refusal(
    identity: Identity,
    name: str,
    output: str,
    recorded: Sequence[AnyFeatureSet],
    current: AnyFeatureSet | None,
    kept: bool,
) -> Decision:
    """The refusal of protected ``output`` without a grant, naming the rule that classes it:
    the first recorded definition that does (``by_record``), else ``conf/`` (``by_conf``).
    ``kept`` (see ``decide``): the grant is the hint, whatever ``conf/`` classes it now (a
    grant opens every version; a publish, none kept at its record)."""
    now = pii_of(current, output) if current is not None else None
    for d in recorded:
        pii = pii_of(d, output)
        if pii in PROTECTED_PII:
            conf_allows = None if now is None or now in PROTECTED_PII else f"classes it {now}"
            denial = pii_denial(identity, name, output, str(pii))
            hint = denial.hint if kept else None
            return by_record(denial, d.version, current, conf_allows, d.domain, hint)
    denial = pii_denial(identity, name, output, str(now))
    return by_conf(denial, [d.version for d in recorded])


class ReadVersion(NamedTuple):
    """The version a read resolved: its semantic version and, when known, the Delta commit."""

    semantic_version: str
    delta_version: int | None = None


Request = (
    tuple[AnyFeatureSet, Sequence[str]]
    | tuple[AnyFeatureSet, Sequence[str], AnyFeatureSet | None]
    | tuple[AnyFeatureSet, Sequence[str], AnyFeatureSet | None, ReadVersion | None]
)
# A set's decisions, with the version read when one was resolved (audited with them).
Decided = (
    tuple[AnyFeatureSet, Sequence[Decision]]
    | tuple[AnyFeatureSet, Sequence[Decision], ReadVersion | None]
)


def authorize_read(
    spark: SparkSession,
    mesh: MeshDefinition,
    identity: Identity,
    requests: Sequence[Request],
    purpose: str,
) -> None:
    """Allow or refuse a read of ``requests`` ((feature set, output columns) pairs, or
    triples adding the definition the version read was published with, see ``decide``, or
    quadruples adding the version read, ``ReadVersion``) by ``identity``.

    Every request is written to the audit table (one row per feature set, allowed or
    denied, with the version read when the request names it) *before* the outcome is
    returned, so a refused read is on record. Raises ``AccessDeniedError`` (params
    ``identity``, ``feature_set``, ``feature``, ``missing_grant``: those of the first denied
    feature; ``denials``: all of them) when any feature is refused; nothing is read then. An
    empty feature list means every output; a feature a set does not have is
    ``UnknownReferenceError`` (see ``decide``), not a refusal.
    """
    decisions: list[Decided] = [
        (r[0], decide(mesh, identity, r[0], r[1], _published(r)), _version(r)) for r in requests
    ]
    enforce(spark, mesh, identity, decisions, purpose)


def enforce(
    spark: SparkSession,
    mesh: MeshDefinition,
    identity: Identity,
    decisions: Sequence[Decided],
    purpose: str,
) -> None:
    """Audit ``decisions`` (one row per set, with its version read when given), then raise
    ``AccessDeniedError`` as ``authorize_read`` does when any is a denial."""
    from mesh.catalog.audit import record_reads

    record_reads(spark, mesh, identity, decisions, purpose)
    denied = [d for decided in decisions for d in decided[1] if not d.allowed]
    if not denied:
        return
    first = denied[0]
    more = f" (and {len(denied) - 1} more denied feature(s))" if len(denied) > 1 else ""
    raise AccessDeniedError(
        f"access denied: {identity} may not read {first.feature_set}.{first.feature} "
        f"for {purpose}: {refusal_text(first)}{more}",
        identity=str(identity),
        feature_set=first.feature_set,
        feature=first.feature,
        missing_grant=first.missing_grant,
        denials=[(d.feature_set, d.feature, d.missing_grant) for d in denied],
    )


def _published(request: Request) -> AnyFeatureSet | None:
    return request[2] if len(request) > 2 else None


def _version(request: Request) -> ReadVersion | None:
    return request[3] if len(request) == 4 else None


def metadata_denial(
    mesh: MeshDefinition, identity: Identity, entry: CatalogEntry
) -> Decision | None:
    """Why ``identity`` may not see ``entry`` in the catalog; ``None`` when it may.

    Checked against the visibility the set was published with and, when ``conf`` still
    defines the set, the one defined now: a tighter definition not yet published must not
    leave the set listed more widely than reads of it are allowed.
    """
    published = Rule(entry.domain, entry.visibility, entry.allowed_domains, entry.semantic_version)
    return set_denial(mesh, identity, entry.name, [published])


def hidden_sets(
    mesh: MeshDefinition, identity: Identity, entries: Sequence[CatalogEntry]
) -> dict[str, Decision]:
    """Every set ``identity`` may not see, by name, with the reason: published ones (see
    ``metadata_denial``) and sets ``conf/`` defines but never published (lineage of a
    training set built over them with ``allow_unpublished`` names them)."""
    hidden = {}
    for entry in entries:
        denial = metadata_denial(mesh, identity, entry)
        if denial is not None:
            hidden[entry.name] = denial
    for name in mesh.all_sets():
        if name in hidden:
            continue
        denial = set_denial(mesh, identity, name, [])
        if denial is not None:
            hidden[name] = denial
    return hidden


def refuse_metadata(
    spark: SparkSession, mesh: MeshDefinition, identity: Identity, denial: Decision, purpose: str
) -> None:
    """Audit ``denial`` (action ``metadata``) and raise ``AccessDeniedError`` for it."""
    from mesh.catalog.audit import record_metadata_denial

    record_metadata_denial(spark, mesh, identity, denial, purpose)
    raise AccessDeniedError(
        f"access denied: {identity} may not see {denial.feature_set} in the catalog ({purpose}): "
        f"{refusal_text(denial)}",
        identity=str(identity),
        feature_set=denial.feature_set,
        feature=None,
        missing_grant=denial.missing_grant,
    )


def authorize_metadata(
    spark: SparkSession,
    mesh: MeshDefinition,
    identity: Identity,
    entry: CatalogEntry,
    purpose: str,
) -> None:
    """Allow ``identity`` to see the catalog metadata of ``entry``, or refuse and audit it.

    The set's visibility decides (see ``metadata_denial``); PII grants do not, since the
    catalog shows no values of protected features. A refusal is written to the audit
    table (action ``metadata``) before ``AccessDeniedError`` (params ``identity``,
    ``feature_set``, ``feature`` None, ``missing_grant``) is raised; allowed lookups are
    not audited, as they read no feature values.
    """
    denial = metadata_denial(mesh, identity, entry)
    if denial is not None:
        refuse_metadata(spark, mesh, identity, denial, purpose)


def refuse_path(
    spark: SparkSession,
    mesh: MeshDefinition,
    identity: Identity,
    path: str,
    reason: str,
    purpose: str,
    owner: str | None = None,
) -> NoReturn:
    """Audit a refused read of ``path``, a warehouse table that holds no feature set (the
    catalog's own tables, another domain's training tables), and raise ``AccessDeniedError``
    (params ``identity``, ``path``; ``feature_set``, ``feature`` and ``missing_grant`` None:
    no grant opens such a table). ``owner``, the domain owning the table, also sees the audit
    row. Reads of feature tables by path are feature reads (``authorize_read``)."""
    from mesh.catalog.audit import record_path_denial

    record_path_denial(spark, mesh, identity, path, reason, purpose, owner)
    raise AccessDeniedError(
        f"access denied: {identity} may not read {path} for {purpose}: {reason}",
        identity=str(identity),
        feature_set=None,
        feature=None,
        missing_grant=None,
        path=path,
    )


def authorize_publish(identity: Identity, fs: AnyFeatureSet) -> None:
    """Only the owning domain publishes a feature set (federated ownership)."""
    if identity.domain != fs.domain:
        raise AccessDeniedError(
            f"access denied: {identity} may not publish {fs.qualified_name}: only its owning "
            f"domain {fs.domain} publishes it; run the publish as a member of {fs.domain} "
            f"(MESH_IDENTITY=<user>@{fs.domain})",
            identity=str(identity),
            feature_set=fs.qualified_name,
            feature=None,
            missing_grant=f"publish {fs.qualified_name} (owner domain {fs.domain})",
        )
