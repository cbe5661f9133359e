"""A real vLLM (CPU build, `make vllm-venv`) serving a Hugging Face checkpoint with runtime
LoRA adapters, started the way issue 14 measured it works on this machine kind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from scaleout.ray_engine import free_port

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = Path(os.environ.get("PG_LLM_VLLM_PYTHON") or ROOT / ".venv-vllm" / "bin" / "python")
START_TIMEOUT_S = 600


def vllm_available() -> bool:
    return VLLM_PYTHON.exists() and subprocess.run(
        [str(VLLM_PYTHON), "-c", "import vllm.entrypoints.openai.api_server"],
        capture_output=True).returncode == 0


class VLLMServer:
    def __init__(self, checkpoint: Path, served_name: str, log_dir: Path, threads: str = "0-1"):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_dir / f"vllm-{self.port}.log"
        env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
               "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_OMP_THREADS_BIND": threads,
               "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "HF_HUB_OFFLINE": "1",
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
        env.pop("PYTHONPATH", None)
        # `vllm serve` fails in the vllm-cpu package (no `vllm` metadata): run the module
        self.proc = subprocess.Popen(
            [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
             "--model", str(checkpoint), "--served-model-name", served_name,
             "--dtype", "float32", "--max-model-len", "2048", "--enable-lora",
             "--max-lora-rank", "16", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self._wait_ready()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def _wait_ready(self) -> None:
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited ({self.proc.returncode}): {self.log()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
        self.stop()
        raise RuntimeError(f"vLLM not ready after {START_TIMEOUT_S}s: {self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: it and its workers
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
