"""Shared fixtures: a real PostgreSQL 15 cluster and a fresh database per test.

PostgreSQL refuses to run as root, and the pyenv interpreter lives in root's home, so the
cluster runs as the `postgres` OS user (scripts/pgcluster.sh) while pytest stays root.
Each test gets its own database cloned from a template that already has the extension.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "scripts" / "pgcluster.sh"
# Test-only backend modules (pg_llm.testing.*, e.g. the EchoTable wrapper): never installed;
# the test cluster's plpython gets them through PYTHONPATH, this process through sys.path.
BACKEND_TEST_PATH = ROOT / "tests" / "backend_python"
sys.path.append(str(BACKEND_TEST_PATH))
import pg_llm  # noqa: E402  (its package path was computed at import: extend it here)
pg_llm.__path__ = __import__("pkgutil").extend_path(pg_llm.__path__, "pg_llm")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PG_PORT = int(os.environ.get("PG_LLM_TEST_PORT") or _free_port())
PG_DIR = Path(os.environ.get("PG_LLM_TEST_DIR") or tempfile.mkdtemp(prefix="pg_llm-test-"))


@pytest.fixture(scope="session", autouse=True)
def pg_cluster():
    """Start the private cluster once per session and always stop it."""
    os.chmod(PG_DIR, 0o755)
    subprocess.run([str(CLUSTER_SCRIPT), "start", str(PG_DIR), str(PG_PORT)], check=True,
                   env={**os.environ, "PG_LLM_BACKEND_PYTHONPATH": str(BACKEND_TEST_PATH)})
    try:
        yield {"host": "127.0.0.1", "port": PG_PORT, "user": "postgres", "dir": PG_DIR}
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", str(PG_DIR)], check=False)


def _install_extension(host, port, user, dbname, password=None, **_):
    with psycopg.connect(host=host, port=port, user=user, dbname=dbname, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_llm CASCADE")


postgresql_noproc = factories.postgresql_noproc(
    host="127.0.0.1", port=PG_PORT, user="postgres", dbname="pg_llm_template",
    load=[_install_extension],
)
postgresql = factories.postgresql("postgresql_noproc", dbname="pg_llm_test")


@pytest.fixture
def db(postgresql):
    """An autocommit psycopg connection to a fresh database with pg_llm installed."""
    postgresql.autocommit = True
    return postgresql


@pytest.fixture
def dsn(db) -> str:
    info = db.info
    return f"host={info.host} port={info.port} user=postgres dbname={info.dbname}"


MULTICORN_MISSING = ("Multicorn2 is not installed for this PostgreSQL: build it with "
                     "`make multicorn2 MULTICORN2_SRC=<tarball or tree>` (make test does when "
                     "../shared/vendor/multicorn2-3.2.tar.gz is there); docs/multicorn.md")


@pytest.fixture(params=["c", "multicorn"])
def bridge(request, db) -> str:
    """The foreign-data wrapper an engine is created on: pg_llm's C bridge ('pg_llm') or
    Multicorn2 ('multicorn', skipped when it is not installed). Model-table tests that take
    this fixture run once per bridge: both must behave the same (docs/multicorn.md)."""
    if request.param == "c":
        return "pg_llm"
    if not db.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'multicorn'").fetchone():
        pytest.skip(MULTICORN_MISSING)
    db.execute("CREATE EXTENSION IF NOT EXISTS multicorn")
    return "multicorn"


def run_psql(dsn: str, sql: str, *, check: bool = True, env=None) -> subprocess.CompletedProcess:
    """Run SQL through the real psql client, the way a user types it."""
    return subprocess.run(
        ["psql", dsn, "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
        capture_output=True, text=True, check=check, timeout=120, env=env,
    )
