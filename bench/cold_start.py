"""What a new connection's first model query costs, side by side, one run.

For each configuration (default install; pg_llm in shared_preload_libraries), interleaved
over N new connections:
  connect + SELECT 1            what any new connection costs
  connect + first model query   the same, plus everything a backend does before its first prompt
  warm model query              the same query on a connection that has run it before
and "added" = first model query - warm model query (target: <= 50 ms at p50).
Then where the time goes in a new backend (p50 of each step, run in this order):
  plpython start (DO $$ pass $$), llm._boot(), importing pg_llm's scan modules, the first scan.

The endpoint (tests/fake_openai.py) runs in its own process and answers at once.
Runs its own private clusters (scripts/pgcluster.sh); needs `make install`.
    .venv/bin/python bench/cold_start.py [--connections 40]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from private_cluster import bench_database

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-model"
BREAKDOWN = (
    ("plpython start", "DO $$ pass $$ LANGUAGE plpython3u"),
    ("llm._boot()", "SELECT llm._boot()"),
    ("import scan modules", "DO $$ import pg_llm.bridge, pg_llm.fdw $$ LANGUAGE plpython3u"),
    ("first scan", "SELECT answer FROM ft WHERE content = 'breakdown {i}'"),
    ("second scan", "SELECT answer FROM ft WHERE content = 'again {i}'"),
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_ms(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def measure(conn, url: str, connections: int) -> dict[str, list[float]]:
    conn.execute("SET client_min_messages = warning")
    conn.execute("CREATE EXTENSION pg_llm CASCADE")
    conn.execute("SELECT llm_create_engine('bench', base_url => %s, api_key => 'sk-bench')", (url,))
    conn.execute("SELECT llm_create_model('ft', engine => 'bench', model_name => %s, "
                 "prompt_template => '{{content}}')", (MODEL,))
    info = conn.info
    dsn = f"host={info.host} port={info.port} user=postgres dbname={info.dbname}"
    model_sql = "SELECT answer FROM ft WHERE content = %s"
    samples: dict[str, list[float]] = {k: [] for k in (
        "connect + SELECT 1", "connect + first model query", "first model query",
        "warm model query")}
    for i in range(20):  # warm up the warm connection and the caches of the server files
        conn.execute(model_sql, (f"warm {i}",)).fetchone()
    for i in range(connections):  # interleaved: the machine is shared, load drifts
        def plain():
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("SELECT 1").fetchone()
        samples["connect + SELECT 1"].append(timed_ms(plain))

        def first():
            with psycopg.connect(dsn, autocommit=True) as c:
                samples["first model query"].append(timed_ms(
                    lambda: c.execute(model_sql, (f"cold {i}",)).fetchone()))
        samples["connect + first model query"].append(timed_ms(first))
        samples["warm model query"].append(timed_ms(
            lambda: conn.execute(model_sql, (f"warm q {i}",)).fetchone()))
    steps: dict[str, list[float]] = {name: [] for name, _ in BREAKDOWN}
    for i in range(connections):
        with psycopg.connect(dsn, autocommit=True) as c:
            for name, sql in BREAKDOWN:
                steps[name].append(timed_ms(lambda: c.execute(sql.replace("{i}", str(i)))))
    samples.update({f"  {k}": v for k, v in steps.items()})
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=40)
    args = parser.parse_args()
    endpoint = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_openai.py"),
                                 "--models", MODEL], stdout=subprocess.PIPE, text=True)
    url = endpoint.stdout.readline().strip()
    results = {}
    try:
        for label, preload in (("default", False), ("preload", True)):
            with bench_database("bench_cold", preload=preload) as conn:
                results[label] = measure(conn, url, args.connections)
    finally:
        endpoint.kill()
    print(f"== new connection vs warm, {args.connections} connections each, endpoint answers "
          f"at once (ms; p50 / p95)")
    print(f"{'':32s}" + "".join(f"{label:>22s}" for label in results))
    for name in results["default"]:
        print(f"{name:32s}" + "".join(
            f"{percentile(s[name], .5):11.2f} /{percentile(s[name], .95):8.2f}"
            for s in results.values()))
    for label, s in results.items():
        added50 = percentile(s["first model query"], .5) - percentile(s["warm model query"], .5)
        added95 = percentile(s["first model query"], .95) - percentile(s["warm model query"], .95)
        print(f"{label}: a new connection's first model query adds {added50:+.1f} ms at p50 "
              f"({added95:+.1f} ms at p95) over a warm one (target <= 50 ms at p50)")


if __name__ == "__main__":
    main()
