"""pg_dump / pg_restore into a new database keeps engines, keys, models and versions working."""

import subprocess
import uuid
from pathlib import Path

import psycopg

from core.conftest import API_KEY, BASE_MODEL

BINDIR = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=True).stdout.strip())
if not (BINDIR / "pg_dump").exists():
    BINDIR = Path("/usr/lib/postgresql/15/bin")

CATALOG = ("SELECT (SELECT json_agg(e ORDER BY name) FROM (SELECT name, provider, base_url, price_input, "
           "options FROM llm.engines) e), (SELECT json_agg(m ORDER BY name) FROM (SELECT name, engine, "
           "base_model, prompt_template, system_prompt, options, active_version FROM llm.models) m), "
           "(SELECT json_agg(v ORDER BY model, version) FROM (SELECT model, version, provider_model_id, "
           "dropped_at FROM llm.model_versions) v)")


def test_round_trip_keeps_everything_working(db, ft_sql, fake, tmp_path):
    db.execute("""SELECT llm_create_model('qa', engine => 'openai_compat', model_name => %s,
                  prompt_template => 'Q: {{question}}', system_prompt => 'Be brief.',
                  options => '{"max_tokens": 3}')""", (BASE_MODEL,))
    # a second version (what fine-tuning adds), made active through the catalog module's sync
    db.execute("INSERT INTO llm.model_versions (model, version, provider_model_id) "
               "VALUES ('qa', 2, 'ft-model-2')")
    db.execute("UPDATE llm.models SET active_version = 2 WHERE name = 'qa'")
    db.execute("""CREATE FUNCTION pg_temp.sync() RETURNS void LANGUAGE plpython3u AS $$
if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
from pg_llm.catalog.models import sync_table_options
sync_table_options(plpy, 'qa')
$$""")
    db.execute("SELECT pg_temp.sync()")
    db.execute("SELECT llm_create_engine('local_engine', provider => 'local', verify => false)")
    before = db.execute(CATALOG).fetchone()
    assert db.execute("SELECT answer, model_id FROM qa WHERE question = 'a b c d'").fetchone() == (
        "echo:Q: a b", "ft-model-2")

    info = db.info
    dump = tmp_path / "db.dump"
    conn_args = ["-h", info.host, "-p", str(info.port), "-U", "postgres"]
    subprocess.run([BINDIR / "pg_dump", *conn_args, "-Fc", "-f", dump, info.dbname], check=True)
    target = f"restored_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE DATABASE {target}")
    try:
        restore = subprocess.run([BINDIR / "pg_restore", *conn_args, "--exit-on-error", "-d", target, dump],
                                 capture_output=True, text=True)
        assert restore.returncode == 0, restore.stderr
        with psycopg.connect(host=info.host, port=info.port, user="postgres", dbname=target,
                             autocommit=True) as restored:
            assert restored.execute(CATALOG).fetchone() == before
            fake.reset()
            assert restored.execute("SELECT answer FROM ft_sql WHERE content = 'after restore'"
                                    ).fetchone() == ("echo:after restore",)
            assert fake.chat_requests()[-1].authorization == f"Bearer {API_KEY}"
            assert restored.execute("SELECT answer, model_id FROM qa WHERE question = 'x y z w' "
                                    "AND version = 1").fetchone() == ("echo:Q: x y", BASE_MODEL)
            # the restored catalog is live: functions work on restored objects
            restored.execute("SELECT llm_drop_model('qa')")
            restored.execute("SELECT llm_drop_engine('openai_compat', cascade => true)")
            assert restored.execute("SELECT count(*) FROM llm.engines").fetchone() == (1,)
    finally:
        db.execute(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")
