"""The probes of issue 9, as the hostile role would run them. Each must fail for the attacker:
its own loopback listener (attacker.py) receives nothing, and the administrator's prompts
reach only the engine's URL.

The attacker holds what the issue gave it: USAGE on the engine (the most a role near the
models gets) and a schema of its own.
"""

from __future__ import annotations

import pytest

from security.conftest import API_KEY, MODEL_ID, error_of


@pytest.fixture
def hostile(engine, login):
    role, conn = login("GRANT USAGE ON FOREIGN SERVER eng TO {role}",
                       "CREATE SCHEMA a_{role} AUTHORIZATION {role}", prefix="attacker")
    return role, conn, f"a_{role}"


@pytest.fixture
def admin(engine, login):
    """A non-superuser administrator (llm_admin) with a schema of its own, on the engine."""
    role, conn = login("GRANT llm_admin TO {role}", "GRANT USAGE ON FOREIGN SERVER eng TO {role}",
                       "CREATE SCHEMA adm_{role} AUTHORIZATION {role}", prefix="admin")
    conn.execute(f"SET search_path = adm_{role}, public")
    return role, conn, f"adm_{role}"


def test_key_theft_through_table_base_url(hostile, attacker, engine_server):
    role, conn, schema = hostile
    err = error_of(conn, f"CREATE FOREIGN TABLE {schema}.t (content text, answer text) SERVER eng "
                         f"OPTIONS (model_name '{MODEL_ID}', prompt_template '{{{{content}}}}', "
                         f"base_url '{attacker.url}')")
    assert err.sqlstate == "HV00D" and "base_url" in err.diag.message_primary
    # the same table without the option sends where the engine's owner decided
    conn.execute(f"CREATE FOREIGN TABLE {schema}.t (content text, answer text) SERVER eng "
                 f"OPTIONS (model_name '{MODEL_ID}', prompt_template '{{{{content}}}}')")
    assert conn.execute(f"SELECT answer FROM {schema}.t WHERE content = 'x'").fetchone() == ("echo:x",)
    assert [r.path for r in engine_server.requests] == ["/v1/chat/completions"]
    attacker.assert_untouched()


def test_ssrf_through_user_mapping_base_url(hostile, attacker, engine_server, db):
    role, conn, _ = hostile
    db.execute(f"GRANT SELECT ON m TO {role}")
    for options in (f"base_url '{attacker.url}'", f"api_key 'k', base_url '{attacker.url}'"):
        err = error_of(conn, f"CREATE USER MAPPING FOR CURRENT_USER SERVER eng OPTIONS ({options})")
        assert err.sqlstate == "HV00D" and "api_key" in err.diag.message_hint
    assert conn.execute("SELECT answer FROM m WHERE content = 'y'").fetchone() == ("echo:y",)
    assert engine_server.requests[-1].authorization == f"Bearer {API_KEY}"
    attacker.assert_untouched()


def test_options_written_before_the_validator_are_ignored(hostile, attacker, engine_server, db):
    """A 0.1.0 database may hold tables and mappings the validator now refuses: simulate
    them by writing the catalog as the superuser, then scan as the attacker."""
    role, conn, schema = hostile
    conn.execute(f"CREATE FOREIGN TABLE {schema}.old (content text, answer text) SERVER eng "
                 f"OPTIONS (model_name '{MODEL_ID}', prompt_template '{{{{content}}}}')")
    db.execute("UPDATE pg_foreign_table SET ftoptions = ftoptions || %s WHERE ftrelid = %s::regclass",
               ([f"base_url={attacker.url}", "provider=local"], f"{schema}.old"))
    conn.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER eng OPTIONS (api_key 'sk-own')")
    db.execute("UPDATE pg_user_mapping SET umoptions = umoptions || %s "
               "WHERE umuser = %s::regrole AND umserver = (SELECT oid FROM pg_foreign_server "
               "WHERE srvname = 'eng')", ([f"base_url={attacker.url}"], role))
    engine_server.api_key = None  # accept the role's own key: we look at where it went
    assert conn.execute(f"SELECT answer FROM {schema}.old WHERE content = 'z'").fetchone() == ("echo:z",)
    assert engine_server.requests[-1].authorization == "Bearer sk-own"
    attacker.assert_untouched()


def test_planted_table_is_not_adopted(hostile, admin, attacker, engine_server, db):
    a_role, a_conn, a_schema = hostile
    # The attacker plants a table on the engine naming the model-to-be, in its schema and,
    # where it may create, in the administrator's.
    a_conn.execute(f"CREATE FOREIGN TABLE {a_schema}.victim (content text, answer text) "
                   f"SERVER eng OPTIONS (model 'victim', model_name 'victim-model', "
                   f"prompt_template '{{{{content}}}}')")
    ad_role, ad_conn, ad_schema = admin
    ad_conn.execute(f"SET search_path = {a_schema}, {ad_schema}, public")  # the attacker's first
    db.execute(f"GRANT USAGE ON SCHEMA {a_schema} TO {ad_role}")
    # a relation of the model's name in the target schema: refused, never adopted
    a_conn.execute(f"GRANT CREATE ON SCHEMA {a_schema} TO {ad_role}")
    err = error_of(ad_conn, "SELECT llm_create_model('victim', engine => 'eng', "
                            f"model_name => '{MODEL_ID}', prompt_template => '{{{{content}}}}')")
    assert err.sqlstate == "42710" and a_schema in err.diag.message_primary
    # in its own schema the administrator gets a table of its own, and the catalog records it
    (table,) = ad_conn.execute("SELECT llm_create_model('victim', engine => 'eng', "
                               f"model_name => '{MODEL_ID}', prompt_template => '{{{{content}}}}', "
                               f"schema => '{ad_schema}')").fetchone()
    assert table == f"{ad_schema}.victim"
    assert ad_conn.execute("SELECT relid::oid = %s::regclass::oid FROM llm.models "
                           "WHERE name = 'victim'", (table,)).fetchone() == (True,)
    assert ad_conn.execute("SELECT foreign_table FROM llm.model_summary WHERE model = 'victim'"
                           ).fetchone() == (table,)
    # versions go to the recorded table, not the planted one
    ad_conn.execute("SELECT llm_set_active_version('victim', 1)")
    options = dict(db.execute("SELECT ftrelid::regclass::text, ftoptions FROM pg_foreign_table "
                              "WHERE ftrelid IN (%s::regclass, %s::regclass)",
                              (table, f"{a_schema}.victim")).fetchall())
    assert any(o.startswith("versions=") for o in options[table])
    assert not any(o.startswith("versions=") for o in options[f"{a_schema}.victim"])
    assert ad_conn.execute(f"SELECT answer FROM {table} WHERE content = 'q'").fetchone() == ("echo:q",)
    assert engine_server.chat_requests()[-1].body["model"] == MODEL_ID
    # dropping the model drops the administrator's table and leaves the attacker's alone
    ad_conn.execute("SELECT llm_drop_model('victim')")
    assert db.execute("SELECT to_regclass(%s), to_regclass(%s) IS NOT NULL",
                      (table, f"{a_schema}.victim")).fetchone() == (None, True)
    attacker.assert_untouched()


def test_a_model_whose_table_was_replaced_is_not_followed(admin, db, engine_server):
    """Drop the recorded table and plant one of the same name: the oid differs, so the
    catalog does not follow the name."""
    role, conn, schema = admin
    conn.execute("SELECT llm_create_model('swapped', engine => 'eng', "
                 f"model_name => '{MODEL_ID}', prompt_template => '{{{{content}}}}')")
    conn.execute(f"DROP FOREIGN TABLE {schema}.swapped")
    conn.execute(f"CREATE FOREIGN TABLE {schema}.swapped (content text, answer text) SERVER eng "
                 "OPTIONS (model 'swapped')")
    assert conn.execute("SELECT foreign_table FROM llm.model_summary WHERE model = 'swapped'"
                        ).fetchone() == (None,)
    conn.execute("SELECT llm_drop_model('swapped')")  # catalog rows only
    assert db.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.swapped",)).fetchone() == (True,)


def test_a_server_of_another_fdw_is_no_engine(db, login, engine):
    db.execute("CREATE FOREIGN DATA WRAPPER not_llm")
    db.execute("CREATE SERVER rogue FOREIGN DATA WRAPPER not_llm")
    role, conn = login("GRANT llm_admin TO {role}", "GRANT USAGE ON FOREIGN SERVER rogue TO {role}",
                       "CREATE SCHEMA s_{role} AUTHORIZATION {role}")
    conn.execute(f"SET search_path = s_{role}, public")
    err = error_of(conn, "SELECT llm_create_model('r', engine => 'rogue', model_name => 'x', "
                         "prompt_template => '{{q}}')")
    assert err.sqlstate == "42704" and "eng" in err.diag.message_hint
    assert conn.execute("SELECT array_agg(name) FROM llm.engines").fetchone() == (["eng"],)


def test_a_planted_table_cannot_spend_under_another_models_name(hostile, db, engine_server):
    """Budgets and audit book a scan under the catalog's model for that table (by oid) and
    the table's own server, never under the `model`/`engine` options its owner wrote."""
    role, conn, schema = hostile
    db.execute("ALTER SERVER eng OPTIONS (ADD price_input '1000', ADD price_output '1000')")
    db.execute("SELECT llm_set_budget('model:m', max_usd => 1)")
    conn.execute(f"CREATE FOREIGN TABLE {schema}.spoof (content text, answer text) SERVER eng "
                 f"OPTIONS (model 'm', engine 'nowhere', model_name '{MODEL_ID}', "
                 "prompt_template '{{content}}')")
    conn.execute(f"SELECT answer FROM {schema}.spoof WHERE content = 'spend'").fetchall()
    booked = db.execute("SELECT model, engine FROM llm.ledger WHERE kind = 'inference'").fetchall()
    assert booked == [(f"{schema}.spoof", "eng")]
    # the real model's budget is untouched and still lets its users ask it
    assert db.execute("SELECT spent_usd FROM llm.budget_status WHERE target = 'm'").fetchone() == (0,)
    assert db.execute("SELECT answer FROM m WHERE content = 'x'").fetchone() == ("echo:x",)
