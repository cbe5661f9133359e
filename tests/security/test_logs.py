"""Keys and logs (issue 9, point 9): what reaches the test cluster's server log.

Each test reads what the server appended to its log file (pg_cluster's server.log) while the
test ran. Statement logging is switched on for the test database (ALTER DATABASE ... SET, so
every new session has it, superuser or not) where a test says so; the assertions that the
statement itself *was* logged show the setting was in force, so the key's absence means
something.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from fake_openai import FakeOpenAI
from security.conftest import error_of

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "pg-llm"
LOUD = {"log_statement": "'all'", "log_min_duration_statement": "0",
        "log_min_error_statement": "info", "log_parameter_max_length": "-1",
        "log_parameter_max_length_on_error": "-1"}


class ServerLog:
    def __init__(self, path: Path):
        self.path = path
        self.start = path.stat().st_size

    def text(self) -> str:
        with open(self.path, "rb") as f:
            f.seek(self.start)
            return f.read().decode("utf-8", "replace")


@pytest.fixture
def server_log(pg_cluster):
    return ServerLog(Path(pg_cluster["dir"]) / "server.log")


@pytest.fixture
def loud_logging(db):
    """Every statement, its duration and its parameters logged, for new sessions of this
    database (the settings a careful DBA turns on while debugging)."""
    for name, value in LOUD.items():
        db.execute(f"ALTER DATABASE {db.info.dbname} SET {name} = {value}")
    yield
    db.execute(f"ALTER DATABASE {db.info.dbname} RESET ALL")


def new_key() -> str:
    return f"sk-logtest-{uuid.uuid4().hex}"


def dsn_for(db, user: str) -> str:
    return f"host={db.info.host} port={db.info.port} user={user} dbname={db.info.dbname}"


def cli(db, user: str, *args: str, secret: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run([str(CLI), *args, "--dsn", dsn_for(db, user)], input=secret + "\n",
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def engine_eng(db):
    with FakeOpenAI(models=["m1"]) as server:
        db.execute("SELECT llm_create_engine('eng', base_url => %s, verify => false)",
                   [server.url])
        yield "eng"


# -- the hazard the docs describe -----------------------------------------------------------

def test_a_literal_key_in_a_statement_that_fails_before_pg_llm_runs_is_logged(db, server_log,
                                                                              engine_eng):
    """Default settings (log_min_error_statement = error): a misspelt argument name fails in
    the parser and the STATEMENT line quotes the key. No function can prevent that; the docs
    send keys through `pg-llm set-key` or bind parameters instead."""
    key = new_key()
    err = error_of(db, f"SELECT llm_set_api_key('eng', apikey => '{key}')")
    assert err.sqlstate == "42883"
    assert key in server_log.text()


# -- what is safe ---------------------------------------------------------------------------

def test_bind_parameters_are_not_logged_when_the_statement_fails(db, server_log, engine_eng):
    """Default settings: a failing statement's bind parameters are not logged
    (log_parameter_max_length_on_error = 0)."""
    key = new_key()
    for sql in ("SELECT llm_set_api_key('eng', apikey => %s)",              # misspelt
                "SELECT llm_set_api_key('nope', %s)",                        # no such engine
                "SELECT llm_set_api_key('eng', %s, role => 'no_such_role')",
                "SELECT llm_create_engine('eng', base_url => 'http://127.0.0.1:9/v1', "
                "api_key => %s, verify => false)"):                          # duplicate name
        error_of(db, sql, [key])
    log = server_log.text()
    assert "llm_set_api_key('eng', apikey => $1)" in log   # the statement was logged...
    assert key not in log                             # ...without the key


def test_a_superusers_literal_key_is_kept_out_when_pg_llm_fails_the_statement(db, server_log,
                                                                              engine_eng):
    """Errors raised inside llm_create_engine / llm_set_api_key (duplicate name, bad role):
    for a superuser the function lowers log_min_error_statement first."""
    key = new_key()
    error_of(db, "SELECT llm_create_engine('eng', base_url => 'http://127.0.0.1:9/v1', "
                 f"api_key => '{key}', verify => false)")
    error_of(db, f"SELECT llm_set_api_key('eng', '{key}', role => 'no_such_role')")
    log = server_log.text()
    assert "already exists" in log and key not in log


@pytest.mark.parametrize("who", ["superuser", "llm_admin"])
def test_set_key_cli_keeps_the_key_out_of_the_log_even_with_log_statement_all(
        db, server_log, engine_eng, login, loud_logging, who):
    if who == "superuser":
        user = "postgres"
    else:
        user, _ = login("GRANT llm_admin TO {role}")
        db.execute(f"ALTER SERVER eng OWNER TO {user}")
    key = new_key()
    ok = cli(db, user, "set-key", "eng", secret=key)
    assert ok.returncode == 0, ok.stderr
    failures = [cli(db, user, "set-key", "nope", secret=key),
                cli(db, user, "set-key", "eng", "--role", "no_such_role", secret=key)]
    assert all(f.returncode == 1 and key not in f.stderr + f.stdout for f in failures)
    stored = db.execute("SELECT umoptions FROM pg_user_mappings WHERE srvname = 'eng' "
                        "AND usename = 'public'").fetchone()[0]
    assert stored == [f"api_key={key}"]
    log = server_log.text()
    if who == "llm_admin":   # statement logging stayed on (a non-superuser cannot turn it off)
        assert "llm_set_api_key($1, (SELECT value FROM pg_llm_secret_" in log
        assert "COPY pg_llm_secret_" in log
    assert key not in log


def test_create_datasource_cli_keeps_the_password_out_of_the_log(db, server_log, loud_logging):
    password = new_key()
    url = f"postgresql://postgres:{password}@127.0.0.1:{db.info.port}/postgres"
    first = cli(db, "postgres", "create-datasource", "src", secret=url)
    again = cli(db, "postgres", "create-datasource", "src", secret=url)     # duplicate
    bad = cli(db, "postgres", "create-datasource", "src2", secret=url.replace(
        f":{db.info.port}/", ":port/"))                                        # bad url
    assert first.returncode == 0, first.stderr
    assert again.returncode == 1 and "already exists" in again.stderr
    assert bad.returncode == 1 and password not in bad.stderr
    assert db.execute("SELECT has_password FROM llm.datasources WHERE name = 'src'"
                      ).fetchone() == (True,)
    assert password not in server_log.text()


def test_provider_error_texts_are_scrubbed_in_errors_and_log(db, server_log):
    """A provider that echoes the wrong key in its 401 body: not in the error, not in the log."""
    key = new_key()
    with FakeOpenAI(models=["m1"], api_key="sk-the-right-one") as server:
        err = error_of(db, "SELECT llm_create_engine('eng', base_url => %s, api_key => %s)",
                       [server.url, key])
    assert err.sqlstate == "28000"
    text = " ".join(str(x) for x in (err.diag.message_primary, err.diag.message_detail,
                                     err.diag.message_hint))
    assert key not in text and key[-12:] not in text
    log = server_log.text()
    assert err.diag.message_primary in log      # the error itself was logged
    assert key not in log and key[-12:] not in log


def test_keys_reach_user_mappings_without_any_ddl_text(db, engine_eng):
    """No CREATE/ALTER USER MAPPING statement runs (an event trigger sees every DDL statement
    that goes through ProcessUtility, as pg_stat_statements' utility tracking does): the key
    is handed over as a parse node, never as SQL text."""
    db.execute("CREATE TABLE ddl_seen (tag text, query text)")
    db.execute("""CREATE FUNCTION record_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
                  BEGIN INSERT INTO public.ddl_seen VALUES (tg_tag, current_query()); END $$""")
    db.execute("CREATE EVENT TRIGGER seen ON ddl_command_end EXECUTE FUNCTION record_ddl()")
    try:
        key = new_key()
        db.execute("SELECT llm_set_api_key('eng', %s)", [key])                  # create
        db.execute("SELECT llm_set_api_key('eng', %s)", [key + "-2"])           # set
        db.execute("SELECT llm_set_api_key('eng', %s, role => 'postgres')", [key])
        db.execute("SELECT llm_create_datasource('src', %s)",
                   [f"postgresql://u:{key}@127.0.0.1:5432/db"])
        db.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER src")           # a control
    finally:
        db.execute("DROP EVENT TRIGGER seen")
    tags = [r[0] for r in db.execute("SELECT tag FROM ddl_seen")]
    assert "CREATE USER MAPPING" in tags                # the trigger works...
    assert tags.count("CREATE USER MAPPING") == 1       # ...and saw only the control
    assert "ALTER USER MAPPING" not in tags
    assert db.execute("SELECT umoptions FROM pg_user_mappings WHERE srvname = 'eng' "
                      "AND usename = 'public'").fetchone()[0] == [f"api_key={key}-2"]
