"""Misspelt column names in a feature's SQL, found without Spark."""

from __future__ import annotations

import pytest

from mesh.governance.sql_names import misspelt_columns

COLUMNS = ["tx_id", "amount", "channel", "is_refund", "event_ts", "items", "days", "year"]


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("chanel = 'online'", [("chanel", "channel")]),
        ("amout > 100 AND channel = 'online'", [("amout", "amount")]),
        ("cast(amout AS int) > 0", [("amout", "amount")]),
        ("`amout` > 1", [("amout", "amount")]),
        ("is_refnd OR amout > 0 OR amout < -5", [("is_refnd", "is_refund"), ("amout", "amount")]),
    ],
)
def test_a_name_close_to_a_column_is_reported_with_it(
    sql: str, found: list[tuple[str, str]]
) -> None:
    assert misspelt_columns(sql, COLUMNS) == found


@pytest.mark.parametrize(
    "sql",
    [
        "channel = 'chanel'",  # quoted text
        'channel = "chanel"',
        "CASE WHEN is_refund THEN -amount ELSE amount END",
        "CAST(amount AS DOUBLE) > 1",
        "Channel = 'web' AND AMOUNT > 0",  # letter case, as Spark resolves names
        "transform(items, item -> item + 1)",  # a lambda's variable
        "exists(items, (x, i) -> x > i)",
        "event_ts > current_date - INTERVAL 1 DAY",  # keywords, a unit close to `days`
        "named_struct('a', amount).amout IS NULL",  # a struct field
        "amount AS amounts",  # an alias
        "coalesce(amount, 0) * 1e3 BETWEEN 1 AND 10",
        "extract(YEAR FROM event_ts) > 2020 AND trim(BOTH 'x' FROM channel) = 'web'",
        "no_such_column > 1",  # unknown, but close to no column: left to Spark
    ],
)
def test_what_is_not_a_misspelt_column_is_not_reported(sql: str) -> None:
    assert misspelt_columns(sql, COLUMNS) == []


def test_a_source_without_declared_columns_has_nothing_to_compare() -> None:
    assert misspelt_columns("chanel = 'online'", []) == []
