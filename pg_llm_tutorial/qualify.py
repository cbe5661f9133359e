"""Gold SQL with every column named by its table (`books.title`, not `title`).

Join answers in the training data already qualify their columns; one-table answers do not.
So a model learns "qualified name → join" and, on a real-style question, puts another
table's column bare into its WHERE (`FROM farm WHERE soil = 'L'`, soil being a parcel's).
Training on qualified answers everywhere makes "which table holds this column" part of
every answer. Used by bench/transfer_experiment.py (`qualify=1`) to measure that.
"""

from __future__ import annotations

import re

from pg_llm import ddl as ddl_reader

# A string literal (left alone) or a word; numbers and operators are never matched.
_WORD = re.compile(r"'(?:[^']|'')*'|(?<![\w.])[A-Za-z_][A-Za-z0-9_]*(?![\w.])")


def table_columns(ddl: str) -> dict[str, set[str]]:
    """{table: its columns} of the CREATE TABLE statements in `ddl` (PostgreSQL's names)."""
    return {ddl_reader.name(*parts[-1]): {ddl_reader.name(*c) for c in cols}
            for parts, cols in ddl_reader.tables(ddl)}


def qualify(sql: str, ddl: str) -> str:
    """`sql` with its bare columns prefixed by their table, when it reads one table with no
    subquery; otherwise (joins are qualified already, subqueries have nested scopes)
    unchanged."""
    words = [w.lower() for w in _WORD.findall(sql) if not w.startswith("'")]
    if words.count("from") != 1 or "join" in words or words.count("select") != 1:
        return sql
    table = words[words.index("from") + 1]
    columns = table_columns(ddl).get(table)
    if not columns:
        return sql

    def prefix(match: re.Match) -> str:
        word = match.group(0)
        before = sql[:match.start()].rstrip().lower()
        if word in columns and not before.endswith(" as"):
            return f"{table}.{word}"
        return word

    return _WORD.sub(prefix, sql)
