"""The two processes the demo starts and always stops: a private PostgreSQL cluster (run as
the `postgres` OS user by scripts/pgcluster.sh) and the local engine (`pg-llm serve`)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = ROOT / "scripts" / "pgcluster.sh"

# Steady LoRA step times need glibc to keep freed memory (measured: 6 s -> 38 s swings
# without these; see shared/design/local-engine.md).
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000",
              "MALLOC_TOP_PAD_": "1000000000"}


class DemoError(RuntimeError):
    """A set-up step failed; the message says what to look at."""


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_can_use(path: Path) -> bool:
    """Can the `postgres` OS user reach `path`'s parent (every directory on the way must be
    traversable)? Only root can switch users to check; others are asked to use sudo anyway."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return True
    probe = path if path.exists() else path.parent
    while not probe.exists():
        probe = probe.parent
    return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(probe)],
                          capture_output=True).returncode == 0


@dataclass
class Cluster:
    dir: Path
    port: int

    @classmethod
    def at(cls, dir: Path, port: int) -> "Cluster":
        """An existing cluster keeps the port written into its postgresql.conf at initdb."""
        conf = dir / "data" / "postgresql.conf"
        if conf.is_file():
            ports = re.findall(r"^port = (\d+)", conf.read_text(), flags=re.M)
            if ports:
                port = int(ports[-1])
        return cls(dir, port)

    @property
    def running(self) -> bool:
        return (self.dir / "data" / "postmaster.pid").is_file()

    def start(self) -> None:
        if not self.running and not port_is_free(self.port):
            raise DemoError(f"port {self.port} is taken by another program; the demo cluster in "
                            f"{self.dir} is configured for it (free it, or delete {self.dir} "
                            f"and pass --port N)")
        self.dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([str(CLUSTER_SCRIPT), "start", str(self.dir), str(self.port)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            log = self.dir / "server.log"
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise DemoError(f"PostgreSQL did not start: {proc.stderr.strip()}\n{tail}")

    def stop(self) -> None:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", str(self.dir)], capture_output=True)

    def env(self, dbname: str) -> dict:
        return {"PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": "postgres",
                "PGDATABASE": dbname}

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user=postgres"


@dataclass
class LocalEngineProcess:
    """The local engine (`pg-llm serve`) as a child process in its own session, so stop()
    ends all of it. (Not a pg_llm engine, the foreign server that points at it.)"""
    data_dir: Path
    port: int
    extra_args: list = field(default_factory=list)
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout_s: float = 180) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_path or self.data_dir.parent / "engine.log"
        cmd = [sys.executable, "-m", "pg_llm.cli", "serve", "--port", str(self.port),
               "--data-dir", str(self.data_dir), *self.extra_args]
        env = {**os.environ, **MALLOC_ENV, "PYTHONPATH": str(ROOT)}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(f"pg-llm serve exited with code {self.process.returncode}:\n"
                                f"{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.3)
        self.stop()
        raise DemoError(f"pg-llm serve did not answer /health within {timeout_s:.0f} s:\n"
                        f"{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_path and self.log_path.is_file():
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout_s: float = 20) -> None:
        if not self.process or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
