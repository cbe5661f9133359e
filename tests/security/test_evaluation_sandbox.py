"""The evaluation sandbox (issue 9, point 4): hostile evaluation data rows.

A data row's setup_sql, gold_sql and the model's answers run as llm_eval_reader only, even
when the caller is a superuser (the dangerous case: its data set may come from anyone). Each
hostile row must fail with PostgreSQL's own privilege error and leave no trace: no file
written or read, no program run, no other role's row read or changed, the session's user
and prepared statements as they were.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from evaluate.scripted_engine import ScriptedEngine
from security.conftest import error_of

SCORE_FUNCTION = """
CREATE FUNCTION pg_temp.score(setup text, gold text, answers text[])
RETURNS text LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
import dataclasses, json
from pg_llm.boot import raise_sql_error
from pg_llm.errors import LlmError
from pg_llm.evaluate.execution import Sandbox
try:
    r = Sandbox(plpy, 2000).score(setup, gold, list(answers))
except LlmError as exc:
    raise_sql_error(plpy, exc)
return json.dumps({"gold_ok": r.gold.ok, "gold_error": r.gold.error,
                   "answers": [dataclasses.asdict(a) for a in r.answers]})
$$"""

MARK = f"/tmp/pg_llm_sandbox_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def score(db):
    """Sandbox.score as llm_evaluate runs it, with a superuser caller; public.precious is a
    table only the superuser may read."""
    db.execute(SCORE_FUNCTION)
    db.execute("CREATE TABLE public.precious (secret text)")
    db.execute("INSERT INTO public.precious VALUES ('the crown jewels')")

    def run(setup, gold="SELECT 1", answers=("SELECT 1",)):
        row = db.execute("SELECT pg_temp.score(%s, %s, %s)",
                         [setup, gold, list(answers)]).fetchone()
        return json.loads(row[0])
    yield run
    for suffix in ("", "_out"):
        Path(MARK + suffix).unlink(missing_ok=True)


HOSTILE_SETUPS = {
    "copy to program": f"COPY (SELECT 1) TO PROGRAM 'touch {MARK}'",
    "copy from program": f"CREATE TABLE t (x text); COPY t FROM PROGRAM 'id > {MARK}'",
    "copy to file": f"COPY (SELECT 'x') TO '{MARK}_out'",
    "copy from file": "CREATE TABLE t (x text); COPY t FROM '/etc/hostname'",
    "pg_read_file": "CREATE TABLE t AS SELECT pg_read_file('/etc/hostname') AS x",
    "pg_ls_dir": "CREATE TABLE t AS SELECT pg_ls_dir('.') AS x",
    "lo_import": "CREATE TABLE t AS SELECT lo_import('/etc/hostname') AS x",
    "other role's data": "CREATE TABLE t AS SELECT * FROM public.precious",
    "other role's table": "DELETE FROM public.precious",
    "drop": "DROP TABLE public.precious",
    "reset role": "RESET ROLE; DELETE FROM public.precious",
    "set role": "SET ROLE postgres; DELETE FROM public.precious",
    "set_config role": "SELECT set_config('role', 'postgres', false)",
    "session authorization": "SET SESSION AUTHORIZATION postgres",
    "do block": "DO $$ BEGIN EXECUTE 'DELETE FROM public.precious'; END $$",
    "untrusted language": ("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS "
                           f"$$ import os; os.system('touch {MARK}') $$"),
    "alter system": "ALTER SYSTEM SET log_statement = 'none'",
    "create role": "CREATE ROLE evil SUPERUSER",
    "transaction control": "COMMIT; DELETE FROM public.precious",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SETUPS))
def test_a_hostile_setup_runs_as_the_reader_and_fails(db, score, name):
    result = score(HOSTILE_SETUPS[name])
    assert not result["gold_ok"]
    error = result["gold_error"]
    assert error.startswith("setup_sql failed: "), error
    # PostgreSQL's own refusal: privileges or SET ROLE inside a security-definer function
    # (42501), transaction control inside a function (0A000), ALTER SYSTEM (25001).
    assert error.split(": ")[1] in ("42501", "0A000", "25001"), error
    assert db.execute("SELECT secret FROM public.precious").fetchall() == [("the crown jewels",)]
    assert not Path(MARK).exists() and not Path(MARK + "_out").exists()
    assert db.execute("SELECT current_user, session_user").fetchone() == ("postgres", "postgres")
    assert db.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'llm_eval_%'"
                      ).fetchone()[0] == 0


def test_setup_tables_belong_to_the_reader_and_vanish(db, score):
    result = score("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2)",
                   gold="SELECT a FROM t", answers=["SELECT a FROM t ORDER BY a DESC"])
    assert result["gold_ok"] and result["answers"][0]["execution_match"] is True
    assert db.execute("SELECT count(*) FROM pg_class WHERE relowner = "
                      "'llm_eval_reader'::regrole").fetchone()[0] == 0


def test_a_function_planted_by_setup_cannot_reach_further(db, score):
    """The setup plants a function; the gold query and an answer call it: still the reader."""
    setup = ("CREATE FUNCTION steal() RETURNS text LANGUAGE sql AS "
             "$$ SELECT secret FROM public.precious $$; "
             "CREATE FUNCTION shell() RETURNS int LANGUAGE plpgsql AS "
             f"$$ BEGIN COPY (SELECT 1) TO PROGRAM 'touch {MARK}'; RETURN 1; END $$")
    result = score(setup, gold="SELECT steal()", answers=["SELECT shell()"])
    assert not result["gold_ok"] and result["gold_error"].startswith("42501")
    result = score(setup, gold="SELECT 1", answers=["SELECT shell()"])
    assert result["answers"][0]["error"].startswith("42501")
    assert not Path(MARK).exists()


@pytest.mark.parametrize("setup", [
    "PREPARE _pg3_0 AS SELECT secret FROM public.precious",
    "DEALLOCATE mine; PREPARE mine AS SELECT 2",
    "DEALLOCATE ALL",
])
def test_prepared_statements_outlive_rollback_so_the_evaluation_stops(db, score, setup):
    """A prepared statement runs as whoever executes it: one planted under a client's name
    would run as the caller. It is deallocated and the evaluation stops with 42501."""
    db.execute("PREPARE mine AS SELECT 1")
    err = error_of(db, "SELECT pg_temp.score(%s, 'SELECT 1', ARRAY['SELECT 1'])", [setup])
    assert err.sqlstate == "42501"
    assert "prepared statements" in err.diag.message_primary
    names = [r[0] for r in db.execute("SELECT name FROM pg_prepared_statements")]
    assert "_pg3_0" not in names
    if "mine" in names:   # left alone, or gone; never replaced
        assert db.execute("EXECUTE mine").fetchone() == (1,)


def test_a_harmless_setup_keeps_the_prepared_statements(db, score):
    db.execute("PREPARE mine AS SELECT 1")
    result = score("CREATE TABLE t (a int)", gold="SELECT count(*) FROM t")
    assert result["gold_ok"]
    assert db.execute("EXECUTE mine").fetchone() == (1,)


# -- the same through llm_evaluate, as a non-superuser ------------------------------------

@pytest.fixture
def evaluation(db):
    engine = ScriptedEngine()
    with engine.fake:
        db.execute("SELECT llm_create_engine('fake', base_url => %s, api_key => 'sk-test')",
                   [engine.fake.url])
        db.execute("SELECT llm_create_model('sqlbot', engine => 'fake', "
                   "model_name => 'base-model', prompt_template => '{{content}}')")
        yield engine


def test_llm_evaluate_by_an_admin_with_hostile_rows(db, login, evaluation):
    db.execute("CREATE TABLE public.precious (secret text)")
    db.execute("INSERT INTO public.precious VALUES ('the crown jewels')")
    role, admin = login("GRANT llm_admin TO {role}", "GRANT SELECT ON sqlbot TO {role}",
                        "GRANT CREATE ON DATABASE {dbname} TO {{role}}".format(
                            dbname=db.info.dbname))
    db.execute("CREATE TABLE hostile (id int, content text, gold_sql text, setup_sql text)")
    db.execute(f"GRANT SELECT ON hostile TO {role}")
    rows = [(1, "q1", "SELECT 1", f"COPY (SELECT 1) TO PROGRAM 'touch {MARK}'"),
            (2, "q2", "SELECT * FROM t", "CREATE TABLE t AS SELECT * FROM public.precious"),
            (3, "q3", "SELECT * FROM public.precious", "CREATE TABLE t (a int)"),
            (4, "q4", "SELECT count(*) FROM t", "CREATE TABLE t (a int); INSERT INTO t VALUES (1)")]
    with db.cursor() as cur:
        cur.executemany("INSERT INTO hostile VALUES (%s, %s, %s, %s)", rows)
    evaluation.script("base-model", "q4", "SELECT count(*) FROM t")
    result = admin.execute("SELECT n, execution_match FROM llm_evaluate(ARRAY['sqlbot'], "
                           "'SELECT * FROM hostile')").fetchone()
    assert result == (4, 1.0)   # only the harmless row is executable, and it matches
    errors = dict(db.execute("SELECT item_id, error FROM llm.evaluation_items "
                             "ORDER BY item_id").fetchall())
    assert "42501" in errors["1"] and "42501" in errors["2"] and "42501" in errors["3"]
    assert not Path(MARK).exists()
    assert db.execute("SELECT secret FROM public.precious").fetchall() == [("the crown jewels",)]
