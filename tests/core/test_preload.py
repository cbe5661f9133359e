"""pg_llm in shared_preload_libraries: Python starts in the postmaster with pg_llm imported,
fork-safely (no thread, no socket before fork), and every backend forked from it answers,
runs worker threads and is cancellable, as an ordinary role too."""

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import CLUSTER_SCRIPT, _free_port
from fake_openai import FakeOpenAI

KEY = "sk-preload-test-0123456789"


@contextlib.contextmanager
def private_cluster(*conf_lines: str):
    """A private cluster with these postgresql.conf lines (the session cluster has none)."""
    pg_dir = Path(tempfile.mkdtemp(prefix="pg_llm-preload-"))
    os.chmod(pg_dir, 0o755)
    port = _free_port()
    subprocess.run([str(CLUSTER_SCRIPT), "start", str(pg_dir), str(port)], check=True)
    try:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", str(pg_dir)], check=True)
        with open(pg_dir / "data" / "postgresql.conf", "a") as conf:
            conf.write("".join(line + "\n" for line in conf_lines))
        subprocess.run([str(CLUSTER_SCRIPT), "start", str(pg_dir), str(port)], check=True)
        dsn = f"host=127.0.0.1 port={port} user=postgres"
        with psycopg.connect(f"{dsn} dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE preload")
        yield {"dsn": f"{dsn} dbname=preload", "dir": pg_dir}
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", str(pg_dir)], check=False)
        shutil.rmtree(pg_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def preloaded():
    with private_cluster("shared_preload_libraries = 'pg_cron,pg_llm'") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(models=["m1"], api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def model(preloaded, fake):
    with psycopg.connect(preloaded["dsn"], autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION pg_llm CASCADE")
        conn.execute("SELECT llm_create_engine('eng', base_url => %s, api_key => %s)",
                     (fake.url, KEY))
        conn.execute("SELECT llm_create_model('qa', engine => 'eng', model_name => 'm1', "
                     "prompt_template => '{{content}}')")
        conn.execute("CREATE ROLE preload_user LOGIN")
        conn.execute("GRANT USAGE ON FOREIGN SERVER eng TO preload_user")
        conn.execute("GRANT SELECT ON qa TO preload_user")
    return "qa"


def postmaster_pid(preloaded) -> int:
    return int((preloaded["dir"] / "data" / "postmaster.pid").read_text().split()[0])


def test_the_postmaster_started_python_and_imported_pg_llm(preloaded):
    log = (preloaded["dir"] / "server.log").read_text()
    assert "pg_llm: Python 3." in log and "pg_llm imported in the postmaster" in log
    assert "could not import the pg_llm modules" not in log


def engine_sockets(pid: int, port: int) -> list[str]:
    """TCP sockets of process ``pid`` connected to ``port`` (from /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return [line for line in lines
            if line.split()[9] in inodes and int(line.split()[2].split(":")[1], 16) == port]


def test_the_postmaster_has_no_thread_and_no_engine_socket(preloaded, model, fake):
    with psycopg.connect(preloaded["dsn"], autocommit=True) as conn:
        conn.execute("SELECT answer FROM qa WHERE content = ANY('{a,b,c}')").fetchall()
        pid = postmaster_pid(preloaded)
        assert len(os.listdir(f"/proc/{pid}/task")) == 1
        assert engine_sockets(pid, fake.port) == []
        # ... while the backend that asked holds its kept-alive connections
        assert engine_sockets(conn.info.backend_pid, fake.port)


def test_new_connections_answer_as_superuser_and_as_an_ordinary_role(preloaded, model):
    for user in ("postgres", "preload_user"):
        for i in range(3):  # each connection is a fresh fork of the postmaster
            with psycopg.connect(preloaded["dsn"].replace("user=postgres", f"user={user}"),
                                 autocommit=True) as conn:
                assert conn.execute("SELECT answer FROM qa WHERE content = %s",
                                    (f"{user} {i}",)).fetchone() == (f"echo:{user} {i}",)


def test_worker_threads_run_in_a_forked_backend(preloaded, model):
    prompts = [f"p{i}" for i in range(12)]
    with psycopg.connect(preloaded["dsn"].replace("user=postgres", "user=preload_user"),
                         autocommit=True) as conn:
        rows = conn.execute("SELECT content, answer FROM qa WHERE content = ANY(%s) "
                            "ORDER BY content", (prompts,)).fetchall()
    assert rows == sorted((p, f"echo:{p}") for p in prompts)


def test_a_cancel_ends_a_hung_scan_in_a_forked_backend(preloaded, model, fake):
    fake.hang()
    outcome = {}
    try:
        with psycopg.connect(preloaded["dsn"], autocommit=True) as victim, \
                psycopg.connect(preloaded["dsn"], autocommit=True) as admin:
            pid = victim.info.backend_pid

            def run():
                try:
                    victim.execute("SELECT answer FROM qa WHERE content = ANY(%s)",
                                   ([f"h{i}" for i in range(4)],))
                except psycopg.Error as exc:
                    outcome["error"] = exc

            worker = threading.Thread(target=run)
            worker.start()
            deadline = time.monotonic() + 10
            while fake.in_flight < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
            worker.join(10)
            assert isinstance(outcome.get("error"), psycopg.errors.QueryCanceled)
            fake.release()
            assert victim.execute("SELECT answer FROM qa WHERE content = 'after'").fetchone() == (
                "echo:after",)
    finally:
        fake.release()


def test_backends_forked_from_the_preloaded_postmaster_exit_cleanly(preloaded, model):
    """Backends end with _exit() after proc_exit() (ext/preload.c): the postmaster must
    still see each exit status as PostgreSQL gave it, or it would restart the cluster."""
    dsn = preloaded["dsn"]
    log = preloaded["dir"] / "server.log"
    start = log.stat().st_size
    for i in range(3):  # normal ends, after a model query and after none
        with psycopg.connect(dsn, autocommit=True) as conn:
            if i:
                conn.execute("SELECT answer FROM qa WHERE content = %s", (f"exit {i}",))
    with pytest.raises(psycopg.OperationalError):  # FATAL at start-up: proc_exit(1)
        psycopg.connect(dsn.replace("dbname=preload", "dbname=no_such_db"))
    with psycopg.connect(dsn, autocommit=True) as admin, \
            psycopg.connect(dsn, autocommit=True) as victim:
        victim.execute("SELECT answer FROM qa WHERE content = 'terminated'")
        admin.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
        with psycopg.connect(dsn, autocommit=True) as after:
            assert after.execute("SELECT answer FROM qa WHERE content = 'after'").fetchone() == (
                "echo:after",)
    time.sleep(0.5)  # the postmaster logs an abnormal exit when it reaps the child
    with open(log, "rb") as f:
        f.seek(start)
        written = f.read().decode(errors="replace")
    for sign in ("terminated by signal", "exited with exit code", "was terminated by",
                 "terminating any other active server processes", "reinitializing"):
        assert sign not in written, written


def test_preload_python_off_leaves_python_to_the_first_call(fake):
    with private_cluster("shared_preload_libraries = 'pg_cron,pg_llm'",
                         "pg_llm.preload_python = off") as cluster:
        pid = int((cluster["dir"] / "data" / "postmaster.pid").read_text().split()[0])
        assert "python" not in Path(f"/proc/{pid}/maps").read_text()
        with psycopg.connect(cluster["dsn"], autocommit=True) as conn:
            conn.execute("SET client_min_messages = warning")
            conn.execute("CREATE EXTENSION pg_llm CASCADE")
            conn.execute("SELECT llm_create_engine('eng', base_url => %s, api_key => %s)",
                         (fake.url, KEY))
            conn.execute("SELECT llm_create_model('qa', engine => 'eng', model_name => 'm1', "
                         "prompt_template => '{{content}}')")
            assert conn.execute("SELECT answer FROM qa WHERE content = 'lazy'").fetchone() == (
                "echo:lazy",)
        assert "pg_llm imported in the postmaster" not in (cluster["dir"] / "server.log").read_text()
