"""Text metrics of one answer: is it a bare SQL query, and is it the gold query?

Both use sqlglot's PostgreSQL dialect. The succinct check is strict on purpose: the point of
the tutorial is an answer that is one SQL query and nothing else, so prose, a markdown fence
or a comment around the SQL all count as "not succinct". One trailing semicolon is allowed.
"""

from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

# sqlglot logs a warning whenever it falls back to a generic Command; answers are untrusted
# text, so that would flood the server log.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

DIALECT = "postgres"
_FENCE = re.compile(r"^```[A-Za-z]*[ \t]*\n(?P<body>.*?)\n?```$", re.DOTALL)


def strip_statement(sql: str) -> str:
    """Whitespace and one trailing semicolon removed: the text PostgreSQL should run."""
    text = sql.strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def executable_sql(answer: str | None) -> str | None:
    """The SQL to execute for an answer: whitespace, one trailing ';' and a surrounding
    markdown fence removed. Prose is left in place, so it fails to run (and scores 0)."""
    if answer is None:
        return None
    text = answer.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group("body")
    text = strip_statement(text)
    return text or None


def parse_statements(sql: str) -> list[exp.Expression] | None:
    """Every statement sqlglot finds (empty ones dropped), or None when it does not parse."""
    try:
        trees = sqlglot.parse(sql, read=DIALECT, error_level=ErrorLevel.RAISE)
    except (SqlglotError, RecursionError, ValueError):
        return None
    return [tree for tree in trees if tree is not None]


def _is_query(tree: exp.Expression) -> bool:
    if isinstance(tree, exp.Command):  # sqlglot's "I did not understand this" node
        return False
    if isinstance(tree, exp.Select):
        return bool(tree.expressions)  # a lone "SELECT" is not an answer
    return isinstance(tree, (exp.Query, exp.Values))


def is_succinct(answer: str | None) -> bool:
    """True when the answer is exactly one SQL query (optionally ending with ';')."""
    if answer is None:
        return False
    body = strip_statement(answer)
    if not body or body.endswith(";"):
        return False  # ";;" is two statements, one of them empty
    trees = parse_statements(body)
    if trees is None or len(trees) != 1:
        return False
    tree = trees[0]
    if not _is_query(tree):
        return False
    # A comment is text around the SQL too (models like to echo "-- question").
    return not any(node.comments for node in tree.walk())


def normalize_sql(sql: str | None) -> str | None:
    """A canonical text of a query: keywords, whitespace, identifier case and quotes unified.

    Unparseable text falls back to lower-cased, whitespace-collapsed text, so two identical
    strings still match and prose never matches SQL.
    """
    if sql is None:
        return None
    body = strip_statement(sql)
    if not body:
        return None
    trees = parse_statements(body)
    if not trees or len(trees) != 1:
        return " ".join(body.split()).lower()
    tree = normalize_identifiers(trees[0], dialect=DIALECT)
    for identifier in tree.find_all(exp.Identifier):
        identifier.set("this", identifier.this.lower())
        identifier.set("quoted", False)
    try:
        return tree.sql(dialect=DIALECT, comments=False)
    except SqlglotError:
        return " ".join(body.split()).lower()


def exact_match(answer: str | None, gold_sql: str | None) -> bool:
    """Normalised exact match of the answer (as executed) with the gold query."""
    candidate = normalize_sql(executable_sql(answer))
    gold = normalize_sql(gold_sql)
    return candidate is not None and candidate == gold


def has_top_level_order_by(sql: str) -> bool:
    """Whether a query's result order is part of its meaning (ORDER BY on the outer query)."""
    trees = parse_statements(strip_statement(sql))
    if not trees or len(trees) != 1:
        # Unparseable by sqlglot: look for ORDER BY after the last closing parenthesis.
        tail = sql[sql.rfind(")") + 1:] if ")" in sql else sql
        return re.search(r"\border\s+by\b", tail, re.IGNORECASE) is not None
    tree = trees[0]
    while isinstance(tree, exp.Subquery) and not tree.args.get("order"):
        tree = tree.this
    return bool(tree.args.get("order"))
