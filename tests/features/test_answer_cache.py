"""The answer cache: an identical deterministic request is answered from llm.cache without
an HTTP call (counted on the recording fake), never across versions, keys or options."""

import psycopg
import pytest

from conftest import run_psql
from features.conftest import TUNED, http_calls, make_model

ASK = "SELECT answer, cached FROM qa WHERE question = ANY (ARRAY['a', 'b', 'c']) ORDER BY question"


def dsn(db):
    return f"host={db.info.host} port={db.info.port} user=postgres dbname={db.info.dbname}"


def test_second_identical_query_makes_no_http_call(db, engine, fake):
    make_model(db, options='{"cache": "on", "temperature": 0}')
    first = db.execute(ASK).fetchall()
    assert [c for _, c in first] == [False] * 3 and http_calls(fake) == 3
    second = db.execute(ASK).fetchall()
    assert http_calls(fake) == 3  # no new request
    assert [a for a, _ in second] == [a for a, _ in first] and [c for _, c in second] == [True] * 3
    # from psql too, and one new prompt only costs one call
    out = run_psql(dsn(db), "SELECT count(*) FILTER (WHERE cached) FROM qa "
                            "WHERE question = ANY (ARRAY['a', 'b', 'd'])")
    assert out.stdout.strip() == "2" and http_calls(fake) == 4


def test_only_deterministic_requests_are_cached_unless_always(db, engine, fake):
    make_model(db, options='{"cache": "on"}')
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    assert http_calls(fake) == 2  # no temperature 0, no seed: not cached
    db.execute("SELECT answer FROM qa WHERE question = 'a' AND seed = 7")
    assert db.execute("SELECT cached FROM qa WHERE question = 'a' AND seed = 7").fetchone() == (True,)
    assert http_calls(fake) == 3
    db.execute("""SELECT llm_alter_model('qa', '{"cache": "always"}')""")
    db.execute("SELECT answer FROM qa WHERE question = 'a' AND temperature = 0.7")
    assert db.execute("SELECT cached FROM qa WHERE question = 'a' AND temperature = 0.7"
                      ).fetchone() == (True,)
    assert http_calls(fake) == 4


def test_every_request_option_and_the_version_are_part_of_the_key(db, engine, fake):
    make_model(db, options='{"cache": "on", "temperature": 0}')
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    db.execute("SELECT answer FROM qa WHERE question = 'a' AND max_tokens = 5")
    assert http_calls(fake) == 2
    # a new version (a fine-tune's result) never serves the old version's answer
    db.execute("INSERT INTO llm.model_versions (model, version, provider_model_id) "
               "VALUES ('qa', 2, %s)", (TUNED,))
    db.execute("SELECT llm_set_active_version('qa', 2)")
    row = db.execute("SELECT answer, cached, model_id FROM qa WHERE question = 'a'").fetchone()
    assert row[1] is False and row[2] == TUNED and http_calls(fake) == 3
    # the old version is still cached when asked for explicitly
    assert db.execute("SELECT cached FROM qa WHERE question = 'a' AND version = 1").fetchone() == (True,)
    assert http_calls(fake) == 3


def test_expired_answers_are_not_served_and_the_size_cap_keeps_the_newest(db, engine, fake):
    make_model(db, options='{"cache": "on", "temperature": 0, "cache_max_rows": 2}')
    db.execute(ASK)
    assert db.execute("SELECT count(*) FROM llm.cache WHERE model = 'qa'").fetchone() == (2,)
    db.execute("UPDATE llm.cache SET expires_at = now() - interval '1 second'")
    assert db.execute("SELECT cached FROM qa WHERE question = 'c'").fetchone() == (False,)
    assert db.execute("SELECT cached FROM qa WHERE question = 'c'").fetchone() == (True,)
    assert http_calls(fake) == 4
    # the expired rows were pruned when the new answer was written
    assert db.execute("SELECT count(*) FROM llm.cache").fetchone() == (1,)


def test_cache_clear(db, engine, fake):
    make_model(db, options='{"cache": "on", "temperature": 0}')
    db.execute(ASK)
    assert db.execute("SELECT llm_cache_clear('qa')").fetchone() == (3,)
    db.execute(ASK)
    assert http_calls(fake) == 6
    assert db.execute("SELECT llm_cache_clear()").fetchone() == (3,)
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT llm_cache_clear('nope')")
    assert err.value.sqlstate == "42704" and "llm.models" in err.value.diag.message_hint


def test_another_api_key_does_not_share_answers(db, engine, fake, analyst):
    role, conn = analyst
    make_model(db, options='{"cache": "on", "temperature": 0}')
    db.execute(f"GRANT SELECT ON qa TO {role}")
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    # same key (the PUBLIC mapping): the ordinary role gets the cached answer...
    assert conn.execute("SELECT answer, cached FROM qa WHERE question = 'a'").fetchone() == (
        "echo:Q: a", True)
    assert http_calls(fake) == 1
    # ...but with a key of its own it does not (its key may not reach that model)
    fake.api_key = None  # accept any key
    db.execute(f"CREATE USER MAPPING FOR {role} SERVER paid OPTIONS (api_key 'sk-other-key-1234')")
    assert conn.execute("SELECT cached FROM qa WHERE question = 'a'").fetchone() == (False,)
    assert http_calls(fake) == 2


def test_the_ordinary_role_cannot_read_or_clear_the_cache(db, engine, fake, analyst):
    role, conn = analyst
    make_model(db, options='{"cache": "on", "temperature": 0}')
    db.execute(f"GRANT SELECT ON qa TO {role}")
    assert conn.execute("SELECT cached FROM qa WHERE question = 'a'").fetchone() == (False,)
    assert conn.execute("SELECT cached FROM qa WHERE question = 'a'").fetchone() == (True,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM llm.cache")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT llm_cache_clear('qa')")


def test_read_only_transaction_gets_answers_without_writing(db, engine, fake):
    # a free engine: a priced one must book its spend, which a read-only transaction cannot
    db.execute("ALTER SERVER paid OPTIONS (SET price_input '0', SET price_output '0')")
    make_model(db, options='{"cache": "on", "temperature": 0}')
    with db.transaction():
        db.execute("SET TRANSACTION READ ONLY")
        assert db.execute("SELECT cached FROM qa WHERE question = 'a'").fetchone() == (False,)
    assert db.execute("SELECT count(*) FROM llm.cache").fetchone() == (0,)


def test_engine_option_is_the_default_and_hand_edited_options_are_validated(db, engine, fake):
    db.execute("ALTER SERVER paid OPTIONS (ADD cache 'on')")
    make_model(db, options='{"temperature": 0}')
    db.execute("SELECT answer FROM qa WHERE question = 'a'")
    assert db.execute("SELECT cached FROM qa WHERE question = 'a'").fetchone() == (True,)
    make_model(db, "qb", options='{"temperature": 0, "cache": "off"}')  # the model's own wins
    db.execute("SELECT answer FROM qb WHERE question = 'a'")
    assert db.execute("SELECT cached FROM qb WHERE question = 'a'").fetchone() == (False,)
    with pytest.raises(psycopg.Error) as err:
        db.execute("ALTER FOREIGN TABLE qa OPTIONS (ADD cache 'maybe')")
    assert err.value.sqlstate == "22023" and "always" in err.value.diag.message_hint
    with pytest.raises(psycopg.Error) as err:
        db.execute("ALTER SERVER paid OPTIONS (ADD cache_ttl '-1')")
    assert err.value.sqlstate == "22023"
    with pytest.raises(psycopg.Error) as err:
        db.execute("""SELECT llm_create_engine('e2', base_url => 'http://127.0.0.1:1/v1',
                      verify => false, options => '{"cache": "sometimes"}')""")
    assert err.value.sqlstate == "22023"
