"""Run compute or refresh for targets: feature sets, whole domains, or the whole mesh.

Targets are qualified names (``payments.customer_spend``) or domain names (``payments``);
no target means every set. Sets run in ``MeshDefinition.build_order()`` (domain sets first,
then global sets after their inputs); each set is its own run and its own commit.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mesh.compute.job import Progress, RunResult, check_range, compute_feature_set, new_run_id
from mesh.compute.refresh import downstream_globals, refresh_feature_set
from mesh.errors import ComputeError
from mesh.times import optional_utc

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mesh.definitions import MeshDefinition

# Preferred hook (range-aware), then the full rebuild that mesh.sets provides today.
GLOBAL_HOOKS = ("compute_global_set", "build_global_feature_set")


def resolve_targets(mesh: MeshDefinition, targets: Sequence[str]) -> list[str]:
    """Qualified names of the sets the targets select, in build order."""
    order = mesh.build_order()
    if not targets:
        return order
    chosen: set[str] = set()
    all_sets = mesh.all_sets()
    for target in targets:
        if target in all_sets:
            chosen.add(target)
            continue
        in_domain = {n for n, s in all_sets.items() if s.domain == target}
        if not in_domain:
            domains = sorted({s.domain for s in all_sets.values()})
            raise ComputeError(
                f"target {target!r} is neither a feature set nor a domain with feature sets "
                f"(domains: {', '.join(domains)}; sets: {', '.join(sorted(all_sets))}); pass "
                "domain.feature_set or a domain name.",
                argument="targets",
                target=target,
            )
        chosen |= in_domain
    return [name for name in order if name in chosen]


def compute_targets(
    spark: SparkSession,
    mesh: MeshDefinition,
    targets: Sequence[str] = (),
    *,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    chunk: timedelta | None = None,
    progress: Progress | None = print,
    identity: str | None = None,
) -> list[RunResult]:
    """Compute every selected set over ``[start, end)`` (each over its data when not given).

    Times are datetimes, dates or ISO strings; naive ones are UTC (``mesh.times``). Global
    sets read their inputs as ``identity`` (default: the identity variable, MESH_IDENTITY).
    """
    start = optional_utc(start, "start", ComputeError)
    end = optional_utc(end, "end", ComputeError)
    check_range(start, end)  # before any set runs, each of them would refuse it
    run_id = new_run_id()
    results = []
    selected = resolve_targets(mesh, targets)
    require_caller(mesh, selected, identity)
    for name in selected:
        if name in mesh.global_sets:
            results.append(
                build_global_set(
                    spark, mesh, name, start=start, end=end, run_id=run_id, identity=identity
                )
            )
        else:
            results.append(
                compute_feature_set(
                    spark,
                    mesh,
                    name,
                    start=start,
                    end=end,
                    chunk=chunk,
                    run_id=run_id,
                    progress=progress,
                )
            )
        if progress:
            progress(results[-1].summary())
    return results


def require_caller(
    mesh: MeshDefinition, selected: Sequence[str], identity: str | None, *, refresh: bool = False
) -> None:
    """A run that builds global sets reads their inputs as the caller: ``AccessDeniedError``
    without one, before any set is computed. A compute builds the global sets it selects; a
    refresh, those downstream of the domain sets it selects."""
    domain_sets = {n for n in selected if n not in mesh.global_sets}
    builds = downstream_globals(mesh, domain_sets) if refresh else len(domain_sets) < len(selected)
    if builds:
        from mesh.catalog.access import current_identity

        current_identity(mesh.standards, identity)


def refresh_targets(
    spark: SparkSession,
    mesh: MeshDefinition,
    targets: Sequence[str] = (),
    *,
    chunk: timedelta | None = None,
    progress: Progress | None = print,
    identity: str | None = None,
) -> list[RunResult]:
    """Refresh the selected domain sets, then rebuild the global sets downstream of changes
    (reading their inputs as ``identity``, default: the identity variable)."""
    run_id = new_run_id()
    results = []
    selected = resolve_targets(mesh, targets)
    require_caller(mesh, selected, identity, refresh=True)
    for name in selected:
        if name in mesh.global_sets:
            continue
        results.append(
            refresh_feature_set(spark, mesh, name, chunk=chunk, run_id=run_id, progress=progress)
        )
        if progress:
            progress(results[-1].summary())
    changed = [r for r in results if r.delta_version is not None]
    if changed:
        start = min(r.start for r in changed if r.start is not None)
        end = max(r.end for r in changed if r.end is not None)
        for name in downstream_globals(mesh, {r.feature_set for r in changed}):
            results.append(
                build_global_set(
                    spark,
                    mesh,
                    name,
                    start=start,
                    end=end,
                    run_id=run_id,
                    identity=identity,
                    range_asked=False,
                )
            )
            if progress:
                progress(results[-1].summary())
    return results


def build_global_set(
    spark: SparkSession,
    mesh: MeshDefinition,
    name: str,
    *,
    start: datetime | None,
    end: datetime | None,
    run_id: str,
    identity: str | None = None,
    range_asked: bool = True,
) -> RunResult:
    """The hook to global feature sets, which ``mesh.sets.global_features`` builds.

    Calls ``compute_global_set`` when it exists, else ``build_global_feature_set`` (a full
    rebuild), with ``spark, mesh, name`` and whichever of ``start``, ``end``, ``run_id``,
    ``identity`` it accepts. When neither exists the set is reported as not built (``note``
    says why) instead of failing the domain runs before it. ``range_asked`` False: the range
    is the refreshed sets' (the caller gave none), so a full rebuild does not remark on it.
    """
    try:
        from mesh.sets import global_features
    except ImportError as exc:
        return RunResult(
            name,
            "global",
            run_id,
            "",
            start,
            end,
            0,
            None,
            {},
            f"global sets not built: mesh.sets is unavailable ({exc})",
        )
    found = [getattr(global_features, hook, None) for hook in GLOBAL_HOOKS]
    fn = next((f for f in found if f is not None), None)
    if fn is None:
        return RunResult(
            name,
            "global",
            run_id,
            "",
            start,
            end,
            0,
            None,
            {},
            "global sets not built: mesh.sets.global_features has none of "
            f"{', '.join(GLOBAL_HOOKS)}",
        )
    accepted = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {
        k: v
        for k, v in {"start": start, "end": end, "run_id": run_id, "identity": identity}.items()
        if k in accepted
    }
    built = fn(spark, mesh, name, **kwargs)
    # A hook without a range rebuilds the whole history: say so, never report the asked range.
    ranged = "start" in accepted and "end" in accepted
    note = (
        "rebuilt over its whole history (a range applies to domain feature sets only)"
        if not ranged and range_asked and (start is not None or end is not None)
        else ""
    )
    return RunResult(
        name,
        "global",
        run_id,
        str(getattr(built, "path", "")),
        start if ranged else None,
        end if ranged else None,
        int(getattr(built, "row_count", 0) or 0),
        getattr(built, "delta_version", None),
        dict(getattr(built, "source_versions", {}) or {}),
        note,
    )
