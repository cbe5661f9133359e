"""Fixtures for the C bridge tests: the diagnostic EchoTable wrapper over pg_llm's FDW.

EchoTable returns the quals it received as rows (see pg_llm/wrappers/echo.py), so these
tests see exactly what the C bridge pushed down, with no model and no HTTP.
"""

from __future__ import annotations

import json

import pytest

ECHO_SERVER = ("CREATE SERVER echo FOREIGN DATA WRAPPER pg_llm "
               "OPTIONS (wrapper 'pg_llm.testing.echo.EchoTable')")
ECHO_TABLE = ("CREATE FOREIGN TABLE echo_t (content text, answer text, quals text, calls int, "
              "needed text, options text) SERVER echo OPTIONS (prompt_columns 'content')")


@pytest.fixture
def echo(db):
    """A database with server `echo` and foreign table `echo_t` (prompt column `content`)."""
    db.execute(ECHO_SERVER)
    db.execute(ECHO_TABLE)
    return db


@pytest.fixture
def questions(echo):
    """A plain table of prompts to join with: four rows, one text repeated."""
    echo.execute("CREATE TABLE questions (id int PRIMARY KEY, text text)")
    echo.execute("INSERT INTO questions VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'two')")
    echo.execute("ANALYZE questions")
    return echo


def received_quals(row_quals: str) -> list[dict]:
    return json.loads(row_quals)


def explain(db, sql: str, params=None, analyze: bool = False) -> str:
    prefix = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " if analyze \
        else "EXPLAIN (COSTS OFF) "
    return "\n".join(r[0] for r in db.execute(prefix + sql, params).fetchall())


def explain_number(plan: str, label: str) -> int:
    """Sum of `label: N` over the plan's foreign scans (e.g. "LLM Calls")."""
    total = 0
    for line in plan.splitlines():
        line = line.strip()
        if line.startswith(label + ":"):
            total += int(line.split(":")[1])
    return total
