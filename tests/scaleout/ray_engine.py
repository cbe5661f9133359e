"""`pg-llm serve --ray local` in its own process (the Ray venv, `make ray-venv`): a private
one-node Ray cluster running the local engine as a Ray Serve application. Used by the Ray
test and bench/ray_replicas.py."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
RAY_PYTHON = Path(os.environ.get("PG_LLM_RAY_PYTHON") or ROOT / ".venv-ray" / "bin" / "python")
START_TIMEOUT_S = 600


def ray_available() -> bool:
    return RAY_PYTHON.exists() and subprocess.run(
        [str(RAY_PYTHON), "-c", "import ray.serve"], capture_output=True).returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayEngine:
    """The driver process; `gcs` is the cluster's address once it answers."""

    def __init__(self, data_dir: Path, args: list[str], *, replicas: int, cpus: int = 2,
                 log_dir: Path | None = None):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = (log_dir or data_dir.parent) / f"ray-engine-{self.port}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PG_LLM_RAY_CPUS": str(cpus),
               "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("PG_LLM_SERVE_API_KEY", None)
        # its own session: stop() signals the driver, which shuts its cluster down
        self.proc = subprocess.Popen(
            [str(RAY_PYTHON), "-m", "pg_llm.serve", "--ray", "local", "--replicas",
             str(replicas), "--port", str(self.port), "--data-dir", str(data_dir), *args],
            env=env, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.gcs = self._wait_ready()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def _wait_ready(self) -> str:
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray engine exited ({self.proc.returncode}): {self.log()}")
            found = re.search(r"pg_llm on Ray: .* cluster (\S+)\)", self.log())
            if found:
                try:
                    if httpx.get(f"http://127.0.0.1:{self.port}/health",
                                 timeout=5).status_code == 200:
                        return found.group(1)
                except httpx.HTTPError:
                    pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"ray engine not ready after {START_TIMEOUT_S}s: {self.log()}")

    def replica_pids(self) -> list[int]:
        """Processes of this engine's replicas (Ray titles them ServeReplica:...:LocalEngine)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                in_session = os.getsid(int(entry.name)) == self.proc.pid
            except OSError:
                continue
            if in_session and b"ServeReplica" in cmdline and b"LocalEngine" in cmdline:
                pids.append(int(entry.name))
        return pids

    def kill_replicas(self) -> list[int]:
        """SIGKILL every replica process (a lost node, an OOM kill); Ray Serve starts others."""
        pids = self.replica_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the driver's own session only
                self.proc.wait(timeout=30)
