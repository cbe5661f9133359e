"""Helpers shared by the local-engine tests."""

from __future__ import annotations

import json
import time

from openai import OpenAI


def jsonl(rows) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def sql_rows(n: int) -> list[dict]:
    return [{"messages": [
        {"role": "system", "content": "Answer with one SQL query and nothing else."},
        {"role": "user", "content": f"CREATE TABLE t{i} (id INT, name TEXT)\n-- How many rows?"},
        {"role": "assistant", "content": f"SELECT COUNT(*) FROM t{i}"}]} for i in range(n)]


def wait_for_job(client: OpenAI, job_id: str, statuses, timeout_s: float = 120):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout_s}s")


def wait_for_metrics(client: OpenAI, job_id: str, timeout_s: float = 120) -> None:
    """Until the job has reported at least one training step."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if any(e.type == "metrics" for e in client.fine_tuning.jobs.list_events(job_id).data):
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} reported no step in {timeout_s}s")


def wait_until(predicate, timeout_s: float = 10) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()
