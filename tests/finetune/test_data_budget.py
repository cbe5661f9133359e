"""Bad data sets, budgets and the ledger, external datasources and the cron schedule, through
real SQL (psycopg, psql, PL/pgSQL, SQLAlchemy)."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy

from conftest import run_psql

from .conftest import PRICE_TRAINING
from .helpers import job_row

DRY = ("SELECT * FROM llm_finetune('ft_sql', %s, options => %s, dry_run => true)")


BAD_DATA = [
    ("SELECT * FROM demo_data WHERE NOT (chat_id = 3 AND message_id = 2)", "{}",
     "expected a user message here, got assistant"),
    ("SELECT * FROM demo_data WHERE NOT (chat_id = 4 AND message_id = 3)", "{}",
     "ends with a user message"),
    ("SELECT chat_id, message_id, CASE WHEN chat_id = 6 AND message_id = 2 THEN 'bot' "
     "ELSE role END AS role, content FROM demo_data", "{}", "unknown role 'bot'"),
    ("SELECT chat_id, message_id, role, CASE WHEN chat_id = 5 AND message_id = 3 THEN '' "
     "ELSE content END AS content FROM demo_data", "{}", "chat_id=5, message_id=3"),
    ("SELECT * FROM demo_data WHERE chat_id <= 4", "{}", "too few conversations: 4"),
    ("SELECT * FROM demo_data", '{"max_tokens_per_conversation": 10}', "conversation too long"),
    ("SELECT chat_id AS a, content AS b FROM demo_data", "{}",
     "cannot tell the shape of the training data"),
]


def test_bad_data_is_refused_with_22000_and_a_hint(db, hosted):
    # One database for every rule (a fresh one per case costs seconds each).
    for query, options, message in BAD_DATA:
        with pytest.raises(psycopg.errors.DataException) as exc:
            db.execute(DRY, (query, options))
        assert message in str(exc.value), (query, str(exc.value))
        assert exc.value.diag.sqlstate == "22000" and exc.value.diag.message_hint
    assert hosted.requests == []


def test_bad_arguments_are_22023_or_42704(db, hosted):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="n_epochs"):
        db.execute(DRY, ("SELECT * FROM demo_data", '{"n_epochs": 0}'))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown fine-tuning options"):
        db.execute(DRY, ("SELECT * FROM demo_data", '{"epochs": 3}'))
    # The local engine's LoRA knobs mean nothing to a hosted provider: refused, not dropped.
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="lora_rank") as exc:
        db.execute(DRY, ("SELECT * FROM demo_data", '{"lora_rank": 8}'))
    assert exc.value.diag.message_hint
    with pytest.raises(psycopg.errors.UndefinedObject, match='model "nope"'):
        db.execute("SELECT * FROM llm_finetune('nope', 'SELECT 1')")
    with pytest.raises(psycopg.errors.UndefinedObject):
        db.execute("SELECT * FROM llm_wait(999)")
    # The query runs as a subquery: no data-modifying statements sneak through.
    with pytest.raises(psycopg.errors.SyntaxError):
        db.execute(DRY, ("DELETE FROM demo_data RETURNING *", "{}"))
    assert db.execute("SELECT count(*) FROM demo_data").fetchone()[0] == 36


def test_wide_shape_with_template_and_caller_search_path(db, hosted):
    db.execute("CREATE SCHEMA s; CREATE TABLE s.examples (q text, ctx text, sql text)")
    db.execute("INSERT INTO s.examples SELECT 'question ' || i, 'CREATE TABLE t (a int)', "
               "'SELECT ' || i FROM generate_series(1, 10) i")
    db.execute("SET search_path = s, public")   # the unqualified name resolves as the caller's
    row = db.execute(
        "SELECT conversations, tokens FROM llm_finetune('ft_sql', $$SELECT * FROM examples$$, "
        "options => '{\"user_template\": \"{{ctx}}\\n-- {{q}}\", \"assistant_column\": "
        "\"sql\", \"system_prompt\": \"SQL only\"}', dry_run => true)").fetchone()
    assert row[0] == 10 and row[1] > 10 * 3 * 4


def test_budget_refuses_before_upload_and_ledger_tracks_spend(db, hosted):
    dry = db.execute(DRY, ("SELECT * FROM demo_data", "{}")).fetchone()
    trained = dry[5]
    hosted.script("succeed", steps=1, step_seconds=0.02)

    # Tokens budget on the engine: the estimate does not fit.
    budget = db.execute("SELECT * FROM llm_set_budget('hosted', max_tokens => %s)",
                        (trained - 1,)).fetchone()
    assert budget[:2] == ("engine", "hosted")
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded) as exc:
        db.execute("SELECT * FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$)")
    assert exc.value.diag.sqlstate == "53400"
    assert f"estimated {trained} trained tokens > {trained - 1} remaining" in \
        exc.value.diag.message_detail
    assert "llm_set_budget" in exc.value.diag.message_hint
    assert ("POST", "/v1/files") not in hosted.requests
    assert db.execute("SELECT count(*) FROM llm.jobs").fetchone()[0] == 0

    # Enough for exactly one job: the second is refused because the first spent it.
    db.execute("SELECT llm_set_budget('hosted', max_tokens => NULL)")
    usd = float(dry[6])
    db.execute("SELECT llm_set_budget('ft_sql', max_usd => %s::numeric)", (usd * 1.5,))
    db.execute("SELECT * FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$)")
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match='model "ft_sql"'):
        db.execute("SELECT * FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$)")
    job = job_row(db, "SELECT * FROM llm_wait('ft_sql')")
    ledger = db.execute("SELECT kind, tokens FROM llm.ledger WHERE job_id = %s ORDER BY id",
                        (job["id"],)).fetchall()
    assert ledger == [("estimate", trained), ("release", -trained),
                      ("actual", job["trained_tokens"])]
    status = db.execute("SELECT spent_tokens, spent_usd FROM llm.budget_status "
                        "WHERE target = 'ft_sql'").fetchone()
    assert status[0] == job["trained_tokens"]
    assert float(status[1]) == pytest.approx(job["trained_tokens"] * PRICE_TRAINING / 1e6)

    # Removing a budget: both limits NULL.
    db.execute("SELECT llm_set_budget('ft_sql')")
    assert db.execute("SELECT count(*) FROM llm.budgets").fetchone()[0] == 0
    with pytest.raises(psycopg.errors.UndefinedObject):
        db.execute("SELECT llm_set_budget('nothing', max_usd => 1)")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute("SELECT llm_set_budget('hosted', max_usd => -1)")


def test_budget_error_is_catchable_in_plpgsql(db, hosted):
    db.execute("SELECT llm_set_budget('hosted', max_tokens => 1)")
    db.execute("""
        CREATE FUNCTION try_finetune() RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM * FROM llm_finetune('ft_sql', 'SELECT * FROM demo_data');
            RETURN 'started';
        EXCEPTION WHEN configuration_limit_exceeded THEN
            RETURN 'over budget: ' || SQLERRM;
        END $$""")
    assert db.execute("SELECT try_finetune()").fetchone()[0].startswith("over budget: ")


def test_psql_user_story(dsn, db, hosted):
    hosted.script("succeed", steps=2, step_seconds=0.02)
    out = run_psql(dsn, "SELECT job_id, status FROM llm_finetune('ft_sql', "
                        "$$SELECT * FROM demo_data$$)")
    job_id = int(out.stdout.split("|")[0])
    out = run_psql(dsn, "SELECT status, result_version FROM llm_wait('ft_sql')")
    assert out.stdout.strip() == "succeeded|2"
    assert f"job {job_id} step 2/2" in out.stderr        # NOTICEs reach the psql user
    # BI tools read the catalog with plain SQL (SQLAlchemy here).
    url = sqlalchemy.engine.URL.create("postgresql+psycopg", username="postgres",
                                       host=db.info.host, port=db.info.port,
                                       database=db.info.dbname)
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(
            "SELECT j.status, v.version, v.metrics->>'train_loss' FROM llm.jobs j "
            "JOIN llm.model_versions v ON v.job_id = j.id")).all()
    engine.dispose()
    assert rows and rows[0][0] == "succeeded" and rows[0][1] == 2


def test_datasource_reads_another_database(db, hosted, pg_cluster):
    other = f"{db.info.dbname}_src"
    db.execute(f"DROP DATABASE IF EXISTS {other}")
    db.execute(f"CREATE DATABASE {other}")
    try:
        with psycopg.connect(db.info.dsn.replace(f"dbname={db.info.dbname}",
                                                 f"dbname={other}"), autocommit=True) as src:
            src.execute("CREATE TABLE chats (chat_id int, message_id int, role text, "
                        "content text)")
            src.execute("INSERT INTO chats SELECT c, m, (ARRAY['user','assistant'])[m], "
                        "'text ' || c || ' ' || m FROM generate_series(1, 15) c, "
                        "generate_series(1, 2) m")
        secret = "s3cret-Passw0rd"
        url = f"postgresql://postgres:{secret}@127.0.0.1:{db.info.port}/{other}"
        db.execute("SELECT llm_create_datasource('example_db', url => %s)", (url,))
        shown = db.execute("SELECT name, url, has_password FROM llm.datasources").fetchall()
        assert shown == [("example_db", f"postgresql://postgres@127.0.0.1:{db.info.port}/{other}",
                          True)]
        srvoptions = db.execute("SELECT srvoptions::text FROM pg_foreign_server "
                                "WHERE srvname = 'example_db'").fetchone()[0]
        assert secret not in srvoptions
        row = db.execute("SELECT conversations, status FROM llm_finetune('ft_sql', "
                         "$$SELECT * FROM chats$$, datasource => 'example_db', "
                         "dry_run => true)").fetchone()
        assert row == (15, "dry_run")
        with pytest.raises(psycopg.errors.DataException) as exc:
            db.execute("SELECT * FROM llm_finetune('ft_sql', $$SELECT * FROM missing$$, "
                       "datasource => 'example_db', dry_run => true)")
        assert "missing" in str(exc.value.diag.message_detail) and secret not in str(exc.value)
        with pytest.raises(psycopg.errors.DuplicateObject):
            db.execute("SELECT llm_create_datasource('example_db', url => %s)", (url,))
        db.execute("SELECT llm_drop_datasource('example_db')")
        with pytest.raises(psycopg.errors.UndefinedObject, match="llm_create_datasource"):
            db.execute("SELECT * FROM llm_finetune('ft_sql', 'SELECT 1', "
                       "datasource => 'example_db', dry_run => true)")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            db.execute("SELECT llm_create_datasource('bad', url => 'not a url')")
    finally:
        db.execute(f"DROP DATABASE IF EXISTS {other} WITH (FORCE)")


def test_schedule_refresh_without_pg_cron_explains(db, notices):
    assert db.execute("SELECT llm_schedule_refresh()").fetchone()[0] is None
    assert any("cron.schedule_in_database" in n for n in notices.of("NOTICE"))


def test_schedule_refresh_with_pg_cron(pg_cluster):
    """pg_cron lives in the database named by cron.database_name (postgres here)."""
    dsn = f"host=127.0.0.1 port={pg_cluster['port']} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        had_llm = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_llm'").fetchone()
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_llm CASCADE")
        try:
            job_id = conn.execute("SELECT llm_schedule_refresh('*/5 * * * *')").fetchone()[0]
            row = conn.execute("SELECT schedule, command, database FROM cron.job "
                               "WHERE jobid = %s", (job_id,)).fetchone()
            assert row == ("*/5 * * * *", "SELECT public.llm_refresh()", "postgres")
            # Scheduling again replaces the job instead of adding a second one.
            assert conn.execute("SELECT llm_schedule_refresh()").fetchone()[0] == job_id
            assert conn.execute("SELECT count(*) FROM cron.job WHERE jobname = "
                                "'pg_llm_refresh'").fetchone()[0] == 1
        finally:
            conn.execute("SELECT cron.unschedule('pg_llm_refresh')")
            if not had_llm:
                conn.execute("DROP EXTENSION pg_llm")


def test_refused_job_creation_deletes_the_uploaded_file(db, hosted, notices):
    # The provider accepts the upload but has no such base model: job creation fails (404).
    db.execute("SELECT llm_create_model('ft_other', engine => 'hosted', model_name => "
               "'no-such-base', prompt_template => '{{content}}', predict => 'answer')")
    job_id = db.execute("SELECT job_id FROM llm_finetune('ft_other', "
                        "'SELECT * FROM demo_data')").fetchone()[0]
    job = job_row(db, "SELECT * FROM llm_wait(%s::bigint)", (job_id,))
    assert job["status"] == "failed" and "no-such-base" in job["error"]
    assert any(f"job {job_id} failed" in w for w in notices.of("WARNING"))
    assert ("POST", "/v1/files") in hosted.requests          # it was uploaded ...
    assert hosted.files == {} and hosted.file_data == {}     # ... and deleted again
    assert hosted.jobs == {}
    # The estimate is released; nothing is left to hand over.
    assert db.execute("SELECT sum(tokens) FROM llm.ledger").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM llm.job_files").fetchone()[0] == 0
    assert db.execute("SELECT active_version FROM llm.models WHERE name = 'ft_other'"
                      ).fetchone()[0] == 1
