"""Datasources (issue 9, point 3): who may create them, where the password lives, what a
datasource query may do, and the URLs a non-superuser may not use.

The test cluster trusts every local connection (initdb -A trust), which is exactly the
"loopback as another role" hazard: any URL naming user postgres would log in as the
superuser without a password. A role with a scram-sha-256 line in pg_hba.conf shows the
allowed path: a non-superuser's datasource that really authenticates with its password.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from security.conftest import error_of

SECRET = "Ds-s3cret-pw-77d1"


@pytest.fixture
def source_db(db):
    """A second database with a chats table (15 two-message conversations)."""
    name = f"{db.info.dbname}_src"
    db.execute(f"DROP DATABASE IF EXISTS {name}")
    db.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(host=db.info.host, port=db.info.port, user="postgres", dbname=name,
                         autocommit=True) as src:
        src.execute("CREATE TABLE chats (chat_id int, message_id int, role text, content text)")
        src.execute("INSERT INTO chats SELECT c, m, (ARRAY['user','assistant'])[m], "
                    "'text ' || c || ' ' || m FROM generate_series(1, 15) c, "
                    "generate_series(1, 2) m")
        src.execute("CREATE SEQUENCE s")
        src.execute("GRANT SELECT ON chats TO PUBLIC")
    yield name
    db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def chats_count(db, source_db) -> int:
    with psycopg.connect(host=db.info.host, port=db.info.port, user="postgres",
                         dbname=source_db) as src:
        return src.execute("SELECT count(*) FROM chats").fetchone()[0]


@pytest.fixture
def password_role(db, pg_cluster):
    """A LOGIN role that must give its password on 127.0.0.1 (scram-sha-256 in pg_hba.conf)."""
    role = f"dsr_{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    db.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    hba = Path(pg_cluster["dir"]) / "data" / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + original)
    db.execute("SELECT pg_reload_conf()")
    # The postmaster reloads asynchronously: wait until it asks this role for a password.
    for _ in range(200):
        try:
            psycopg.connect(host="127.0.0.1", port=db.info.port, user=role,
                            dbname="postgres").close()
        except psycopg.OperationalError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("pg_hba.conf reload was not applied")
    yield role, password
    hba.write_text(original)
    db.execute("SELECT pg_reload_conf()")
    db.execute(f"DROP OWNED BY {role} CASCADE")
    db.execute(f"DROP ROLE {role}")


def url_for(db, source_db, user="postgres", password=SECRET, host="127.0.0.1", query=""):
    auth = f"{user}:{password}" if password else user
    return f"postgresql://{auth}@{host}:{db.info.port}/{source_db}{query}"


def finetune_rows(conn, query: str, datasource: str = "src"):
    return conn.execute("SELECT conversations FROM llm_finetune('m', %s, "
                        "datasource => %s, dry_run => true)", (query, datasource)).fetchone()


# -- who may create one ---------------------------------------------------------------------

def test_a_role_without_the_wrapper_grant_cannot_create_one(db, login, source_db):
    role, alice = login()
    err = error_of(alice, "SELECT llm_create_datasource('src', url => %s)",
                   (url_for(db, source_db),))
    assert err.sqlstate == "42501"
    assert "llm_admin" in err.diag.message_hint
    assert SECRET not in str(err) and SECRET not in (err.diag.message_detail or "")
    assert db.execute("SELECT count(*) FROM llm.datasources").fetchone()[0] == 0


def test_llm_admin_may_create_one(db, login, source_db, password_role):
    role, password = password_role
    _, admin = login("GRANT llm_admin TO {role}")
    admin.execute("SELECT llm_create_datasource('src', url => %s)",
                  (url_for(db, source_db, user=role, password=password),))
    assert db.execute("SELECT url, has_password FROM llm.datasources").fetchone() == (
        f"postgresql://{role}@127.0.0.1:{db.info.port}/{source_db}", True)


# -- the password: only in a user mapping ------------------------------------------------

def test_the_password_is_only_in_the_user_mapping(db, source_db):
    db.execute("SELECT llm_create_datasource('src', url => %s)", (url_for(db, source_db),))
    visible = db.execute("""
        SELECT (SELECT string_agg(srvoptions::text, ' ') FROM pg_foreign_server)
            || (SELECT string_agg(d::text, ' ') FROM llm.datasources d)""").fetchone()[0]
    assert SECRET not in visible
    mapping = db.execute("SELECT umoptions FROM pg_user_mappings WHERE srvname = 'src'"
                         ).fetchone()[0]
    assert mapping == [f"password={SECRET}"]


def test_a_failing_create_never_quotes_the_password(db, source_db):
    db.execute("SELECT llm_create_datasource('src', url => %s)", (url_for(db, source_db),))
    for sql in ("SELECT llm_create_datasource('src', url => %s)",                 # duplicate
                "SELECT llm_create_datasource('bad name!', url => %s)",           # bad name
                "SELECT llm_create_datasource('x', url => %s)"):                  # bad port
        err = error_of(db, sql, (url_for(db, source_db).replace(f":{db.info.port}/", ":port/"),)
                       if "'x'" in sql else (url_for(db, source_db),))
        text = " ".join(str(x) for x in (err.diag.message_primary, err.diag.message_detail,
                                         err.diag.message_hint, err.diag.context))
        assert SECRET not in text, sql


# -- the URL rules for non-superusers -------------------------------------------------------

@pytest.mark.parametrize("url, what", [
    ("sqlite:////var/lib/postgresql/x.db", "SQLite"),
    ("sqlite:///relative.db", "SQLite"),
    ("postgresql://postgres:{pw}@/{db}", "network host"),                      # default socket
    ("postgresql://postgres:{pw}@/{db}?host=/tmp", "network host"),
    ("postgresql://postgres:{pw}@127.0.0.1:{port}/{db}?host=/tmp", "host"),    # param override
    ("postgresql://postgres:{pw}@127.0.0.1:{port}/{db}?sslkey=/etc/ssl/private/k", "sslkey"),
    ("postgresql://postgres:{pw}@127.0.0.1:{port}/{db}?passfile=/var/lib/postgresql/.pgpass",
     "passfile"),
    ("postgresql://postgres:{pw}@127.0.0.1:{port}/{db}?service=admin", "service"),
    ("postgresql://postgres@127.0.0.1:{port}/{db}", "password"),
    ("mysql://root:{pw}@localhost/db", "network host"),
    ("postgresql://postgres:{pw}@127.0.0.1:{port}/host%3D%2Ftmp%20dbname%3D{db}", "database name"),
])
def test_a_non_superuser_cannot_reach_the_servers_files_or_sockets(db, login, source_db,
                                                                    url, what):
    _, admin = login("GRANT USAGE ON FOREIGN DATA WRAPPER pg_llm_datasource TO {role}")
    url = url.format(pw=SECRET, port=db.info.port, db=source_db)
    err = error_of(admin, "SELECT llm_create_datasource('src', url => %s)", (url,))
    assert err.sqlstate == "2F003", (url, err)
    assert what in err.diag.message_primary + (err.diag.message_detail or "")
    assert err.diag.message_hint
    assert SECRET not in str(err)


def test_loopback_trust_cannot_log_a_non_superuser_in_as_another_role(db, login, engine,
                                                                      source_db):
    """postgres:<any password>@127.0.0.1 passes the URL rules, but trust authentication
    never asks for the password: the datasource is refused on connecting, before any query."""
    _, admin = login("GRANT llm_admin TO {role}")
    admin.execute("SELECT llm_create_datasource('src', url => %s)", (url_for(db, source_db),))
    err = error_of(admin, "SELECT * FROM llm_finetune('m', 'SELECT * FROM chats', "
                          "datasource => 'src', dry_run => true)")
    assert err.sqlstate == "2F003"
    assert "without using its password" in err.diag.message_primary
    assert SECRET not in str(err)


def test_a_non_superuser_datasource_that_authenticates_works(db, login, engine, source_db,
                                                            password_role):
    role, password = password_role
    _, admin = login("GRANT llm_admin TO {role}")
    admin.execute("SELECT llm_create_datasource('src', url => %s)",
                  (url_for(db, source_db, user=role, password=password),))
    assert finetune_rows(admin, "SELECT * FROM chats") == (15,)


def test_rules_apply_again_when_the_owner_alters_the_url(db, login, engine, source_db,
                                                         password_role):
    role, password = password_role
    owner, admin = login("GRANT llm_admin TO {role}")
    admin.execute("SELECT llm_create_datasource('src', url => %s)",
                  (url_for(db, source_db, user=role, password=password),))
    admin.execute("ALTER SERVER src OPTIONS (SET url 'sqlite:////etc/hostname')")
    err = error_of(admin, "SELECT * FROM llm_finetune('m', 'SELECT 1', datasource => 'src', "
                          "dry_run => true)")
    assert err.sqlstate == "2F003" and "SQLite" in err.diag.message_primary


# -- one statement, read-only ---------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "SELECT * FROM chats; DELETE FROM chats",
    "SELECT * FROM chats; COMMIT; DELETE FROM chats",
    "SELECT * FROM chats;;DROP TABLE chats",
    "SELECT * FROM chats /* ; */; DELETE FROM chats -- ;",
])
def test_more_than_one_statement_is_refused(db, engine, source_db, query):
    db.execute("SELECT llm_create_datasource('src', url => %s)", (url_for(db, source_db),))
    err = error_of(db, "SELECT * FROM llm_finetune('m', %s, datasource => 'src', "
                       "dry_run => true)", (query,))
    assert err.sqlstate == "42601"
    assert "single statement" in err.diag.message_primary
    assert chats_count(db, source_db) == 30


def test_semicolons_inside_strings_and_comments_are_one_statement(db, engine, source_db):
    db.execute("SELECT llm_create_datasource('src', url => %s)", (url_for(db, source_db),))
    query = ("SELECT chat_id, message_id, role, content || ';' || $$a;b$$ AS content "
             "FROM chats -- trailing; comment\n;")
    assert finetune_rows(db, query) == (15,)


@pytest.mark.parametrize("query", [
    "WITH d AS (DELETE FROM chats RETURNING *) SELECT * FROM d",
    "SELECT chat_id, message_id, role, nextval('s')::text AS content FROM chats",
])
def test_a_postgresql_datasource_query_cannot_write(db, engine, source_db, query):
    db.execute("SELECT llm_create_datasource('src', url => %s)", (url_for(db, source_db),))
    err = error_of(db, "SELECT * FROM llm_finetune('m', %s, datasource => 'src', "
                       "dry_run => true)", (query,))
    assert err.sqlstate == "22000"
    assert "read-only" in (err.diag.message_detail or "")
    assert chats_count(db, source_db) == 30


@pytest.fixture
def sqlite_file(pg_cluster):
    path = Path(pg_cluster["dir"]) / f"chats_{uuid.uuid4().hex[:8]}.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE chats (chat_id int, message_id int, role text, content text)")
        conn.executemany("INSERT INTO chats VALUES (?, ?, ?, ?)",
                         [(c, m, ("user", "assistant")[m - 1], f"text {c} {m}")
                          for c in range(1, 11) for m in (1, 2)])
    subprocess.run(["chown", "postgres:", str(path)], check=True)
    yield path
    path.unlink(missing_ok=True)


def test_a_superusers_sqlite_datasource_is_read_only(db, engine, sqlite_file):
    db.execute("SELECT llm_create_datasource('src', url => %s)", (f"sqlite:///{sqlite_file}",))
    assert finetune_rows(db, "SELECT * FROM chats") == (10,)
    for query in ("DELETE FROM chats RETURNING *",
                  "INSERT INTO chats VALUES (1, 1, 'user', 'x') RETURNING *"):
        err = error_of(db, "SELECT * FROM llm_finetune('m', %s, datasource => 'src', "
                           "dry_run => true)", (query,))
        assert err.sqlstate == "22000", query
        assert "readonly" in (err.diag.message_detail or "").replace("-", ""), query
    err = error_of(db, "SELECT * FROM llm_finetune('m', 'SELECT 1; DROP TABLE chats', "
                       "datasource => 'src', dry_run => true)")
    assert err.sqlstate == "42601"
    with sqlite3.connect(sqlite_file) as conn:
        assert conn.execute("SELECT count(*) FROM chats").fetchone()[0] == 20


def test_a_missing_sqlite_file_is_not_created(db, engine, pg_cluster):
    path = Path(pg_cluster["dir"]) / f"missing_{uuid.uuid4().hex[:8]}.db"
    db.execute("SELECT llm_create_datasource('src', url => %s)", (f"sqlite:///{path}",))
    err = error_of(db, "SELECT * FROM llm_finetune('m', 'SELECT 1 AS x', datasource => 'src', "
                       "dry_run => true)")
    assert err.sqlstate in ("08001", "22000")
    assert not path.exists()


def test_unsupported_kinds_are_refused(db):
    err = error_of(db, "SELECT llm_create_datasource('src', url => 'oracle://u:p@h/db')")
    assert err.sqlstate == "0A000"
    assert "read-only" in err.diag.message_hint
