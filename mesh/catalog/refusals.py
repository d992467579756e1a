"""Access decisions and the wording of refusals: why, by which rule, and the next step.

A read is checked under every rule that applies to it (``mesh.catalog.access``): the
visibility and PII classes the version read was published with, as the catalog records
them, and the ones ``conf/`` defines now. A refusal names the rule that refused
(``Decision.decided_by``: ``as published in 1.0.0``, ``as conf/ defines it now`` or both).
Its hint is the change that would allow the read: in ``conf/`` (a grant, a wider
visibility) when ``conf/`` refuses; when only the published record refuses, ``conf/``
already holds the loosened rule and what is missing is its publish. A read kept at a version
``conf/`` no longer describes (an older major, or an older version pinned while a newer one
of its major is published) keeps that version's recorded rules: neither ``conf/`` nor a
publish changes them, so its refusal and hint speak of that version alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mesh.definitions.base import parse_semver

if TYPE_CHECKING:
    from mesh.catalog.access import Identity
    from mesh.definitions import AnyFeatureSet


@dataclass(frozen=True)
class Decision:
    """The outcome for one requested feature.

    ``reason`` (audited) says what refused; ``decided_by``, by which rule (empty when only
    one applies or the read is allowed); ``hint``, the next step.
    """

    feature_set: str
    feature: str
    allowed: bool
    reason: str
    missing_grant: str | None = None
    hint: str = ""
    decided_by: str = ""


def visibility_denial(
    identity: Identity,
    name: str,
    domain: str,
    visibility: str,
    allowed_domains: Sequence[str],
) -> Decision | None:
    """Why ``identity`` may not see set ``name`` of ``domain``; ``None`` when it may.

    The visibility rules of ``mesh.catalog.access``, without the PII grants: they decide who
    may read a set's features and who may see the set in the catalog. The decision's
    ``feature`` is empty (it is about the whole set).
    """
    if identity.domain == domain or visibility == "public":
        return None
    if visibility == "private":
        return Decision(
            name,
            "",
            False,
            f"{name} is private to domain {domain}",
            missing_grant=f"visibility of {name} (private)",
            hint=f"ask the {domain} team to make it internal with "
            f"allowed_domains: [{identity.domain}]",
        )
    if identity.domain in allowed_domains:
        return None
    return Decision(
        name,
        "",
        False,
        f"{name} is {described(domain, visibility, allowed_domains)}",
        missing_grant=f"{name} metadata.allowed_domains: {identity.domain}",
        hint=f"ask the {domain} team to add {identity.domain} to metadata.allowed_domains",
    )


def described(domain: str, visibility: str, allowed_domains: Sequence[str]) -> str:
    """``public``, ``private`` or ``internal to <domain>, <allowed domains>``."""
    if visibility == "internal":
        return f"internal to {', '.join(dict.fromkeys([domain, *allowed_domains]))}"
    return visibility


def pii_denial(identity: Identity, name: str, output: str, pii: str) -> Decision:
    """The refusal of feature ``output`` of set ``name``, classed ``pii``, without a grant."""
    return Decision(
        name,
        output,
        False,
        f"{name}.{output} is classified {pii}",
        missing_grant=f"{name}.{output}",
        hint=f"add `{name}.{output}` (or `{name}`) under access.grants.{identity.domain} "
        "in mesh.yaml, or drop the feature",
    )


def by_record(
    denial: Decision,
    version: str | None,
    conf_set: AnyFeatureSet | None,
    conf_allows: str | None,
    domain: str,
    kept_hint: str | None = None,
) -> Decision:
    """``denial``, made by the rule version ``version`` was published with.

    ``conf_set`` is the set as ``conf/`` defines it now (``None``: it no longer defines
    the set, the record alone decides); ``conf_allows``, what ``conf/`` now says that would
    allow the read (``None``: ``conf/`` refuses too, and the hint to change it stays).
    Otherwise nothing is missing from ``conf/`` but its publish, which the hint asks for.
    ``kept_hint``: the read is of ``version``, kept at its record (see the module), and this
    is the hint for it: what ``conf/`` allows opens nothing (``None``: a read that a publish
    of ``conf/`` would move to its rules).
    """
    if version is None:
        return denial
    published = f"as published in {version}"
    if kept_hint is not None:
        both = conf_set is not None and conf_allows is None
        also = " and as conf/ defines it now" if both else ""
        decided_by = f"{published}, the version read{also}"
        return dataclasses.replace(denial, decided_by=decided_by, hint=kept_hint)
    if conf_set is None:
        return dataclasses.replace(denial, decided_by=published)
    if conf_allows is None:
        return dataclasses.replace(denial, decided_by=f"{published} and as conf/ defines it now")
    return dataclasses.replace(
        denial,
        decided_by=f"{published}; conf/ now {conf_allows}, not published yet",
        hint=publish_hint(conf_set, domain, version),
    )


def by_conf(denial: Decision, published: Sequence[str]) -> Decision:
    """``denial``, made by ``conf/`` alone: the versions ``published`` (recorded) allow it."""
    if not published:
        return denial
    return dataclasses.replace(
        denial, decided_by=f"as conf/ defines it now, tighter than {published[-1]} as published"
    )


def publish_hint(conf_set: AnyFeatureSet, domain: str, version: str) -> str:
    """The step that opens a read ``conf/`` (defining ``conf_set``) allows and the record of
    ``version`` refuses: publishing the definition ``conf/`` holds (README, Publishing:
    visibility and PII classes are metadata, a patch). A new major is computed: a domain
    set's publish of it takes the range to compute (``--start``/``--end``)."""
    from mesh.sets.commits import range_publish_command

    name, conf_version = conf_set.qualified_name, conf_set.version
    old, new = parse_semver(version), parse_semver(conf_version)
    team = f"the {domain} team (MESH_IDENTITY=<user>@{domain})"
    if new[0] != old[0]:
        command = range_publish_command(name, None, domain=conf_set.kind == "feature_set")
        return (
            f"{version} keeps the rules it was published with; read major {new[0]}, which "
            f"conf/ defines, once {team} publishes it with `{command}`"
        )
    if new <= old:
        patch = f"{old[0]}.{old[1]}.{old[2] + 1}"
        return (
            f"{team} publishes the loosened definition: version {patch} (a patch) in conf/, "
            f"then `mesh publish {name} --metadata-only`"
        )
    return (
        f"{team} publishes conf/'s version {conf_version}: `mesh publish {name} "
        f"--metadata-only` when only metadata changed since {version}"
    )


def kept_visibility_hint(version: str, reader: str, rule: str) -> str:
    """The step left to a reader refused by the visibility ``rule`` (``described``) of the
    version it reads, ``version``, which keeps it: reading another version."""
    return (
        f"{version} keeps the visibility it was published with ({rule}): no change or publish "
        f"of conf/ opens it; read a version published with a visibility that includes "
        f"{reader} (a build reads the newest published version; a manifest rebuild only the "
        "one it pinned)"
    )


def refusal_text(decision: Decision) -> str:
    """``reason (decided_by); missing grant: ...; hint``: the body of a refusal's message."""
    why = f"{decision.reason} ({decision.decided_by})" if decision.decided_by else decision.reason
    return f"{why}; missing grant: {decision.missing_grant}; {decision.hint}"
