"""16 concurrent chat requests through Ray Serve with 1 and with 2 replicas vs the plain local
engine, side by side (docs/scale-out.md). On one 2-core machine little gain is expected from a
second replica; the number to watch is the Ray hop's overhead (target <= 10%).

    .venv/bin/python bench/ray_replicas.py [--requests 16] [--max-tokens 16] [--rounds 3]

Needs the Ray venv (`make ray-venv`). Every engine serves smollm2-135m-instruct from a fresh
data dir, one thread per engine process (`--threads`, default 1: on a machine shared with other
work, two OpenMP threads per process stall on each other, see docs/local-engine.md), so
"1 replica" vs "plain" is the cost of the Ray hop and "2 replicas" adds a second process.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench.local_common import local_server  # noqa: E402
from scaleout.ray_engine import RayEngine, ray_available  # noqa: E402

QUESTIONS = [f"CREATE TABLE t{i} (id INT, name TEXT)\n-- How many rows have id above {i}?"
             for i in range(64)]


def burst(base_url: str, n: int, max_tokens: int) -> tuple[float, int]:
    """(wall seconds, completion tokens) of n concurrent requests (different prompts, greedy)."""
    def one(i) -> int:
        r = httpx.post(f"{base_url}/chat/completions", timeout=600, json={
            "model": "smollm2-135m-instruct", "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]})
        r.raise_for_status()
        return r.json()["usage"]["completion_tokens"]

    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        tokens = sum(pool.map(one, range(n)))
    return time.perf_counter() - started, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1", help="threads of each engine process")
    parser.add_argument("--parallel", default="8", help="batch slots of each engine process")
    args = parser.parse_args()
    if not ray_available():
        print("skipped: ray[serve] is not installed (make ray-venv)")
        return 0
    # All three run at once and the rounds alternate between them, so a change in the load
    # of a shared machine hits each engine alike.
    times: dict[str, list[tuple[float, int]]] = {}
    with contextlib.ExitStack() as stack:
        engine_args = ["--threads", args.threads, "--parallel", args.parallel]
        plain_url = stack.enter_context(local_server(*engine_args))
        urls = {"plain local engine": plain_url}
        for replicas in (1, 2):
            engine = RayEngine(Path(tempfile.mkdtemp(prefix="pg_llm-ray-bench-")),
                               engine_args, replicas=replicas)
            stack.callback(engine.stop)
            urls[f"Ray Serve, {replicas} replica{'s' if replicas > 1 else ''}"] = engine.base_url
        for url in urls.values():
            burst(url, 2, args.max_tokens)  # warm up (weights in the page cache, first batch)
        for _ in range(args.rounds):
            for name, url in urls.items():
                times.setdefault(name, []).append(burst(url, args.requests, args.max_tokens))
    results = {name: statistics.median(t for t, _ in runs) for name, runs in times.items()}
    tokens = {name: runs[0][1] for name, runs in times.items()}
    plain = results["plain local engine"]
    print(f"{args.requests} concurrent requests x {args.max_tokens} tokens, median of "
          f"{args.rounds} alternating rounds, {args.threads} thread(s) and {args.parallel} "
          "batch slots per engine process")
    print(f"{'engine':<26} {'seconds':>8} {'tok/s':>7} {'vs plain':>9}")
    for name, seconds in results.items():
        print(f"{name:<26} {seconds:8.2f} {tokens[name] / seconds:7.1f} "
              f"{seconds / plain:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
