"""Reads of the catalog for the `pg-llm` shell commands (`jobs`, `plot job`, `plot evaluation`).

They run in the client over a psycopg connection (`%s` parameters), not in the backend over
plpy like the other catalog modules, so scripts/install-backend-python.sh leaves this module
out of the backend's copy.
"""

from __future__ import annotations

# Each job with its latest training step (the progress a shell shows).
_JOBS = """
SELECT j.id, j.model, j.engine, j.status, j.provider_job_id, j.n_conversations,
       j.estimated_tokens, j.trained_tokens, j.result_version, j.error, j.created_at,
       e.step, e.total_steps, e.loss, e.valid_loss
FROM llm.jobs j
LEFT JOIN LATERAL (SELECT step, total_steps, loss, valid_loss FROM llm.job_events
                   WHERE job_id = j.id AND step IS NOT NULL
                   ORDER BY step DESC, id DESC LIMIT 1) e ON true
WHERE NOT %(unfinished_only)s OR j.status IN ('pending', 'queued', 'running')
ORDER BY j.id DESC LIMIT %(limit)s
"""


def _dicts(cursor) -> list[dict]:
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def jobs(conn, *, unfinished_only=False, limit=50) -> list[dict]:
    """The newest jobs first, each with its latest step, total steps and losses."""
    return _dicts(conn.execute(_JOBS, {"unfinished_only": unfinished_only, "limit": limit}))


def job(conn, job_id: int) -> dict | None:
    """status, model, result_version, error and the last step recorded; None if no such job."""
    rows = _dicts(conn.execute(
        "SELECT j.model, j.status, j.result_version, j.error, "
        "(SELECT max(e.step) FROM llm.job_events e WHERE e.job_id = j.id) AS last_step "
        "FROM llm.jobs j WHERE j.id = %s", (job_id,)))
    return rows[0] if rows else None


def job_losses(conn, job_id: int) -> list[tuple]:
    """(step, loss, valid_loss) of every step event, in step order."""
    return conn.execute("SELECT step, loss, valid_loss FROM llm.job_events WHERE job_id = %s "
                        "AND step IS NOT NULL ORDER BY step, id", (job_id,)).fetchall()


def latest_evaluation_run(conn) -> int | None:
    return conn.execute("SELECT max(run_id) FROM llm.evaluations").fetchone()[0]


def evaluation_run_of(conn, evaluation_id: int) -> int | None:
    """The run an evaluation (one model's row) belongs to; None if there is no such row."""
    row = conn.execute("SELECT run_id FROM llm.evaluations WHERE id = %s",
                       (evaluation_id,)).fetchone()
    return None if row is None else row[0]


def evaluation_run(conn, run_id: int) -> list[dict]:
    """The rows of one llm_evaluate call, one per model entry, in the order given."""
    return _dicts(conn.execute("""
        SELECT id, name, entry, model, version, n, n_executable, execution_match, exact_match,
               succinct_rate, avg_completion_tokens, avg_latency_ms
        FROM llm.evaluations WHERE run_id = %s ORDER BY id""", (run_id,)))
