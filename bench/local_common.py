"""Shared helpers of the local-engine benchmarks: start `pg-llm serve` on a free port."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
SQL_TRAIN = Path("/work/shared/datasets/sql-create-context/train.jsonl")
SQL_SYSTEM = "Answer with one SQL query and nothing else."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sql_conversation(row: dict) -> dict:
    return {"messages": [{"role": "system", "content": SQL_SYSTEM},
                         {"role": "user", "content": f"{row['context']}\n-- {row['question']}"},
                         {"role": "assistant", "content": row["answer"]}]}


@contextmanager
def local_server(*extra: str, data_dir: str | None = None):
    """Yields the base URL of a fresh server serving smollm2-135m-instruct."""
    port = free_port()
    data = data_dir or tempfile.mkdtemp(prefix="pg_llm-bench-")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pg_llm.serve", "--port", str(port),
                             "--data-dir", data, *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")
        yield url + "/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def generation_arguments(tokens: int, **more: int) -> argparse.Namespace:
    """--tokens and --threads of the generation benchmarks, plus their own integer options."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=tokens)
    ap.add_argument("--threads", type=int, default=2)
    for name, default in more.items():
        ap.add_argument(f"--{name}", type=int, default=default)
    return ap.parse_args()


def alternating_rounds(runs: dict, rounds: int) -> dict[str, list[tuple[int, float]]]:
    """Each run (a function returning its token count) once per round, alternating, so load
    from outside hits them alike: {name: [(tokens, seconds) of each round]}."""
    timings = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            tokens = run()
            timings[name].append((tokens, time.perf_counter() - start))
    return timings


def print_ratio(title: str, baseline: str, local: str, ratio: float, target: float) -> None:
    """The side-by-side report of the generation benchmarks."""
    print(title)
    print(f"  {baseline}")
    print(f"  {local}")
    print(f"  ratio: {ratio:.2f}x (target >= {target}x)")


@contextmanager
def engine_and_llama_cpp(threads: int, *server_args: str):
    """(openai client of a fresh `pg-llm serve`, llama-cpp-python Llama) on the same SmolLM2
    GGUF with the same threads: the two sides of the generation benchmarks. No retries: a
    failed request must show, not be hidden in the timing."""
    from llama_cpp import Llama
    from openai import OpenAI

    from pg_llm.serve.registry import smollm2_gguf_path

    with local_server("--threads", str(threads), *server_args) as url:
        client = OpenAI(base_url=url, api_key="local", timeout=600, max_retries=0)
        llm = Llama(str(smollm2_gguf_path()), n_ctx=2048, n_batch=512, n_threads=threads,
                    n_threads_batch=threads, verbose=False)
        yield client, llm


def load_average() -> str:
    """Other processes on the same cores distort every figure; print it with the results."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
