"""The end-to-end demo (``mesh demo``, ``jobs/run_mesh.py``): example data to training set.

Steps, in order, each a small function of a shared context:

1. ``generate``  - the example data products and the churn spine (``generate_example_mesh``);
2. ``compute``   - every domain feature set over the generated range (``mesh.compute``);
3. ``publish``   - each computed feature set through governance into the catalog
   (``mesh.catalog.publish.publish_feature_set``, which writes the feature table);
4. ``global``    - every global feature set from the published inputs, published in turn
   (``mesh.catalog.run.publish_range``);
5. ``training``  - every training set with its manifest (``mesh.sets.training``);
6. ``summary``   - per table produced: path, Delta version, row count, sample rows.

A step whose library is not in this installation yet, or whose inputs an earlier step did not
produce, is reported as ``skipped`` with the reason on its progress line; any error of a step
that runs stops the demo (no step hides a failure).

A demo that generates starts a warehouse from scratch: a warehouse that already holds anything
is refused before anything is written (``check_fresh_warehouse``). Regenerating the data under
what later runs wrote there (an appended day, a refresh, other publishes) would republish
every set over a mix of both and stop halfway; ``--steps`` without ``generate`` continues a
demo in its warehouse.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mesh.datagen.config import DataGenError, GeneratorConfig, config_for_scale
from mesh.datagen.generator import generate_example_mesh

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from mesh.definitions import MeshDefinition

Printer = Callable[[str], None]


@dataclass
class StepResult:
    """How one demo step ended: ``done`` or ``skipped`` (with why), and how long it took."""

    name: str
    status: str
    detail: str
    seconds: float


@dataclass
class DemoContext:
    """What the steps share: inputs, and the frames and tables produced so far."""

    spark: SparkSession
    mesh: MeshDefinition
    warehouse: str
    config: GeneratorConfig
    out: Printer
    sample_rows: int = 3
    computed: dict[str, DataFrame] = field(default_factory=dict)
    source_versions: dict[str, dict[str, int]] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)  # label -> path, in order produced


@dataclass
class DemoReport:
    """The steps run and every table the demo produced (label -> path)."""

    steps: list[StepResult]
    tables: dict[str, str]


def run_demo(
    spark: SparkSession,
    mesh: MeshDefinition,
    warehouse: str,
    *,
    scale: str = "small",
    config: GeneratorConfig | None = None,
    sample_rows: int = 3,
    steps: Sequence[str] | None = None,
    out: Printer = print,
) -> DemoReport:
    """Run the demo end to end into ``warehouse`` and print one progress line per step.

    ``config`` (default: the ``scale`` preset) sets the generated data; the example tables are
    generated into a warehouse that is new or empty (``check_fresh_warehouse``). Returns the
    steps with their status and the tables produced. ``steps`` runs only the named steps (in the
    fixed order; e.g. ``["generate", "summary"]``); the others are reported as skipped.
    """
    ctx = DemoContext(spark, mesh, warehouse, config or config_for_scale(scale), out, sample_rows)
    chosen = check_steps(steps)
    check_fresh_warehouse(warehouse, chosen)
    results: list[StepResult] = []
    for number, (name, step) in enumerate(_STEPS, start=1):
        out(f"[{number}/{len(_STEPS)}] {name} ...")
        began = time.monotonic()
        status, detail = step(ctx) if name in chosen else ("skipped", "not selected")
        elapsed = time.monotonic() - began
        results.append(StepResult(name, status, detail, elapsed))
        out(f"[{number}/{len(_STEPS)}] {name}: {status} in {elapsed:.1f}s - {detail}")
    return DemoReport(results, dict(ctx.tables))


def _library(module: str, attribute: str) -> Any:
    """``module.attribute`` if this installation has it yet, else None (the step is skipped)."""
    try:
        return getattr(importlib.import_module(module), attribute, None)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise


def _generate(ctx: DemoContext) -> tuple[str, str]:
    cfg = ctx.config
    written = generate_example_mesh(
        ctx.spark, ctx.mesh, config=cfg, warehouse=ctx.warehouse, overwrite=True
    )
    for name, product in written.items():
        ctx.tables[f"{product.kind} {name}"] = product.path
    return "done", (
        f"{len(written)} tables, {cfg.customers} customers, {cfg.days} days from "
        f"{cfg.start.date()}, seed {cfg.seed}"
    )


def _compute(ctx: DemoContext) -> tuple[str, str]:
    # The rows of every domain feature set over all the generated data (profiles predate the
    # event range; late rows arrive after it); written by the publish step, not here.
    rows = _library("mesh.compute", "feature_rows")
    if rows is None:
        return "skipped", "mesh.compute.feature_rows is not available in this build"
    from mesh.compute.sources import read_source

    start, end = ctx.config.history_start, ctx.config.arrival_end
    for name in sorted(ctx.mesh.feature_sets):
        # The source version computed from is recorded in the publish commit, so a later
        # `mesh refresh` starts from it.
        read = read_source(ctx.spark, ctx.mesh, ctx.mesh.feature_sets[name])
        ctx.computed[name] = rows(
            ctx.spark, ctx.mesh, name, start=start, end=end, source_version=read.version
        )
        if read.version is not None:
            ctx.source_versions[name] = {read.product.qualified_name: read.version}
    return "done", (
        f"{len(ctx.computed)} feature sets over [{start.date()}, {end.date()}): "
        f"{', '.join(sorted(ctx.computed))}"
    )


def _publish(ctx: DemoContext) -> tuple[str, str]:
    # Governance checks, then the feature-table commit and the catalog record, per set; the
    # publisher acts for the owning domain.
    publish = _library("mesh.catalog.publish", "publish_feature_set")
    if publish is None:
        return "skipped", "mesh.catalog.publish is not available in this build"
    if not ctx.computed:
        return "skipped", "no computed feature sets to publish (the compute step was skipped)"
    from mesh.compute.job import new_run_id
    from mesh.storage import CommitInfo

    start, end = ctx.config.history_start, ctx.config.arrival_end
    run_id = new_run_id()
    for name, df in ctx.computed.items():
        fs = ctx.mesh.feature_sets[name]
        versions = ctx.source_versions.get(name, {})
        result = publish(
            ctx.spark,
            ctx.mesh,
            fs,
            df,
            start=start,
            end=end,
            commit=CommitInfo(run_id=run_id, operation="compute", source_versions=versions),
            identity=f"demo@{fs.domain}",
            as_of=end,
        )
        ctx.published.append(f"{name} {result.semantic_version} ({result.bump})")
        ctx.tables[f"feature table {name}"] = result.table_path
    return "done", "; ".join(ctx.published)


def _global_sets(ctx: DemoContext) -> tuple[str, str]:
    # Published like a domain set (governance, feature-table commit, catalog record), so the
    # training step reads it: consumers read published versions only.
    publish = _library("mesh.catalog.run", "publish_range")
    if publish is None:
        return "skipped", "mesh.catalog.run is not available in this build"
    if not ctx.published:
        return "skipped", "no published domain feature sets to combine"
    built = []
    for name in ctx.mesh.build_order():
        if name in ctx.mesh.global_sets:
            gs = ctx.mesh.global_sets[name]
            result = publish(
                ctx.spark,
                ctx.mesh,
                name,
                identity=f"demo@{gs.domain}",
                as_of=ctx.config.arrival_end,
            )
            ctx.tables[f"global feature table {name}"] = result.table_path
            built.append(f"{name} {result.semantic_version} ({result.row_count} rows)")
    return "done", ", ".join(built) or "no global feature sets defined"


def _training_sets(ctx: DemoContext) -> tuple[str, str]:
    build = _library("mesh.sets.training", "build_training_set")
    if build is None:
        return "skipped", "mesh.sets.training is not available in this build"
    if not ctx.published:
        return "skipped", "no published feature sets to join onto the spines"
    built = []
    for name, ts in sorted(ctx.mesh.training_sets.items()):
        result = build(ctx.spark, ctx.mesh, ts, identity=f"demo@{ts.domain}")
        ctx.tables[f"training set {name}"] = result.path
        built.append(f"{name} ({result.row_count} rows, manifest {result.manifest_path})")
    return "done", ", ".join(built) or "no training sets defined"


def _summary(ctx: DemoContext) -> tuple[str, str]:
    from mesh.datagen.summary import describe_table

    for label, path in ctx.tables.items():
        ctx.out(
            describe_table(
                ctx.spark, label, path, ctx.mesh.standards.storage.backend, ctx.sample_rows
            )
        )
    return "done", f"{len(ctx.tables)} tables under {ctx.warehouse}"


_STEPS: list[tuple[str, Callable[[DemoContext], tuple[str, str]]]] = [
    ("generate", _generate),
    ("compute", _compute),
    ("publish", _publish),
    ("global", _global_sets),
    ("training", _training_sets),
    ("summary", _summary),
]
STEP_NAMES = tuple(name for name, _ in _STEPS)


def check_steps(steps: Sequence[str] | None) -> set[str]:
    """The demo steps to run (all by default); ``DataGenError`` naming unknown ones."""
    chosen = set(STEP_NAMES if steps is None else steps)
    unknown = sorted(chosen - set(STEP_NAMES))
    if unknown:
        raise DataGenError(
            f"Demo steps {', '.join(unknown)} do not exist; choose from {', '.join(STEP_NAMES)}.",
            steps=unknown,
        )
    return chosen


def check_fresh_warehouse(warehouse: str, steps: set[str]) -> None:
    """``DataGenError`` when the demo would generate into a local warehouse that holds anything.

    The ``generate`` step starts the demo's warehouse from scratch; without it the steps
    continue in the warehouse as it is. URIs (s3://, abfss://, dbfs:/ ...) are not listed:
    the session that writes there may hold the only credentials to it.
    """
    from mesh.storage import normalize_path

    location = normalize_path(warehouse)
    if "generate" not in steps or not os.path.isdir(location):
        return
    found = sorted(os.listdir(location))
    if found:
        listed = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise DataGenError(
            f"The demo starts a warehouse from scratch, and {location} already holds {listed}: "
            "generating the example data again under what was written there since (an "
            "appended day, a refresh, other publishes) would republish the feature sets over a "
            "mix of both. Pass a fresh --warehouse (or MESH_WAREHOUSE), or remove "
            f"{location} first.",
            warehouse=warehouse,
            path=location,
            found=found,
        )
