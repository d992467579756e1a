"""Publish: checks, version record, refusal without side effects, undo after catalog failure."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    AMOUNTS_SCHEMA,
    CONF,
    END,
    PROFILE_SCHEMA,
    START,
    amounts_rows,
    frame,
    make_mesh,
    profile_rows,
)

from mesh.catalog import reports as reports_module
from mesh.catalog.publish import feature_table_path, publish_definition, publish_feature_set
from mesh.catalog.search import entries, latest_version, statistics_of, versions
from mesh.catalog.tables import SCHEMAS, Catalog, utc_now
from mesh.definitions import MeshDefinition
from mesh.errors import AccessDeniedError, CatalogError, GovernanceError
from mesh.governance import evaluate_publish
from mesh.storage import CommitInfo, open_table

CUSTOMERS = "etl@customers"


def _state(spark: Any, mesh: MeshDefinition, paths: list[str]) -> dict[str, Any]:
    """Delta version and sorted rows of every catalog table and the given feature tables."""
    out: dict[str, Any] = {}
    catalog = Catalog(spark, mesh.warehouse)
    for table in SCHEMAS:
        out[table] = (catalog.version(table), sorted(map(repr, catalog.rows(table))))
    for path in paths:
        handle = open_table(spark, path)
        out[path] = (handle.latest_version(), sorted(map(repr, handle.read().collect())))
    return out


def _publish(
    spark: Any, mesh: MeshDefinition, fs: Any, rows: Any, identity: str = CUSTOMERS
) -> Any:
    """``publish_feature_set`` of ``rows`` over ``[START, END)``, fresh as of ``END``."""
    return publish_feature_set(
        spark, mesh, fs, rows, start=START, end=END, identity=identity, as_of=END
    )


def test_catalog_schemas_are_built_without_spark_as_spark_parses_them(spark: Any) -> None:
    from pyspark.sql.types import StructType

    from mesh.catalog.tables import spark_schema

    for table, columns in SCHEMAS.items():
        ddl = ", ".join(f"`{name}` {kind}" for name, kind in columns)
        assert spark_schema(table) == StructType.fromDDL(ddl), table


@pytest.fixture(scope="module")
def first(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[MeshDefinition, Any]:
    mesh = make_mesh(tmp_path_factory.mktemp("publish") / "wh")
    fs = mesh.feature_sets["customers.profile"]
    df = frame(spark, profile_rows(), PROFILE_SCHEMA)
    result = _publish(spark, mesh, fs, df)
    return mesh, result


def test_publish_records_version_statistics_checks_lineage_and_report(
    spark: Any, first: Any
) -> None:
    mesh, result = first
    fs = mesh.feature_sets["customers.profile"]
    assert (result.semantic_version, result.bump, result.row_count) == ("1.0.0", "initial", 12)
    assert result.table_path == feature_table_path(mesh, fs).rstrip("/")
    assert result.table_path.endswith("features/customers/profile/v1")
    table = open_table(spark, result.table_path)
    assert table.read(version=result.delta_version).count() == 12
    info = table.history()[0].info
    assert info is not None and info.extra["semantic_version"] == "1.0.0"
    assert info.extra["publish_id"] == result.publish_id
    record = latest_version(spark, mesh, "customers.profile")
    assert record is not None
    assert (record.delta_version, record.data_hash, record.metadata_hash, record.publisher) == (
        result.delta_version,
        mesh.data_hash(fs),
        fs.metadata_hash(),
        "etl@customers",
    )
    assert json.loads(record.definition_json)["name"] == "profile"
    catalog = Catalog(spark, mesh.warehouse)
    stats = {r["feature"]: json.loads(r["stats_json"]) for r in catalog.rows("statistics")}
    assert set(stats) == set(fs.output_names())
    assert stats["credit_limit"]["count"] == 12
    checks = catalog.rows("checks", publish_id=result.publish_id)
    assert checks and all(c["passed"] for c in checks if c["check"].startswith("data."))
    edges = [(r["from_kind"], r["from_name"], r["to_name"]) for r in catalog.rows("lineage")]
    assert edges == [("data_product", "customers.customer_profiles", "customers.profile")]
    assert result.report_path.endswith(
        f"_catalog/reports/customers.profile/1.0.0/{result.publish_id}.html"
    )
    page = Path(mesh.warehouse, "_catalog/reports/customers.profile/1.0.0.html")
    assert page.read_text() == Path(result.report_path).read_text()


def test_refused_publish_leaves_catalog_and_feature_table_exactly_as_they_were(
    spark: Any, first: Any
) -> None:
    mesh, result = first
    fs = mesh.feature_sets["customers.profile"]
    rows = profile_rows()
    rows[0] = (None, *rows[0][1:])  # a null key
    rows[1] = (*rows[1][:6], None)  # plus one null credit limit: fine alone
    before = _state(spark, mesh, [result.table_path])
    page = Path(mesh.warehouse, "_catalog/reports/customers.profile/1.0.0.html")
    page_before = page.read_text()
    with pytest.raises(GovernanceError) as info:
        _publish(spark, mesh, fs, frame(spark, rows, PROFILE_SCHEMA))
    failed = info.value.report.failed
    assert [r.check for r in failed] == ["data.key_nulls"]
    assert "the threshold: quality.max_key_null_rate in conf/mesh.yaml." in str(info.value)
    assert failed[0].feature == "customer_id" and failed[0].measured == pytest.approx(1 / 12)
    assert info.value.params["failed"] == ["data.key_nulls"]
    assert _state(spark, mesh, [result.table_path]) == before
    # The refusal keeps its own report, apart from the landed version's page.
    refused = Path(info.value.params["report_path"])
    assert refused.parent == page.with_suffix("") / "refused"
    assert "blocked" in refused.read_text() and "data.key_nulls" in refused.read_text()
    assert f"Report: {refused}" in str(info.value).splitlines()[0]
    assert page.read_text() == page_before
    assert [p.name for p in page.with_suffix("").glob("*.html")] == [Path(result.report_path).name]


def test_missing_feature_column_is_reported_by_governance(spark: Any, first: Any) -> None:
    mesh, _ = first
    fs = mesh.feature_sets["customers.profile"]
    df = frame(spark, profile_rows(), PROFILE_SCHEMA).drop("credit_limit")
    with pytest.raises(GovernanceError) as info:
        _publish(spark, mesh, fs, df)
    failed = info.value.report.failed
    assert [(r.check, r.feature, r.measured) for r in failed] == [
        ("data.schema", "credit_limit", "missing")
    ]


def test_aggregation_of_another_type_than_its_source_gives_is_refused(
    spark: Any, mesh: MeshDefinition
) -> None:
    fs = mesh.feature_sets["support.ticket_events"]
    rows = [
        (i + 1, START + timedelta(hours=i), START + timedelta(hours=i), 1, 1, float(i % 3), "web")
        for i in range(6)
    ]
    # max over the int column `priority` is an int; this frame holds doubles.
    schema = (
        "customer_id bigint, feature_ts timestamp, created_ts timestamp, "
        "recent_tickets_1h bigint, recent_tickets_1d bigint, max_priority_1d double, "
        "last_channel_7d string"
    )
    with pytest.raises(GovernanceError) as info:
        _publish(spark, mesh, fs, frame(spark, rows, schema), identity="etl@support")
    failed = info.value.report.failed
    assert [(r.check, r.feature, r.measured, r.threshold) for r in failed] == [
        ("data.aggregation_type", "max_priority_1d", "double", "int")
    ]
    assert not open_table(spark, feature_table_path(mesh, fs)).exists()


def test_breaking_change_without_a_major_version_is_refused(spark: Any, first: Any) -> None:
    mesh, result = first
    fs = mesh.feature_sets["customers.profile"]
    changed = fs.model_copy(update={"features": fs.features[:3]})  # credit_limit removed
    df = frame(spark, profile_rows(), PROFILE_SCHEMA).drop("credit_limit")
    before = _state(spark, mesh, [result.table_path])
    with pytest.raises(GovernanceError) as info:
        _publish(spark, mesh, changed, df)
    check = info.value.report.find("contract.version")[0]
    assert not check.passed and check.threshold == ">= 2.0.0"
    assert _state(spark, mesh, [result.table_path]) == before


def test_other_domains_cannot_publish(spark: Any, first: Any) -> None:
    mesh, _ = first
    fs = mesh.feature_sets["customers.profile"]
    with pytest.raises(AccessDeniedError) as info:
        publish_feature_set(
            spark,
            mesh,
            fs,
            frame(spark, profile_rows(), PROFILE_SCHEMA),
            start=START,
            end=END,
            identity="eve@risk",
        )
    assert info.value.params["missing_grant"].startswith("publish customers.profile")


def test_catalog_failure_after_the_table_commit_restores_the_table(
    spark: Any, first: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mesh, result = first
    fs = mesh.feature_sets["customers.profile"]
    table = open_table(spark, result.table_path)
    rows_before = sorted(map(repr, table.read().collect()))
    versions_before = versions(spark, mesh, "customers.profile")
    page = Path(mesh.warehouse, "_catalog/reports/customers.profile/1.0.0.html")
    page_before = page.read_text()
    original = Catalog.append

    def failing(self: Catalog, name: str, rows: Any, commit: Any) -> int:
        if name == "versions":
            raise OSError("injected: catalog storage unavailable")
        return original(self, name, rows, commit)

    monkeypatch.setattr(Catalog, "append", failing)
    changed = frame(spark, profile_rows(shift=3), PROFILE_SCHEMA)
    with pytest.raises(OSError, match="injected"):
        _publish(spark, mesh, fs, changed)
    monkeypatch.setattr(Catalog, "append", original)
    history = table.history()
    assert [h.operation for h in history[:2]] == ["publish_rollback", "publish"]
    assert history[0].info is not None and history[0].info.extra["semantic_version"] == "1.0.0"
    assert sorted(map(repr, table.read().collect())) == rows_before
    assert versions(spark, mesh, "customers.profile") == versions_before
    # The rows written before the failure are orphans: not visible through the catalog.
    assert [e.semantic_version for e in entries(spark, mesh)] == ["1.0.0"]
    # Nor is its report: the version's page and the publish reports are those of before.
    assert page.read_text() == page_before
    assert [p.name for p in page.with_suffix("").glob("*.html")] == [Path(result.report_path).name]


def test_metadata_only_change_is_a_patch_on_the_same_delta_version(spark: Any, first: Any) -> None:
    mesh, result = first
    fs = mesh.feature_sets["customers.profile"]
    meta = fs.metadata.model_copy(update={"description": "Profile attributes (documented)"})
    patched = fs.model_copy(update={"metadata": meta, "version": "1.0.1"})
    out = publish_definition(spark, mesh, patched, identity=CUSTOMERS)
    assert (out.bump, out.semantic_version) == ("patch", "1.0.1")
    latest = versions(spark, mesh, "customers.profile")[0]
    assert (latest.semantic_version, latest.delta_version) == ("1.0.1", result.delta_version)
    assert entries(spark, mesh)[0].description == "Profile attributes (documented)"
    data_change = fs.model_copy(update={"ttl": timedelta(days=30), "version": "1.0.2"})
    with pytest.raises(CatalogError) as info:
        publish_definition(spark, mesh, data_change, identity=CUSTOMERS)
    assert info.value.params["previous"] == mesh.data_hash(fs)
    # The full publish to run instead: over the range the table's commits computed (the
    # first publish's, whole days).
    command = f"mesh publish customers.profile --start {START:%Y-%m-%d} --end {END:%Y-%m-%d}"
    assert info.value.params["command"] == command
    assert f"Run a full publish over the data: `{command}`." in info.value.message
    # Thresholds are promises about the data: only a publish that checks them lands them.
    tighter = fs.quality.model_copy(update={"max_null_rate": {"birth_year": 0.0}})
    quality_change = fs.model_copy(update={"quality": tighter, "version": "1.0.2"})
    with pytest.raises(CatalogError, match=r"quality thresholds changed since 1\.0\.1") as info:
        publish_definition(spark, mesh, quality_change, identity=CUSTOMERS)
    assert f"Run a full publish over the data: `{command}`." in info.value.message
    assert versions(spark, mesh, "customers.profile")[0].semantic_version == "1.0.1"


def _publish_amounts(spark: Any, mesh: MeshDefinition, fs: Any) -> Any:
    return _publish(
        spark, mesh, fs, frame(spark, amounts_rows(), AMOUNTS_SCHEMA), identity="etl@payments"
    )


def test_a_moved_data_product_needs_a_major_version(spark: Any, mesh: MeshDefinition) -> None:
    fs = mesh.feature_sets["payments.tx_amounts"]
    _publish_amounts(spark, mesh, fs)
    record = latest_version(spark, mesh, fs.qualified_name)
    assert record is not None
    stored = json.loads(record.definition_json)
    assert stored["binding"] == mesh.binding(fs).model_dump(mode="json")
    assert record.data_hash == mesh.data_hash(fs) != fs.legacy_data_hash()
    product = mesh.products["payments.transactions"]
    moved = dataclasses.replace(
        mesh,
        products={
            **mesh.products,
            "payments.transactions": product.model_copy(update={"path": "products/tx_v2"}),
        },
    )
    with pytest.raises(GovernanceError) as info:
        _publish_amounts(spark, moved, fs.model_copy(update={"version": "1.1.0"}))
    (check,) = info.value.report.failed
    assert (check.check, check.threshold) == ("contract.version", ">= 2.0.0")
    assert "source location products/payments/transactions -> products/tx_v2" in check.message
    patched = fs.model_copy(update={"version": "1.0.1"})
    with pytest.raises(CatalogError) as refused:
        publish_definition(spark, moved, patched, identity="etl@payments")
    assert refused.value.params["current"] == moved.data_hash(fs) != record.data_hash


def _as_an_earlier_engine_recorded(spark: Any, mesh: MeshDefinition, fs: Any) -> None:
    """A newest version row as engines wrote it before bindings: hash of the set's fields,
    definition JSON without a binding."""
    record = latest_version(spark, mesh, fs.qualified_name)
    assert record is not None
    row = {
        **dataclasses.asdict(record),
        "publish_id": f"legacy-{record.publish_id}",
        "data_hash": fs.legacy_data_hash(),
        "definition_json": fs.model_dump_json(),
        "published_at": utc_now(),
    }
    commit = CommitInfo(run_id=row["publish_id"], operation="catalog_publish")
    Catalog(spark, mesh.warehouse).append("versions", [row], commit)


def test_a_version_published_before_bindings_were_recorded_is_not_a_change(
    spark: Any, mesh: MeshDefinition
) -> None:
    fs = mesh.feature_sets["payments.tx_amounts"]
    _publish_amounts(spark, mesh, fs)
    _as_an_earlier_engine_recorded(spark, mesh, fs)
    again = _publish_amounts(spark, mesh, fs)
    assert (again.bump, again.reasons) == ("none", [])
    assert [r.check for r in again.report.warnings] == ["contract.binding"]
    _as_an_earlier_engine_recorded(spark, mesh, fs)
    meta = fs.metadata.model_copy(update={"description": "Documented"})
    documented = fs.model_copy(update={"metadata": meta, "version": "1.0.1"})
    patched = publish_definition(spark, mesh, documented, identity="etl@payments")
    assert patched.bump == "patch"
    assert [r.check for r in patched.report.warnings] == ["contract.binding"]
    # A metadata-only publish computed nothing: the binding its data was computed under is
    # still unknown, so it records none (and the next publish warns again).
    recorded = latest_version(spark, mesh, fs.qualified_name)
    assert recorded is not None and "binding" not in json.loads(recorded.definition_json)
    assert recorded.data_hash == fs.legacy_data_hash()
    again = _publish_amounts(spark, mesh, documented)
    assert [r.check for r in again.report.warnings] == ["contract.binding"]
    # A full publish computed the data under the current binding: recorded from then on.
    full = latest_version(spark, mesh, fs.qualified_name)
    assert full is not None and "binding" in json.loads(full.definition_json)


def test_failed_first_publish_removes_the_table_it_created(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mesh = make_mesh(tmp_path / "wh")
    fs = mesh.feature_sets["payments.tx_amounts"]

    def failing(*args: Any, **kwargs: Any) -> str:
        raise OSError("injected: report storage unavailable")

    monkeypatch.setattr(reports_module, "write_text", failing)
    with pytest.raises(OSError, match="injected"):
        _publish(
            spark, mesh, fs, frame(spark, amounts_rows(), AMOUNTS_SCHEMA), identity="etl@payments"
        )
    assert not os.path.exists(feature_table_path(mesh, fs))
    assert Catalog(spark, mesh.warehouse).version("versions") is None


def test_republishing_a_version_keeps_the_report_of_every_publish(
    spark: Any, mesh: MeshDefinition
) -> None:
    fs = mesh.feature_sets["customers.profile"]
    page = Path(mesh.warehouse, "_catalog/reports/customers.profile/1.0.0.html")

    def publish(shift: int) -> Any:
        df = frame(spark, profile_rows(shift=shift), PROFILE_SCHEMA)
        return _publish(spark, mesh, fs, df)

    one = publish(0)
    one_html = Path(one.report_path).read_text()
    two = publish(3)  # same version 1.0.0, other credit limits
    assert one.report_path != two.report_path
    assert Path(one.report_path).read_text() == one_html
    assert page.read_text() == Path(two.report_path).read_text() != one_html


def test_concurrent_publishes_all_land(spark: Any, tmp_path: Path) -> None:
    mesh = make_mesh(tmp_path / "wh")
    jobs = [
        ("customers.profile", profile_rows(), PROFILE_SCHEMA, "etl@customers"),
        ("payments.tx_amounts", amounts_rows(), AMOUNTS_SCHEMA, "etl@payments"),
    ]
    frames = [frame(spark, rows, schema) for _, rows, schema, _ in jobs]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        name, _, _, who = jobs[i]
        try:
            _publish(spark, mesh, mesh.feature_sets[name], frames[i], identity=who)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(e.name for e in entries(spark, mesh)) == [
        "customers.profile",
        "payments.tx_amounts",
    ]
    catalog = Catalog(spark, mesh.warehouse)
    assert len(catalog.rows("versions")) == 2
    assert sorted({r["name"] for r in catalog.rows("statistics")}) == [
        "customers.profile",
        "payments.tx_amounts",
    ]


def test_statistics_keep_no_values_of_personal_text_features(spark: Any, mesh: Any) -> None:
    fs = mesh.feature_sets["customers.profile"]
    df = frame(spark, profile_rows(), PROFILE_SCHEMA)
    _publish(spark, mesh, fs, df)

    def classified(version: str) -> Any:
        features = [
            f.model_copy(update={"pii": "pii"}) if f.name == "country" else f for f in fs.features
        ]
        return fs.model_copy(update={"features": features, "version": version})

    def stored(version: str) -> dict[str, str]:
        rows = Catalog(spark, mesh.warehouse).rows("statistics", semantic_version=version)
        return {r["feature"]: r["stats_json"] for r in rows}

    assert '"NL"' in stored("1.0.0")["country"]  # a `none` feature keeps its top values
    # Reclassified (metadata only): the statistics carried over lose the values.
    out = publish_definition(spark, mesh, classified("1.0.1"), identity=CUSTOMERS)
    # A full publish computes no values of it (a description change makes it a patch).
    meta = fs.metadata.model_copy(update={"description": "Profile (country is pii)"})
    documented = classified("1.0.2").model_copy(update={"metadata": meta})
    republished = _publish(spark, mesh, documented, df)
    for version, report in (("1.0.1", out.report_path), ("1.0.2", republished.report_path)):
        country = json.loads(stored(version)["country"])
        assert (country["histogram"], country["redacted"], country["count"]) == (None, True, 12)
        assert json.loads(stored(version)["segment"])["histogram"]["values"] == ["a", "b"]
        assert "values withheld: personal data" in Path(report).read_text()


def test_a_minor_version_that_adds_a_feature_widens_its_table(
    spark: Any, mesh: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark.sql import functions as F

    fs = mesh.feature_sets["customers.profile"]
    first = _publish(spark, mesh, fs, frame(spark, profile_rows(), PROFILE_SCHEMA))
    extra = fs.features[0].model_copy(
        update={"name": "home_country", "column": "country", "description": "Home country"}
    )
    # Half the rows drift far from the whole (a test artefact, not what is tested here).
    quality = fs.quality.model_copy(update={"max_psi": 100.0})
    wider = fs.model_copy(
        update={"features": (*fs.features, extra), "version": "1.1.0", "quality": quality}
    )
    later = START + timedelta(days=5)
    rows = (
        frame(spark, profile_rows(), PROFILE_SCHEMA)
        .where(F.col("feature_ts") >= later)
        .withColumn("home_country", F.col("country"))
    )
    table = open_table(spark, first.table_path)
    state = (table.schema(), sorted(map(repr, table.read().collect())))
    original = Catalog.append

    def failing(self: Catalog, name: str, rows: Any, commit: Any) -> int:
        if name == "versions":
            raise OSError("injected: catalog storage unavailable")
        return original(self, name, rows, commit)

    with monkeypatch.context() as patch:  # the catalog fails after the widening commit
        patch.setattr(Catalog, "append", failing)
        with pytest.raises(OSError, match="injected"):
            publish_feature_set(
                spark, mesh, wider, rows, start=later, end=END, identity=CUSTOMERS, as_of=END
            )
    assert (table.schema(), sorted(map(repr, table.read().collect()))) == state

    out = publish_feature_set(
        spark, mesh, wider, rows, start=later, end=END, identity=CUSTOMERS, as_of=END
    )
    assert (out.bump, out.semantic_version, out.table_path) == ("minor", "1.1.0", first.table_path)
    got = open_table(spark, out.table_path).read(version=out.delta_version)
    assert got.count() == 12 and "home_country" in got.columns
    before = got.where(F.col("feature_ts") < later)
    assert before.count() == before.where(F.col("home_country").isNull()).count() > 0
    in_range = got.where(F.col("feature_ts") >= later)
    assert in_range.where(F.col("home_country").isNull()).count() == 0
    # The versions before the widening still read with their own columns.
    assert "home_country" not in table.read(version=out.delta_version - 1).columns


def test_a_publish_never_makes_rows_no_publish_checked_readable(spark: Any, mesh: Any) -> None:
    from pyspark.sql import functions as F

    fs = mesh.feature_sets["customers.profile"]
    fs = fs.model_copy(update={"quality": fs.quality.model_copy(update={"max_psi": 1e9})})
    rows = frame(spark, profile_rows(), PROFILE_SCHEMA)
    a, b = START + timedelta(days=3), START + timedelta(days=6)

    def cut(df: Any, low: Any, high: Any) -> Any:
        return df.where((F.col("feature_ts") >= F.lit(low)) & (F.col("feature_ts") < F.lit(high)))

    def publish(low: Any, high: Any) -> Any:
        part = cut(rows, low, high)
        return publish_feature_set(
            spark, mesh, fs, part, start=low, end=high, identity=CUSTOMERS, as_of=END
        )

    first = publish(START, a)
    # A producer's commit (mesh compute) of [a, b) with values no publish checked.
    table = open_table(spark, first.table_path)
    bad = cut(rows, a, b).withColumn("credit_limit", F.lit(-1e9))
    compute = CommitInfo(run_id="unchecked", operation="compute", range_start=a, range_end=b)
    table.replace_range(bad, compute, time_column="feature_ts", start=a, end=b)
    with pytest.raises(CatalogError) as info:
        publish(b, END)  # would publish the unchecked [a, b) rows with it
    assert (info.value.params["since"], info.value.params["writers"]) == (
        first.delta_version,
        [f"compute run unchecked (version {first.delta_version + 1})"],
    )
    assert table.latest_version() == first.delta_version + 1  # nothing written
    # The refusal names a range, in whole days, that covers them and the one asked for.
    low, high = info.value.params["covering_start"], info.value.params["covering_end"]
    assert (low, high) == (a, END)
    assert f"--start {a.isoformat()} --end {END.isoformat()}" in str(info.value)
    covering = publish(low, high)  # checks (and replaces) those rows: lands
    assert covering.semantic_version == "1.0.0"
    got = table.read(version=covering.delta_version)
    assert got.where(F.col("credit_limit") < 0).count() == 0
    # A later publish of a range whose neighbours only publishes wrote goes through.
    assert publish(START, a).delta_version == covering.delta_version + 1


def test_a_publish_never_lands_a_removal_of_rows_no_publish_checked(spark: Any, mesh: Any) -> None:
    from pyspark.sql import functions as F

    fs = mesh.feature_sets["customers.profile"]
    fs = fs.model_copy(update={"quality": fs.quality.model_copy(update={"max_psi": 1e9})})
    rows = frame(spark, profile_rows(), PROFILE_SCHEMA)
    a, b = START + timedelta(days=3), START + timedelta(days=6)

    def cut(low: Any, high: Any) -> Any:
        return rows.where((F.col("feature_ts") >= F.lit(low)) & (F.col("feature_ts") < F.lit(high)))

    def publish(low: Any, high: Any) -> Any:
        return publish_feature_set(
            spark, mesh, fs, cut(low, high), start=low, end=high, identity=CUSTOMERS, as_of=END
        )

    first = publish(START, END)
    # A producer's commit that removes the published rows of [a, b): no publish checked that.
    table = open_table(spark, first.table_path)
    compute = CommitInfo(run_id="emptied", operation="compute", range_start=a, range_end=b)
    table.replace_range(cut(a, a), compute, time_column="feature_ts", start=a, end=b)
    assert table.read().where(F.col("feature_ts") < F.lit(b)).count() == cut(START, a).count()
    with pytest.raises(CatalogError) as info:
        publish(b, END)  # would publish the table without them
    # The table holds no row outside [b, END) but the ones the first publish wrote: the
    # refusal says what changed there.
    assert "no longer holds rows outside this range that its last publish held" in str(info.value)
    assert "that no publish checked" not in str(info.value)
    assert (info.value.params["unchecked_rows"], info.value.params["removed_rows"]) == (False, True)
    assert info.value.params["writers"] == [
        f"compute run emptied (version {first.delta_version + 1})"
    ]
    assert table.latest_version() == first.delta_version + 1  # nothing written
    assert (info.value.params["covering_start"], info.value.params["covering_end"]) == (a, END)
    covering = publish(a, END)  # checks (and writes back) that range: lands
    assert table.read(version=covering.delta_version).count() == rows.count()


def test_a_version_page_that_cannot_be_written_is_a_warning_of_a_landed_publish(
    spark: Any, mesh: MeshDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh.catalog import reports

    original = reports.write_text

    def failing(path: str, text: str) -> None:
        if path.endswith("/1.0.0.html"):
            raise OSError("injected: page storage unavailable")
        original(path, text)

    monkeypatch.setattr(reports, "write_text", failing)
    fs = mesh.feature_sets["payments.tx_amounts"]
    result = _publish_amounts(spark, mesh, fs)  # landed: no error for the page copy
    assert any("could not be written" in w for w in result.warnings)
    assert Path(result.report_path).exists()
    assert latest_version(spark, mesh, fs.qualified_name) is not None


def test_a_refusal_whose_report_cannot_be_written_is_still_the_refusal(
    spark: Any, mesh: MeshDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh.catalog import reports

    def failing(path: str, text: str) -> None:
        raise OSError("injected: report storage unavailable")

    monkeypatch.setattr(reports, "write_text", failing)
    rows = profile_rows()
    rows[0] = (None, *rows[0][1:])  # a null key
    with pytest.raises(GovernanceError) as info:
        _publish(
            spark, mesh, mesh.feature_sets["customers.profile"], frame(spark, rows, PROFILE_SCHEMA)
        )
    assert info.value.params["failed"] == ["data.key_nulls"]
    assert info.value.params["report_path"] is None
    assert "could not be written" in info.value.message


def _limits(mesh: MeshDefinition) -> Any:
    """customers.limits: a max over customer_profiles.credit_limit, without a `type:`."""
    from mesh.definitions import FeatureSet

    fs = FeatureSet.model_validate(
        {
            "name": "limits",
            "domain": "customers",
            "entity": "customer",
            "source": "customer_profiles",
            "features": [
                {
                    "kind": "aggregation",
                    "name": "limit_max",
                    "function": "max",
                    "column": "credit_limit",
                    "windows": ["7d"],
                    "pii": "none",
                }
            ],
            "metadata": {"owner": "customers-team@example.com", "description": "Limits"},
        }
    )
    mesh.feature_sets[fs.qualified_name] = fs
    mesh.files[fs.qualified_name] = "conf/domains/customers/limits.yaml"
    return fs


def _limit_rows(spark: Any, limit_type: str) -> Any:
    cast = float if limit_type == "double" else int
    rows = [(cid, ts, created, cast(limit)) for cid, ts, created, *_, limit in profile_rows()]
    schema = (
        f"customer_id bigint, feature_ts timestamp, created_ts timestamp, limit_max_7d {limit_type}"
    )
    return frame(spark, rows, schema)


def _product_columns(mesh: MeshDefinition, columns: dict[str, str]) -> None:
    product = mesh.products["customers.customer_profiles"]
    mesh.products["customers.customer_profiles"] = product.model_copy(update={"columns": columns})


def _limits_retyped_to_bigint(spark: Any, mesh: MeshDefinition) -> tuple[Any, Any, GovernanceError]:
    """customers.limits published over a double ``credit_limit``, which then becomes bigint:
    the set, its new rows and the refusal of their publish as 1.0.0."""
    fs = _limits(mesh)
    double = _limit_rows(spark, "double")
    _publish(spark, mesh, fs, double)
    columns = dict(mesh.products["customers.customer_profiles"].columns)
    _product_columns(mesh, {**columns, "credit_limit": "bigint"})
    df = _limit_rows(spark, "bigint")
    with pytest.raises(GovernanceError) as info:
        _publish(spark, mesh, fs, df)
    return fs, df, info.value


def test_the_python_gate_given_what_the_catalog_holds_decides_as_the_publish_does(
    spark: Any, mesh: MeshDefinition
) -> None:
    fs, df, refused = _limits_retyped_to_bigint(spark, mesh)
    record = latest_version(spark, mesh, fs.qualified_name)
    assert record is not None
    (entry,) = [e for e in entries(spark, mesh) if e.name == fs.qualified_name]
    evaluation = evaluate_publish(
        mesh,
        fs,
        df,
        previous=json.loads(record.definition_json),
        previous_types={f["name"]: f["type"] for f in entry.features},
        previous_stats=statistics_of(spark, mesh, record),
        as_of=END,
    )
    assert evaluation.decision.summary() == "major: type of limit_max_7d double -> bigint"
    results = lambda report: [  # noqa: E731
        (r.check, r.feature, r.passed, r.measured, r.threshold) for r in report.results
    ]
    assert results(evaluation.report) == results(refused.report)


def test_an_aggregation_type_spelled_out_as_its_column_gives_it_publishes_unchanged(
    spark: Any, mesh: MeshDefinition
) -> None:
    fs = _limits(mesh)
    df = _limit_rows(spark, "double")
    _publish(spark, mesh, fs, df)
    # max over the double column credit_limit is a double: `type: double` says what it was.
    typed = fs.model_copy(
        update={"features": (fs.features[0].model_copy(update={"type": "double"}),)}
    )
    mesh.feature_sets[fs.qualified_name] = typed
    result = _publish(spark, mesh, typed, df)
    assert (result.semantic_version, result.bump, result.reasons) == ("1.0.0", "none", [])


def test_a_metadata_only_publish_keeps_the_feature_types_the_table_was_written_with(
    spark: Any, mesh: MeshDefinition
) -> None:
    # The data product declares no columns: only the written table knows the type of an
    # aggregation over it.
    _product_columns(mesh, {})
    fs = _limits(mesh)
    df = _limit_rows(spark, "double")
    _publish(spark, mesh, fs, df)
    meta = fs.metadata.model_copy(update={"description": "Highest credit limit"})
    publish_definition(
        spark,
        mesh,
        fs.model_copy(update={"metadata": meta, "version": "1.0.1"}),
        identity=CUSTOMERS,
    )
    (entry,) = [e for e in entries(spark, mesh) if e.name == "customers.limits"]
    assert (entry.semantic_version, entry.description) == ("1.0.1", "Highest credit limit")
    assert [(f["name"], f["type"]) for f in entry.features] == [("limit_max_7d", "double")]


def test_an_aggregation_whose_source_column_changed_type_needs_a_major_version(
    spark: Any, mesh: MeshDefinition
) -> None:
    # credit_limit becomes bigint in the data product: max over it is bigint now.
    fs, df, refused = _limits_retyped_to_bigint(spark, mesh)
    (check,) = refused.report.failed
    assert (check.check, check.measured, check.threshold) == (
        "contract.version",
        "1.0.0",
        ">= 2.0.0",
    )
    assert "type of limit_max_7d double -> bigint" in check.message
    major = fs.model_copy(update={"version": "2.0.0"})
    mesh.feature_sets[fs.qualified_name] = major
    result = _publish(spark, mesh, major, df)
    assert (result.bump, result.reasons) == ("major", ["type of limit_max_7d double -> bigint"])


def test_a_metadata_only_publish_of_a_type_the_table_holds_anyway_is_no_change(
    spark: Any, mesh: MeshDefinition
) -> None:
    fs = _limits(mesh)
    published = _publish(spark, mesh, fs, _limit_rows(spark, "double"))

    def typed(type_name: str | None, version: str) -> Any:
        feature = fs.features[0].model_copy(update={"type": type_name})
        return fs.model_copy(update={"features": (feature,), "version": version})

    # max over the double column credit_limit is a double: `type: double` says what it was,
    # and so does leaving it out again; a full publish decides the same ("none").
    for spelled in (typed("double", "1.0.0"), typed(None, "1.0.0")):
        out = publish_definition(spark, mesh, spelled, identity=CUSTOMERS)
        assert (out.bump, out.reasons, out.semantic_version) == ("none", [], "1.0.0")
        assert out.delta_version == published.delta_version
    meta = fs.metadata.model_copy(update={"description": "Highest credit limit"})
    documented = typed("double", "1.0.1").model_copy(update={"metadata": meta})
    assert publish_definition(spark, mesh, documented, identity=CUSTOMERS).bump == "patch"
    recorded = latest_version(spark, mesh, fs.qualified_name)
    assert recorded is not None and recorded.data_hash == mesh.data_hash(documented)
    # Another type than the table holds changes values: it needs a full publish.
    with pytest.raises(CatalogError) as info:
        publish_definition(spark, mesh, typed("bigint", "2.0.0"), identity=CUSTOMERS)
    assert info.value.params["previous"] == mesh.data_hash(documented)
    assert info.value.params["current"] == mesh.data_hash(typed("bigint", "2.0.0"))


def test_a_commit_landing_during_a_publish_is_checked_like_the_ones_before(
    spark: Any, mesh: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark.sql import functions as F

    from mesh.storage.embedded import EmbeddedDeltaTable

    fs = mesh.feature_sets["customers.profile"]
    fs = fs.model_copy(update={"quality": fs.quality.model_copy(update={"max_psi": 1e9})})
    rows = frame(spark, profile_rows(), PROFILE_SCHEMA)
    a, b = START + timedelta(days=3), START + timedelta(days=6)

    def cut(low: Any, high: Any) -> Any:
        return rows.where((F.col("feature_ts") >= F.lit(low)) & (F.col("feature_ts") < F.lit(high)))

    first = publish_feature_set(
        spark, mesh, fs, cut(START, a), start=START, end=a, identity=CUSTOMERS, as_of=END
    )
    # A compute of [a, b) commits after the publish of [b, END) checked the table and before
    # its own commit: it used to land in the published version, unchecked.
    original = EmbeddedDeltaTable.replace_range

    def racing(self: Any, df: Any, commit: Any, **kw: Any) -> int:
        if commit.operation == "publish":
            bad = cut(a, b).withColumn("credit_limit", F.lit(-1e9))
            compute = CommitInfo(run_id="racer", operation="compute", range_start=a, range_end=b)
            original(self, bad, compute, time_column="feature_ts", start=a, end=b)
        return original(self, df, commit, **kw)

    monkeypatch.setattr(EmbeddedDeltaTable, "replace_range", racing)
    with pytest.raises(CatalogError) as info:
        publish_feature_set(
            spark, mesh, fs, cut(b, END), start=b, end=END, identity=CUSTOMERS, as_of=END
        )
    monkeypatch.undo()
    assert (
        info.value.params["writers"][0] == f"compute run racer (version {first.delta_version + 1})"
    )
    table = open_table(spark, first.table_path)
    assert table.latest_version() == first.delta_version + 3  # compute, publish, its undo
    assert table.read().where(F.col("feature_ts") >= b).count() == 0  # the publish undone
    assert table.read().where(F.col("credit_limit") < 0).count() > 0  # the compute kept
    assert latest_version(spark, mesh, fs.qualified_name).delta_version == first.delta_version


def _max_to_min(fs: Any, version: str) -> Any:
    """customers.limits with its max made a min (a breaking change), as ``version``."""
    feature = fs.features[0].model_copy(update={"function": "min"})
    return fs.model_copy(update={"features": (feature,), "version": version})


def _uncomputable(spark: Any) -> Any:
    """customers.limits rows whose computation fails: any Spark job over them raises."""
    from pyspark.sql import functions as F

    rows = _limit_rows(spark, "double")
    failing = F.when(F.col("customer_id").isNotNull(), F.raise_error(F.lit("rows computed")))
    return rows.withColumn("limit_max_7d", failing.cast("double"))


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_a_version_the_definition_alone_refuses_is_refused_before_the_rows_are_computed(
    spark: Any, mesh: MeshDefinition, version: str
) -> None:
    fs = _limits(mesh)
    first = _publish(spark, mesh, fs, _limit_rows(spark, "double"))
    changed = _max_to_min(fs, version)
    mesh.feature_sets[fs.qualified_name] = changed
    # What the publish refused with when it computed the rows first: the same refusal.
    record = latest_version(spark, mesh, fs.qualified_name)
    assert record is not None
    computed = evaluate_publish(
        mesh,
        changed,
        _limit_rows(spark, "double"),
        previous=json.loads(record.definition_json),
        previous_types={"limit_max_7d": "double"},
        as_of=END,
    )
    with pytest.raises(GovernanceError) as after_compute:
        computed.raise_if_failed("publish")
    before = _state(spark, mesh, [first.table_path])
    with pytest.raises(GovernanceError) as info:
        publish_feature_set(
            spark, mesh, changed, _uncomputable(spark), start=START, end=END, identity=CUSTOMERS
        )
    (check,) = info.value.report.failed
    assert (check.check, check.measured, check.threshold) == (
        "contract.version",
        version,
        ">= 2.0.0",
    )
    assert "definition of limit_max_7d changed (function 'max' -> 'min')" in check.message
    assert info.value.params["failed"] == after_compute.value.params["failed"]
    first_line = str(info.value).splitlines()[0]
    expected = str(after_compute.value).splitlines()[0]
    # The same line, then why no data check ran, then where its report is.
    assert first_line.startswith(expected + " The data checks did not run: ")
    assert "Set the definition's `version:` to the version named above." in expected
    assert first_line.endswith(f" Report: {info.value.params['report_path']}")
    assert [r.check for r in info.value.report.warnings] == ["data.not_run"]
    assert not info.value.report.find("data.row_count")  # no data check ran
    # Nothing written but the refusal's own report, as for a refusal after computing.
    assert _state(spark, mesh, [first.table_path]) == before
    refused = Path(info.value.params["report_path"])
    assert refused.parent == Path(
        mesh.warehouse, f"_catalog/reports/customers.limits/{version}/refused"
    )
    assert "blocked" in refused.read_text() and "data.not_run" in refused.read_text()


def test_a_publish_range_the_version_refuses_reads_and_computes_nothing(
    spark: Any, mesh: MeshDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh.catalog.run import publish_range

    fs = _limits(mesh)
    first = _publish(spark, mesh, fs, _limit_rows(spark, "double"))
    mesh.feature_sets[fs.qualified_name] = _max_to_min(fs, "1.1.0")

    def read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("data was read before the version was refused")

    monkeypatch.setattr("mesh.compute.sources.read_source", read)
    monkeypatch.setattr("mesh.compute.feature_rows", read)
    before = _state(spark, mesh, [first.table_path])
    with pytest.raises(GovernanceError) as info:
        publish_range(spark, mesh, fs.qualified_name, start=START, end=END, identity=CUSTOMERS)
    assert info.value.params["failed"] == ["contract.version"]
    assert "The data checks did not run" in str(info.value).splitlines()[0]
    assert _state(spark, mesh, [first.table_path]) == before


def test_a_global_sets_publish_the_version_refuses_reads_no_input(
    spark: Any, mesh: MeshDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh.catalog.run import publish_range
    from mesh.definitions import GlobalFeatureSet

    profile = mesh.feature_sets["customers.profile"]
    rows = frame(spark, profile_rows(), PROFILE_SCHEMA)
    _publish(spark, mesh, profile, rows)
    feature = {"kind": "expression", "name": "half_limit", "expr": "limit / 2", "type": "double"}
    limits = GlobalFeatureSet.model_validate(
        {
            "name": "limits",
            "domain": "risk",
            "entity": "customer",
            "inputs": {"limit": "customers.profile.credit_limit"},
            "features": [{**feature, "pii": "none", "description": "Half the credit limit"}],
            "metadata": {"owner": "risk-team@example.com", "description": "Credit limits"},
        }
    )
    mesh.global_sets[limits.qualified_name] = limits
    first = publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    third = limits.features[0].model_copy(update={"expr": "limit / 3"})
    mesh.global_sets[limits.qualified_name] = limits.model_copy(
        update={"features": (third,), "version": "1.0.1"}
    )

    def read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an input was read before the version was refused")

    monkeypatch.setattr("mesh.sets.access.check_visible_references", read)
    monkeypatch.setattr("mesh.sets.resolve.resolve_inputs", read)
    monkeypatch.setattr("mesh.sets.global_features.compute_global_features", read)
    before = _state(spark, mesh, [first.table_path])  # the audit table among them
    with pytest.raises(GovernanceError) as info:
        publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    (check,) = info.value.report.failed
    assert (check.check, check.threshold) == ("contract.version", ">= 2.0.0")
    assert "expr 'limit / 2' -> 'limit / 3'" in check.message
    assert "The data checks did not run" in str(info.value).splitlines()[0]
    assert _state(spark, mesh, [first.table_path]) == before


def test_a_global_sets_publish_of_an_expression_over_other_rows_reads_and_audits_nothing(
    spark: Any, mesh: MeshDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh.catalog.run import publish_range
    from mesh.definitions import GlobalFeatureSet
    from mesh.sets import SetBuildError

    profile = mesh.feature_sets["customers.profile"]
    first = _publish(spark, mesh, profile, frame(spark, profile_rows(), PROFILE_SCHEMA))
    feature = {"kind": "expression", "name": "limit_share", "type": "double"}
    shares = GlobalFeatureSet.model_validate(
        {
            "name": "shares",
            "domain": "risk",
            "entity": "customer",
            "inputs": {"limit": "customers.profile.credit_limit"},
            "features": [
                {
                    **feature,
                    "expr": "limit / sum(limit) over ()",
                    "pii": "none",
                    "description": "Share of all credit limits",
                }
            ],
            "metadata": {"owner": "risk-team@example.com", "description": "Credit limits"},
        }
    )
    mesh.global_sets[shares.qualified_name] = shares

    def read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an input was read or audited before the expression was refused")

    monkeypatch.setattr("mesh.sets.access.check_visible_references", read)
    monkeypatch.setattr("mesh.sets.resolve.resolve_inputs", read)
    monkeypatch.setattr("mesh.catalog.access.authorize_read", read)
    before = _state(spark, mesh, [first.table_path])  # the audit table among them
    with pytest.raises(SetBuildError) as info:
        publish_range(spark, mesh, "risk.shares", identity="job@risk", as_of=END)
    assert info.value.params["found"] == ["sum", "over"]
    assert _state(spark, mesh, [first.table_path]) == before


def _limits_over_profile(spark: Any, mesh: MeshDefinition, reference: str) -> Any:
    """customers.profile 1.0.0 published; risk.limits (half the ``reference`` credit limit)
    published from it; then customers.profile 2.0.0 (another data product, new values)
    defined and published. Returns risk.limits' first publish."""
    from mesh.catalog.run import publish_range
    from mesh.definitions import GlobalFeatureSet

    profile = mesh.feature_sets["customers.profile"]
    rows = frame(spark, profile_rows(), PROFILE_SCHEMA)
    _publish(spark, mesh, profile, rows)
    feature = {"kind": "expression", "name": "half_limit", "expr": "limit / 2", "type": "double"}
    limits = GlobalFeatureSet.model_validate(
        {
            "name": "limits",
            "domain": "risk",
            "entity": "customer",
            "inputs": {"limit": reference},
            "features": [{**feature, "pii": "none", "description": "Half the credit limit"}],
            "metadata": {"owner": "risk-team@example.com", "description": "Credit limits"},
            "quality": {"max_psi": 100.0},
        }
    )
    mesh.global_sets[limits.qualified_name] = limits
    first = publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    product = mesh.products["customers.customer_profiles"]
    mesh.products["customers.profiles_v2"] = product.model_copy(update={"name": "profiles_v2"})
    profile_2 = profile.model_copy(update={"source": "profiles_v2", "version": "2.0.0"})
    mesh.feature_sets[profile.qualified_name] = profile_2
    changed = frame(spark, profile_rows(shift=3), PROFILE_SCHEMA)
    _publish(spark, mesh, profile_2, changed)
    return first


def test_a_global_set_reading_a_new_major_of_an_input_needs_a_new_major(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesh.catalog.run import publish_range
    from mesh.catalog.tables import Catalog

    mesh = make_mesh(tmp_path / "wh")
    first = _limits_over_profile(spark, mesh, "customers.profile.credit_limit")
    reason = "input customers.profile read at major 2 (was 1)"
    limits = mesh.global_sets["risk.limits"]
    # Its rows would now be read from profile 2.0.0: refused as 1.0.0, before any input is
    # read (the major each input resolves to is known from the definitions).
    with monkeypatch.context() as patched:

        def read(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("an input was read before the version was refused")

        patched.setattr("mesh.sets.resolve.resolve_inputs", read)
        patched.setattr("mesh.sets.global_features.compute_global_features", read)
        before = _state(spark, mesh, [first.table_path])
        with pytest.raises(GovernanceError) as info:
            publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
        assert _state(spark, mesh, [first.table_path]) == before
    (check,) = info.value.report.failed
    assert (check.check, check.threshold) == ("contract.version", ">= 2.0.0")
    assert reason in check.message
    assert check.message.endswith("the version must increase above 1.0.0; use 2.0.0")
    assert "The data checks did not run" in str(info.value).splitlines()[0]
    # publish_feature_set refuses it too (a caller computing the frame itself).
    frame_1 = open_table(spark, first.table_path).read()
    with pytest.raises(GovernanceError) as info:
        publish_feature_set(
            spark,
            mesh,
            limits,
            frame_1,
            start=START,
            end=END,
            identity="job@risk",
            as_of=END,
            inputs=[("customers.profile", "2.0.0")],
        )
    assert info.value.params["failed"] == ["contract.version"]
    assert reason in info.value.report.failed[0].message
    # As 2.0.0 it lands in a new table, with the input and its majors as the reason.
    mesh.global_sets["risk.limits"] = limits.model_copy(update={"version": "2.0.0"})
    second = publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    assert (second.semantic_version, second.bump, second.reasons) == ("2.0.0", "major", [reason])
    assert second.table_path.endswith("features/risk/limits/v2")
    read = Catalog(spark, mesh.warehouse).rows("lineage", publish_id=second.publish_id)
    assert [(r["from_name"], r["from_version"]) for r in read] == [("customers.profile", "2.0.0")]
    # Nothing changed since: republished as 2.0.0, no bump.
    again = publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    assert (again.semantic_version, again.bump, again.reasons) == ("2.0.0", "none", [])


def test_a_global_set_pinned_to_an_inputs_major_keeps_its_version(
    spark: Any, tmp_path: Path
) -> None:
    from mesh.catalog.run import publish_range

    mesh = make_mesh(tmp_path / "wh")
    _limits_over_profile(spark, mesh, "customers.profile@1.credit_limit")
    again = publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    assert (again.semantic_version, again.bump, again.reasons) == ("1.0.0", "none", [])


def test_a_metadata_only_publish_of_a_global_set_carries_the_inputs_it_read(
    spark: Any, tmp_path: Path
) -> None:
    from mesh.catalog.run import publish_range
    from mesh.catalog.tables import Catalog

    mesh = make_mesh(tmp_path / "wh")
    first = _limits_over_profile(spark, mesh, "customers.profile.credit_limit")
    limits = mesh.global_sets["risk.limits"]
    # The same rows, read from profile 1.0.0: a patch, which claims no input changed.
    meta = limits.metadata.model_copy(update={"description": "Credit limits, halved"})
    documented = limits.model_copy(update={"metadata": meta, "version": "1.0.1"})
    mesh.global_sets["risk.limits"] = documented
    patch = publish_definition(spark, mesh, documented, identity="job@risk")
    assert (patch.bump, patch.delta_version) == ("patch", first.delta_version)
    read = Catalog(spark, mesh.warehouse).rows("lineage", publish_id=patch.publish_id)
    assert [(r["from_name"], r["from_version"]) for r in read] == [("customers.profile", "1.0.0")]
    # Computed again, its rows come from profile 2.0.0: still a new major.
    mesh.global_sets["risk.limits"] = documented.model_copy(update={"version": "1.0.2"})
    with pytest.raises(GovernanceError) as info:
        publish_range(spark, mesh, "risk.limits", identity="job@risk", as_of=END)
    (check,) = info.value.report.failed
    assert check.threshold == ">= 2.0.0"
    assert "input customers.profile read at major 2 (was 1)" in check.message


def _profile_published(spark: Any, tmp_path: Path) -> tuple[MeshDefinition, Any, Any]:
    """customers.profile 1.0.0 published in a warehouse under ``tmp_path``: the mesh, the
    set and its rows."""
    mesh = make_mesh(tmp_path / "wh")
    fs = mesh.feature_sets["customers.profile"]
    rows = frame(spark, profile_rows(), PROFILE_SCHEMA)
    _publish(spark, mesh, fs, rows)
    return mesh, fs, rows


def _mesh_publish(conf: Path | str, mesh: MeshDefinition) -> list[str]:
    """``mesh publish`` of customers.profile over ``[START, END)`` by its domain."""
    argv = ["--conf", str(conf), "--warehouse", mesh.warehouse, "publish", "customers.profile"]
    return [*argv, "--start", START.isoformat(), "--end", END.isoformat(), "--identity", CUSTOMERS]


def test_mesh_publish_refuses_the_version_before_spark_starts(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import shutil

    from mesh.cli import main

    mesh, fs, _ = _profile_published(spark, tmp_path)
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    definition = conf / "domains/customers/profile.yaml"
    text = definition.read_text()
    country = "name: country, type: string"
    assert country in text
    definition.write_text(text.replace(country, "name: country, column: segment, type: string"))
    before = _state(spark, mesh, [feature_table_path(mesh, fs)])

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Spark started or data was read before the version was refused")

    monkeypatch.setattr("mesh.session.get_spark", refuse)
    monkeypatch.setattr("mesh.compute.sources.read_source", refuse)
    monkeypatch.setattr("mesh.compute.feature_rows", refuse)
    assert main(_mesh_publish(conf, mesh)) == 1
    err = capsys.readouterr().err.splitlines()[0]
    assert err.startswith(
        "error: publish of customers.profile refused: 1 governance check(s) failed: "
        "contract.version (measured 1.0.0, threshold >= 2.0.0): version 1.0.0 is refused for "
        "a major change (major: definition of country changed (column 'country' -> 'segment'))"
    )
    assert "Set the definition's `version:` to the version named above. The data checks" in err
    assert _state(spark, mesh, [feature_table_path(mesh, fs)]) == before


def test_mesh_publish_reads_the_catalog_for_its_version_check_once(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from types import SimpleNamespace

    from mesh.cli import main

    mesh, _, rows = _profile_published(spark, tmp_path)
    read, tables = Catalog.rows, []

    def counted(self: Catalog, table: str, **equal: Any) -> list[dict[str, Any]]:
        tables.append(table)
        return read(self, table, **equal)

    monkeypatch.setattr(Catalog, "rows", counted)
    monkeypatch.setattr(
        "mesh.compute.sources.read_source", lambda *a: SimpleNamespace(version=None)
    )
    monkeypatch.setattr("mesh.compute.feature_rows", lambda *a, **kw: rows)
    assert main(_mesh_publish(CONF, mesh)) == 0
    assert capsys.readouterr().out.startswith("published customers.profile 1.0.0 (none)")
    # Before Spark starts, then by publish_feature_set, whose governance compares the version
    # it reads then (publish_range, given the check was made, reads nothing for it).
    assert (tables.count("versions"), tables.count("feature_sets")) == (2, 2)


def test_mesh_publish_of_a_backfill_checks_freshness_as_of_the_time_given(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """With ``quality.freshness`` set, an old range's newest row is as old as the range: the
    wall clock refuses every backfill; ``--as-of`` checks it at the time it is given."""
    import shutil
    from types import SimpleNamespace

    from mesh.cli import main

    mesh, fs, rows = _profile_published(spark, tmp_path)
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    standards = conf / "mesh.yaml"
    text = standards.read_text()
    assert "  min_rows: 1\n" in text
    standards.write_text(text.replace("  min_rows: 1\n", "  min_rows: 1\n  freshness: 10d\n"))
    monkeypatch.setattr(
        "mesh.compute.sources.read_source", lambda *a: SimpleNamespace(version=None)
    )
    monkeypatch.setattr("mesh.compute.feature_rows", lambda *a, **kw: rows)
    before = _state(spark, mesh, [feature_table_path(mesh, fs)])
    assert main(_mesh_publish(conf, mesh)) == 1
    err = capsys.readouterr().err.splitlines()[0]
    assert "failed: data.freshness (measured " in err and "threshold 10d)" in err
    assert "check its freshness as of the range's end (`mesh publish --as-of`, `as_of=`)" in err
    assert _state(spark, mesh, [feature_table_path(mesh, fs)]) == before
    assert main([*_mesh_publish(conf, mesh), "--as-of", END.isoformat()]) == 0
    assert capsys.readouterr().out.startswith("published customers.profile 1.0.0 (none)")
    argv = ["--conf", str(conf), "--warehouse", mesh.warehouse, "publish", "customers.profile"]
    assert main([*argv, "--metadata-only", "--as-of", END.isoformat()]) == 1
    assert "takes no --start/--end/--as-of" in capsys.readouterr().err
