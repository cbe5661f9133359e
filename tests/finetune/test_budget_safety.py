"""Budgets cannot be bypassed (issue 9, point 5), against a real PostgreSQL and the fake
provider, with real concurrent sessions:

- a fine-tune whose transaction rolls back (or errors) leaves nothing at the provider: the
  job is handed over only by a later transaction;
- two concurrent fine-tunes over a budget that fits one: exactly one passes, the other gets
  53400 with the estimate in DETAIL and a hint;
- a llm_wait cancelled after it handed the job over does not make the next one train twice.

Each runs as the superuser of the test cluster and as an ordinary role.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from .helpers import job_row, wait_until_provider

START = "SELECT * FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$)"
ROLE = "ft_analyst"


def _grant_finetune(db, role: str) -> None:
    """What an ordinary role needs to queue fine-tunes (the extension's own admin role
    when it has one)."""
    db.execute(f"DROP ROLE IF EXISTS {role}")
    db.execute(f"CREATE ROLE {role} LOGIN")
    # the engine's key is spent only by roles its owner granted USAGE (docs/security.md)
    db.execute(f"GRANT USAGE ON FOREIGN SERVER hosted TO {role}")
    if db.execute("SELECT 1 FROM pg_roles WHERE rolname = 'llm_admin'").fetchone():
        db.execute(f"GRANT llm_admin TO {role}")
    else:
        db.execute(f"GRANT SELECT, INSERT, UPDATE ON llm.jobs, llm.job_files, llm.ledger, "
                   f"llm.budgets TO {role}")
        db.execute(f"GRANT SELECT, DELETE ON llm.job_files TO {role}")
        db.execute(f"GRANT SELECT ON llm.budget_status, llm.job_events TO {role}")
        db.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA llm TO {role}")
        db.execute(f"GRANT USAGE ON FOREIGN SERVER hosted TO {role}")
    db.execute(f"GRANT SELECT ON demo_data TO {role}")


@pytest.fixture(params=["superuser", "ordinary role"])
def connect(request, db, hosted):
    """A factory of new autocommit sessions, as the superuser or as an ordinary role."""
    dsn = db.info.dsn
    if request.param == "ordinary role":
        _grant_finetune(db, ROLE)
        dsn = psycopg.conninfo.make_conninfo(dsn, user=ROLE)
    opened = []

    def new_session():
        conn = psycopg.connect(dsn, autocommit=True)
        opened.append(conn)
        if request.param == "ordinary role":
            assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = "
                                    "current_user").fetchone()[0]
        return conn

    yield new_session
    for conn in opened:
        conn.close()


def test_rolled_back_finetune_leaves_nothing_at_the_provider(db, hosted, connect):
    conn = connect()
    with pytest.raises(psycopg.errors.DivisionByZero):
        with conn.transaction():
            job_id = conn.execute(START).fetchone()[0]
            assert conn.execute("SELECT status, provider_job_id FROM llm.jobs WHERE id = %s",
                                (job_id,)).fetchone() == ("pending", None)
            # Not even in its own transaction: the reservation is not committed yet.
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as exc:
                with conn.transaction():
                    conn.execute("SELECT * FROM llm_wait(%s::bigint)", (job_id,))
            assert "COMMIT" in exc.value.diag.message_hint
            summary = conn.execute("SELECT llm_refresh()").fetchone()[0]
            assert summary["submitted"] == []
            conn.execute("SELECT 1/0")              # the caller's transaction fails
    assert hosted.requests == []                     # no upload, no job, nothing
    assert hosted.jobs == {} and hosted.files == {}
    # Nothing left for a later refresh to hand over, no spend booked.
    assert db.execute("SELECT llm_refresh()").fetchone()[0]["polled"] == 0
    assert db.execute("SELECT count(*) FROM llm.jobs").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM llm.ledger").fetchone()[0] == 0
    assert hosted.requests == []


def test_committed_finetune_is_handed_over_once(db, hosted, connect):
    hosted.script("succeed", steps=2, step_seconds=0.02)
    conn = connect()
    job_id = conn.execute(START).fetchone()[0]
    assert hosted.requests == []                     # handed over after commit, not before
    summary = db.execute("SELECT llm_refresh()").fetchone()[0]
    assert summary["submitted"] == [job_id]
    assert ("POST", "/v1/fine_tuning/jobs") in hosted.requests
    job = job_row(db, "SELECT * FROM llm_wait(%s::bigint)", (job_id,))
    assert job["status"] == "succeeded" and len(hosted.jobs) == 1
    assert db.execute("SELECT count(*) FROM llm.job_files").fetchone()[0] == 0


def _blocked_on_a_lock(db, pid: int) -> bool:
    return db.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                      (pid,)).fetchone()[0] is True


def test_two_concurrent_finetunes_cannot_both_pass_one_budget(db, hosted, connect):
    estimate = db.execute("SELECT estimated_trained_tokens FROM llm_finetune('ft_sql', "
                          "$$SELECT * FROM demo_data$$, dry_run => true)").fetchone()[0]
    db.execute("SELECT llm_set_budget('ft_sql', max_tokens => %s)", (estimate * 3 // 2,))
    first, second = connect(), connect()
    results = {}

    def run_second():
        try:
            results["second"] = second.execute(START).fetchone()
        except psycopg.Error as exc:
            results["second"] = exc

    with first.transaction():
        first_row = first.execute(START).fetchone()
        # The second starts while the first holds its reservation, uncommitted.
        thread = threading.Thread(target=run_second)
        thread.start()
        deadline = time.monotonic() + 30
        while not _blocked_on_a_lock(db, second.info.backend_pid):
            assert thread.is_alive(), results
            assert time.monotonic() < deadline, "the second fine-tune never waited"
            time.sleep(0.05)
    thread.join(timeout=30)

    assert first_row[1] == "pending"
    err = results["second"]
    assert isinstance(err, psycopg.errors.ConfigurationLimitExceeded), err
    assert err.diag.sqlstate == "53400"
    assert f"estimated {estimate} trained tokens > {estimate // 2} remaining" in \
        err.diag.message_detail
    assert "llm_set_budget" in err.diag.message_hint
    assert db.execute("SELECT count(*) FROM llm.jobs").fetchone()[0] == 1
    assert db.execute("SELECT spent_tokens FROM llm.budget_status").fetchone()[0] == estimate


def test_racing_finetunes_exactly_one_passes(db, hosted, connect):
    """Both start at the same moment (no ordering forced): still exactly one passes."""
    estimate = db.execute("SELECT estimated_trained_tokens FROM llm_finetune('ft_sql', "
                          "$$SELECT * FROM demo_data$$, dry_run => true)").fetchone()[0]
    db.execute("SELECT llm_set_budget('hosted', max_tokens => %s)", (estimate * 3 // 2,))
    sessions = [connect() for _ in range(4)]
    barrier = threading.Barrier(len(sessions))
    outcomes = []

    def run(conn):
        barrier.wait()
        try:
            outcomes.append(conn.execute(START).fetchone()[1])
        except psycopg.errors.ConfigurationLimitExceeded as exc:
            outcomes.append(exc.diag.sqlstate)

    threads = [threading.Thread(target=run, args=(c,)) for c in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["53400", "53400", "53400", "pending"]
    assert db.execute("SELECT count(*) FROM llm.jobs").fetchone()[0] == 1


def test_repeatable_read_finetunes_fail_with_40001_not_over_budget(db, hosted, connect):
    """A snapshot taken before the first committed cannot see its spend: the second must
    retry (40001) instead of passing."""
    estimate = db.execute("SELECT estimated_trained_tokens FROM llm_finetune('ft_sql', "
                          "$$SELECT * FROM demo_data$$, dry_run => true)").fetchone()[0]
    db.execute("SELECT llm_set_budget('ft_sql', max_tokens => %s)", (estimate * 3 // 2,))
    first, second = connect(), connect()
    results = {}

    def run_second():
        try:
            results["second"] = second.execute(START).fetchone()
        except psycopg.Error as exc:
            results["second"] = exc

    second.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    second.execute("SELECT count(*) FROM llm.ledger")       # the snapshot starts here
    with first.transaction():
        first.execute(START)
        thread = threading.Thread(target=run_second)
        thread.start()
        deadline = time.monotonic() + 30
        while not _blocked_on_a_lock(db, second.info.backend_pid):
            assert thread.is_alive(), results
            assert time.monotonic() < deadline, "the second fine-tune never waited"
            time.sleep(0.05)
    thread.join(timeout=30)
    second.execute("ROLLBACK")
    assert isinstance(results["second"], psycopg.errors.SerializationFailure), results
    assert db.execute("SELECT count(*) FROM llm.jobs").fetchone()[0] == 1


def test_cancelled_wait_after_hand_over_does_not_train_twice(db, hosted):
    """The wait that handed the job over is cancelled (while it polls, or while the create
    request is in flight): the provider has the job, the catalog does not know it yet."""
    hosted.script("hang")
    job_id = db.execute(START).fetchone()[0]
    pid = db.info.backend_pid

    def cancel_once_handed_over():
        wait_until_provider(hosted, "running", timeout_s=120)
        with psycopg.connect(db.info.dsn, autocommit=True) as other:
            other.execute("SELECT pg_cancel_backend(%s)", (pid,))

    thread = threading.Thread(target=cancel_once_handed_over, daemon=True)
    thread.start()
    with pytest.raises(psycopg.errors.QueryCanceled):
        db.execute("SELECT * FROM llm_wait(%s::bigint)", (job_id,))
    thread.join(timeout=30)
    assert len(hosted.jobs) == 1                   # the provider got it, our record rolled back
    assert db.execute("SELECT status FROM llm.jobs WHERE id = %s", (job_id,)).fetchone()[0] \
        == "pending"
    job = job_row(db, "SELECT * FROM llm_wait(%s::bigint, timeout_s => 0.2)", (job_id,))
    assert job["status"] == "running" and len(hosted.jobs) == 1   # adopted, not re-created
    assert job["provider_job_id"] == next(iter(hosted.jobs))
    assert len(hosted.files) == 1


def test_cancel_a_job_that_was_never_handed_over(db, hosted):
    job_id = db.execute(START).fetchone()[0]
    job = job_row(db, "SELECT * FROM llm_cancel_job(%s)", (job_id,))
    assert job["status"] == "cancelled" and job["provider_job_id"] is None
    assert hosted.requests == []
    assert db.execute("SELECT sum(tokens) FROM llm.ledger").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM llm.job_files").fetchone()[0] == 0
    assert db.execute("SELECT llm_refresh()").fetchone()[0]["polled"] == 0


def test_an_ordinary_admin_fine_tunes_end_to_end(db, provider):
    """Queue, hand-over, events, the new version and settlement, all as a non-superuser
    granted llm_admin, on an engine it created (so its key is its own)."""
    from .conftest import API_KEY, BASE, make_long_table

    if not db.execute("SELECT 1 FROM pg_roles WHERE rolname = 'llm_admin'").fetchone():
        pytest.skip("this build has no llm_admin role")
    db.execute(f"DROP ROLE IF EXISTS {ROLE}")
    db.execute(f"CREATE ROLE {ROLE} LOGIN IN ROLE llm_admin")
    db.execute(f"GRANT CREATE ON SCHEMA public TO {ROLE}")
    provider.script("succeed", steps=2, step_seconds=0.02)
    with psycopg.connect(psycopg.conninfo.make_conninfo(db.info.dsn, user=ROLE),
                         autocommit=True) as conn:
        conn.execute("SELECT llm_create_engine('mine', base_url => %s, api_key => %s, "
                     "price_training => 8)", (provider.base_url, API_KEY))
        conn.execute("SELECT llm_create_model('ft_sql', engine => 'mine', model_name => %s, "
                     "prompt_template => '{{content}}', predict => 'answer')", (BASE,))
        make_long_table(conn)
        conn.execute("SELECT llm_set_budget('ft_sql', max_usd => 1)")
        job_id = conn.execute(START).fetchone()[0]
        job = job_row(conn, "SELECT * FROM llm_wait(%s::bigint)", (job_id,))
        assert job["status"] == "succeeded" and job["result_version"] == 2, job
        assert conn.execute("SELECT answer FROM ft_sql WHERE content = 'hi'").fetchone()[0] \
            .startswith("[ft:fake-base:ft-sql:")
        spent = conn.execute("SELECT spent_tokens FROM llm.budget_status").fetchone()[0]
        assert spent == job["trained_tokens"] and len(provider.jobs) == 1
