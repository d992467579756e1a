"""Which commit of a feature table a pin reads.

A commit's ``CommitInfo.extra["semantic_version"]`` says which version of the definition wrote
it; the catalog's version rows say which commit each publish passed through governance.
Producers read the newest commit matching a pin, consumers the newest published one. A
rebuild reads the commits its manifest pinned, once ``verify_inputs`` finds them unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timezone
from typing import TYPE_CHECKING

from mesh.sets.errors import InputChangedError, NotPublishedError, VersionPinError
from mesh.storage import in_warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.catalog.search import VersionRecord
    from mesh.definitions import MeshDefinition
    from mesh.sets.manifest import InputPin
    from mesh.storage import CommitRecord, DeltaFeatureTable


def pin_matches(pin: str | None, semantic_version: str) -> bool:
    """True when ``semantic_version`` (``1.2.3``) is covered by ``pin`` (``1``, ``1.2``, ``1.2.3``).

    No pin covers every version.
    """
    if pin is None:
        return True
    wanted = [int(p) for p in pin.split(".")]
    try:
        found = [int(p) for p in semantic_version.split(".")]
    except ValueError:
        return False
    return found[: len(wanted)] == wanted


def newest_commit(
    table: DeltaFeatureTable,
    name: str,
    major: int,
    pin: str | None,
    versions: Sequence[VersionRecord],
) -> CommitRecord:
    """The newest commit of ``table`` whose semantic version matches ``pin`` (a producer's read).

    A metadata-only (patch) publish writes no feature-table commit: its catalog version row
    names the commit it describes, so a pin that only such a version matches (``@1.0.1``
    before anything was computed as 1.0.1) resolves to that commit.
    """
    try:
        return find_commit(table, name, pin)
    except VersionPinError:
        described = [
            v for v in versions if v.major == major and pin_matches(pin, v.semantic_version)
        ]
        record = commit_at(table, described[0].delta_version) if described else None
        if record is None or record.info is None:
            raise
        return record


def published_commit(
    table: DeltaFeatureTable,
    name: str,
    major: int,
    pin: str | None,
    versions: Sequence[VersionRecord],
    allow_unpublished: bool,
    *,
    domain: bool,
) -> CommitRecord:
    """The commit of the newest published version of ``name`` (this major) matching ``pin``.

    A publish lands with its catalog version row, which names the feature-table commit that
    passed governance; later commits (``mesh compute``, ``refresh``, ``global build``) are not
    read until published. A set never published in this major is refused, or, with
    ``allow_unpublished``, read at its newest commit with a ``RuntimeWarning``; the refusal
    names the ``mesh publish`` command to run (``domain``: a domain set's, with a range).
    """
    published = [v for v in versions if v.major == major]
    if not published:
        if not allow_unpublished:
            command = publish_command(table, name, domain)
            raise NotPublishedError(
                f"Feature set {name} has no published version of major {major}: its feature "
                f"table {table.path} holds only commits that no governance check has passed "
                f"(compute, refresh, global build). Publish it (`{command}`), or, to develop "
                "against it anyway, pass allow_unpublished=True (`--allow-unpublished`).",
                command=command,
                feature_set=name,
                major=major,
                path=table.path,
            )
        warnings.warn(
            f"Feature set {name} has no published version of major {major}: reading its "
            "newest commit, which no governance check has passed (publish it to read what "
            "passed).",
            RuntimeWarning,
            stacklevel=4,
        )
        return find_commit(table, name, pin)
    available = [v.semantic_version for v in published]

    def refused(message: str) -> VersionPinError:
        return VersionPinError(
            message, feature_set=name, pin=pin, available=available, path=table.path
        )

    matching = [v for v in published if pin_matches(pin, v.semantic_version)]
    if not matching:
        raise refused(
            f"Feature set {name}@{pin}: no published version matches (published: "
            f"{', '.join(available)}); pin one of those or publish the version you need."
        )
    wanted = matching[0].delta_version
    record = commit_at(table, wanted)
    if record is None or record.info is None:
        raise refused(
            f"Feature set {name}: the catalog's published version {matching[0].semantic_version} "
            f"is Delta version {wanted} of {table.path}, which the table does not hold (or not "
            "as a mesh commit); restore the table or publish again."
        )
    return record


def commit_at(table: DeltaFeatureTable, version: int) -> CommitRecord | None:
    """The commit of ``table`` at Delta version ``version``, if its history holds one."""
    return next((r for r in table.history() if r.version == version), None)


def publish_command(table: DeltaFeatureTable, name: str, domain: bool) -> str:
    """The ``mesh publish`` command for what ``table`` holds: a global set's whole history, a
    domain set's range its commits computed (``--start``/``--end``, which it needs)."""
    return range_publish_command(name, computed_range(table) if domain else None, domain=domain)


def computed_range(table: DeltaFeatureTable) -> tuple[datetime, datetime] | None:
    """The range the commits of ``table`` computed, from the first start to the last end
    they record; ``None`` when none records one."""
    infos = [r.info for r in table.history() if r.info is not None]
    starts = [i.range_start for i in infos if i.range_start is not None]
    ends = [i.range_end for i in infos if i.range_end is not None]
    if not starts or not ends:
        return None
    return min(starts), max(ends)


def range_publish_command(
    name: str, covered: tuple[datetime, datetime] | None, *, domain: bool = True
) -> str:
    """``mesh publish`` of domain set ``name`` over ``covered`` (placeholders for ``None``);
    of a global set (``domain`` false) over its whole history, which takes no range."""
    if not domain:
        return f"mesh publish {name}"
    if covered is None:
        return f"mesh publish {name} --start START --end END"
    return f"mesh publish {name} --start {_iso(covered[0])} --end {_iso(covered[1])}"


def _iso(moment: datetime) -> str:
    utc = moment.astimezone(timezone.utc) if moment.tzinfo else moment
    return utc.date().isoformat() if utc.time() == time(0) else utc.isoformat()


def find_commit(table: DeltaFeatureTable, feature_set: str, pin: str | None) -> CommitRecord:
    """The newest commit of ``table`` whose semantic version matches ``pin``.

    ``VersionPinError`` lists the semantic versions the table does hold when none matches.
    """
    seen: list[str] = []
    short = feature_set.split(".", 1)[-1]
    for record in table.history():  # newest first
        extra = record.info.extra if record.info else {}
        version = extra.get("semantic_version")
        if version is None or extra.get("feature_set") not in (feature_set, short, None):
            continue
        if pin_matches(pin, str(version)):
            return record
        if str(version) not in seen:
            seen.append(str(version))
    wanted = f"@{pin}" if pin else "any version"
    raise VersionPinError(
        f"Feature set {feature_set} ({wanted}): no commit of {table.path} carries a matching "
        f"semantic version (versions there: {', '.join(seen) or 'none'}); pin one of those "
        "or publish the version you need.",
        feature_set=feature_set,
        pin=pin,
        available=seen,
        path=table.path,
    )


def verify_inputs(spark: SparkSession, mesh: MeshDefinition, pins: Iterable[InputPin]) -> None:
    """Raise ``InputChangedError`` unless every pinned Delta version is still the pinned commit.

    The commit at ``delta_version`` must exist and carry the pinned semantic version,
    definition hash and run id (those a manifest recorded): a table deleted and written
    again has a version of the same number with other rows.
    """
    from mesh.storage import open_table

    for pin in pins:
        table = open_table(spark, in_warehouse(mesh, pin.table))
        record = commit_at(table, pin.delta_version) if table.exists() else None
        expected = {
            "semantic_version": pin.semantic_version,
            "definition_hash": pin.definition_hash,
            "run_id": pin.run_id,
        }
        info = record.info if record is not None else None
        found = {
            "semantic_version": str(info.extra.get("semantic_version")) if info else None,
            "definition_hash": info.definition_hash if info else None,
            "run_id": info.run_id if info else None,
        }
        changed = [k for k, v in expected.items() if v is not None and found[k] != v]
        if record is None or changed:
            what = (
                f"has no version {pin.delta_version}"
                if record is None
                else f"version {pin.delta_version}: {', '.join(changed)} differ"
            )
            raise InputChangedError(
                f"Feature set {pin.feature_set}: {table.path} {what} (the manifest pinned "
                f"{expected}; found {found}); a rebuild would not reproduce the training set. "
                "Restore the table the manifest pinned, or build a new training set instead.",
                feature_set=pin.feature_set,
                path=table.path,
                delta_version=pin.delta_version,
                changed=changed or ["delta_version"],
                expected=expected,
                found=found,
            )
