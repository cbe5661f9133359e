"""The CREATE TABLE statements in a prompt's text: tables, columns, names as PostgreSQL folds
them. Read by the SQL grammar (pg_llm.sql_grammar) and join inference (pg_llm.sql_joins);
other text around the DDL (a question as a comment, prose) is skipped.

Only light Python: the backend imports this.
"""

from __future__ import annotations

import re

TOKEN = re.compile(r"""
      (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")+")
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<punct>[(),.;])
    | (?P<other>\S)""", re.VERBOSE | re.DOTALL)
# elements of a CREATE TABLE body that are constraints, not columns
TABLE_CONSTRAINTS = {"constraint", "primary", "foreign", "unique", "check", "exclude", "like"}


def tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) of the DDL's tokens, comments dropped; strings kept whole so that a
    DEFAULT 'a -- b' or a quoted name with a comma cannot split an element."""
    return [(m.lastgroup, m.group()) for m in TOKEN.finditer(text)
            if m.lastgroup != "comment"]


def name(kind: str, text: str) -> str | None:
    if kind == "word":
        return text.lower()  # PostgreSQL folds unquoted names
    if kind == "quoted":
        return text[1:-1].replace('""', '"')
    return None


def tables(ddl: str) -> list[tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
    """Each CREATE TABLE in `ddl`: (its name's tokens, schema first; its columns' tokens)."""
    toks = tokens(ddl)
    found = []
    i = 0
    while i < len(toks):
        if not (toks[i][0] == "word" and toks[i][1].lower() == "create"):
            i += 1
            continue
        j = i + 1
        while j < len(toks) and toks[j][0] == "word" and toks[j][1].lower() in (
                "global", "local", "temp", "temporary", "unlogged"):
            j += 1
        if j >= len(toks) or toks[j][1].lower() != "table":
            i += 1
            continue
        j += 1
        if [t[1].lower() for t in toks[j:j + 3]] == ["if", "not", "exists"]:
            j += 3
        parts = []
        while j < len(toks) and name(*toks[j]) is not None:
            parts.append(toks[j])
            if j + 1 < len(toks) and toks[j + 1][1] == ".":
                j += 2
                continue
            j += 1
            break
        if not parts or j >= len(toks) or toks[j][1] != "(":
            i = j
            continue
        columns: list[tuple[str, str]] = []
        i = read_columns(toks, j + 1, columns)
        found.append((parts, columns))
    return found


def read_columns(toks, i: int, columns: list) -> int:
    """Column tokens of one CREATE TABLE body starting after its '('; returns the index
    after its ')'."""
    depth, first = 1, True
    while i < len(toks) and depth > 0:
        kind, text = toks[i]
        if depth == 1 and first:
            column = name(kind, text)
            if column is not None and not (kind == "word" and column in TABLE_CONSTRAINTS):
                columns.append((kind, text))
            first = False
        if text == "(" and kind == "punct":
            depth += 1
        elif text == ")" and kind == "punct":
            depth -= 1
        elif text == "," and kind == "punct" and depth == 1:
            first = True
        i += 1
    return i
