"""Point 7 of issue 9: every function of the extension is safe whatever the caller's
search_path. Functions pin it (sql/idempotent/999-search-path.sql); a temporary table named
like a catalog table, or a function in a schema the caller put before pg_catalog, cannot
stand in for what the extension's code names; SQL the caller wrote still resolves as the
caller expects."""

from __future__ import annotations

import pytest

from security.conftest import MODEL_ID, error_of

EXTENSION_FUNCTIONS = """
    SELECT p.oid::regprocedure::text, l.lanname, p.prosecdef, p.proconfig
    FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_llm'
    JOIN pg_language l ON l.oid = p.prolang"""


def test_every_function_pins_search_path(db):
    functions = db.execute(EXTENSION_FUNCTIONS).fetchall()
    assert len(functions) > 20
    unpinned = [name for name, lang, _, config in functions
                if lang != "c" and not any(c.startswith("search_path=") for c in config or [])]
    assert unpinned == []
    # SECURITY DEFINER ones included, whatever their language
    definers = [(name, config) for name, _, secdef, config in functions if secdef]
    assert definers and all(any(c.startswith("search_path=pg_catalog") for c in config or [])
                            for _, config in definers), definers


@pytest.fixture
def shadowing_admin(engine, login):
    """An llm_admin who shadows catalog names with temporary tables and a schema of its own
    placed before pg_catalog, holding functions named like built-ins that fail when called."""
    role, conn = login("GRANT llm_admin TO {role}", "GRANT USAGE ON FOREIGN SERVER eng TO {role}",
                       "CREATE SCHEMA s_{role} AUTHORIZATION {role}", prefix="shadow")
    schema = f"s_{role}"
    for name in ("models", "engines", "model_versions", "jobs", "pg_foreign_server",
                 "pg_foreign_table", "pg_class", "pg_namespace", "pg_roles"):
        conn.execute(f"CREATE TEMP TABLE {name} (name text, relid oid, srvname text)")
        conn.execute(f"INSERT INTO pg_temp.{name} VALUES ('m', 0, 'eng')")
    for fn, args in (("quote_ident", "text"), ("format", "text"), ("current_schema", ""),
                     ("has_table_privilege", "text, text"), ("current_setting", "text")):
        conn.execute(f"CREATE FUNCTION {schema}.{fn}({args}) RETURNS text LANGUAGE plpgsql AS "
                     "$$BEGIN RAISE EXCEPTION 'hijacked'; END$$")
    conn.execute(f"SET search_path = pg_temp, {schema}, public, pg_catalog")
    return role, conn, schema


def test_temp_tables_and_caller_functions_cannot_stand_in(shadowing_admin, engine_server):
    role, conn, schema = shadowing_admin
    (table,) = conn.execute(
        "SELECT llm_create_model('shadowed', engine => 'eng', model_name => %s, "
        "prompt_template => '{{content}}', schema => %s)", (MODEL_ID, schema)).fetchone()
    assert table == f"{schema}.shadowed"
    assert conn.execute(f"SELECT answer FROM {table} WHERE content = 'hi'").fetchone() == ("echo:hi",)
    conn.execute("SELECT llm_set_active_version('shadowed', 1)")
    assert conn.execute("SELECT engine, foreign_table FROM llm.model_summary "
                        "WHERE model = 'shadowed'").fetchone() == ("eng", table)
    conn.execute("SELECT llm_drop_model('shadowed')")
    assert conn.execute("SELECT count(*) FROM llm.models WHERE name = 'shadowed'").fetchone() == (0,)
    # the look-alikes were never read nor written
    assert conn.execute("SELECT count(*) FROM pg_temp.models").fetchone() == (1,)
    err = error_of(conn, f"SELECT {schema}.quote_ident('x')")
    assert "hijacked" in str(err)


def test_caller_query_still_sees_its_schema(shadowing_admin, db):
    """llm_finetune runs the training query under the caller's search_path (a dry run sends
    nothing), while its own SQL ignores the caller's look-alikes."""
    role, conn, schema = shadowing_admin
    conn.execute("SELECT llm_create_model('tuned', engine => 'eng', model_name => %s, "
                 "prompt_template => '{{content}}', schema => %s)", (MODEL_ID, schema))
    conn.execute(f"CREATE TABLE {schema}.chats (chat_id int, role text, content text)")
    for chat in range(1, 11):
        conn.execute(f"INSERT INTO {schema}.chats VALUES (%s, 'user', 'question %s'), "
                     "(%s, 'assistant', 'answer %s')", (chat, chat, chat, chat))
    row = conn.execute("SELECT conversations, status FROM llm_finetune('tuned', "
                       "'SELECT chat_id, role, content FROM chats ORDER BY chat_id, role DESC', "
                       "dry_run => true)").fetchone()
    assert row == (10, "dry_run")
    # and without the schema on its path, the same query names no table
    conn.execute("SET search_path = public")
    err = error_of(conn, "SELECT * FROM llm_finetune('tuned', 'SELECT * FROM chats', dry_run => true)")
    assert err.sqlstate == "42P01"


def test_the_evaluation_sandbox_pins_its_path(db):
    (config,) = db.execute("SELECT proconfig FROM pg_proc WHERE proname = '_eval_run_as_reader'"
                           ).fetchone()
    assert "search_path=pg_catalog, pg_temp" in config
