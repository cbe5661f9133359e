"""Fixtures for the local engine: a tiny checkpoint built at test time and real
`python -m pg_llm.serve` processes on free loopback ports, driven by the official client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from .tiny_checkpoint import build_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120
# One thread: on a busy 2-core machine (parallel test jobs, a running fine-tune) two OpenMP
# threads per process stall on each other's barriers and everything slows down ~10x.
THREADS = os.environ.get("PG_LLM_TEST_THREADS", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """One engine process; `kill()` simulates a crash, `stop()` a clean shutdown."""

    def __init__(self, data_dir: Path, args: list[str], env: dict | None = None):
        self.data_dir = data_dir
        self.args = args
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = data_dir.parent / f"{data_dir.name}-server-{self.port}.log"
        full_env = {k: v for k, v in os.environ.items() if k != "PG_LLM_SERVE_API_KEY"}
        full_env.update({"PYTHONPATH": str(ROOT), **(env or {})})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pg_llm.serve", "--port", str(self.port), "--data-dir",
             str(data_dir), "--threads", THREADS, *args],
            env=full_env, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}): {self.log()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server not healthy after {START_TIMEOUT_S}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def client(self, api_key: str = "unused", **kw) -> OpenAI:
        return OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0,
                      timeout=kw.pop("timeout", 60), **kw)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """An HF checkpoint directory (registered as-is by the main server)."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_gguf(tiny_dir, tmp_path_factory) -> Path:
    """The same checkpoint as a GGUF file (servers that need no conversion start faster)."""
    from pg_llm.serve.training.gguf_export import hf_to_gguf

    return hf_to_gguf(tiny_dir, tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf")


@pytest.fixture
def start_server(tmp_path_factory):
    """start_server(args, data_dir=None, env=None) -> ServerProcess, stopped after the test."""
    started = []

    def start(args, data_dir: Path | None = None, env: dict | None = None) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path_factory.mktemp("data"), args, env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(tiny_dir, tmp_path_factory):
    """The shared engine: model `tiny` registered from its HF directory."""
    proc = ServerProcess(tmp_path_factory.mktemp("main-data"),
                         ["--no-default-model", "--model", f"tiny={tiny_dir}"])
    yield proc
    proc.stop()


@pytest.fixture
def client(server) -> OpenAI:
    return server.client()
