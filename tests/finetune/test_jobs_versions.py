"""The issue's user story against a real PostgreSQL and the fake hosted provider:
dry run, start, wait, versions, rollback, drop, failure, cancel, refresh, crash."""

from __future__ import annotations

import math

import psycopg
import pytest

from fake_finetune_provider import count_words, train_loss
from .helpers import job_row, wait_for_query, wait_until_provider

from .conftest import BASE, PRICE_TRAINING

START = "SELECT * FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$, options => %s)"


def documented_estimate(db, table="demo_data") -> int:
    """The estimate docs/finetuning.md documents, recomputed here from the raw rows:
    ceil(chars/3) + 4 per message, + 3 per conversation."""
    rows = db.execute(f"SELECT chat_id, content FROM {table}").fetchall()
    chats = {c for c, _ in rows}
    return 3 * len(chats) + sum(4 + math.ceil(len(content) / 3) for _, content in rows)


def test_dry_run_estimates_without_starting_anything(db, hosted):
    row = db.execute("SELECT * FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data LIMIT 300$$,"
                     " options => '{\"n_epochs\": 3}', dry_run => true)").fetchone()
    cols = [d.name for d in db.execute("SELECT * FROM llm_finetune('ft_sql', "
                                       "$$SELECT * FROM demo_data$$, dry_run => true)").description]
    got = dict(zip(cols, row))
    tokens = documented_estimate(db)
    assert got["job_id"] is None and got["status"] == "dry_run"
    assert got["conversations"] == 12 and got["epochs"] == 3
    assert got["tokens"] == tokens and got["estimated_trained_tokens"] == 3 * tokens
    assert float(got["estimated_usd"]) == pytest.approx(3 * tokens * PRICE_TRAINING / 1e6)
    assert got["token_count_method"] == "estimate"
    assert db.execute("SELECT count(*) FROM llm.jobs").fetchone()[0] == 0
    assert hosted.requests == []                      # nothing uploaded


def test_finetune_wait_versions_rollback_drop(db, hosted, notices):
    hosted.script("succeed", steps=4, step_seconds=0.05)
    job_id, status = db.execute(START + "", ('{"n_epochs": 2}',)).fetchone()[:2]
    # Queued in this (committed) statement; the provider gets it from the next llm_wait.
    assert status == "pending" and hosted.requests == []

    job = job_row(db, "SELECT * FROM llm_wait('ft_sql')")
    assert ("POST", "/v1/files") in hosted.requests
    assert ("POST", "/v1/fine_tuning/jobs") in hosted.requests
    assert any(f"job {job_id} handed to engine \"hosted\"" in m for m in notices.of("NOTICE"))
    assert job["id"] == job_id and job["status"] == "succeeded" and job["result_version"] == 2
    steps = [m for m in notices.of("NOTICE") if f"job {job_id} step" in m]
    assert steps == [f"job {job_id} step {s}/4: loss {train_loss(s):.4f}" for s in range(1, 5)]
    # The provider's count of trained tokens, and its cost at the engine's price.
    fake_job = hosted.jobs[job["provider_job_id"]]
    assert job["trained_tokens"] == fake_job.trained_tokens_per_epoch * 2
    assert float(job["cost_usd"]) == pytest.approx(job["trained_tokens"] * PRICE_TRAINING / 1e6)

    ft_id = hosted.fine_tuned_id(fake_job)
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'hi'").fetchone()[0] == \
        f"[{ft_id}] hi"
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'hi' AND version = 1"
                      ).fetchone()[0] == f"[{BASE}] hi"
    version = db.execute("SELECT provider_model_id, job_id, metrics FROM llm.model_versions "
                         "WHERE model = 'ft_sql' AND version = 2").fetchone()
    assert version[0] == ft_id and version[1] == job_id
    assert version[2]["train_loss"] == train_loss(4) and version[2]["trained_tokens"] == \
        job["trained_tokens"]
    events = db.execute("SELECT step, loss FROM llm.job_events WHERE job_id = %s AND step "
                        "IS NOT NULL ORDER BY step", (job_id,)).fetchall()
    assert events == [(s, train_loss(s)) for s in range(1, 5)]

    # Rollback to the base, then forward again with llm_rollback (= previously active).
    assert db.execute("SELECT llm_set_active_version('ft_sql', 1)").fetchone()[0] == 1
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'x'").fetchone()[0] == \
        f"[{BASE}] x"
    assert db.execute("SELECT llm_rollback('ft_sql')").fetchone()[0] == 2
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'x'").fetchone()[0] == \
        f"[{ft_id}] x"

    # Dropping: never the active one, never version 1; soft-delete otherwise.
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as exc:
        db.execute("SELECT llm_drop_version('ft_sql', 2)")
    assert "is active" in str(exc.value) and "llm_rollback" in exc.value.diag.message_hint
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as exc:
        db.execute("SELECT llm_drop_version('ft_sql', 1)")
    assert exc.value.diag.message_hint
    db.execute("SELECT llm_rollback('ft_sql')")
    db.execute("SELECT llm_drop_version('ft_sql', 2)")
    assert db.execute("SELECT dropped_at IS NOT NULL FROM llm.model_versions WHERE "
                      "model = 'ft_sql' AND version = 2").fetchone()[0]
    with pytest.raises(psycopg.Error, match="version"):
        db.execute("SELECT answer FROM ft_sql WHERE content = 'x' AND version = 2").fetchone()
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="dropped"):
        db.execute("SELECT llm_set_active_version('ft_sql', 2)")
    with pytest.raises(psycopg.errors.UndefinedObject):
        db.execute("SELECT llm_set_active_version('ft_sql', 7)")


def test_failed_job_is_recorded_and_old_version_keeps_serving(db, hosted, notices):
    hosted.script("fail", steps=5, fail_at=2, step_seconds=0.05)
    job_id = db.execute(START, ('{}',)).fetchone()[0]
    job = job_row(db, "SELECT * FROM llm_wait(%s::bigint)", (job_id,))
    assert job["status"] == "failed" and "Loss diverged at step 2" in job["error"]
    assert any(f"job {job_id} failed" in w for w in notices.of("WARNING"))
    # Committed, not rolled back with an error: visible from another connection.
    with psycopg.connect(db.info.dsn, autocommit=True) as other:
        assert other.execute("SELECT status FROM llm.jobs WHERE id = %s",
                             (job_id,)).fetchone()[0] == "failed"
    assert db.execute("SELECT active_version FROM llm.models WHERE name = 'ft_sql'"
                      ).fetchone()[0] == 1
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'q'").fetchone()[0] == \
        f"[{BASE}] q"
    # The estimate was booked and released: nothing is spent.
    assert db.execute("SELECT sum(tokens), sum(usd) FROM llm.ledger").fetchone() == (0, 0)


def test_cancel_hanging_job(db, hosted):
    hosted.script("hang")
    job_id = db.execute(START, ('{}',)).fetchone()[0]
    assert db.execute("SELECT llm_refresh()").fetchone()[0]["submitted"] == [job_id]
    job = job_row(db, "SELECT * FROM llm_cancel_job(%s)", (job_id,))
    assert job["status"] == "cancelled" and job["finished_at"] is not None
    assert ("POST", f"/v1/fine_tuning/jobs/{job['provider_job_id']}/cancel") in hosted.requests
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="already cancelled"):
        db.execute("SELECT llm_cancel_job(%s)", (job_id,))
    assert db.execute("SELECT active_version FROM llm.models").fetchone()[0] == 1


def test_wait_is_cancellable_by_statement_timeout(db, hosted):
    hosted.script("hang")
    job_id = db.execute(START, ('{}',)).fetchone()[0]
    db.execute("SET statement_timeout = '1500ms'")
    # The job hangs and llm_wait has no timeout of its own: only statement_timeout ends it.
    with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
        db.execute("SELECT * FROM llm_wait('ft_sql')")
    db.execute("RESET statement_timeout")
    # The job itself goes on; a timed wait returns the running row.
    job = job_row(db, "SELECT * FROM llm_wait(%s::bigint, timeout_s => 0.5)", (job_id,))
    assert job["status"] == "running"


def test_refresh_moves_jobs_without_a_watcher(db, hosted):
    hosted.script("succeed", steps=2, step_seconds=0.05)
    job_id = db.execute(START, ('{}',)).fetchone()[0]
    first = db.execute("SELECT llm_refresh()").fetchone()[0]
    assert first["polled"] == 1
    wait_until_provider(hosted, "succeeded")
    summary = db.execute("SELECT llm_refresh()").fetchone()[0]
    # The fast fake job may have logged every step before the first refresh: count both.
    assert summary["succeeded"] == [job_id]
    assert first["new_events"] + summary["new_events"] >= 1
    fake_job = next(iter(hosted.jobs.values()))
    assert db.execute("SELECT count(*) FROM llm.job_events WHERE job_id = %s",
                      (job_id,)).fetchone()[0] == len(hosted.job_events(fake_job))
    assert db.execute("SELECT status, result_version FROM llm.jobs WHERE id = %s",
                      (job_id,)).fetchone() == ("succeeded", 2)
    # Cheap when nothing is unfinished: no HTTP at all.
    hosted.requests.clear()
    assert db.execute("SELECT llm_refresh()").fetchone()[0]["polled"] == 0
    assert hosted.requests == []
    # A second refresh or wait never duplicates events or versions.
    job_row(db, "SELECT * FROM llm_wait(%s::bigint)", (job_id,))
    assert db.execute("SELECT count(*) FROM llm.model_versions").fetchone()[0] == 2


@pytest.mark.parametrize("keep_state", [True, False])
def test_engine_crash_mid_job(db, hosted, keep_state):
    hosted.script("succeed", steps=200, step_seconds=0.05)
    job_id = db.execute(START, ('{}',)).fetchone()[0]
    db.execute("SELECT llm_refresh()")             # hands it over
    wait_until_provider(hosted, "running")
    hosted.restart(keep_state=keep_state)
    summary = db.execute("SELECT llm_refresh()").fetchone()[0]
    assert summary["failed"] == [job_id]
    status, error = db.execute("SELECT status, error FROM llm.jobs WHERE id = %s",
                               (job_id,)).fetchone()
    assert status == "failed"
    assert ("restarted" in error)
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'still'").fetchone()[0] == \
        f"[{BASE}] still"


def test_unreachable_engine_is_reported_not_failed(db, hosted):
    hosted.script("hang")
    job_id = db.execute(START, ('{}',)).fetchone()[0]
    hosted.stop()
    summary = db.execute("SELECT llm_refresh()").fetchone()[0]
    assert summary["unreachable"] == [job_id], summary
    assert db.execute("SELECT status FROM llm.jobs WHERE id = %s", (job_id,)).fetchone()[0] \
        == "pending"                              # handed over once the engine is back


def test_activate_false_keeps_the_active_version(db, hosted):
    hosted.script("succeed", steps=1, step_seconds=0.02)
    db.execute("SELECT * FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$, "
               "activate => false)")
    job = job_row(db, "SELECT * FROM llm_wait('ft_sql')")
    assert job["status"] == "succeeded" and job["result_version"] == 2
    assert db.execute("SELECT active_version FROM llm.models").fetchone()[0] == 1
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'a' AND version = 2"
                      ).fetchone()[0].startswith("[ft:fake-base:ft-sql:")


def test_validation_split_reports_valid_loss(db, hosted):
    hosted.script("succeed", steps=2, step_seconds=0.02)
    db.execute(START, ('{"validation_fraction": 0.25}',))
    job = job_row(db, "SELECT * FROM llm_wait('ft_sql')")
    assert job["n_conversations"] == 9 and job["provider_validation_file_id"]
    assert db.execute("SELECT max(valid_loss) FROM llm.job_events WHERE job_id = %s",
                      (job["id"],)).fetchone()[0] is not None


def test_engine_tokenizer_is_used_for_local_engines(db, provider):
    provider.tokenize = True
    db.execute("SELECT llm_create_engine('localish', provider => 'local', base_url => %s, "
               "verify => false)", (provider.base_url,))
    provider.api_key = None
    db.execute("SELECT llm_create_model('m', engine => 'localish', model_name => 'fake-base', "
               "prompt_template => '{{content}}')")
    from .conftest import make_long_table
    make_long_table(db)
    row = db.execute("SELECT tokens, token_count_method, estimated_usd FROM llm_finetune('m', "
                     "$$SELECT * FROM demo_data$$, dry_run => true)").fetchone()
    rows = db.execute("SELECT chat_id, role, content FROM demo_data ORDER BY chat_id, "
                      "message_id").fetchall()
    by_chat = {}
    for chat, role, content in rows:
        by_chat.setdefault(chat, []).append({"role": role, "content": content})
    assert row[0] == sum(count_words(m) for m in by_chat.values())
    assert row[1] == "tokenizer" and float(row[2]) == 0


def test_wait_is_cancellable_by_pg_cancel_backend(db, hosted):
    hosted.script("hang")
    db.execute(START, ('{}',))
    pid = db.info.backend_pid
    import threading

    def cancel_once_waiting():
        with psycopg.connect(db.info.dsn, autocommit=True) as other:
            wait_for_query(other, pid, "llm_wait")
            other.execute("SELECT pg_cancel_backend(%s)", (pid,))

    threading.Thread(target=cancel_once_waiting, daemon=True).start()
    # The job hangs and llm_wait has no timeout of its own: only the cancel ends it.
    with pytest.raises(psycopg.errors.QueryCanceled, match="user request"):
        db.execute("SELECT * FROM llm_wait('ft_sql')")
    # Nothing half-written: the job is still unfinished and refresh can pick it up.
    assert db.execute("SELECT llm_refresh()").fetchone()[0]["running"] == [1]


def test_backend_imports_no_heavy_libraries(db, hosted):
    hosted.script("succeed", steps=1, step_seconds=0.02)
    db.execute(START, ('{}',))
    db.execute("SELECT * FROM llm_wait('ft_sql')")
    db.execute("SELECT llm_refresh()")
    db.execute("""CREATE FUNCTION loaded_heavy() RETURNS text[] LANGUAGE plpython3u AS $$
        import sys
        heavy = ("torch", "transformers", "llama_cpp", "matplotlib", "tqdm", "numpy")
        return sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        $$""")
    assert db.execute("SELECT loaded_heavy()").fetchone()[0] == []


def test_cancel_from_another_session_ends_a_running_wait(db, hosted):
    """llm_wait holds no lock while it polls: llm_cancel_job elsewhere neither blocks nor is
    lost, and the waiter returns the cancelled row."""
    import threading

    hosted.script("hang")
    job_id = db.execute(START, ('{}',)).fetchone()[0]
    result = {}

    def waiter():
        with psycopg.connect(db.info.dsn, autocommit=True) as conn:
            result["row"] = job_row(conn, "SELECT * FROM llm_wait(%s::bigint)", (job_id,))

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_for_query(db, None, "llm_wait")
    # A lock the waiter held would make the cancel fail here instead of waiting for it.
    db.execute("SET lock_timeout = '5s'")
    assert job_row(db, "SELECT * FROM llm_cancel_job(%s)", (job_id,))["status"] == "cancelled"
    db.execute("RESET lock_timeout")
    thread.join(timeout=15)
    assert result["row"]["status"] == "cancelled" and result["row"]["id"] == job_id


def test_job_times(db, hosted):
    hosted.script("succeed", steps=2, step_seconds=0.05)
    db.execute(START, ('{}',))
    job = job_row(db, "SELECT * FROM llm_wait('ft_sql')")
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
