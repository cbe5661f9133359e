"""Small helpers shared by the fine-tuning tests."""

from __future__ import annotations

import time


def job_row(db, sql: str, params=None) -> dict:
    """Run a statement returning llm.jobs rows; the first row as a dict."""
    cur = db.execute(sql, params)
    row = cur.fetchone()
    return dict(zip([d.name for d in cur.description], row))


def wait_until_provider(provider, status: str, timeout_s: float = 10) -> None:
    """Wait until every job the fake provider knows has reached `status`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = [provider._status(j, time.time())[0] for j in provider.jobs.values()]
        if states and all(s == status for s in states):
            return
        time.sleep(0.02)
    raise AssertionError(f"provider jobs did not reach {status}: {states}")


def wait_for_query(conn, pid: int | None, text: str, timeout_s: float = 30) -> None:
    """Wait until backend `pid` (None: any other backend) is running a statement containing
    `text`: an event to act on, instead of sleeping and hoping it has started."""
    sql = ("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE state = 'active' "
           "AND pid <> pg_backend_pid() AND (%s::int IS NULL OR pid = %s) "
           "AND strpos(query, %s) > 0)")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if conn.execute(sql, (pid, pid, text)).fetchone()[0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no backend ran {text!r} within {timeout_s} s")
