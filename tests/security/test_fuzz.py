"""Hostile input gets a clean error (issue 9, point 12).

A deterministic fuzz (fixed seed) of bad arguments to every llm_* function of the installed
extension (found in pg_proc, so a new function is fuzzed too) and bad quals on a model
table, as an ordinary role granted llm_admin. Every error must read like PostgreSQL's own: a
SQLSTATE that says what went wrong (never 38000 external_routine_exception or XX000
internal_error, which mean a Python exception escaped), no traceback, no internal module
names; no backend may crash. make test runs FUZZ_CASES cases; the slow variant ten times as
many (PG_LLM_FUZZ_CASES overrides both).
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from fake_openai import FakeOpenAI

SEED = 20261129
FUZZ_CASES = int(os.environ.get("PG_LLM_FUZZ_CASES", "400"))
# SQLSTATEs that mean "a Python exception escaped" rather than an error a user can act on.
UNCLEAN_STATES = {None, "", "38000", "38001", "38002", "38003", "38004", "39000", "XX000",
                  "XX001", "XX002"}
INTERNAL_WORDS = ("Traceback", "plpy", "spiexceptions", 'File "', "wrapper failed", "Error:")
# Module names (pg_llm.catalog.models), not settings (pg_llm.join_batch_size).
MODULE_NAME = re.compile(r"\bpg_llm\.(?:api|catalog|engines|finetune|evaluate|boot|bridge|fdw|"
                         r"errors|templates|multicorn|serve|demo|testing|interrupts)\b")

TEXTS = [None, "", " ", "m", "eng", "nope", "x" * 5000, "a'b", 'a"b', "é漢字🙂", "\t\n",
         "{{content}}", "{{", "}}", "{{ }}", "{{content", "{{1bad}}", "{{content}} {{answer}}",
         "{{content}}{{content}}", "{{" + "x" * 200 + "}}", "%s", "$1", "$$", "-1", "NaN",
         "Infinity", "1e309", "SELEC 1", "SELECT 1; SELECT 2", "DROP TABLE llm.models",
         "SELECT * FROM nope", "SELECT 1 AS content", "SELECT NULL::text AS content",
         "SELECT 'q' AS content, 'SELECT 1' AS gold_sql",
         "SELECT 'q' AS content, NULL AS gold_sql, 'bad sql' AS setup_sql",
         "SELECT 'user' AS role, 'x' AS content, 1 AS chat_id",
         "http://", "ftp://x/", "http://[::1", "http://127.0.0.1:1/v1", "file:///etc/passwd",
         "postgresql://", "sqlite:///etc/passwd", "not a url", "mysql://u:p@h/d",
         "m@1", "m@x", "m@-1", "m@99999999999", "@", "engine:eng", "model:m", "model:",
         "* * * * *", "99 99 99 99 99", "a" * 64, "pg_catalog.pg_class", "llm.models",
         "public", "PUBLIC", "openai", "local", "multicorn", "../../etc/passwd"]
# Names that exist in the fuzz database (engine eng, model m and its version 1).
ANCHORS = ["m", "eng", "m@1", "m1", "model:m", "engine:eng", "{{content}}",
           "SELECT 'user' AS role, 'hi' AS content, 1 AS chat_id UNION ALL "
           "SELECT 'assistant', 'SELECT 1', 1"]
INTS = [None, 0, -1, 1, 2, 2 ** 31 - 1, -2 ** 31]
BIGINTS = INTS + [2 ** 63 - 1, -2 ** 63]
FLOATS = [None, "0", "-1", "NaN", "Infinity", "-Infinity", "1e308", "1e-308", "0.5"]
NUMERICS = [None, "0", "-1", "-0.0001", "NaN", "Infinity", "1e30", "123456789.123456789"]
BOOLS = [None, True, False]
JSONS = [None, "{}", "[]", "null", "1", '"x"', '{"n_epochs": -1}', '{"n_epochs": "NaN"}',
         '{"n_epochs": 1e309}', '{"concurrency": 0}', '{"concurrency": -3}',
         '{"timeout": -5}', '{"timeout": "soon"}', '{"max_retries": 1e20}',
         '{"temperature": "hot"}', '{"validation_fraction": 2}', '{"batch_size": 1e20}',
         '{"learning_rate_multiplier": -1}', '{"suffix": "' + "x" * 500 + '"}',
         '{"defaults": {"max_tokens": -1}}', '{"cache": "maybe"}', '{"x": {"y": [1, 2]}}',
         '{"max_tokens": null}', '{"seed": 1.5}', '{"stop": ""}', '{"top_p": 0}',
         '{"audit": 3}', '{"on_error": "explode"}', '{"cache_ttl": -1}',
         '{"min_conversations": -1}', '{"max_tokens_per_conversation": 0}']
NAMES = [None, "postgres", "no_such_role", "", "public", "llm_admin"]
TEXT_ARRAYS = [None, [], [None], ["m"], ["m", None], ["m@1"], ["nope"], ["m@999"], [""],
               ["m", "m"], ["m@x"], ["@"]]
POOLS = {"text": TEXTS, "integer": INTS, "bigint": BIGINTS, "double precision": FLOATS,
         "numeric": NUMERICS, "boolean": BOOLS, "jsonb": JSONS, "name": NAMES,
         "text[]": TEXT_ARRAYS}
# Arguments pg_llm fills itself from the caller's session: fuzzing them tests nothing.
SKIPPED_ARGUMENTS = {"search_path", "schema"}

TABLE_QUALS = [
    ("content = ANY(%s)", [[None]]), ("content = ANY(%s)", [[]]),
    ("content = ANY(%s)", [["a", None, "a"]]), ("content = %s", [None]),
    ("content = 'q' AND max_tokens = %s", [-1]), ("content = 'q' AND max_tokens = %s", [0]),
    ("content = 'q' AND max_tokens = %s", [2 ** 31 - 1]),
    ("content = 'q' AND temperature = %s::float8", ["NaN"]),
    ("content = 'q' AND temperature = %s::float8", ["Infinity"]),
    ("content = 'q' AND temperature = %s", [-1.0]), ("content = 'q' AND temperature = %s", [3.0]),
    ("content = 'q' AND top_p = %s", [0.0]), ("content = 'q' AND top_p = %s::float8", ["NaN"]),
    ("content = 'q' AND seed = %s", [-2 ** 31]), ("content = 'q' AND stop = %s", [""]),
    ("content = 'q' AND version = %s", [-1]), ("content = 'q' AND version = %s", [999]),
    ("content = %s", ["x" * 100000]), ("content = %s", ["{{content}}"]),
    ("content = ANY(%s)", [[str(i) for i in range(50)]]),
]


@dataclass
class Function:
    name: str
    args: list[tuple[str, str, bool]]   # (name, type, has default)


def extension_functions(conn) -> list[Function]:
    rows = conn.execute("""
        SELECT p.proname, p.proargnames, p.pronargs, p.pronargdefaults,
               ARRAY(SELECT pg_catalog.format_type(t, NULL)
                     FROM unnest(p.proargtypes) WITH ORDINALITY AS a(t, i) ORDER BY i) AS types
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass
             AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_llm'
        WHERE p.proname LIKE 'llm\\_%' ORDER BY p.proname, p.oid""").fetchall()
    functions = []
    for name, argnames, nargs, ndefaults, types in rows:
        args = [(argnames[i], types[i], i >= nargs - ndefaults) for i in range(nargs)]
        functions.append(Function(name, args))
    return functions


def random_call(rng: random.Random, fn: Function) -> tuple[str, list]:
    parts, params = [], []
    for arg, type_name, has_default in fn.args:
        if arg in SKIPPED_ARGUMENTS or (has_default and rng.random() < 0.4):
            continue
        pool = POOLS.get(type_name)
        if pool is None:
            continue
        if type_name == "text" and rng.random() < 0.3:
            pool = ANCHORS   # reach past the name lookup more often
        parts.append(f"{arg} => %s::{type_name}")
        params.append(rng.choice(pool))
    return f"SELECT * FROM {fn.name}({', '.join(parts)})", params


def random_table_cases(rng: random.Random) -> list[tuple[str, list]]:
    if rng.random() < 0.7:
        where, params = rng.choice(TABLE_QUALS)
        return [(f"SELECT content, answer FROM m WHERE {where}", params)]
    # A hand-made model table with a hostile template or option: the validator or the scan
    # must refuse it cleanly.
    value = rng.choice([t for t in TEXTS if t is not None])
    option = rng.choice(["prompt_template", "predict", "defaults", "prompt_columns", "model",
                         "model_name", "active_version", "versions", "concurrency", "timeout",
                         "system_prompt", "max_retries"])
    create = sql.SQL("CREATE FOREIGN TABLE fz (content text, answer text) SERVER eng "
                     "OPTIONS ({} {})").format(sql.Identifier(option), sql.Literal(value))
    return [(create.as_string(None), []),
            ("SELECT content, answer FROM fz WHERE content = 'q'", [])]


def assert_clean(error: psycopg.Error, text: str, params: list, problems: list) -> None:
    diag = error.diag
    texts = [diag.message_primary, diag.message_detail, diag.message_hint, diag.context]
    joined = "\n".join(t for t in texts if t)
    bad = [w for w in INTERNAL_WORDS if w in joined] + MODULE_NAME.findall(joined)
    if diag.sqlstate in UNCLEAN_STATES or bad:
        problems.append(f"{diag.sqlstate} {bad} {text} {params!r:.200}\n    {joined[:600]}")


@pytest.fixture
def fuzz_conn(db, login):
    """An llm_admin login role owning engine `eng` (a loopback fake) and model `m`."""
    with FakeOpenAI(models=["m1"]) as server:
        role, conn = login("GRANT llm_admin TO {role}", "GRANT CREATE ON SCHEMA public TO {role}")
        conn.execute("SET statement_timeout = '5s'")

        def anchors():
            if not conn.execute("SELECT 1 FROM llm.engines WHERE name = 'eng'").fetchone():
                conn.execute("SELECT llm_create_engine('eng', base_url => %s, "
                             "api_key => 'sk-fuzz', verify => false)", [server.url])
            if not conn.execute("SELECT 1 FROM llm.models WHERE name = 'm'").fetchone():
                conn.execute("DROP FOREIGN TABLE IF EXISTS m")
                conn.execute("SELECT llm_create_model('m', engine => 'eng', model_name => 'm1', "
                             "prompt_template => '{{content}}')")
        anchors()
        yield conn, anchors


def run_fuzz(fuzz_conn, cases: int) -> None:
    conn, anchors = fuzz_conn
    rng = random.Random(SEED)
    functions = extension_functions(conn)
    assert len(functions) >= 15, [f.name for f in functions]
    problems: list[str] = []
    for case in range(cases):
        steps = random_table_cases(rng) if rng.random() < 0.2 else \
            [random_call(rng, rng.choice(functions))]
        for text, params in steps:
            try:
                conn.execute(text, params or None)
            except psycopg.Error as exc:
                if conn.broken or conn.closed:   # the backend is gone: a crash
                    pytest.fail(f"case {case} lost the connection: {text} {params!r:.200}: "
                                f"{exc}")
                assert_clean(exc, text, params, problems)
        conn.execute("DROP FOREIGN TABLE IF EXISTS fz")
        assert conn.execute("SELECT 1").fetchone() == (1,), f"case {case}: {steps}"
        anchors()
    unique = {p.split("\n")[1].strip() + " <- " + p.split(" SELECT")[0]: p for p in problems}
    assert not problems, f"{len(problems)} unclean errors in {cases} cases, " \
        f"{len(unique)} kinds:\n" + "\n".join(list(unique.values())[:30])


def test_fuzz_every_function_and_model_table(fuzz_conn):
    run_fuzz(fuzz_conn, FUZZ_CASES)


@pytest.mark.slow
def test_fuzz_many_more_cases(fuzz_conn):
    run_fuzz(fuzz_conn, 10 * FUZZ_CASES)


def test_a_syntax_error_in_a_query_argument_is_42601(fuzz_conn):
    """The issue's example: llm_finetune('ft_sql', '-1') gave spiexceptions.SyntaxError and a
    traceback."""
    conn, _ = fuzz_conn
    with pytest.raises(psycopg.errors.SyntaxError) as err:
        conn.execute("SELECT * FROM llm_finetune('m', '-1')")
    diag = err.value.diag
    assert diag.message_primary.startswith("syntax error at or near")
    assert "Traceback" not in (diag.context or "") and "spiexceptions" not in str(err.value)
