"""llm_create_engine / llm_set_api_key / llm_drop_engine through real SQL."""

from decimal import Decimal

import psycopg
import pytest

from conftest import run_psql
from core.conftest import API_KEY, BASE_MODEL


def sqlstate_of(db, sql, params=None):
    with pytest.raises(psycopg.Error) as err:
        db.execute(sql, params)
    return err.value


def test_engine_is_a_server_with_its_key_in_a_public_user_mapping(db, fake):
    assert db.execute("SELECT llm_create_engine('openai_compat', base_url => %s, api_key => %s, "
                      "price_input => 0.15, price_output => 0.6)", (fake.url, API_KEY)).fetchone() == (
        "openai_compat",)
    # verify => true asked the endpoint for its models with the key
    [request] = fake.requests
    assert request.path == "/v1/models" and request.authorization == f"Bearer {API_KEY}"
    assert db.execute("SELECT name, provider, base_url, price_input, price_output FROM llm.engines"
                      ).fetchall() == [("openai_compat", "openai", fake.url, Decimal("0.15"), Decimal("0.6"))]
    srvoptions = db.execute("SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'openai_compat'"
                            ).fetchone()[0]
    assert f"base_url={fake.url}" in srvoptions and not any(API_KEY in o for o in srvoptions)
    assert db.execute("SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'openai_compat'"
                      ).fetchall() == [("public", [f"api_key={API_KEY}"])]


def test_local_provider_defaults_base_url_and_zero_prices(db):
    db.execute("SELECT llm_create_engine('local_engine', provider => 'local', verify => false)")
    assert db.execute("SELECT provider, base_url, price_input, price_output, price_training "
                      "FROM llm.engines").fetchone() == ("local", "http://127.0.0.1:8765/v1", 0, 0, 0)
    assert db.execute("SELECT count(*) FROM pg_user_mappings WHERE srvname = 'local_engine'"
                      ).fetchone() == (0,)


def test_unreachable_endpoint_fails_verification_with_a_hint(db, refused_url):
    url = refused_url
    err = sqlstate_of(db, "SELECT llm_create_engine('down', base_url => %s)", (url,))
    assert err.sqlstate == "08001"
    assert "cannot connect" in err.diag.message_primary
    assert "pg-llm serve" in err.diag.message_hint and "verify => false" in err.diag.message_hint
    assert db.execute("SELECT count(*) FROM llm.engines").fetchone() == (0,)
    db.execute("SELECT llm_create_engine('down', base_url => %s, verify => false)", (url,))
    assert db.execute("SELECT count(*) FROM llm.engines").fetchone() == (1,)


def test_wrong_key_is_rejected_without_showing_it(db, fake):
    wrong = "sk-wrong-abcdef0123456789"
    err = sqlstate_of(db, "SELECT llm_create_engine('e', base_url => %s, api_key => %s)", (fake.url, wrong))
    assert err.sqlstate == "28000" and "llm_set_api_key" in err.diag.message_hint
    for text in (err.diag.message_primary, err.diag.message_detail, err.diag.message_hint,
                 err.diag.context, str(err)):
        assert wrong not in (text or "")


BAD_ENGINE_CALLS = [
    ("llm_create_engine('e', provider => 'azure', verify => false)", "22023", "'openai'"),
    ("llm_create_engine('e', base_url => 'ftp://x', verify => false)", "22023", "API root"),
    ("llm_create_engine('Bad Name', verify => false)", "22023", "lower-case"),
    ("llm_create_engine('e', price_input => -1, verify => false)", "22023", "per million"),
    ("llm_create_engine('e', options => '{\"concurency\": 2}', verify => false)", "22023", "concurrency"),
    ("llm_create_engine('e', options => '{\"concurrency\": 0}', verify => false)", "22023", "between"),
    ("llm_create_engine('e', api_key => '', verify => false)", "22023", "NULL"),
    ("llm_create_engine('e', api_key => 'k', role => 'no_such_role', verify => false)", "42704", "PUBLIC"),
    ("llm_set_api_key('no_such_engine', 'k')", "42704", "llm_create_engine"),
    ("llm_drop_engine('no_such_engine')", "42704", "llm_create_engine"),
]


def test_bad_arguments_get_a_sqlstate_and_a_hint(db):
    # one database for all cases: each case is a failing call that changes nothing
    for call, state, hint in BAD_ENGINE_CALLS:
        err = sqlstate_of(db, f"SELECT {call}")
        assert (call, err.sqlstate) == (call, state), err
        assert hint in err.diag.message_hint, call
    assert db.execute("SELECT count(*) FROM llm.engines").fetchone() == (0,)


def test_duplicate_engine(db):
    db.execute("SELECT llm_create_engine('e', provider => 'local', verify => false)")
    err = sqlstate_of(db, "SELECT llm_create_engine('e', provider => 'local', verify => false)")
    assert err.sqlstate == "42710" and "llm_drop_engine" in err.diag.message_hint


def test_rotating_the_key_is_used_by_the_next_query(db, ft_sql, fake):
    new_key = "sk-rotated-1122334455"
    fake.api_key = new_key
    err = sqlstate_of(db, "SELECT answer FROM ft_sql WHERE content = 'a'")
    assert err.sqlstate == "28000"
    db.execute("SELECT llm_set_api_key('openai_compat', %s)", (new_key,))
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'a'").fetchone() == ("echo:a",)
    assert fake.chat_requests()[-1].authorization == f"Bearer {new_key}"
    # ALTER USER MAPPING works as well: the scan reads the mapping every time
    fake.api_key = "sk-third-key-99887766"
    db.execute("ALTER USER MAPPING FOR PUBLIC SERVER openai_compat OPTIONS (SET api_key 'sk-third-key-99887766')")
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'b'").fetchone() == ("echo:b",)


def test_removing_the_key_with_null(db, ft_sql, fake):
    db.execute("SELECT llm_set_api_key('openai_compat', NULL)")
    assert db.execute("SELECT umoptions FROM pg_user_mappings WHERE srvname = 'openai_compat'"
                      ).fetchone() == (None,)
    assert sqlstate_of(db, "SELECT answer FROM ft_sql WHERE content = 'a'").sqlstate == "28000"


def test_drop_engine_refuses_while_models_use_it_unless_cascade(db, ft_sql):
    err = sqlstate_of(db, "SELECT llm_drop_engine('openai_compat')")
    assert err.sqlstate == "2BP01" and "cascade => true" in err.diag.message_hint
    db.execute("SELECT llm_drop_engine('openai_compat', cascade => true)")
    assert db.execute("SELECT (SELECT count(*) FROM llm.engines), (SELECT count(*) FROM llm.models), "
                      "(SELECT count(*) FROM llm.model_versions), (SELECT count(*) FROM pg_foreign_server "
                      "WHERE srvname = 'openai_compat'), to_regclass('ft_sql')").fetchone() == (0, 0, 0, 0, None)


def test_readme_from_psql(dsn, fake):
    out = run_psql(dsn, f"""
        SELECT llm_create_engine('openai_compat', base_url => '{fake.url}', api_key => '{API_KEY}');
        SELECT llm_create_model('ft_sql', engine => 'openai_compat', model_name => '{BASE_MODEL}',
               prompt_template => '{{{{content}}}}', predict => 'answer');
        SELECT answer FROM ft_sql WHERE content = 'List the customers from Canada';
        SELECT answer FROM ft_sql WHERE content = 'one two three' AND max_tokens = 2 AND temperature = 0;
    """)
    assert out.stdout.splitlines() == ["openai_compat", "public.ft_sql",
                                       "echo:List the customers from Canada", "echo:one two"]
    assert fake.chat_requests()[-1].body["temperature"] == 0
