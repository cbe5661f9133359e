"""Point 1 of issue 9: connection options belong to the engine (its foreign server) alone.

A foreign table or a user mapping that names one is refused by the validator with HV00D and a
hint; a user mapping carries only the key. Run as an ordinary role that may use the engine.
"""

from __future__ import annotations

import pytest

from security.conftest import API_KEY, MODEL_ID, error_of

SERVER_ONLY = ["base_url 'http://127.0.0.1:9/v1'", "provider 'local'",
               "wrapper 'pg_llm.fdw.ModelTable'", "organization 'org-x'", "project 'p'",
               "headers 'X-A: b'", "price_input '0'", "price_training '1'"]


@pytest.fixture
def engine(db, engine_server, bridge):
    """conftest's engine `eng` and model `m`, on each bridge: under Multicorn2, whose own
    validator checks nothing, pg_llm's event trigger applies the same rules."""
    db.execute("SELECT llm_create_engine('eng', base_url => %s, api_key => %s, bridge => %s)",
               (engine_server.url, API_KEY, bridge))
    db.execute("SELECT llm_create_model('m', engine => 'eng', model_name => %s, "
               "prompt_template => '{{content}}')", (MODEL_ID,))
    engine_server.reset()
    return "eng"


@pytest.fixture
def user(engine, login):
    """A role with USAGE on the engine and a schema of its own: the most a model user gets."""
    return login("GRANT USAGE ON FOREIGN SERVER eng TO {role}",
                 "CREATE SCHEMA {role}_s AUTHORIZATION {role}")


@pytest.mark.parametrize("option", SERVER_ONLY)
def test_validator_refuses_connection_options_on_a_table(user, option, bridge):
    role, conn = user
    err = error_of(conn, f"CREATE FOREIGN TABLE {role}_s.t (content text, answer text) "
                         f"SERVER eng OPTIONS ({option})")
    if bridge == "multicorn" and option.startswith("wrapper"):  # Multicorn2's own check is first
        assert "Cannot set the wrapper class on the table" in err.diag.message_primary
        return
    assert err.sqlstate == "HV00D", str(err)
    assert "only valid on a server" in err.diag.message_primary
    assert "llm_create_engine" in err.diag.message_hint


@pytest.mark.parametrize("option", SERVER_ONLY + ["timeout '1'", "max_retries '0'",
                                                  "prompt_template 'x'"])
def test_user_mapping_takes_only_the_key(user, option):
    role, conn = user
    err = error_of(conn, f"CREATE USER MAPPING FOR CURRENT_USER SERVER eng OPTIONS ({option})")
    assert err.sqlstate == "HV00D", str(err)
    assert "api_key" in err.diag.message_hint
    conn.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER eng OPTIONS (api_key 'sk-mine')")
    err = error_of(conn, f"ALTER USER MAPPING FOR CURRENT_USER SERVER eng OPTIONS (ADD {option})")
    assert err.sqlstate == "HV00D", str(err)


def test_alter_foreign_table_cannot_add_a_connection_option(db, engine):
    err = error_of(db, "ALTER FOREIGN TABLE m OPTIONS (ADD base_url 'http://127.0.0.1:9/v1')")
    assert err.sqlstate == "HV00D"  # not even the superuser: the table is the wrong place


def test_call_tuning_is_allowed_on_the_table(db, engine):
    db.execute("ALTER FOREIGN TABLE m OPTIONS (ADD timeout '5', ADD max_retries '0')")
    assert db.execute("SELECT answer FROM m WHERE content = 'hi'").fetchone() == ("echo:hi",)


def test_base_url_cannot_carry_credentials(db):
    """Server options are readable by every role: a key in the URL would be public."""
    for sql in ("CREATE SERVER leaky FOREIGN DATA WRAPPER pg_llm "
                "OPTIONS (base_url 'https://user:sk-secret@api.example/v1')",
                "SELECT llm_create_engine('leaky', base_url => 'https://sk-secret@api.example/v1', "
                "verify => false)"):
        err = error_of(db, sql)
        assert err.sqlstate == "22023" and "credentials" in err.diag.message_primary, str(err)
        assert "sk-secret" not in str(err)
    # an @ in the path is no credential
    db.execute("CREATE SERVER fine FOREIGN DATA WRAPPER pg_llm "
               "OPTIONS (base_url 'http://127.0.0.1:9/v1/@team')")
