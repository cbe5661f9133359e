"""Point 2 of issue 9 for databases made by 0.1.0, which found a model's table by searching
table options: the 0.2.0 upgrade (sql/incremental/010-models-relid-engines-view.sql) records a
table in llm.models.relid only when it is beyond doubt the one llm_create_model made, and never
one a role that could not write the catalog planted."""

from __future__ import annotations

import uuid

import psycopg
import pytest


@pytest.fixture
def old_database(db):
    """A fresh database at 0.1.0 with two models, as 0.1.0's llm_create_model left them."""
    name = f"relid_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE DATABASE {name}")
    info = db.info
    conn = psycopg.connect(host=info.host, port=info.port, user="postgres", dbname=name,
                           autocommit=True)
    evil = f"evil_{uuid.uuid4().hex[:8]}"
    try:
        conn.execute("CREATE EXTENSION pg_llm VERSION '0.1.0' CASCADE")
        conn.execute("CREATE SERVER eng FOREIGN DATA WRAPPER pg_llm "
                     "OPTIONS (provider 'openai', base_url 'http://127.0.0.1:9/v1')")
        conn.execute("INSERT INTO llm.engines (name, provider, base_url) "
                     "VALUES ('eng', 'openai', 'http://127.0.0.1:9/v1')")
        for model in ("real", "orphan"):
            conn.execute("INSERT INTO llm.models (name, engine, base_model, prompt_template) "
                         "VALUES (%s, 'eng', 'm1', '{{content}}')", (model,))
            conn.execute("INSERT INTO llm.model_versions (model, version, provider_model_id) "
                         "VALUES (%s, 1, 'm1')", (model,))
        conn.execute("CREATE FOREIGN TABLE public.real (content text, answer text) SERVER eng "
                     "OPTIONS (model 'real')")
        # a hostile role with USAGE plants look-alikes (0.1.0 let it: no validator for base_url)
        conn.execute(f"CREATE ROLE {evil}")
        conn.execute(f"GRANT USAGE ON FOREIGN SERVER eng TO {evil}")
        conn.execute(f"CREATE SCHEMA {evil} AUTHORIZATION {evil}")
        conn.execute(f"SET ROLE {evil}")
        for model in ("real", "orphan"):
            conn.execute(f"CREATE FOREIGN TABLE {evil}.{model} (content text, answer text) "
                         f"SERVER eng OPTIONS (model '{model}')")
        conn.execute("RESET ROLE")
        yield conn, evil
    finally:
        conn.close()
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        db.execute(f"DROP ROLE IF EXISTS {evil}")


def test_upgrade_records_only_the_table_beyond_doubt(old_database):
    conn, evil = old_database
    warnings = []
    conn.add_notice_handler(lambda diag: warnings.append(diag.message_primary))
    conn.execute("ALTER EXTENSION pg_llm UPDATE")
    relids = dict(conn.execute("SELECT name, relid = 'public.real'::regclass FROM llm.models"
                               ).fetchall())
    assert relids == {"real": True, "orphan": None}
    assert any('model "orphan"' in (w or "") for w in warnings), warnings
    # engines are now the servers' own options
    assert conn.execute("SELECT name, base_url FROM llm.engines").fetchall() == [
        ("eng", "http://127.0.0.1:9/v1")]
    # a model without a recorded table cannot change what it serves: it says so
    conn.execute("INSERT INTO llm.model_versions (model, version, provider_model_id) "
                 "VALUES ('orphan', 2, 'ft:m1:x')")
    with pytest.raises(psycopg.errors.UndefinedObject) as err:
        conn.execute("SELECT llm_set_active_version('orphan', 2)")
    assert "llm_drop_model('orphan')" in err.value.diag.message_hint
    # dropping the orphan removes its catalog rows and leaves the planted table alone
    conn.execute("SELECT llm_drop_model('orphan')")
    assert conn.execute("SELECT count(*) FROM llm.models WHERE name = 'orphan'").fetchone() == (0,)
    assert conn.execute(f"SELECT to_regclass('{evil}.orphan') IS NOT NULL").fetchone() == (True,)
    conn.execute("SELECT llm_drop_model('real')")
    assert conn.execute("SELECT to_regclass('public.real'), to_regclass(%s) IS NOT NULL",
                        (f"{evil}.real",)).fetchone() == (None, True)
