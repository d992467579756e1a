"""The governance examples of the README run as they are (keep them in sync with README.md)."""

from __future__ import annotations

import os

from governance_helpers import ROOT

STATIC_EXAMPLE = """
from mesh.definitions import load_mesh
from mesh.governance import compare, validate_definitions

mesh = load_mesh("conf")
report = validate_definitions(mesh)
print(report.render_text())         # failures and warnings first, then a summary line
report.raise_if_failed("publish")   # GovernanceError: check, feature, measured, threshold

old = mesh.feature_sets["payments.customer_spend"]
new = old.model_copy(update={"features": old.features[:-1]})  # drop refund_count
decision = compare(old.model_dump(mode="json"), new)  # previous: JSON from the catalog
print(decision.summary())                              # major: removed refund_count_30d
print(decision.check_version("1.0.0", "1.1.0").passed)  # False: a breaking change needs 2.0.0
"""

DATA_EXAMPLE = """
from datetime import datetime

from mesh.definitions import load_mesh
from mesh.governance import compute_statistics, render_html, run_data_checks
from mesh.session import get_spark

spark = get_spark()
mesh = load_mesh("conf")
fs = mesh.feature_sets["customers.profile"]
df = spark.createDataFrame(
    [(1, datetime(2024, 3, 1), datetime(2024, 3, 1), "DE", "sme", 1980, 5000.0),
     (2, datetime(2024, 3, 2), datetime(2024, 3, 2), "FR", None, None, 1200.0)],
    "customer_id bigint, feature_ts timestamp, created_ts timestamp, country string, "
    "segment string, birth_year int, credit_limit double",
)
checks = run_data_checks(df, fs, mesh.standards, key_columns=["customer_id"],
                         as_of=datetime(2024, 3, 3))
stats = compute_statistics(df, fs.output_names())  # store stats_to_dict(stats) per version
print(checks.render_text())  # birth_year and segment are 50% null: within max_null_rate 0.6
html = render_html(fs.qualified_name, fs.version, stats, checks)  # one self-contained page
"""


def run(code: str) -> dict:
    scope: dict = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(code, "README.md", "exec"), scope)
    finally:
        os.chdir(cwd)
    return scope


def test_static_example(capsys) -> None:
    scope = run(STATIC_EXAMPLE)
    assert scope["decision"].bump == "major"
    assert capsys.readouterr().out.splitlines()[-2:] == ["major: removed refund_count_30d", "False"]


def test_data_example(spark) -> None:
    scope = run(DATA_EXAMPLE)
    assert scope["checks"].ok
    assert scope["checks"].find("data.null_rate", "birth_year")[0].measured == 0.5
    assert scope["html"].startswith("<!DOCTYPE html>")
