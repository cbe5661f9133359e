"""What only a Multicorn2 engine has to show (docs/multicorn.md): the error-carrying column, a
clear refusal where a Multicorn2 scan cannot record what pg_llm records, and the backend staying
healthy after errors and cancels. The shared behaviour is tested on both bridges elsewhere
(the `bridge` fixture)."""

import psycopg
import pytest

from core.conftest import API_KEY, BASE_MODEL


@pytest.fixture
def mc_model(db, fake, bridge):
    if bridge != "multicorn":
        pytest.skip("Multicorn2 only")
    db.execute("SELECT llm_create_engine('mc', base_url => %s, api_key => %s, "
               "bridge => 'multicorn')", (fake.url, API_KEY))
    db.execute("SELECT llm_create_model('ask', engine => 'mc', model_name => %s, "
               "prompt_template => '{{content}}')", (BASE_MODEL,))
    return "ask"


def test_the_engine_is_a_multicorn_server_running_model_table(db, mc_model):
    assert db.execute("SELECT w.fdwname, s.srvoptions FROM pg_foreign_server s "
                      "JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw "
                      "WHERE s.srvname = 'mc'").fetchone()[0:1] == ("multicorn",)
    assert db.execute("SELECT 'wrapper=pg_llm.fdw.ModelTable' = ANY (srvoptions) "
                      "FROM pg_foreign_server WHERE srvname = 'mc'").fetchone() == (True,)


def test_errors_keep_their_sqlstate_and_the_backend_stays_healthy(db, mc_model, fake):
    # the failure of the issue: ERROR "no Python function is currently executing", then a crash
    for _ in range(3):
        with pytest.raises(psycopg.errors.UndefinedObject) as err:
            db.execute("SELECT answer FROM ask WHERE content = 'x' AND version = 7")
        assert err.value.diag.message_primary == 'model "ask" has no version 7'
        assert "available versions: 1" in err.value.diag.message_hint
        fake.fail(503, times=10)
        db.execute("ALTER SERVER mc OPTIONS (ADD max_retries '0')")
        with pytest.raises(psycopg.errors.SqlclientUnableToEstablishSqlconnection):
            db.execute("SELECT answer FROM ask WHERE content = 'y'")
        fake.clear_failures()
        db.execute("ALTER SERVER mc OPTIONS (DROP max_retries)")
        assert db.execute("SELECT answer FROM ask WHERE content = 'fine'").fetchone() == ("echo:fine",)
    # the carrier column itself never holds anything in a row that is returned
    assert db.execute("SELECT multicorn_error FROM ask WHERE content = 'z'").fetchone() == (None,)


def test_a_table_without_the_carrier_column_still_gets_message_and_hint(db, mc_model):
    db.execute("CREATE FOREIGN TABLE bare (content text, answer text) SERVER mc "
               "OPTIONS (model 'ask', versions '{\"1\": \"%s\"}')" % BASE_MODEL)
    assert db.execute("SELECT answer FROM bare WHERE content = 'hi'").fetchone() == ("echo:hi",)
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM bare")
    assert err.value.sqlstate == "XX000"  # Multicorn2's own code: no column to carry ours
    assert 'needs a value for "content"' in err.value.diag.message_primary
    assert err.value.diag.message_hint == "add WHERE content = '...'"


@pytest.mark.parametrize("setup", [
    "SELECT llm_alter_model('ask', options => '{\"audit\": true}')",
    "ALTER SERVER mc OPTIONS (ADD price_input '1', ADD price_output '2')"])
def test_what_a_multicorn_scan_cannot_record_is_refused_not_skipped(db, mc_model, fake, setup):
    db.execute(setup)
    with pytest.raises(psycopg.errors.FeatureNotSupported) as err:
        db.execute("SELECT answer FROM ask WHERE content = 'hi'")
    assert "cannot record" in err.value.diag.message_primary
    assert "bridge => 'pg_llm'" in err.value.diag.message_hint
    assert fake.chat_requests() == []


def test_an_ordinary_admin_role_needs_usage_on_multicorn(db, fake, bridge):
    if bridge != "multicorn":
        pytest.skip("Multicorn2 only")
    db.execute("CREATE ROLE mc_admin LOGIN IN ROLE llm_admin")
    db.execute("CREATE ROLE mc_user LOGIN IN ROLE llm_user")
    db.execute("CREATE SCHEMA mc_admin AUTHORIZATION mc_admin")  # its tables land there
    db.execute("GRANT USAGE ON SCHEMA mc_admin TO mc_user")
    info = db.info
    try:
        with psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user="mc_admin",
                             autocommit=True) as admin:
            create = ("SELECT llm_create_engine('mc', base_url => %s, api_key => %s, "
                      "bridge => 'multicorn')")
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
                admin.execute(create, (fake.url, API_KEY))
            assert "GRANT USAGE ON FOREIGN DATA WRAPPER multicorn" in err.value.diag.message_hint
            db.execute("GRANT USAGE ON FOREIGN DATA WRAPPER multicorn TO llm_admin")
            admin.execute(create, (fake.url, API_KEY))
            admin.execute("SELECT llm_create_model('ask', engine => 'mc', model_name => %s, "
                          "prompt_template => '{{content}}')", (BASE_MODEL,))
            admin.execute("GRANT SELECT ON ask TO mc_user")
        with psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user="mc_user",
                             autocommit=True) as user:
            assert user.execute("SELECT answer FROM mc_admin.ask WHERE content = 'hi'"
                                ).fetchone() == ("echo:hi",)
            with pytest.raises(psycopg.errors.InvalidParameterValue):  # SQLSTATE kept for them too
                user.execute("SELECT answer FROM mc_admin.ask WHERE content = 'hi' AND max_tokens = 0")
        assert fake.chat_requests()[-1].authorization == f"Bearer {API_KEY}"
    finally:
        db.execute("REVOKE USAGE ON FOREIGN DATA WRAPPER multicorn FROM llm_admin")
        for role in ("mc_admin", "mc_user"):
            db.execute(f"DROP OWNED BY {role} CASCADE")
            db.execute(f"DROP ROLE {role}")
