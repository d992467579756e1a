"""Likely duplicate features across feature sets (``mesh catalog duplicates``).

Two independent signals:

* **definition**: two outputs computed from the same data product with the same data payload
  (function, column, filter, window, expression; accuracy and interval) under different names;
* **values**: on the entities two published sets share, the latest value of each key agrees
  (equality rate) or moves together (absolute Pearson correlation, numeric columns) above a
  threshold, over at least ``min_overlap`` keys. A column constant over the overlap has no
  correlation (it is undefined: null, never a division by zero under ANSI mode); such a pair
  is reported only when its values are equal (equality rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from itertools import combinations
from typing import TYPE_CHECKING, Any

from mesh.definitions import AggregationFeature, FeatureSet, format_duration
from mesh.definitions.columns import FEATURE_TS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from mesh.catalog.access import Identity
    from mesh.definitions import AnyFeatureSet, MeshDefinition

NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")


@dataclass(frozen=True)
class Duplicate:
    """``left`` and ``right`` (``domain.set.feature``) look like the same feature."""

    kind: str  # "definition" | "values"
    left: str
    right: str
    measure: str
    value: float
    threshold: float
    overlap: int | None = None

    def __str__(self) -> str:
        extra = f" over {self.overlap} keys" if self.overlap is not None else ""
        return (
            f"{self.left} ~ {self.right}: {self.kind} {self.measure}={self.value:.4g} "
            f">= {self.threshold:g}{extra}"
        )


def _signatures(mesh: MeshDefinition, fs: FeatureSet) -> dict[str, tuple[Any, ...]]:
    product = mesh.product(fs.source, fs.domain)
    source = product.qualified_name if product else fs.source
    common = (source, fs.entity, fs.accuracy, format_duration(fs.interval), fs.exclude_late_data)
    out: dict[str, tuple[Any, ...]] = {}
    for feature in fs.features:
        payload = feature.data_payload()
        payload.pop("name", None)
        payload.pop("windows", None)
        base = tuple(sorted((k, str(v)) for k, v in payload.items()))
        if not isinstance(feature, AggregationFeature):
            out[feature.name] = (*common, base)
            continue
        for window, output in zip(feature.windows, feature.output_names(), strict=True):
            out[output] = (*common, base, format_duration(window))
    return out


def definition_duplicates(
    mesh: MeshDefinition, identity: Identity | None = None
) -> list[Duplicate]:
    """Outputs of different feature sets with identical data definitions (no Spark needed).

    With ``identity``, only sets it may see by their visibility are compared.
    """
    from mesh.catalog.access import visibility_denial, visibility_of

    seen: dict[tuple[Any, ...], list[str]] = {}
    for name, fs in sorted(mesh.feature_sets.items()):
        if identity is not None and visibility_denial(
            identity, name, fs.domain, visibility_of(mesh, fs), fs.metadata.allowed_domains
        ):
            continue
        for output, signature in _signatures(mesh, fs).items():
            seen.setdefault(signature, []).append(f"{name}.{output}")
    found = []
    for names in seen.values():
        for left, right in combinations(sorted(names), 2):
            if left.rsplit(".", 1)[0] != right.rsplit(".", 1)[0]:
                found.append(Duplicate("definition", left, right, "same_definition", 1.0, 1.0))
    return found


def _latest(df: DataFrame, keys: list[str], columns: dict[str, str]) -> DataFrame:
    """The latest row per key (greatest ``feature_ts``, then ``created_ts``): keys, columns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = [F.col(FEATURE_TS).desc()]
    if "created_ts" in df.columns:
        order.append(F.col("created_ts").desc())
    ranked = df.withColumn("_rank", F.row_number().over(Window.partitionBy(*keys).orderBy(*order)))
    return ranked.where("_rank = 1").select(*keys, *columns)


def _prefixed(df: DataFrame, keys: list[str], prefix: str, columns: dict[str, str]) -> DataFrame:
    from mesh.join.columns import ident

    return df.selectExpr(
        *[ident(k) for k in keys], *[f"{ident(c)} AS {ident(prefix + c)}" for c in columns]
    )


def value_duplicates(
    spark: SparkSession,
    mesh: MeshDefinition,
    *,
    threshold: float = 0.99,
    min_overlap: int = 10,
    identity: Identity | str | None = None,
) -> list[Duplicate]:
    """Column pairs of published sets on the same entity whose latest values nearly agree.

    Reads each set's feature table at its latest published Delta version, so only the
    features the caller (``identity``, else the identity variable; none is refused) may read
    are compared: sets it may see, and PII features only with their grant (the read decision
    of ``mesh.catalog.access.decide``). The sets whose features are compared are audited
    (``record_reads``, purpose ``duplicates``, the features read) before any value is read.

    The correlation is ``covar_samp / (stddev_samp * stddev_samp)`` with ``try_divide``: when
    either column is constant over the overlap it is null (undefined), so the pair is flagged
    only by its equality rate (two equal constants), never by correlation.
    """
    from mesh.catalog.access import (
        Decision,
        ReadVersion,
        current_identity,
        decide,
        metadata_denial,
    )
    from mesh.catalog.audit import record_reads

    who = current_identity(mesh.standards, identity)
    from mesh.catalog.search import entries, latest_version, published_definition_of
    from mesh.storage import open_table

    tables: dict[str, tuple[str, DataFrame, dict[str, str]]] = {}
    allowed: dict[str, tuple[AnyFeatureSet, dict[str, Decision], ReadVersion]] = {}
    for entry in entries(spark, mesh):
        if metadata_denial(mesh, who, entry) is not None:
            continue
        fs = mesh.all_sets().get(entry.name)
        if fs is None:  # a set conf no longer defines has no PII classes to decide by
            continue
        record = latest_version(spark, mesh, entry.name)
        if record is None:
            continue
        # The table holds the published version's values: its PII classes apply with the
        # current ones (the tighter wins, as for reads).
        published = published_definition_of(record) or fs
        decisions = {d.feature: d for d in decide(mesh, who, published, []) if d.allowed}
        allowed[entry.name] = (
            fs,
            decisions,
            ReadVersion(record.semantic_version, record.delta_version),
        )
        readable = set(decisions)
        df = open_table(spark, record.table_path).read(version=record.delta_version)
        kinds = {
            f["name"]: str(f.get("type"))
            for f in entry.features
            if f["name"] in df.columns and f["name"] in readable
        }
        tables[entry.name] = (entry.entity, df, kinds)
    compared = [
        (left, right)
        for (left, (entity, _, lk)), (right, (entity2, _, rk)) in combinations(
            sorted(tables.items()), 2
        )
        if entity == entity2 and lk and rk
    ]
    read = sorted({name for pair in compared for name in pair})
    if read:
        reads = []
        for name in read:
            read_set, decided, version = allowed[name]
            reads.append((read_set, [decided[f] for f in tables[name][2]], version))
        record_reads(spark, mesh, who, reads, "duplicates")
    return _compare(mesh, compared, tables, threshold, min_overlap)


# Feature pairs per generated projection (a larger one can exceed the JVM's method size).
_PAIRS_PER_PROJECTION = 100


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True)
class _Pair:
    """Two features of two sets on one entity, compared on the entities both have."""

    left: str
    right: str
    left_feature: str
    right_feature: str
    numeric: bool


def _compare(
    mesh: MeshDefinition,
    compared: list[tuple[str, str]],
    tables: dict[str, tuple[str, DataFrame, dict[str, str]]],
    threshold: float,
    min_overlap: int,
) -> list[Duplicate]:
    """The duplicates among the pairs of sets ``compared``, in one Spark job.

    Each pair of sets is joined on its entity's keys (their latest values); every pair of
    features becomes a row per shared entity ``(pair, both, eq, x, y)``, and one aggregate
    by pair counts the overlap and the equal values and gives the correlation. So the
    aggregate has the same few expressions however many features there are (an aggregate
    per pair of sets compiled hundreds: about 1 s per pair on the demo's mesh), and the
    expressions are SQL text.
    """
    from pyspark.sql import functions as F

    from mesh.join.columns import ident

    latest = {
        name: _latest(tables[name][1], mesh.entity(tables[name][0]).key_columns, tables[name][2])
        for name in sorted({name for pair in compared for name in pair})
    }
    pairs: list[_Pair] = []
    parts: list[DataFrame] = []
    for left, right in compared:
        entity, _, lk = tables[left]
        _, _, rk = tables[right]
        keys = mesh.entity(entity).key_columns
        # The same plan of a set's latest values in each of its pairs: Spark reuses shuffles.
        joined = _prefixed(latest[left], keys, "l__", lk).join(
            _prefixed(latest[right], keys, "r__", rk), on=keys, how="inner"
        )
        rows = []
        for lc, lt in lk.items():
            for rc, rt in rk.items():
                numeric = lt in NUMERIC and rt in NUMERIC
                if not numeric and lt != rt:
                    continue
                a, b = ident(f"l__{lc}"), ident(f"r__{rc}")
                both = f"({a} IS NOT NULL AND {b} IS NOT NULL)"
                if numeric:
                    a, b = f"CAST({a} AS DOUBLE)", f"CAST({b} AS DOUBLE)"
                x, y = (
                    (f"CASE WHEN {both} THEN {v} END" for v in (a, b))
                    if numeric
                    else ("CAST(NULL AS DOUBLE)", "CAST(NULL AS DOUBLE)")
                )
                rows.append(
                    f"struct({len(pairs)} AS pair, {both} AS both, ({both} AND {a} = {b}) AS eq, "
                    f"{x} AS x, {y} AS y)"
                )
                pairs.append(_Pair(left, right, lc, rc, numeric))
        parts += [
            joined.selectExpr(f"inline(array({', '.join(chunk)}))")
            for chunk in _chunks(rows, _PAIRS_PER_PROJECTION)
        ]
    if not parts:
        return []
    stacked = reduce(lambda a, b: a.unionAll(b), parts)
    # Not corr: it divides by a zero variance (DIVIDE_BY_ZERO under ANSI) when a column is
    # constant; try_divide makes that correlation null.
    measured = stacked.groupBy("pair").agg(
        F.expr("sum(CAST(both AS INT)) AS n"),
        F.expr("sum(CAST(eq AS INT)) AS eq"),
        F.expr("try_divide(covar_samp(x, y), stddev_samp(x) * stddev_samp(y)) AS c"),
    )
    found: list[Duplicate] = []
    for row in sorted(measured.collect(), key=lambda r: int(r["pair"])):
        pair = pairs[int(row["pair"])]
        overlap = int(row["n"] or 0)
        if overlap < min_overlap:
            continue
        rate = (row["eq"] or 0) / overlap
        names = (f"{pair.left}.{pair.left_feature}", f"{pair.right}.{pair.right_feature}")
        correlation = row["c"]
        if rate >= threshold:
            found.append(Duplicate("values", *names, "equality_rate", rate, threshold, overlap))
        elif pair.numeric and correlation is not None and abs(correlation) >= threshold:
            found.append(
                Duplicate("values", *names, "abs_correlation", abs(correlation), threshold, overlap)
            )
    return found


def find_duplicates(
    spark: SparkSession,
    mesh: MeshDefinition,
    *,
    threshold: float = 0.99,
    min_overlap: int = 10,
    identity: Identity | str | None = None,
) -> list[Duplicate]:
    """Definition duplicates (from conf) followed by value duplicates (from the catalog).

    Only among what the caller (``identity``, else the identity variable; none is refused)
    may see, and, for values, read.
    """
    from mesh.catalog.access import current_identity

    who = current_identity(mesh.standards, identity)
    return definition_duplicates(mesh, who) + value_duplicates(
        spark, mesh, threshold=threshold, min_overlap=min_overlap, identity=who
    )
