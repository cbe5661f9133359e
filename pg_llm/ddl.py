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


def statements(ddl: str) -> list[tuple[list[tuple[str, str]], list[list[tuple[str, str]]]]]:
    """Each CREATE TABLE in `ddl`: (its name's tokens, schema first; its body's elements:
    the tokens of each column or table constraint, split at the commas of the body's own
    level). An unterminated body (a cut-off prompt) keeps what it has."""
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
        elements, i = _elements(toks, j + 1)
        found.append((parts, elements))
    return found


def tables(ddl: str) -> list[tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
    """Each CREATE TABLE in `ddl`: (its name's tokens, schema first; its columns' tokens)."""
    return [(parts, [element[0] for element in elements if is_column(element)])
            for parts, elements in statements(ddl)]


def is_column(element: list[tuple[str, str]]) -> bool:
    """A body element that declares a column (not a table constraint)."""
    if not element:
        return False
    column = name(*element[0])
    return column is not None and not (element[0][0] == "word" and column in TABLE_CONSTRAINTS)


def _elements(toks, i: int) -> tuple[list[list[tuple[str, str]]], int]:
    """The elements of a CREATE TABLE body starting after its '(', and the index after its
    ')'."""
    elements, current, depth = [], [], 1
    while i < len(toks):
        kind, text = toks[i]
        i += 1
        if kind == "punct" and text == "(":
            depth += 1
        elif kind == "punct" and text == ")":
            depth -= 1
            if depth == 0:
                break
        if kind == "punct" and text == "," and depth == 1:
            elements.append(current)
            current = []
        else:
            current.append((kind, text))
    elements.append(current)
    return elements, i
