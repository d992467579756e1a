"""Compute and refresh runs over the example mesh (conf/) with tiny hand-made data products."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from mesh.cli import main
from mesh.compute import (
    compute_feature_set,
    compute_targets,
    feature_rows,
    feature_table_path,
    refresh_feature_set,
    refresh_targets,
)
from mesh.compute import refresh as refresh_module
from mesh.compute.refresh import _is_baseline
from mesh.compute.sources import read_source
from mesh.definitions import AggregationFeature, MeshDefinition, load_mesh
from mesh.errors import ComputeError
from mesh.storage import CommitInfo, open_table

CONF = Path(__file__).resolve().parents[2] / "conf"
D0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
TX = (
    "tx_id bigint, customer_id bigint, merchant_id bigint, event_ts timestamp, "
    "ingested_ts timestamp, amount double, currency string, channel string, is_refund boolean"
)


def _t(day: int, hour: float) -> datetime:
    return (D0 + timedelta(days=day, hours=hour)).replace(tzinfo=None)


def _transactions(day: int, first_id: int) -> list[tuple[Any, ...]]:
    """Three customers' transactions on one day; one arrives a day late."""
    return [
        (first_id, 1, 10, _t(day, 9), _t(day, 9.1), 20.0, "EUR", "online", False),
        (first_id + 1, 1, 11, _t(day, 15), _t(day, 15.2), 5.5, "EUR", "store", True),
        (first_id + 2, 2, 10, _t(day, 11), _t(day + 1, 2), 7.0, "EUR", "store", False),
        (first_id + 3, 3, 12, _t(day, 20), _t(day, 20), 100.0, "EUR", "online", False),
    ]


def _seed(spark: Any, path: str, rows: list[tuple[Any, ...]], schema: str) -> None:
    open_table(spark, path).create(
        spark.createDataFrame(rows, schema), CommitInfo(run_id="seed", operation="seed")
    )


@pytest.fixture(scope="module")
def warehouse(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = str(tmp_path_factory.mktemp("warehouse"))
    tx = [r for day in range(3) for r in _transactions(day, 100 * day)]
    _seed(spark, f"{root}/products/payments/transactions", tx, TX)
    _seed(
        spark,
        f"{root}/products/support/tickets",
        [
            (1, 1, _t(0, 10), _t(0, 10.5), "chat", 3, 2.0),
            (2, 1, _t(1, 10), _t(1, 10.5), "mail", 1, None),
            (3, 2, _t(2, 8), _t(2, 9), "chat", 2, 4.5),
        ],
        "ticket_id bigint, customer_id bigint, opened_ts timestamp, ingested_ts timestamp, "
        "channel string, priority int, csat double",
    )
    _seed(
        spark,
        f"{root}/products/customers/customer_profiles",
        [
            (1, _t(0, 1), _t(0, 1), "DE", "gold", 1980, 1000.0),
            (1, _t(1, 1), _t(1, 5), "DE", "platinum", 1980, 5000.0),
            (2, _t(0, 2), _t(0, 2), "FR", "basic", 1995, 300.0),
        ],
        "customer_id bigint, updated_ts timestamp, ingested_ts timestamp, country string, "
        "segment string, birth_year int, credit_limit double",
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("MESH_WAREHOUSE", root)
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def computed(spark: Any, warehouse: str) -> dict[str, Any]:
    mesh = load_mesh(CONF)
    lines: list[str] = []
    results = compute_targets(
        spark, mesh, ["customers", "payments", "support"], progress=lines.append
    )
    return {"mesh": mesh, "results": {r.feature_set: r for r in results}, "lines": lines}


def test_every_domain_feature_set_is_computed_in_one_commit(spark: Any, computed: Any) -> None:
    mesh, results = computed["mesh"], computed["results"]
    assert sorted(results) == sorted(mesh.feature_sets)
    for name, result in results.items():
        fs = mesh.feature_sets[name]
        table = open_table(spark, feature_table_path(mesh, fs))
        history = table.history()
        assert [h.version for h in history] == [0] and result.delta_version == 0
        info = history[0].info
        assert info is not None
        assert (info.run_id, info.operation, info.definition_hash) == (
            result.run_id,
            "compute",
            mesh.data_hash(fs),
        )
        assert info.extra["feature_set"] == name and info.extra["semantic_version"] == fs.version
        assert info.extra["rows_written"] == result.rows == table.read().count() > 0
        assert dict(info.source_versions) == {f"{fs.domain}.{fs.source}": 0}
        assert table.read().columns == [
            *mesh.entity(fs.entity).key_columns,
            "feature_ts",
            "created_ts",
            *fs.output_names(),
        ]


def test_snapshot_table_holds_daily_values(spark: Any, computed: Any) -> None:
    mesh = computed["mesh"]
    fs = mesh.feature_sets["payments.customer_spend"]
    rows = (
        open_table(spark, feature_table_path(mesh, fs))
        .read()
        .where("customer_id = 2")
        .orderBy("feature_ts")
        .collect()
    )
    # Customer 2's rows each arrive at 02:00 the next day: a day's row is first counted at
    # the end of the following day, and never in that day's 1d window (event time too old).
    assert [(r.feature_ts.day, r.tx_count_1d, r.tx_count_7d) for r in rows] == [
        (3, 0, 1),
        (4, 0, 2),
        (5, 0, 3),
    ]


def test_rerunning_a_range_replaces_exactly_that_range(spark: Any, computed: Any) -> None:
    mesh = computed["mesh"]
    fs = mesh.feature_sets["support.ticket_stats"]
    table = open_table(spark, feature_table_path(mesh, fs))
    before = table.read()
    lines: list[str] = []
    result = compute_feature_set(
        spark,
        mesh,
        fs.qualified_name,
        start=D0 + timedelta(days=1),
        end=D0 + timedelta(days=3),
        chunk=timedelta(days=1),
        progress=lines.append,
    )
    assert len(lines) == 2 and all("rows, elapsed" in line and "ETA" in line for line in lines)
    assert table.latest_version() == result.delta_version == 1
    info = table.history()[0].info
    assert info is not None and [c["rows"] for c in info.extra["chunks"]] == [1, 1]
    assert_df_equality(table.read(), before, ignore_row_order=True, ignore_nullable=True)
    # The same range as an ISO string and a date (a notebook's forms): the same commit range.
    again = compute_feature_set(
        spark, mesh, fs.qualified_name, start="2024-03-02", end=date(2024, 3, 4), progress=None
    )
    again_info = table.history()[0].info
    assert again.delta_version == 2 and again_info is not None
    assert (again_info.range_start, again_info.range_end) == (info.range_start, info.range_end)
    assert_df_equality(table.read(), before, ignore_row_order=True, ignore_nullable=True)
    with pytest.raises(ComputeError, match=r"^end: '3 March' is not an ISO date or time"):
        compute_feature_set(spark, mesh, fs.qualified_name, start="2024-03-02", end="3 March")


def test_refresh_after_one_new_day_touches_only_that_day(spark: Any, computed: Any) -> None:
    mesh = computed["mesh"]
    fs = mesh.feature_sets["payments.customer_spend"]
    table = open_table(spark, feature_table_path(mesh, fs))
    before = table.read()
    source = open_table(spark, f"{mesh.warehouse}/products/payments/transactions")
    new_day = [r for r in _transactions(3, 300) if r[2] != 10 or r[1] != 2]  # all on time
    source.append(spark.createDataFrame(new_day, TX), CommitInfo(run_id="day3", operation="seed"))

    results = refresh_targets(spark, mesh, ["payments.customer_spend"], progress=None)
    [result] = [r for r in results if r.feature_set == fs.qualified_name]
    info = table.history()[0].info
    assert info is not None and info.operation == "refresh"
    # The only grid point the new day reaches is its own end, 2024-03-05 00:00.
    assert (info.range_start, info.range_end) == (D0 + timedelta(days=4), D0 + timedelta(days=5))
    assert dict(info.source_versions) == {"payments.transactions": 1}
    assert info.extra["refreshed_from_source_version"] == 0
    assert info.extra["rows_written"] == result.rows == 3
    untouched = "feature_ts < '2024-03-05'"
    assert_df_equality(
        table.read().where(untouched),
        before.where(untouched),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # The refreshed table equals a full recomputation from the new source version.
    full = feature_rows(spark, mesh, fs, start=D0, end=D0 + timedelta(days=5))
    assert_df_equality(
        table.read(), full, ignore_row_order=True, ignore_nullable=True, ignore_column_order=True
    )
    # Nothing changed since: a second refresh commits nothing.
    again = refresh_targets(spark, mesh, ["payments.customer_spend"], progress=None)
    assert again[0].delta_version is None and "unchanged" in again[0].note


def test_refresh_accepts_the_data_hash_an_earlier_engine_recorded(
    spark: Any, computed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mesh = computed["mesh"]
    fs = mesh.feature_sets["support.ticket_events"].model_copy(update={"name": "events_legacy"})
    # The commit an earlier engine wrote: its data hash covered the set's own fields only.
    with monkeypatch.context() as patched:
        patched.setattr(MeshDefinition, "data_hash", lambda self, fs: fs.legacy_data_hash())
        written = compute_feature_set(spark, mesh, fs, progress=None)
    info = open_table(spark, written.path).history()[0].info
    assert info is not None and info.definition_hash == fs.legacy_data_hash()
    result = refresh_feature_set(spark, mesh, fs, progress=None)
    assert result.delta_version is None
    assert "unchanged since version" in result.note and "taken as unchanged" in result.note


def test_refresh_of_a_table_an_earlier_engine_named_1y_asks_for_a_major(
    spark: Any, computed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mesh = computed["mesh"]
    stats = mesh.feature_sets["support.ticket_stats"]
    tickets = stats.features[0]
    year = tickets.model_copy(update={"windows": (*tickets.windows, timedelta(days=365))})
    fs = stats.model_copy(update={"name": "stats_legacy", "features": (year,)})
    assert fs.legacy_output_names() != fs.output_names()  # tickets_1y / tickets_365d
    with monkeypatch.context() as patched:  # the commit of an earlier engine
        patched.setattr(MeshDefinition, "data_hash", lambda self, fs: fs.legacy_data_hash())
        compute_feature_set(spark, mesh, fs, progress=None)
    with pytest.raises(ComputeError) as info:
        refresh_feature_set(spark, mesh, fs, progress=None)
    assert info.value.params["expected_version"] == "2.0.0"
    assert "`_365d`" in info.value.message


def test_refresh_refuses_a_changed_definition(spark: Any, computed: Any) -> None:
    mesh = computed["mesh"]
    fs = mesh.feature_sets["support.ticket_stats"]
    changed = fs.model_copy(update={"exclude_late_data": False})
    mesh.feature_sets[fs.qualified_name] = changed
    try:
        with pytest.raises(ComputeError) as info:
            refresh_targets(spark, mesh, [fs.qualified_name], progress=None)
    finally:
        mesh.feature_sets[fs.qualified_name] = fs
    assert info.value.params["recorded_hash"] == mesh.data_hash(fs)
    assert info.value.params["current_hash"] == mesh.data_hash(changed)
    assert info.value.params["removed"] == []
    assert f"run `mesh compute {fs.qualified_name}` (no --start/--end" in info.value.message


def test_refresh_after_a_removed_feature_asks_only_for_a_major(spark: Any, quiet_mesh: Any) -> None:
    # A full compute under the same version is refused too (the table holds the column), so
    # the hint offers only the new major version.
    base = quiet_mesh.feature_sets["payments.customer_spend"]
    compute_feature_set(spark, quiet_mesh, base, progress=None)
    fewer = base.model_copy(update={"features": base.features[1:]})
    with pytest.raises(ComputeError) as refused:
        refresh_feature_set(spark, quiet_mesh, fewer, progress=None)
    removed = ["tx_count_1d", "tx_count_7d", "tx_count_30d"]
    assert refused.value.params["removed"] == removed
    assert "set version to 2.0.0" in refused.value.message
    assert "mesh compute" not in refused.value.message
    with pytest.raises(ComputeError, match=r"set version to 2\.0\.0"):
        compute_feature_set(spark, quiet_mesh, fewer, progress=None)


@pytest.fixture
def quiet_mesh(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A warehouse of its own with transactions on days 0-2 only."""
    monkeypatch.setenv("MESH_WAREHOUSE", str(tmp_path))
    tx = [r for day in range(3) for r in _transactions(day, 100 * day)]
    _seed(spark, f"{tmp_path}/products/payments/transactions", tx, TX)
    return load_mesh(CONF)


def _append_transactions(spark: Any, mesh: Any, rows: list[tuple[Any, ...]]) -> None:
    source = open_table(spark, f"{mesh.warehouse}/products/payments/transactions")
    source.append(spark.createDataFrame(rows, TX), CommitInfo(run_id="more", operation="seed"))


def _assert_table_is_a_full_recompute(spark: Any, mesh: Any, fs: Any) -> None:
    assert_df_equality(
        open_table(spark, feature_table_path(mesh, fs)).read(),
        feature_rows(spark, mesh, fs),  # default range: all source data, as `mesh compute`
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_column_order=True,
    )


@pytest.mark.parametrize(
    "name", ["payments.customer_spend", "payments.tx_events", "payments.tx_amounts"]
)
def test_refresh_after_quiet_days_equals_a_full_recompute(
    spark: Any, quiet_mesh: Any, name: str
) -> None:
    # No transactions on days 3 and 4. The compute stops just after the data (its last grid
    # point is 2024-03-05), so the snapshot at 2024-03-06, where days 0-2 are still in the
    # 7d/30d windows, was never written; day 5's rows first reach 2024-03-07.
    fs = quiet_mesh.feature_sets[name]
    computed = compute_feature_set(spark, quiet_mesh, fs, progress=None)
    _append_transactions(spark, quiet_mesh, _transactions(5, 500))
    result = refresh_feature_set(spark, quiet_mesh, fs, progress=None)
    assert (result.operation, result.delta_version) == ("refresh", 1)
    _assert_table_is_a_full_recompute(spark, quiet_mesh, fs)
    if fs.accuracy == "snapshot":
        assert result.start == computed.end == D0 + timedelta(days=5)
        table = open_table(spark, feature_table_path(quiet_mesh, fs)).read()
        quiet = table.where("feature_ts = '2024-03-06'").orderBy("customer_id").collect()
        assert [(r.customer_id, r.tx_count_1d, r.tx_count_7d) for r in quiet] == [
            (1, 0, 6),
            (2, 0, 3),
            (3, 0, 3),
        ]


@pytest.mark.parametrize("name", ["payments.customer_spend", "payments.tx_amounts"])
def test_rows_of_deleted_source_rows_do_not_outlive_them(
    spark: Any, quiet_mesh: Any, name: str
) -> None:
    # Day 5's rows are appended, refreshed in, then deleted from the source: a refresh, and
    # then a full compute, leave no value that only they made (past the data's new end).
    from deltalake import DeltaTable

    fs = quiet_mesh.feature_sets[name]
    compute_feature_set(spark, quiet_mesh, fs, progress=None)
    _append_transactions(spark, quiet_mesh, _transactions(5, 500))
    refresh_feature_set(spark, quiet_mesh, fs, progress=None)
    table = open_table(spark, feature_table_path(quiet_mesh, fs))
    assert table.read().where("feature_ts >= '2024-03-06'").count() > 0
    DeltaTable(f"{quiet_mesh.warehouse}/products/payments/transactions").delete("tx_id >= 500")
    refresh_feature_set(spark, quiet_mesh, fs, progress=None)
    full = feature_rows(spark, quiet_mesh, fs)
    # Up to the end of the data left, the table is a full recompute. After it, a snapshot
    # set keeps the grid points the earlier runs wrote (known limitation: the decaying
    # windows of the rows left, up to the earlier runs' end), but no value of a deleted row.
    end = full.agg({"feature_ts": "max"}).first()[0]
    assert_df_equality(
        table.read().where(F.col("feature_ts") <= end),
        full,
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_column_order=True,
    )
    after = table.read().where(F.col("feature_ts") > end)
    if fs.is_aggregation:
        assert after.where("tx_count_1d > 0").count() == 0  # no day-5 transaction counted
    else:
        assert after.count() == 0
    # A full compute over a table holding such rows removes them too.
    _append_transactions(spark, quiet_mesh, _transactions(6, 600))
    compute_feature_set(spark, quiet_mesh, fs, progress=None)
    DeltaTable(f"{quiet_mesh.warehouse}/products/payments/transactions").delete("tx_id >= 600")
    compute_feature_set(spark, quiet_mesh, fs, progress=None)
    _assert_table_is_a_full_recompute(spark, quiet_mesh, fs)


def test_refresh_of_a_late_row_after_quiet_days_equals_a_full_recompute(
    spark: Any, quiet_mesh: Any
) -> None:
    # 1d/3d windows. The late row (event day 1, arriving day 7) counts in no value, but it moves
    # the end of the full range to 2024-03-10: a full recompute now also writes 2024-03-06, where
    # day 2's rows are still in the 3d window, though the row's own reach ends before that.
    count = AggregationFeature.model_validate(
        {
            "kind": "aggregation",
            "name": "tx_count",
            "function": "count",
            "windows": ["1d", "3d"],
            "pii": "none",
            "description": "Transactions",
        }
    )
    base = quiet_mesh.feature_sets["payments.customer_spend"]
    fs = base.model_copy(update={"name": "short_counts", "features": (count,)})
    compute_feature_set(spark, quiet_mesh, fs, progress=None)
    late = (900, 1, 10, _t(1, 12), _t(7, 12), 1.0, "EUR", "online", False)
    _append_transactions(spark, quiet_mesh, [late])
    result = refresh_feature_set(spark, quiet_mesh, fs, progress=None)
    assert result.delta_version == 1, result.note
    assert feature_rows(spark, quiet_mesh, fs).where("feature_ts = '2024-03-06'").count() == 3
    _assert_table_is_a_full_recompute(spark, quiet_mesh, fs)


def test_refresh_of_a_row_arriving_after_it_left_every_window_stamps_its_arrival(
    spark: Any, quiet_mesh: Any
) -> None:
    # tx_events (event accuracy, 1h/1d windows): customer 3's row of day 0 08:00 arrives on
    # day 2 at 10:00, inside the range already computed. It counts in no window, but customer 3
    # gets a value at its arrival, and refresh recomputes that instant.
    fs = quiet_mesh.feature_sets["payments.tx_events"]
    compute_feature_set(spark, quiet_mesh, fs, progress=None)
    late = (900, 3, 12, _t(0, 8), _t(2, 10), 1.0, "EUR", "store", False)
    _append_transactions(spark, quiet_mesh, [late])
    result = refresh_feature_set(spark, quiet_mesh, fs, progress=None)
    arrival = D0 + timedelta(days=2, hours=10)
    assert (result.operation, result.start, result.end, result.rows) == (
        "refresh",
        arrival,
        arrival + timedelta(microseconds=1),
        1,
    )
    table = open_table(spark, feature_table_path(quiet_mesh, fs)).read()
    rows = table.where("customer_id = 3 AND feature_ts = '2024-03-03 10:00:00'").collect()
    # Only day 1's 20:00 transaction is in the day before.
    assert [(r.tx_count_1h, r.tx_count_1d, r.last_channel_1d) for r in rows] == [(0, 1, "online")]
    _assert_table_is_a_full_recompute(spark, quiet_mesh, fs)


def test_unknown_target_is_a_one_line_cli_error(warehouse: str, capsys: Any) -> None:
    code = main(["--conf", str(CONF), "compute", "payments.nope"])
    assert code == 1
    assert "target 'payments.nope' is neither a feature set nor a domain" in capsys.readouterr().err


def test_cli_computes_a_feature_set(spark: Any, warehouse: str, capsys: Any) -> None:
    code = main(
        [
            "compute",
            "--conf",
            str(CONF),
            "customers.profile",
            "--start",
            "2024-03-01",
            "--end",
            "2024-03-02",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        "customers.profile: compute [2024-03-01T00:00:00+00:00, 2024-03-02T00:00:00+00:00)" in out
    )


def test_bad_chunk_is_refused(warehouse: str, capsys: Any) -> None:
    assert main(["refresh", "--conf", str(CONF), "--chunk", "weekly"]) == 1
    assert "--chunk: 'weekly' is not a duration" in capsys.readouterr().err


def _with_version(fs: Any, version: str, features: tuple[Any, ...]) -> Any:
    return fs.model_copy(update={"version": version, "features": features})


REFUNDS = AggregationFeature.model_validate(
    {
        "kind": "aggregation",
        "name": "refund_amount",
        "function": "sum",
        "column": "amount",
        "filter": "is_refund",
        "windows": ["7d"],
        "pii": "none",
        "description": "Refunded amount",
    }
)


def test_a_minor_version_widens_the_table_in_the_same_commit(spark: Any, quiet_mesh: Any) -> None:
    base = quiet_mesh.feature_sets["payments.customer_spend"]
    compute_feature_set(spark, quiet_mesh, base, progress=None)
    minor = _with_version(base, "1.1.0", (*base.features, REFUNDS))
    assert feature_table_path(quiet_mesh, minor) == feature_table_path(quiet_mesh, base)
    # Only part of the history: the other rows read the new feature as null.
    result = compute_feature_set(
        spark,
        quiet_mesh,
        minor,
        start=D0 + timedelta(days=2),
        end=D0 + timedelta(days=4),
        progress=None,
    )
    table = open_table(spark, feature_table_path(quiet_mesh, minor))
    assert result.delta_version == 1 and [h.version for h in table.history()] == [1, 0]
    assert table.schema().names == [*table.read(version=0).columns, "refund_amount_7d"]
    stored = table.read()
    inside = "feature_ts >= '2024-03-03' AND feature_ts < '2024-03-05'"
    assert stored.where(f"NOT ({inside}) AND refund_amount_7d IS NOT NULL").count() == 0
    assert stored.where("refund_amount_7d IS NOT NULL").count() > 0
    assert_df_equality(
        stored.where(inside),
        feature_rows(spark, quiet_mesh, minor).where(inside),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(
        stored.where(f"NOT ({inside})").drop("refund_amount_7d"),
        table.read(version=0).where(f"NOT ({inside})"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # The whole history of the minor version: a full recompute.
    compute_feature_set(spark, quiet_mesh, minor, progress=None)
    _assert_table_is_a_full_recompute(spark, quiet_mesh, minor)


def test_a_removed_feature_is_not_written_into_the_major_table(spark: Any, quiet_mesh: Any) -> None:
    base = quiet_mesh.feature_sets["payments.customer_spend"]
    compute_feature_set(spark, quiet_mesh, base, progress=None)
    fewer = _with_version(base, "1.1.0", (*base.features[1:], REFUNDS))
    with pytest.raises(ComputeError) as refused:
        compute_feature_set(spark, quiet_mesh, fewer, progress=None)
    assert refused.value.params["removed"] == ["tx_count_1d", "tx_count_7d", "tx_count_30d"]
    assert refused.value.params["expected_version"] == "2.0.0"
    assert open_table(spark, feature_table_path(quiet_mesh, base)).latest_version() == 0


def test_refresh_after_a_minor_version_equals_a_full_recompute(spark: Any, quiet_mesh: Any) -> None:
    base = quiet_mesh.feature_sets["payments.customer_spend"]
    compute_feature_set(spark, quiet_mesh, base, progress=None)
    _append_transactions(spark, quiet_mesh, _transactions(3, 300))
    minor = _with_version(base, "1.1.0", (*base.features, REFUNDS))
    result = refresh_feature_set(spark, quiet_mesh, minor, progress=None)
    assert result.delta_version == 1, result.note
    _assert_table_is_a_full_recompute(spark, quiet_mesh, minor)
    # The refreshed minor version is the baseline now: new data is refreshed as usual.
    _append_transactions(spark, quiet_mesh, _transactions(4, 400))
    again = refresh_feature_set(spark, quiet_mesh, minor, progress=None)
    assert (again.operation, again.delta_version) == ("refresh", 2), again.note
    _assert_table_is_a_full_recompute(spark, quiet_mesh, minor)


def test_refresh_after_a_partial_range_run_equals_a_full_recompute(
    spark: Any, quiet_mesh: Any
) -> None:
    fs = quiet_mesh.feature_sets["payments.customer_spend"]
    compute_feature_set(spark, quiet_mesh, fs, progress=None)
    # A correction on day 1 lands, then a run over day 4 only reads the new source version:
    # the correction's values (days 1-31) are not in the table.
    _append_transactions(
        spark, quiet_mesh, [(901, 1, 10, _t(1, 13), _t(1, 13), 50.0, "EUR", "online", False)]
    )
    partial = compute_feature_set(
        spark,
        quiet_mesh,
        fs,
        start=D0 + timedelta(days=4),
        end=D0 + timedelta(days=5),
        progress=None,
    )
    assert partial.source_versions == {"payments.transactions": 1}
    result = refresh_feature_set(spark, quiet_mesh, fs, progress=None)
    assert (result.operation, result.delta_version) == ("refresh", 2), result.note
    _assert_table_is_a_full_recompute(spark, quiet_mesh, fs)
    # The refresh read everything since the full run; nothing is left for the next one.
    again = refresh_feature_set(spark, quiet_mesh, fs, progress=None)
    assert again.delta_version is None and "unchanged" in again.note


@pytest.fixture
def versions_read(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The source versions refresh reads from now on (None: the current one)."""
    read: list[int | None] = []
    real = refresh_module.read_source

    def recording(*args: Any, **kwargs: Any) -> Any:
        read.append(kwargs.get("version"))
        return real(*args, **kwargs)

    monkeypatch.setattr(refresh_module, "read_source", recording)
    return read


def test_a_run_whose_range_covers_all_source_data_is_a_refresh_baseline(
    spark: Any, quiet_mesh: Any, versions_read: list[int | None]
) -> None:
    fs = quiet_mesh.feature_sets["payments.customer_spend"]
    # [D0, D0 + 5d) is exactly the range of all source data (see the quiet days test).
    compute_feature_set(spark, quiet_mesh, fs, start=D0, end=D0 + timedelta(days=5), progress=None)
    table = open_table(spark, feature_table_path(quiet_mesh, fs))
    info = table.history()[0].info
    assert info is not None and info.extra["synced"] is True
    # A run without the mark (a publish commit, a table written before it existed): refresh
    # checks its range against the data of the source version it read.
    bare = {k: v for k, v in info.extra.items() if k != "synced"}
    unmarked = dataclasses.replace(info, extra=bare)
    src = read_source(spark, quiet_mesh, fs)
    assert _is_baseline(spark, quiet_mesh, fs, src, unmarked)
    short = dataclasses.replace(unmarked, range_end=D0 + timedelta(days=4))
    assert not _is_baseline(spark, quiet_mesh, fs, src, short)
    _append_transactions(spark, quiet_mesh, _transactions(3, 300))
    # Marked runs are not checked against their source version again.
    versions_read.clear()  # the unmarked checks above read theirs
    result = refresh_feature_set(spark, quiet_mesh, fs, progress=None)
    assert (result.operation, result.delta_version) == ("refresh", 1), result.note
    assert versions_read == [None]
    _assert_table_is_a_full_recompute(spark, quiet_mesh, fs)


def test_a_partial_run_is_marked_and_never_scanned_by_refresh(
    spark: Any, quiet_mesh: Any, versions_read: list[int | None]
) -> None:
    fs = quiet_mesh.feature_sets["payments.customer_spend"]
    compute_feature_set(spark, quiet_mesh, fs, progress=None)
    for day in (2, 3):
        compute_feature_set(
            spark,
            quiet_mesh,
            fs,
            start=D0 + timedelta(days=day),
            end=D0 + timedelta(days=day + 1),
            progress=None,
        )
    history = open_table(spark, feature_table_path(quiet_mesh, fs)).history()
    assert [h.info.extra["synced"] for h in history if h.info] == [False, False, True]
    _append_transactions(spark, quiet_mesh, _transactions(3, 300))
    result = refresh_feature_set(spark, quiet_mesh, fs, progress=None)
    assert (result.operation, result.delta_version) == ("refresh", 3), result.note
    assert versions_read == [None]  # the current source only: no partial run's version
    _assert_table_is_a_full_recompute(spark, quiet_mesh, fs)


def test_publish_of_a_domain_range_writes_only_its_publish_commit(
    spark: Any, quiet_mesh: Any
) -> None:
    from mesh.catalog.run import publish_range
    from mesh.errors import AccessDeniedError

    fs = quiet_mesh.feature_sets["payments.customer_spend"]
    table = open_table(spark, feature_table_path(quiet_mesh, fs))
    # [D0, D0 + 5d) is exactly the range of all source data (see the quiet days test).
    start, end = D0, D0 + timedelta(days=5)
    # Another domain may not publish it: refused before anything is written.
    with pytest.raises(AccessDeniedError):
        publish_range(spark, quiet_mesh, fs.qualified_name, start=start, end=end, identity="x@risk")
    assert not table.exists()
    result = publish_range(
        spark,
        quiet_mesh,
        fs.qualified_name,
        start=start,
        end=end,
        identity="etl@payments",
        as_of=end,
    )
    history = table.history()
    assert [h.version for h in history] == [result.delta_version] == [0]
    info = history[0].info
    assert info is not None and info.operation == "publish"
    assert dict(info.source_versions) == {"payments.transactions": 0}
    _assert_table_is_a_full_recompute(spark, quiet_mesh, fs)


def test_a_global_set_built_by_compute_reports_its_whole_history_not_the_asked_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from mesh.compute.runner import build_global_set
    from mesh.sets import global_features

    def full_rebuild(spark: Any, mesh: Any, name: str, *, run_id: str) -> Any:
        return SimpleNamespace(path="/wh/g", row_count=3, delta_version=1, source_versions={})

    monkeypatch.setattr(global_features, "build_global_feature_set", full_rebuild)
    asked = build_global_set(None, None, "risk.g", start=D0, end=D0 + timedelta(days=1), run_id="r")  # type: ignore[arg-type]
    assert (asked.start, asked.end) == (None, None)
    assert "whole history" in asked.note and "whole history" in asked.summary()
    whole = build_global_set(None, None, "risk.g", start=None, end=None, run_id="r")  # type: ignore[arg-type]
    assert whole.note == ""
    assert whole.summary() == "risk.g: global over its whole history 3 rows -> /wh/g version 1"
    # A refresh passes the refreshed sets' range, which the caller did not give.
    refreshed = build_global_set(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        "risk.g",
        start=D0,
        end=D0 + timedelta(days=1),
        run_id="r",
        range_asked=False,
    )
    assert refreshed.note == "" and "whole history" in refreshed.summary()


def test_compute_with_a_global_set_checks_the_identity_before_any_commit(
    spark: Any, quiet_mesh: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh.errors import MeshError

    monkeypatch.delenv(quiet_mesh.standards.access.identity_env, raising=False)
    fs = quiet_mesh.feature_sets["payments.customer_spend"]
    with pytest.raises(MeshError, match="identity"):
        compute_targets(spark, quiet_mesh, [fs.qualified_name, "risk.customer_risk"], progress=None)
    assert not open_table(spark, feature_table_path(quiet_mesh, fs)).exists()


@pytest.mark.parametrize(
    ("column", "filter"),
    [("tx_id", None), ("amount", "cast(currency AS int) > 0")],
    ids=["sum past the bigint range", "cast that does not parse"],
)
def test_a_computation_failing_on_the_data_is_a_compute_error_and_writes_nothing(
    spark: Any, quiet_mesh: Any, column: str, filter: str | None
) -> None:
    feature = AggregationFeature.model_validate(
        {
            "kind": "aggregation",
            "name": "total",
            "function": "sum",
            "column": column,
            "filter": filter,
            "windows": ["7d"],
            "pii": "none",
            "description": "A sum that fails",
        }
    )
    fs = quiet_mesh.feature_sets["payments.customer_spend"].model_copy(
        update={"features": (feature,)}
    )
    huge = [(2**62 + i, *row[1:]) for i, row in enumerate(_transactions(1, 0)[:2])]
    _append_transactions(spark, quiet_mesh, huge)  # customer 1: 2**62 twice on one day
    with pytest.raises(ComputeError, match="customer_spend`: its computation failed on the data"):
        compute_feature_set(spark, quiet_mesh, fs, progress=None)
    assert not open_table(spark, feature_table_path(quiet_mesh, fs)).exists()
    assert not list(Path(quiet_mesh.warehouse, "_staging").glob("*/*"))


def test_compute_and_refresh_build_global_sets_as_the_identity_given(
    spark: Any, quiet_mesh: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh.sets import global_features

    monkeypatch.delenv(quiet_mesh.standards.access.identity_env, raising=False)
    seen: list[Any] = []

    def build(spark: Any, mesh: Any, name: str, identity: Any = None) -> Any:
        seen.append((name, identity))
        return None

    monkeypatch.setattr(global_features, "build_global_feature_set", build)
    compute_targets(spark, quiet_mesh, ["risk.customer_risk"], progress=None, identity="ann@risk")
    assert seen == [("risk.customer_risk", "ann@risk")]
    fs = quiet_mesh.feature_sets["payments.customer_spend"]
    compute_feature_set(spark, quiet_mesh, fs, progress=None)
    _append_transactions(spark, quiet_mesh, _transactions(5, 500))
    results = refresh_targets(
        spark, quiet_mesh, [fs.qualified_name], progress=None, identity="ann@risk"
    )
    assert seen[1:] == [("risk.customer_risk", "ann@risk")]
    # No range was given: the rebuild's line does not say one applies to domain sets only.
    assert (results[-1].feature_set, results[-1].note) == ("risk.customer_risk", "")


def test_a_start_after_a_sets_data_computes_nothing_for_it_and_the_next_sets_still_run(
    spark: Any, quiet_mesh: Any
) -> None:
    # Transactions on days 0-2: the last event is on day 2 at 20:00 (tx_amounts' data ends
    # there), the last arrival on day 3 at 02:00 (tx_events'), the daily snapshot's data at
    # the next grid point. A start after both, with no end, used to be refused as "--start
    # ... is not before --end <the data's end>" (an --end never given) at tx_amounts, so the
    # sets after it were never computed.
    start = D0 + timedelta(days=3, hours=12)
    results = compute_targets(spark, quiet_mesh, ["payments"], start=start, progress=None)
    by_name = {r.feature_set: r for r in results}
    assert list(by_name) == ["payments.customer_spend", "payments.tx_amounts", "payments.tx_events"]
    assert by_name["payments.customer_spend"].delta_version == 0
    for name, data_end in (("payments.tx_amounts", "03T20"), ("payments.tx_events", "04T02")):
        result = by_name[name]
        assert (result.delta_version, result.rows) == (None, 0)
        assert result.note == (
            "--start 2024-03-04T12:00:00+00:00 is after the source's data, which ends at "
            f"2024-03-{data_end}:00:00.000001+00:00"
        )
        fs = quiet_mesh.feature_sets[name]
        assert not open_table(spark, feature_table_path(quiet_mesh, fs)).exists()


def test_an_end_before_the_data_computes_nothing(spark: Any, quiet_mesh: Any) -> None:
    fs = quiet_mesh.feature_sets["payments.tx_events"]
    result = compute_feature_set(spark, quiet_mesh, fs, end=D0 - timedelta(days=1), progress=None)
    assert result.delta_version is None
    assert result.summary() == (
        "payments.tx_events: nothing committed (--end 2024-02-29T00:00:00+00:00 is before the "
        "source's data, which begins at 2024-03-01T09:00:00+00:00)"
    )
    assert not open_table(spark, feature_table_path(quiet_mesh, fs)).exists()


def test_an_empty_range_is_refused_before_any_set_runs(spark: Any, quiet_mesh: Any) -> None:
    with pytest.raises(ComputeError) as refused:
        compute_targets(spark, quiet_mesh, ["payments"], start=D0, end=D0, progress=None)
    assert str(refused.value) == (
        "--start 2024-03-01T00:00:00+00:00 is not before --end 2024-03-01T00:00:00+00:00; pass "
        "a start earlier than the end."
    )
    assert not Path(quiet_mesh.warehouse, "features").exists()
