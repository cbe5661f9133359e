"""The API key stays secret: not in catalog views, not in pg_user_mappings for other roles,
not in errors or NOTICEs, not in the server log; a role needs USAGE on the engine."""

import uuid
from pathlib import Path

import psycopg
import pytest

from core.conftest import API_KEY


@pytest.fixture
def analyst(db, ft_sql):
    """A second login role allowed to use the engine and read the model."""
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    db.execute(f"GRANT USAGE ON FOREIGN SERVER openai_compat TO {role}")
    db.execute(f"GRANT SELECT ON ft_sql TO {role}")
    info = db.info
    conn = psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=role, autocommit=True)
    notices = []
    conn.add_notice_handler(lambda diag: notices.append(
        " ".join(filter(None, (diag.message_primary, diag.message_detail, diag.message_hint)))))
    try:
        yield role, conn, notices
    finally:
        conn.close()
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")


def _visible_text(conn) -> str:
    """Everything the role can read about engines, servers, tables and mappings."""
    parts = []
    for sql in ("SELECT to_jsonb(e)::text FROM llm.engines e",
                "SELECT to_jsonb(m)::text FROM llm.models m",
                "SELECT to_jsonb(v)::text FROM llm.model_versions v",
                "SELECT to_jsonb(s)::text FROM llm.model_summary s",
                "SELECT to_jsonb(u)::text FROM pg_user_mappings u",
                "SELECT to_jsonb(s)::text FROM pg_foreign_server s",
                "SELECT to_jsonb(t)::text FROM pg_foreign_table t"):
        parts += [r[0] for r in conn.execute(sql).fetchall()]
    return "\n".join(parts)


def test_second_role_uses_the_model_but_cannot_read_the_key(analyst, fake):
    role, conn, notices = analyst
    assert conn.execute("SELECT answer FROM ft_sql WHERE content = 'hi'").fetchone() == ("echo:hi",)
    assert fake.chat_requests()[-1].authorization == f"Bearer {API_KEY}"  # the key was used...
    text = _visible_text(conn)
    assert "openai_compat" in text  # ...the role sees the engine...
    assert API_KEY not in text       # ...but never its key
    assert conn.execute("SELECT umoptions FROM pg_user_mappings WHERE srvname = 'openai_compat'"
                        ).fetchall() == [(None,)]
    assert not any(API_KEY in n for n in notices)


def test_errors_seen_by_another_role_never_contain_the_key(db, analyst, fake):
    role, conn, notices = analyst
    wrong = "sk-wrong-but-secret-778899"
    db.execute("SELECT llm_set_api_key('openai_compat', %s)", (wrong,))  # the fake echoes it back
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT answer FROM ft_sql WHERE content = 'hi'")
    exc = err.value
    assert exc.sqlstate == "28000"
    everything = " ".join(filter(None, (str(exc), exc.diag.message_primary, exc.diag.message_detail,
                                        exc.diag.message_hint, exc.diag.context)))
    assert "Incorrect API key provided" in everything  # the provider's message is kept...
    assert wrong not in everything and API_KEY not in everything  # ...scrubbed


def test_a_model_user_needs_no_usage_and_cannot_aim_the_engine(db, analyst, fake):
    role, conn, _ = analyst
    db.execute(f"REVOKE USAGE ON FOREIGN SERVER openai_compat FROM {role}")
    db.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
    # SELECT on the model is enough to ask it...
    assert conn.execute("SELECT answer FROM ft_sql WHERE content = 'hi'").fetchone() == ("echo:hi",)
    # ...but without USAGE the role cannot point a table of its own at the engine
    with pytest.raises(psycopg.Error) as err:
        conn.execute("CREATE FOREIGN TABLE mine (content text, answer text) SERVER openai_compat")
    assert err.value.sqlstate == "42501"
    assert len(fake.chat_requests()) == 1


def test_key_never_reaches_the_server_log(db, fake, pg_cluster):
    log = Path(pg_cluster["dir"]) / "server.log"
    leak = f"sk-leak-{uuid.uuid4().hex}"
    marker = f"marker-{uuid.uuid4().hex}"
    before = log.stat().st_size
    # Failing statements are logged with their text at the default settings...
    with pytest.raises(psycopg.Error):
        db.execute(f"SELECT '{marker}'::int")
    # ...but not these, although the key is a literal in each failing statement.
    failing = [
        f"SELECT llm_create_engine('leaky', base_url => 'http://127.0.0.1:9/v1', api_key => '{leak}')",
        f"SELECT llm_create_engine('leaky', base_url => '{fake.url}', api_key => '{leak}')",  # 401
        f"SELECT llm_create_engine('Bad Name', api_key => '{leak}', verify => false)",
        f"SELECT llm_set_api_key('no_such_engine', '{leak}')",
    ]
    for sql in failing:
        with pytest.raises(psycopg.Error) as err:
            db.execute(sql)
        assert leak not in str(err.value) and leak not in (err.value.diag.context or "")
    # the setting that hid them is restored once a call succeeds
    db.execute(f"SELECT llm_create_engine('fine', base_url => '{fake.url}', api_key => '{API_KEY}')")
    assert db.execute("SELECT current_setting('log_min_error_statement')").fetchone() == ("error",)
    db.execute("SELECT pg_sleep(0.2)")  # let the logging collector catch up
    written = log.read_bytes()[before:].decode(errors="replace")
    assert marker in written  # proves the log check can see statements
    assert leak not in written and API_KEY not in written


def test_a_role_specific_key_overrides_the_public_one(db, analyst, fake):
    role, conn, _ = analyst
    role_key = "sk-analyst-only-5566778899"
    fake.api_key = None  # accept any key, record which one came
    db.execute("SELECT llm_set_api_key('openai_compat', %s, role => %s)", (role_key, role))
    conn.execute("SELECT answer FROM ft_sql WHERE content = 'as analyst'").fetchall()
    db.execute("SELECT answer FROM ft_sql WHERE content = 'as owner'").fetchall()
    by_prompt = {r.body["messages"][-1]["content"]: r.authorization for r in fake.chat_requests()}
    assert by_prompt == {"as analyst": f"Bearer {role_key}", "as owner": f"Bearer {API_KEY}"}
    assert db.execute("SELECT usename FROM pg_user_mappings WHERE srvname = 'openai_compat' "
                      "ORDER BY usename").fetchall() == sorted([(role,), ("public",)])


def test_a_role_without_catalog_rights_gets_a_clear_error(analyst):
    role, conn, _ = analyst
    for call, what in (("llm_create_engine('mine', provider => 'local', verify => false)", "engines"),
                       ("llm_create_model('mine', engine => 'openai_compat', model_name => 'x', "
                        "prompt_template => '{{q}}')", "llm.models")):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"SELECT {call}")
        assert err.value.sqlstate == "42501"
        assert what in err.value.diag.message_primary and "GRANT" not in err.value.diag.message_primary
        # the hint names the missing grant
        assert f"GRANT llm_admin TO {role}" in err.value.diag.message_hint
