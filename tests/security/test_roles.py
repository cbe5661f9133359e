"""Point 8 of issue 9: roles that work out of the box. llm_admin manages engines and models;
a role granted llm_user plus SELECT on one model asks that model and nothing else; errors for
a role lacking a right name the missing grant."""

from __future__ import annotations

import psycopg
import pytest

from security.conftest import API_KEY, MODEL_ID, error_of


def test_the_extension_creates_nologin_roles(db):
    rows = db.execute("SELECT rolname, rolcanlogin, rolsuper, rolcreaterole FROM pg_roles "
                      "WHERE rolname IN ('llm_admin', 'llm_user') ORDER BY rolname").fetchall()
    assert rows == [("llm_admin", False, False, False), ("llm_user", False, False, False)]
    # cluster-wide: a database that finds them already made installs fine
    db.execute("DROP EXTENSION pg_llm CASCADE")
    db.execute("CREATE EXTENSION pg_llm")
    assert db.execute("SELECT count(*) FROM pg_roles WHERE rolname IN ('llm_admin', 'llm_user')"
                      ).fetchone() == (2,)


@pytest.fixture
def admin(login, engine_server):
    """A non-superuser granted llm_admin (plus a schema, which the database's owner gives)."""
    role, conn = login("GRANT llm_admin TO {role}", "CREATE SCHEMA adm_{role} AUTHORIZATION {role}",
                       prefix="admin")
    conn.execute(f"SET search_path = adm_{role}, public")
    conn.execute("SELECT llm_create_engine('eng', base_url => %s, api_key => %s)",
                 (engine_server.url, API_KEY))
    for name in ("granted", "other"):
        conn.execute("SELECT llm_create_model(%s, engine => 'eng', model_name => %s, "
                     "prompt_template => '{{content}}')", (name, MODEL_ID))
    engine_server.reset()
    return role, conn, f"adm_{role}"


@pytest.fixture
def analyst(admin, login):
    _, admin_conn, schema = admin
    role, conn = login("GRANT llm_user TO {role}", prefix="analyst")
    admin_conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    admin_conn.execute(f"GRANT SELECT ON {schema}.granted TO {role}")
    return role, conn, schema


def test_admin_owns_what_it_creates(admin, db):
    role, conn, schema = admin
    assert db.execute("SELECT owner FROM llm.engines WHERE name = 'eng'").fetchone() == (role,)
    assert conn.execute("SELECT foreign_table FROM llm.model_summary WHERE model = 'granted'"
                        ).fetchone() == (f"{schema}.granted",)
    conn.execute("SELECT llm_set_budget('granted', max_tokens => 1000)")
    conn.execute("SELECT llm_set_active_version('granted', 1)")
    conn.execute("SELECT llm_drop_model('other')")


def test_llm_user_asks_the_granted_model_and_nothing_else(analyst, engine_server):
    role, conn, schema = analyst
    assert conn.execute(f"SELECT answer FROM {schema}.granted WHERE content = 'hi'").fetchone() == \
        ("echo:hi",)
    assert engine_server.chat_requests()[-1].authorization == f"Bearer {API_KEY}"
    err = error_of(conn, f"SELECT answer FROM {schema}.other WHERE content = 'hi'")
    assert err.sqlstate == "42501"
    assert f"GRANT SELECT ON {schema}.other TO {role}" in err.diag.message_hint
    assert len(engine_server.chat_requests()) == 1


@pytest.mark.parametrize("sql, grant", [
    ("SELECT llm_create_engine('mine', base_url => 'http://127.0.0.1:9/v1', verify => false)",
     "GRANT llm_admin TO"),
    ("SELECT llm_create_model('mine', engine => 'eng', model_name => 'x', "
     "prompt_template => '{{q}}')", "GRANT llm_admin TO"),
    ("SELECT llm_drop_model('granted')", "GRANT llm_admin TO"),
    ("SELECT llm_set_api_key('eng', 'sk-mine')", "owner"),
])
def test_llm_user_cannot_manage_and_is_told_the_grant(analyst, sql, grant):
    role, conn, _ = analyst
    err = error_of(conn, sql)
    assert err.sqlstate == "42501", str(err)
    assert grant in (err.diag.message_hint or "") + (err.diag.message_primary or "")


@pytest.mark.parametrize("sql", [
    "CREATE USER MAPPING FOR CURRENT_USER SERVER eng OPTIONS (api_key 'k')",
    "CREATE FOREIGN TABLE t (content text, answer text) SERVER eng",
    "UPDATE llm.models SET prompt_template = 'x'",
    "DELETE FROM llm.model_versions",
    "SELECT * FROM llm.evaluation_items",
    "ALTER SERVER eng OPTIONS (SET base_url 'http://127.0.0.1:9/v1')",
])
def test_llm_user_cannot_aim_keys_or_write_the_catalog(analyst, db, sql):
    role, conn, _ = analyst
    db.execute(f"GRANT CREATE ON SCHEMA public TO {role}")  # even with somewhere to create
    err = error_of(conn, sql)
    assert err.sqlstate == "42501", str(err)


def test_llm_user_reads_the_catalog_but_no_key(analyst):
    role, conn, _ = analyst
    text = " ".join(str(r) for sql in ("SELECT * FROM llm.engines", "SELECT * FROM llm.models",
                                       "SELECT * FROM llm.model_summary",
                                       "SELECT * FROM pg_user_mappings")
                    for r in conn.execute(sql).fetchall())
    assert "granted" in text and "eng" in text and API_KEY not in text


def test_another_admin_cannot_change_the_engine(admin, login):
    _, other = login("GRANT llm_admin TO {role}", prefix="admin2")
    err = error_of(other, "SELECT llm_set_api_key('eng', 'sk-theirs')")
    assert err.sqlstate == "42501" and "owner" in err.diag.message_primary
    err = error_of(other, "SELECT llm_drop_engine('eng', cascade => true)")
    assert err.sqlstate == "42501"


@pytest.mark.parametrize("sql", [
    "SELECT llm_set_active_version('granted', 1)",
    "SELECT llm_rollback('granted')",
    "SELECT llm_drop_version('granted', 2)",
    "SELECT * FROM llm_set_budget('granted', max_usd => 1)",
    "SELECT * FROM llm_evaluate(ARRAY['granted'], 'SELECT 1 AS gold_sql, 2 AS content')",
    "SELECT llm_create_datasource('src', 'postgresql://u:p@db.example:5432/x')",
    "SELECT llm_refresh()",
])
def test_every_management_function_names_the_grant(analyst, sql):
    role, conn, _ = analyst
    err = error_of(conn, sql)
    assert err.sqlstate == "42501", str(err)
    assert "GRANT" in (err.diag.message_hint or ""), str(err)


def test_an_admin_cannot_plant_cached_answers_or_forge_the_audit(admin):
    _, conn, _ = admin
    for sql in ("INSERT INTO llm.cache (key, model, provider_model_id, answer) "
                "VALUES ('k', 'granted', 'm1', 'planted')",
                "UPDATE llm.cache SET answer = 'planted'",
                "INSERT INTO llm.requests (role, model, engine) VALUES ('x', 'granted', 'eng')",
                "UPDATE llm.requests SET cost_usd = 0",
                "SELECT answer FROM llm.cache"):  # other roles' answers stay theirs
        assert error_of(conn, sql).sqlstate == "42501", sql
    conn.execute("SELECT llm_cache_clear()")
    conn.execute("DELETE FROM llm.requests WHERE at < now() - interval '90 days'")


def test_fine_tuning_spends_an_engines_key_only_with_usage_on_it(admin, login, engine_server):
    """Another admin may not send training data with the engine's key unless its owner
    granted USAGE (the token count of a dry run asks the engine too)."""
    _, owner, schema = admin
    other, conn = login("GRANT llm_admin TO {role}", prefix="admin2")
    owner.execute(f"GRANT USAGE ON SCHEMA {schema} TO {other}")
    owner.execute(f"GRANT SELECT ON {schema}.granted TO {other}")
    query = ("$$SELECT 'user' AS role, 'q' AS content UNION ALL "
             "SELECT 'assistant', 'a'$$")
    options = '{"tokenizer": "engine", "min_conversations": 1}'
    err = error_of(conn, f"SELECT * FROM llm_finetune('granted', {query}, options => '{options}', "
                         "dry_run => true)")
    assert err.sqlstate == "42501", str(err)
    assert f"GRANT USAGE ON FOREIGN SERVER eng TO {other}" in err.diag.message_hint
    assert [r.path for r in engine_server.requests] == []
