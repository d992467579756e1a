"""Misspelt column names in a feature's SQL, found without Spark."""

from __future__ import annotations

import pytest

from mesh.governance.sql_names import misspelt_columns, not_row_level

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


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("sum(spend)", ["sum"]),
        ("spend - AVG(spend) OVER (PARTITION BY seg)", ["AVG", "OVER"]),
        ("spend - lag(spend) over (order by feature_ts)", ["lag", "over"]),
        ("spend * rand()", ["rand"]),
        ("uuid() || seg", ["uuid"]),
        ("datediff(current_timestamp(), current_date)", ["current_timestamp", "current_date"]),
        ("current_date - 1", ["current_date"]),  # Spark calls it without parentheses too
        ("unix_timestamp() - 60", ["unix_timestamp"]),
        ("count(*) + count(*)", ["count"]),
    ],
)
def test_what_is_not_row_level_or_deterministic_is_reported(sql: str, found: list[str]) -> None:
    assert not_row_level(sql, ["spend", "seg"]) == found


@pytest.mark.parametrize(
    "sql",
    [
        "spend / nullif(tickets, 0)",
        "greatest(spend, tickets) + coalesce(abs(spend), 0)",
        "'sum(x) over rand()' || seg",  # quoted text
        "filter(items, x -> x > 0)",  # higher-order functions are row-level
        "unix_timestamp(feature_ts)",  # of a column: deterministic
        "named_struct('a', spend).sum",  # a struct field
        "current_date + 1",  # an input aliased `current_date` is that column
    ],
)
def test_row_level_deterministic_sql_is_not_reported(sql: str) -> None:
    assert not_row_level(sql, ["spend", "tickets", "items", "current_date"]) == []
