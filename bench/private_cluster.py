"""A throwaway PostgreSQL cluster and database for a benchmark, always stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

CLUSTER = Path(__file__).resolve().parent.parent / "scripts" / "pgcluster.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def bench_database(name: str, *, preload: bool = False):
    """Start a private cluster (as the postgres OS user), create `name`, yield a connection.
    With ``preload``, pg_llm is in shared_preload_libraries (Python starts in the postmaster)."""
    pg_dir = tempfile.mkdtemp(prefix=f"pg_llm-{name}-")
    os.chmod(pg_dir, 0o755)
    port = free_port()
    # tests/backend_python holds the test-only EchoTable wrapper some benchmarks scan.
    test_path = CLUSTER.parent.parent / "tests" / "backend_python"
    env = {**os.environ, "PG_LLM_BACKEND_PYTHONPATH": str(test_path)}
    subprocess.run([str(CLUSTER), "start", pg_dir, str(port)], check=True, env=env)
    if preload:
        subprocess.run([str(CLUSTER), "stop", pg_dir], check=True)
        with open(os.path.join(pg_dir, "data", "postgresql.conf"), "a") as conf:
            conf.write("shared_preload_libraries = 'pg_cron,pg_llm'\n")
        subprocess.run([str(CLUSTER), "start", pg_dir, str(port)], check=True, env=env)
    try:
        dsn = f"host=127.0.0.1 port={port} user=postgres"
        with psycopg.connect(f"{dsn} dbname=postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        with psycopg.connect(f"{dsn} dbname={name}", autocommit=True) as conn:
            yield conn
    finally:
        subprocess.run([str(CLUSTER), "stop", pg_dir], check=False)


def create_echo_table(conn) -> None:
    """pg_llm and the model table echo_t on the test-only EchoTable wrapper (no model, no HTTP)."""
    conn.execute("SET client_min_messages = warning")
    conn.execute("CREATE EXTENSION pg_llm CASCADE")
    conn.execute("CREATE SERVER echo FOREIGN DATA WRAPPER pg_llm "
                 "OPTIONS (wrapper 'pg_llm.testing.echo.EchoTable')")
    conn.execute("CREATE FOREIGN TABLE echo_t (content text, answer text) SERVER echo "
                 "OPTIONS (prompt_columns 'content')")
