"""Windowed aggregations for both accuracies, point-in-time correct, without row explosion.

Conventions (what a value stamped ``t`` means):

* A window ``w`` at ``t`` is the half-open interval ``(t - w, t]`` of event time: a row with
  event time exactly ``t - w`` has left the window, a row at exactly ``t`` is in it.
* A row is used at ``t`` only once it is available: ``event <= t`` and, when the feature set
  excludes late data and the source records arrival time, ``arrival <= t``. A late row never
  changes values stamped before its arrival; it enters at its arrival and still leaves the
  window by its event time.
* ``snapshot``: values at every grid point ``t = k * interval`` (UTC epoch grid, so a daily
  grid is each day's end at midnight UTC) for every entity with at least one row in its
  longest window at ``t``. Windows must be multiples of the interval.
* ``event``: one value per entity at every availability time of one of its rows (the event
  time, or the arrival time when that is later and late data is excluded), also of a row that
  arrived after it had left every window (it counts in none of them). Rows available at the
  same instant are all included in each other's value, so ties give one output row.

How: time is mapped to integer positions (grid index, or microseconds for event accuracy).
Rows are reduced to partials per (keys, entry position, event position) after one shuffle on
the keys; rows that can count in no window are left out, except that an event row arriving
after it left every window is kept as a mark (no values, an event position before every
window) so that its arrival is an output time. Then, per partition:

* ``engine="kernel"`` (default whenever it supports every partial): ``mesh.compute.kernel``
  computes all windows of all entities with vectorised numpy passes over Arrow batches
  (``mapInArrow``): O(1) per output row and partial for counts, integer sums and ``last``,
  O(log w) for min/max and for floating-point sums and ``stddev`` (a segment tree, so each
  window combines only its own values), exact distinct counts; late rows cost nothing extra;
* ``engine="sql"`` (sums of decimals, aggregations of non-atomic columns, or when asked):
  one Spark window pass per entity. Counts and sums of integers and decimals are
  differences of two running totals (rows enter at their availability position and leave by
  their event position), ``last`` is a running maximum by time, and min/max/approximate
  distinct, sums of floating-point values and ``stddev`` use range frames over positions
  (with an explicit event-position check when late rows can be in a frame), so they combine
  only the window's own values. The only extra rows are the grid points themselves
  (snapshot) and one exit marker per late group.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from mesh.compute import kernel
from mesh.compute.partials import PartialPlan, finalize
from mesh.compute.sources import AR_US, AV_US, E_US, uses_arrival
from mesh.definitions import AggregationFeature, DataProduct, FeatureSet, format_duration
from mesh.definitions.columns import CREATED_TS, FEATURE_TS
from mesh.errors import ComputeError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

_US = 1_000_000
# Every instant a datetime (and so a source row's time) can hold lies within this span: a
# longer window or TTL covers the same rows as it, so it is computed as this span.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FIRST_US = (datetime.min.replace(tzinfo=timezone.utc) - _EPOCH) // timedelta(microseconds=1)
_LAST_US = (datetime.max.replace(tzinfo=timezone.utc) - _EPOCH) // timedelta(microseconds=1)
LONGEST_SPAN = timedelta(microseconds=_LAST_US - _FIRST_US + 1)


def instant(micros: int) -> datetime:
    """The UTC datetime ``micros`` after the epoch, clamped to the datetimes' range (a
    window's start before year 1, or its reach after year 9999, is the range's end)."""
    return _EPOCH + timedelta(microseconds=min(max(micros, _FIRST_US), _LAST_US))


def position_unit_us(fs: FeatureSet) -> int:
    """Microseconds per position: the grid interval (snapshot) or 1 (event)."""
    return int(fs.interval.total_seconds() * _US) if fs.accuracy == "snapshot" else 1


def window_positions(fs: FeatureSet) -> dict[str, int]:
    """Each window (by its text, e.g. ``7d``) in positions; checks snapshot windows fit the grid.

    A window longer than ``LONGEST_SPAN`` (``3000y``) covers every row a datetime can stamp,
    so it counts as that span, as the join caps a TTL."""
    for i, off_grid, w in fs.off_grid_windows()[:1]:
        raise ComputeError(
            f"Feature set `{fs.qualified_name}` (features[{i}].windows): window "
            f"{format_duration(w)} is not a multiple of the snapshot interval "
            f"{format_duration(fs.interval)}; use whole intervals (e.g. 1d, 7d) or a "
            "smaller `interval`.",
            feature_set=fs.qualified_name,
            feature=off_grid.name,
            window=format_duration(w),
            interval=format_duration(fs.interval),
        )
    unit = position_unit_us(fs)
    out: dict[str, int] = {}
    for feature in fs.features:
        if isinstance(feature, AggregationFeature):
            for w in feature.windows:
                span = min(w, LONGEST_SPAN)  # longer windows reach past every row anyway
                out[format_duration(w)] = -(-span // timedelta(microseconds=unit))
    return out


def ceil_div(column: str, unit: int) -> Column:
    """Exact integer ceil(column / unit) for bigint microseconds (also before 1970)."""
    from pyspark.sql import functions as F

    if unit == 1:
        return F.col(column)
    return F.expr(
        f"(({column} - pmod({column}, {unit})) div {unit}) + if(pmod({column}, {unit}) > 0, 1, 0)"
    )


def compute_aggregations(
    rows: DataFrame,
    fs: FeatureSet,
    product: DataProduct,
    keys: list[str],
    start_us: int,
    end_us: int,
    *,
    engine: str = "auto",
) -> DataFrame:
    """Feature rows of an aggregation feature set with ``start <= feature_ts < end``.

    ``rows`` is the source on the time line (see ``mesh.compute.sources.on_time_line``).
    Output: ``keys``, ``feature_ts``, ``created_ts``, then ``fs.output_names()``. ``created_ts``
    equals ``feature_ts`` except when late data is admitted (``exclude_late_data: false``) and
    the source records arrival time: then it is the latest arrival of a row in the longest
    window, when the value could first be known.

    ``engine``: ``kernel`` computes the windows with the vectorised kernel
    (``mesh.compute.kernel``, one Arrow pass per partition), ``sql`` with Spark window frames;
    ``auto`` (default) takes the kernel whenever it supports every partial (all but sums of
    decimals and aggregations of non-atomic columns). The kernel counts ``approx_distinct``
    exactly (sets of distinct values per group); ``sql`` uses Spark's HLL sketches.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    unit = position_unit_us(fs)
    windows = window_positions(fs)
    longest = max(windows.values())
    snapshot = fs.accuracy == "snapshot"
    late = uses_arrival(fs, product)
    track_arrival = product.created_timestamp is not None and not late
    k_start, k_end = -(-start_us // unit), -(-end_us // unit)

    # Event accuracy stamps a value at every row's availability, also for a row that arrived
    # after it had left every window: it counts nowhere, but is kept as a mark (below).
    marks = late and not snapshot
    # Only rows that can reach a point in [start, end); the raw-column filter is pushed down.
    first_event = instant((k_start - longest) * unit)
    last_event = instant((k_end - 1) * unit)
    event_col = F.col(product.event_timestamp)
    reaches = event_col > F.lit(first_event)
    if marks:
        arrival_col = F.col(str(product.created_timestamp))
        reaches = reaches | (arrival_col >= F.lit(instant(k_start * unit)))
    rows = rows.where(reaches & (event_col <= F.lit(last_event)))
    plan = PartialPlan(fs, rows)  # checks the features against the source's own columns
    rows = rows.withColumn("_entry", ceil_div(AV_US, unit)).withColumn("_pe", ceil_div(E_US, unit))
    entry, pe = F.col("_entry"), F.col("_pe")
    counts = entry <= pe + longest - 1  # a later arrival has left every window
    if marks:
        rows = rows.where(((pe >= k_start - longest + 1) | (entry >= k_start)) & (entry < k_end))
        # A mark adds no value to the partials; its event position is moved to just before its
        # entry's longest window, so one group per (entity, entry) holds all its marks. `counts`
        # reads the moved `_pe`: a mark still fails it (entry <= entry - 1), the others kept it.
        rows = rows.withColumn("_pe", F.when(counts, pe).otherwise(entry - longest))
    else:
        rows = rows.where((pe >= k_start - longest + 1) & (entry < k_end) & counts)
    types = dict(rows.dtypes)
    use_kernel = kernel_supports(plan, types) if engine == "auto" else engine == "kernel"
    aggs = plan.aggregations(types, distinct_sets=use_kernel, counted=counts if marks else None)
    if track_arrival:
        aggs.append(F.max(AR_US).alias("_ar_max"))
    # One shuffle on the keys: the grouping below and the window pass reuse this partitioning.
    groups = rows.repartition(*keys).groupBy(*keys, "_entry", "_pe").agg(*aggs)
    if use_kernel:
        spec = _kernel_spec(plan, groups, keys, snapshot, windows, k_start, k_end, track_arrival)
        return _kernel_frame(groups, spec, plan, keys, windows, unit, track_arrival)

    group_types = dict(groups.dtypes)
    placed = _place(groups, keys, snapshot, late, longest, k_start, k_end)
    by_pos = Window.partitionBy(*keys).orderBy("_k")
    running = by_pos.rangeBetween(Window.unboundedPreceding, Window.currentRow)
    entered, exited, k = F.col("_ent"), F.col("_ext"), F.col("_k")

    # Window functions are computed once (``windowed``, one select) and shared between
    # features; each (partial, window) value is an expression over their results.
    windowed: dict[str, Column] = {}

    def raw(name: str, column: Column) -> Column:
        windowed.setdefault(name, column.alias(name))
        return F.col(name)

    def combine(kind: str, p: str, size: int) -> Column:
        counted = (F.col("_entry") <= F.col("_pe") + size - 1) if late else F.lit(True)
        if kind == "n" or (kind == "s" and group_types[p] not in ("double", "float")):
            # Exact: a running total less what has left the window. Without late rows the
            # running total is the same for every window size.
            total = raw(
                f"{p}_run{size if late else ''}",
                F.sum(F.when(entered & counted, F.col(p))).over(running),
            )
            before = by_pos.rangeBetween(Window.unboundedPreceding, -size)
            gone = raw(f"{p}_gone{size}", F.sum(F.when(exited & counted, F.col(p))).over(before))
            return F.coalesce(total, F.lit(0)) - F.coalesce(gone, F.lit(0))
        if kind == "last":
            latest = raw(f"{p}_run", F.max(F.when(entered, F.col(p))).over(running))
            in_window = _pos_of(latest.getField("e"), unit) >= k - size + 1
            return F.when(in_window, latest.getField("v"))
        slide = by_pos.rangeBetween(-(size - 1), Window.currentRow)
        framed = raw(f"{p}_w{size}", _framed(kind, p, slide, late, k - size + 1))
        if kind != "m2":
            return framed
        # NaN or an infinity in the window make the spread NaN, as Spark's stddev does.
        mean = framed.getField("mean")
        finite = ~F.isnan(mean) & (F.abs(mean) != float("inf"))
        return F.when(finite, framed.getField("m2")).otherwise(F.lit(float("nan")))

    columns: list[Column] = []
    for feature in plan.features:
        for w in feature.windows:
            text = format_duration(w)
            values = {
                kind: combine(kind, plan.partial(feature, kind).name, windows[text])
                for kind in _needs(feature)
            }
            columns.append(finalize(feature, text, values))

    feature_ts = F.timestamp_micros(k * F.lit(unit))
    created = feature_ts
    if track_arrival:
        widest = by_pos.rangeBetween(-(longest - 1), Window.currentRow)
        arrived = F.timestamp_micros(F.max(F.when(entered, F.col("_ar_max"))).over(widest))
        created = F.greatest(feature_ts, F.coalesce(arrived, feature_ts))
    result = placed.select(
        *keys,
        "_out",
        "_k",
        feature_ts.alias(FEATURE_TS),
        created.alias(CREATED_TS),
        *windowed.values(),
    )
    return result.where("_out").select(*keys, FEATURE_TS, CREATED_TS, *columns)


def _needs(feature: AggregationFeature) -> tuple[str, ...]:
    from mesh.compute.partials import NEEDS

    return NEEDS[feature.function]


def _pos_of(micros: Column, unit: int) -> Column:
    from pyspark.sql import functions as F

    if unit == 1:
        return micros
    rem = F.pmod(micros, F.lit(unit))
    return F.floor((micros - rem) / F.lit(unit)).cast("bigint") + F.when(rem > 0, 1).otherwise(0)


def _framed(kind: str, partial: str, frame: object, late: bool, lowest: Column) -> Column:
    """min / max / approximate distinct / floating-point sum / spread of partials in a frame.

    A group that arrived on time (entry position == event position) is in the frame exactly
    while it is in the window, so plain frame aggregates serve it. A late group enters the
    frame by its arrival but must leave by its event time; the few late groups are collected
    with their event position and checked explicitly, then merged with the on-time result.
    """
    from pyspark.sql import functions as F

    value, entered = F.col(partial), F.col("_ent")
    if kind == "m2":
        return _spread(value, frame, late, lowest)
    on_time = entered & (F.col("_pe") == F.col("_entry")) if late else entered
    if kind == "s":
        plain = F.sum(F.when(on_time, value)).over(frame)  # type: ignore[arg-type]
    elif kind == "mn":
        plain = F.min(F.when(on_time, value)).over(frame)  # type: ignore[arg-type]
    elif kind == "mx":
        plain = F.max(F.when(on_time, value)).over(frame)  # type: ignore[arg-type]
    else:
        plain = F.hll_union_agg(F.when(on_time, value)).over(frame)  # type: ignore[arg-type]
    if not late:
        return F.hll_sketch_estimate(plain) if kind == "hll" else plain
    if kind == "s":
        plain = F.coalesce(plain, F.lit(0.0))
    late_items = F.collect_list(
        F.when(
            entered & (F.col("_pe") < F.col("_entry")) & value.isNotNull(),
            F.struct(F.col("_pe").alias("p"), value.alias("v")),
        )
    ).over(frame)  # type: ignore[arg-type]
    kept = F.transform(
        F.filter(late_items, lambda x: x.getField("p") >= lowest), lambda x: x.getField("v")
    )
    if kind == "s":
        return F.aggregate(kept, plain, lambda acc, x: acc + x)
    if kind == "mn":
        return F.least(plain, F.array_min(kept))
    if kind == "mx":
        return F.greatest(plain, F.array_max(kept))
    union = F.aggregate(
        kept, plain, lambda acc, x: F.when(acc.isNull(), x).otherwise(F.hll_union(acc, x))
    )
    return F.hll_sketch_estimate(union)


def _spread(value: Column, frame: object, late: bool, lowest: Column) -> Column:
    """``(n, mean, m2)`` of the window from the ``(n, mean, m2)`` partials in a frame.

    The window's partials are collected and merged one by one with Chan's formula, which
    adds deviations and never subtracts sums of squares. Late groups are checked as above.
    """
    from pyspark.sql import functions as F

    entered = F.col("_ent") & (value.getField("n") > 0)
    item = F.struct(
        F.col("_pe").alias("p"),
        value.getField("n").cast("double").alias("n"),
        value.getField("mean").alias("mean"),
        value.getField("m2").alias("m2"),
    )
    items = F.collect_list(F.when(entered, item)).over(frame)  # type: ignore[arg-type]
    if late:
        items = F.filter(items, lambda x: x.getField("p") >= lowest)
    start = F.struct(F.lit(0.0).alias("n"), F.lit(0.0).alias("mean"), F.lit(0.0).alias("m2"))

    def merge(acc: Column, x: Column) -> Column:
        # From the empty start (n = 0) this gives x itself.
        a_n, b_n = acc.getField("n"), x.getField("n")
        both = a_n + b_n
        delta = x.getField("mean") - acc.getField("mean")
        return F.struct(
            both.alias("n"),
            (acc.getField("mean") + delta * b_n / both).alias("mean"),
            (acc.getField("m2") + x.getField("m2") + delta * delta * a_n * b_n / both).alias("m2"),
        )

    return F.aggregate(items, start, merge)


def _place(
    groups: DataFrame,
    keys: list[str],
    snapshot: bool,
    late: bool,
    longest: int,
    k_start: int,
    k_end: int,
) -> DataFrame:
    """Rows at the positions the window pass needs: entries, output points, late exits.

    Columns added: ``_k`` (position), ``_ent`` (the group's partials enter here), ``_ext``
    (they leave the running totals from here), ``_out`` (an output point). Output points of
    a snapshot are the grid points within the longest window after any entry, generated once
    per entity (each group fills the gap up to the next group's entry).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    entry, pe = F.col("_entry"), F.col("_pe")
    order = Window.partitionBy(*keys).orderBy("_entry", "_end")
    groups = groups.withColumn("_end", pe + longest - 1).withColumn(
        "_next", F.lead("_entry").over(order)
    )
    last_of_tie = F.col("_next").isNull() | (F.col("_next") > entry)
    in_range = (entry >= k_start) & (entry < k_end)
    if not snapshot and not late:
        return groups.select(
            "*",
            entry.alias("_k"),
            F.lit(True).alias("_ent"),
            F.lit(True).alias("_ext"),
            (last_of_tie & in_range).alias("_out"),
        )

    def point(k: Column, ent: Column, ext: Column, out: Column) -> Column:
        return F.struct(
            k.cast("bigint").alias("k"), ent.alias("ent"), ext.alias("ext"), out.alias("out")
        )

    if snapshot:
        reach = F.max("_end").over(order.rowsBetween(Window.unboundedPreceding, 0))
        groups = groups.withColumn("_reach", reach)
        seg_end = F.least(
            F.coalesce(F.col("_next") - 1, F.col("_reach")), F.col("_reach"), F.lit(k_end - 1)
        )
        first_out = in_range & (entry <= seg_end)
        lo = F.greatest(entry + 1, F.lit(k_start))
        fill = F.transform(
            F.filter(F.sequence(lo, F.greatest(lo, seg_end)), lambda x: x <= seg_end),
            lambda x: point(x, F.lit(False), F.lit(False), F.lit(True)),
        )
    else:
        first_out = last_of_tie & in_range
        fill = None
    parts = [F.array(point(entry, F.lit(True), pe == entry, first_out))]
    if fill is not None:
        parts.append(fill)
    if late:
        exit_marker = point(pe, F.lit(False), F.lit(True), F.lit(False))
        parts.append(F.filter(F.array(exit_marker), lambda _: pe < entry))
    placed = groups.withColumn("_pl", F.explode(F.concat(*parts)))
    return placed.select(
        "*", *[F.col("_pl").getField(f).alias(f"_{f}") for f in ("k", "ent", "ext", "out")]
    ).drop("_pl")


_SUMMABLE = ("tinyint", "smallint", "int", "bigint", "float", "double")
_ATOMIC = (*_SUMMABLE, "decimal", "string", "date", "timestamp", "timestamp_ntz", "boolean")


def kernel_supports(plan: PartialPlan, source_types: dict[str, str]) -> bool:
    """True when the vectorised kernel computes every partial of ``plan`` exactly.

    ``source_types``: the source's ``DataFrame.dtypes``. Not supported: sums of decimals
    (Spark's decimal sum semantics) and min/max/last/distinct of non-atomic columns.
    """

    def base(column: str | None) -> str:
        return source_types.get(column or "", "int").split("(")[0]

    for p in plan.partials.values():
        dtype = base(p.column)
        if p.kind in ("s", "m2") and dtype not in _SUMMABLE:
            return False
        if p.kind in ("mn", "mx", "last", "hll") and dtype not in _ATOMIC:
            return False
    return True


def _kernel_outputs(plan: PartialPlan, windows: dict[str, int]) -> dict[str, tuple[str, str, int]]:
    """Kernel column name -> (partial, kind, window size) for every feature window."""
    out: dict[str, tuple[str, str, int]] = {}
    for feature in plan.features:
        for w in feature.windows:
            size = windows[format_duration(w)]
            for kind in _needs(feature):
                p = plan.partial(feature, kind).name
                out.setdefault(_kernel_column(p, kind, size), (p, kind, size))
    return out


def _kernel_column(partial: str, kind: str, size: int) -> str:
    """The kernel's column for a partial over a window (``last`` is one running column)."""
    return f"{partial}_run" if kind == "last" else f"{partial}_w{size}"


def _kernel_spec(
    plan: PartialPlan,
    groups: DataFrame,
    keys: list[str],
    snapshot: bool,
    windows: dict[str, int],
    k_start: int,
    k_end: int,
    track_arrival: bool,
) -> tuple[kernel.KernelSpec, StructType]:
    """The kernel's spec and the Spark schema of what it returns."""
    from pyspark.sql import types as T

    types = {f.name: f.dataType for f in groups.schema.fields}
    fields = [T.StructField(k, types[k]) for k in keys]
    fields.append(T.StructField(kernel.POSITION, T.LongType(), False))
    if track_arrival:
        fields.append(T.StructField(kernel.CREATED_US, T.LongType()))
    outputs = []
    for name, (partial, kind, size) in _kernel_outputs(plan, windows).items():
        if kind in ("n", "hll"):
            dtype: T.DataType = T.LongType()
        else:
            dtype = T.DoubleType() if kind == "m2" else types[partial]
        fields.append(T.StructField(name, dtype))
        outputs.append(kernel.Output(name, partial, kind, size))
    schema = T.StructType(fields)
    spec = kernel.KernelSpec(
        keys=tuple(keys),
        snapshot=snapshot,
        k_start=k_start,
        k_end=k_end,
        longest=max(windows.values()),
        outputs=tuple(outputs),
        track_arrival=track_arrival,
        columns=tuple(schema.fieldNames()),
    )
    return spec, schema


def _kernel_frame(
    groups: DataFrame,
    spec_schema: tuple[kernel.KernelSpec, StructType],
    plan: PartialPlan,
    keys: list[str],
    windows: dict[str, int],
    unit: int,
    track_arrival: bool,
) -> DataFrame:
    """Run the kernel on each partition (sorted by the keys), then finalize the features."""
    from functools import partial

    from pyspark.sql import functions as F

    spec, schema = spec_schema
    computed = groups.sortWithinPartitions(*keys).mapInArrow(
        partial(kernel.run_partition, spec=spec), schema
    )
    k = F.col(kernel.POSITION)
    feature_ts = F.timestamp_micros(k * F.lit(unit))
    columns: list[Column] = []
    for feature in plan.features:
        for w in feature.windows:
            text = format_duration(w)
            size = windows[text]
            values: dict[str, Column] = {}
            for kind in _needs(feature):
                column = F.col(_kernel_column(plan.partial(feature, kind).name, kind, size))
                if kind == "last":
                    in_window = _pos_of(column.getField("e"), unit) >= k - size + 1
                    values[kind] = F.when(in_window, column.getField("v"))
                else:
                    values[kind] = column
            columns.append(finalize(feature, text, values))
    created = feature_ts
    if track_arrival:
        arrived = F.timestamp_micros(F.col(kernel.CREATED_US))
        created = F.greatest(feature_ts, F.coalesce(arrived, feature_ts))
    return computed.select(*keys, feature_ts.alias(FEATURE_TS), created.alias(CREATED_TS), *columns)
