"""Column names a feature's SQL (a filter or a row-level expression) misspells, found without
Spark: ``chanel = 'online'`` over a source whose columns hold ``channel``.

Only a name that is not a column but close to one is reported, so what this cannot tell
apart (a function Spark lets go without parentheses, a lambda's variable, a keyword not
listed here) is reported only when it also looks like a misspelt column; Spark's own
analysis at compute time remains the full check. Quoted text, function calls (``name(``),
struct fields (``.name``), lambda variables (``x -> ...``), the word after ``AS`` (a type
or an alias) and SQL keywords are not column references.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Sequence

# Text that holds no column reference: string literals ('...' or "...", with '' or \'
# inside), then the tokens: a backquoted name, a name, a number, `->`, or one character.
_STRING = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"")
_TOKEN = re.compile(r"`((?:[^`]|``)+)`|([A-Za-z_][A-Za-z0-9_]*)|(\d[\w.]*)|(->)|(\S)")
_LAMBDA = re.compile(r"(?:\(([\w\s,]*)\)|([A-Za-z_]\w*))\s*->")
_KEYWORD_LIST = """
    and or not is null true false case when then else end in between like ilike rlike regexp
    as cast try_cast interval distinct all any some exists escape div mod similar to
    from for both leading trailing placing over partition by order asc desc nulls first last
    filter where within group rows range unbounded preceding following current row unknown
    year years month months week weeks day days hour hours minute minutes second seconds
    millisecond milliseconds microsecond microseconds
    boolean tinyint smallint int integer bigint long float double real decimal dec numeric
    string varchar char binary date timestamp timestamp_ntz timestamp_ltz array map struct
    current_date current_timestamp current_user current_timezone user session_user
"""
_KEYWORDS = frozenset(_KEYWORD_LIST.split())
_CUTOFF = 0.8


def misspelt_columns(sql: str, columns: Collection[str]) -> list[tuple[str, str]]:
    """``(name, column)`` for each name in ``sql`` that is no column of ``columns`` (any
    letter case, as Spark resolves them) but close to ``column``; in order, each once."""
    known = {c.lower(): c for c in columns}
    if not known:
        return []
    text = _STRING.sub(" '' ", sql)
    variables = {
        name.strip().lower()
        for group in _LAMBDA.findall(text)
        for name in ",".join(group).split(",")
        if name.strip()
    }
    tokens = list(_TOKEN.finditer(text))
    found: dict[str, str] = {}
    for i, token in enumerate(tokens):
        quoted, bare = token.group(1), token.group(2)
        name = quoted.replace("``", "`") if quoted else bare
        if name is None or name.lower() in known or name.lower() in variables:
            continue
        before = tokens[i - 1].group(0).lower() if i else ""
        after = tokens[i + 1].group(0) if i + 1 < len(tokens) else ""
        if bare and (bare.lower() in _KEYWORDS or after == "(" or before in (".", "as")):
            continue
        close = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=_CUTOFF)
        if close and name not in found:
            found[name] = known[close[0]]
    return list(found.items())


# Functions whose value is not a function of the row: an aggregate reads other rows, a
# nondeterministic one changes from one evaluation to the next (or with the clock).
_AGGREGATE_LIST = """
    sum try_sum avg try_avg mean count count_if min max min_by max_by first first_value last
    last_value any_value collect_list collect_set array_agg listagg string_agg stddev std
    stddev_pop stddev_samp variance var_pop var_samp corr covar_pop covar_samp skewness
    kurtosis percentile percentile_approx approx_percentile percentile_cont percentile_disc
    approx_count_distinct median mode bool_and bool_or every some any bit_and bit_or bit_xor
    histogram_numeric count_min_sketch hll_sketch_agg hll_union_agg grouping grouping_id
    regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy
    row_number rank dense_rank percent_rank cume_dist ntile lag lead nth_value
"""
_NONDETERMINISTIC_LIST = """
    rand randn random uniform randstr uuid shuffle now current_timestamp current_date curdate
    localtimestamp monotonically_increasing_id spark_partition_id
    input_file_name input_file_block_start input_file_block_length reflect java_method
    try_reflect
"""
_AGGREGATES = frozenset(_AGGREGATE_LIST.split())
_NONDETERMINISTIC = frozenset(_NONDETERMINISTIC_LIST.split())
# Spark calls these without parentheses too (``current_date - 1``).
_BARE_CALLS = frozenset({"current_timestamp", "current_date", "localtimestamp"})
_CLOCK_WITHOUT_ARGUMENTS = "unix_timestamp"  # ``unix_timestamp(ts)`` is deterministic


def not_row_level(sql: str, columns: Collection[str] = ()) -> list[str]:
    """What in ``sql`` makes its value depend on more than the row's own columns: each
    aggregate or window function call, ``OVER``, and each nondeterministic function (random,
    clock, partition or file dependent), as written, in order, each once. A name among
    ``columns`` (any letter case) not followed by ``(`` is the column, as Spark resolves it."""
    known = {c.lower() for c in columns}
    tokens = list(_TOKEN.finditer(_STRING.sub(" '' ", sql)))
    found: dict[str, None] = {}
    for i, token in enumerate(tokens):
        bare = token.group(2)
        if bare is None:
            continue
        name = bare.lower()
        before = tokens[i - 1].group(0) if i else ""
        call = i + 1 < len(tokens) and tokens[i + 1].group(0) == "("
        if before == ".":
            continue
        empty = call and i + 2 < len(tokens) and tokens[i + 2].group(0) == ")"
        flagged = (
            (name == "over" and (call or name not in known))
            or (call and (name in _AGGREGATES or name in _NONDETERMINISTIC))
            or (empty and name == _CLOCK_WITHOUT_ARGUMENTS)
            or (name in _BARE_CALLS and name not in known)
        )
        if flagged:
            found[bare] = None
    return list(found)


def not_row_level_reason(found: Sequence[str]) -> str:
    """Why an expression using ``found`` (``not_row_level``) cannot define a global feature,
    and what to write instead."""
    return (
        f"uses {', '.join(found)}, so its value would not be a function of the inputs as of "
        "its time alone, the same in every build (an aggregate or window reads other rows, a "
        "random or clock function changes from build to build); write a row-level, "
        "deterministic expression over the input aliases: aggregate in the input's own "
        "feature set, and for the value's time use `feature_ts`"
    )
