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
from collections.abc import Collection

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
