"""The execution sandbox, run inside a real backend (no model needed).

pg_temp.score() calls pg_llm.evaluate.execution.Sandbox the way llm_evaluate does: one
throwaway schema per example, gold + answers as llm_eval_reader, then a rollback.
"""

import json

import psycopg
import pytest

SCORE_FUNCTION = """
CREATE FUNCTION pg_temp.score(setup text, gold text, answers text[], timeout_ms int)
RETURNS text LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
import dataclasses, json
from pg_llm.evaluate.execution import Sandbox
r = Sandbox(plpy, timeout_ms).score(setup, gold, list(answers))
return json.dumps({"gold_ok": r.gold.ok, "gold_error": r.gold.error,
                   "answers": [dataclasses.asdict(a) for a in r.answers]})
$$"""

SETUP = """
CREATE TABLE t (a int, b text, x numeric);
INSERT INTO t VALUES (1, 'one', 1.5), (2, 'two', 2.25), (3, NULL, NULL), (4, 'four', 4);
"""


@pytest.fixture
def score(db):
    db.execute(SCORE_FUNCTION)

    def run(gold, answers, *, setup=SETUP, timeout_ms=2000):
        row = db.execute("SELECT pg_temp.score(%s, %s, %s, %s)",
                         [setup, gold, answers, timeout_ms]).fetchone()
        return json.loads(row[0])
    return run


def matches(result):
    return [a["execution_match"] for a in result["answers"]]


def test_correct_sql_scores_1_and_wrong_columns_0(score):
    result = score("SELECT a, b FROM t WHERE a > 1", [
        "SELECT a, b FROM t WHERE a >= 2",      # different text, same result
        "SELECT b FROM t WHERE a > 1",          # a column missing
        "SELECT b, a FROM t WHERE a > 1",       # columns swapped
        "SELECT a, b FROM t WHERE a > 2",       # a row missing
        "SELECT a, b FROM t WHERE a > 1;",      # trailing semicolon is fine
        "```sql\nSELECT a, b FROM t WHERE a > 1\n```",  # a fence is removed for execution
    ])
    assert result["gold_ok"]
    assert matches(result) == [True, False, False, False, True, True]
    assert all(a["executed_ok"] for a in result["answers"])


def test_prose_and_unknown_columns_fail_with_the_postgres_error(score):
    result = score("SELECT a FROM t", ["Sure! SELECT a FROM t", "SELECT nope FROM t"])
    assert matches(result) == [False, False]
    assert [a["executed_ok"] for a in result["answers"]] == [False, False]
    assert result["answers"][0]["error"].startswith("42601")
    assert result["answers"][1]["error"].startswith("42703")


def test_null_safe_and_numeric_tolerance(score):
    result = score("SELECT avg(x) FROM t", [
        "SELECT sum(x) / count(x) FROM t",      # numeric division: 2.5833333333333333
        "SELECT (sum(x) / count(x))::float8 FROM t",
        "SELECT b FROM t WHERE a = 3",          # a NULL is not the average
    ])
    assert matches(result) == [True, True, False]
    nulls = score("SELECT b FROM t", ["SELECT b FROM t ORDER BY a DESC", "SELECT coalesce(b, '') FROM t"])
    assert matches(nulls) == [True, False]


def test_order_matters_only_when_the_gold_query_orders(score):
    ordered = score("SELECT a FROM t ORDER BY a DESC", ["SELECT a FROM t ORDER BY a", "SELECT a FROM t ORDER BY a DESC"])
    assert matches(ordered) == [False, True]
    unordered = score("SELECT a FROM t", ["SELECT a FROM t ORDER BY a DESC"])
    assert matches(unordered) == [True]


@pytest.fixture
def precious(db):
    """A real table outside the sandbox, and a function that would empty it."""
    db.execute("CREATE TABLE public.precious (id int); INSERT INTO public.precious VALUES (1), (2)")
    db.execute("CREATE FUNCTION public.wipe() RETURNS int LANGUAGE sql AS "
               "'DELETE FROM public.precious RETURNING 1'")
    return db


HARMFUL = [
    "DROP TABLE t",
    "DROP TABLE public.precious",
    "DELETE FROM public.precious",
    "SELECT 1; DROP TABLE public.precious",
    "SELECT 1 FROM t) AS q; DROP TABLE public.precious; --",
    "WITH d AS (DELETE FROM public.precious RETURNING *) SELECT * FROM d",
    "SET ROLE postgres",
    "RESET ROLE",
    "SELECT set_config('role', 'postgres', false)",
    "SELECT set_config('session_authorization', 'postgres', false)",
    "SELECT set_config('transaction_read_only', 'off', false)",
    "SELECT public.wipe()",
    "SELECT count(*) FROM public.precious",
    "SELECT pg_read_file('/etc/passwd')",
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pg_llm_escaped'",
    "CREATE TABLE public.evil (x int)",
    "SELECT pg_terminate_backend(pg_backend_pid())",
]


def test_harmful_answers_are_refused_and_change_nothing(score, precious):
    result = score("SELECT count(*) FROM t", HARMFUL)
    assert result["gold_ok"]
    for sql, answer in zip(HARMFUL, result["answers"]):
        assert answer["executed_ok"] is False, sql
        assert answer["error"], sql
    db = precious
    assert db.execute("SELECT count(*) FROM public.precious").fetchone()[0] == 2
    assert db.execute("SELECT to_regclass('public.evil')").fetchone()[0] is None
    # The session is exactly as before: same role, writable, no sandbox left behind.
    assert db.execute("SELECT current_user, session_user, current_setting('transaction_read_only')"
                      ).fetchone() == ("postgres", "postgres", "off")
    assert db.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'llm_eval%'"
                      ).fetchone()[0] == 0
    # The reader kept no privilege on anything.
    assert db.execute("SELECT has_table_privilege('llm_eval_reader', 'public.precious', 'SELECT')"
                      ).fetchone()[0] is False
    db.execute("INSERT INTO public.precious VALUES (3)")  # still a read-write transaction


def test_even_a_granted_write_is_refused_by_the_read_only_transaction(score, precious):
    # Defence in depth: if someone granted the reader DELETE, the transaction is still read-only.
    precious.execute("GRANT SELECT, DELETE ON public.precious TO llm_eval_reader; "
                     "GRANT USAGE ON SCHEMA public TO llm_eval_reader")
    try:
        result = score("SELECT 1", ["SELECT public.wipe()", "SELECT count(*) FROM public.precious"])
        assert result["answers"][0]["executed_ok"] is False
        assert "read-only transaction" in result["answers"][0]["error"]
        assert result["answers"][1]["executed_ok"] is True  # the grant itself works
        assert precious.execute("SELECT count(*) FROM public.precious").fetchone()[0] == 2
    finally:
        precious.execute("REVOKE ALL ON public.precious FROM llm_eval_reader")


def test_an_endless_query_is_stopped_at_the_deadline(score, db):
    # pg_sleep(30) would return a row and the recursion never ends: the 57014 errors show
    # the deadline stopped both.
    result = score("SELECT 1", [
        "SELECT pg_sleep(30)",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "SELECT 1",
    ], timeout_ms=300)
    assert [a["error"] for a in result["answers"][:2]] == ["57014: stopped after 300 ms"] * 2
    assert result["answers"][2]["execution_match"] is True  # the next query is unaffected
    assert db.execute("SELECT 'alive'").fetchone()[0] == "alive"  # no stray cancel later


def test_the_users_own_statement_timeout_still_cancels_the_call(score, db):
    db.execute("SET statement_timeout = '400ms'")
    with pytest.raises(psycopg.errors.QueryCanceled):
        score("SELECT 1", ["SELECT pg_sleep(5)"], timeout_ms=10000)
    db.execute("RESET statement_timeout")


def test_a_failing_setup_or_gold_makes_the_item_not_executable(score):
    broken = score("SELECT 1", ["SELECT 1"], setup="CREATE TABLE oops (")
    assert broken["gold_ok"] is False and "setup_sql failed" in broken["gold_error"]
    assert broken["answers"][0]["execution_match"] is None
    bad_gold = score("SELECT nope FROM t", ["SELECT a FROM t"])
    assert bad_gold["gold_ok"] is False
    assert bad_gold["answers"][0] == {"executed_ok": None, "execution_match": None,
                                      "error": bad_gold["answers"][0]["error"]}


def test_a_temporary_table_of_the_caller_does_not_shadow_the_sandbox(score, db):
    db.execute("CREATE TEMP TABLE t (a int); INSERT INTO t VALUES (99)")
    result = score("SELECT count(*) FROM t", ["SELECT 4"])
    assert result["gold_ok"] and matches(result) == [True]


def test_the_extension_reinstalls_with_an_existing_reader_role(db):
    # Roles are cluster-wide: the script must accept a role another database created.
    assert db.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'llm_eval_reader' "
                      "AND NOT rolcanlogin AND NOT rolsuper").fetchone()[0] == 1
    db.execute("DROP EXTENSION pg_llm CASCADE")
    db.execute("CREATE EXTENSION pg_llm")
    owner = db.execute("SELECT proowner::regrole::text, prosecdef, proconfig FROM pg_proc "
                       "WHERE proname = '_eval_run_as_reader'").fetchone()
    assert owner == ("llm_eval_reader", True,
                     ["transaction_read_only=on", "search_path=pg_catalog, pg_temp"])
