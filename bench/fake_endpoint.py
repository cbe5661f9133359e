"""Set-up shared by the benchmarks that scan model tables against tests/fake_openai.py: the
endpoint in its own process, a private cluster's fresh database with the extension, and the
engine `bench` on the endpoint."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

from private_cluster import bench_database

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-model"


def start_endpoint(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_openai.py"),
                             "--models", MODEL, *args], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


@contextlib.contextmanager
def bench_engine(database: str, *endpoint_args: str, engine_options: dict | None = None):
    """Yields (connection, endpoint URL) with engine `bench` created on the endpoint."""
    endpoint, url = start_endpoint(*endpoint_args)
    try:
        with bench_database(database) as conn:
            conn.execute("SET client_min_messages = warning")
            conn.execute("CREATE EXTENSION pg_llm CASCADE")
            conn.execute("SELECT llm_create_engine('bench', base_url => %s, api_key => 'sk-bench', "
                         "options => %s::jsonb)", (url, json.dumps(engine_options or {})))
            yield conn, url
    finally:
        endpoint.kill()
