"""50 clients at once against a 50 ms endpoint, side by side in one run:

  direct           50 clients (5 processes x 10 threads, one openai client each) calling the
                   endpoint themselves: the baseline
  pgbench          50 persistent connections, one model query per transaction
  pgbench -C       a new connection for every transaction
each for --seconds (default 60), with pg_llm preloaded (shared_preload_libraries) and not.
Reports transactions, errors, tps, p50/p95 latency, the ratio to the baseline (target
>= 0.5x), and what is left afterwards: client backends, sockets open to the endpoint.

The endpoint is tests/fake_openai.py in this process (its counters show the sockets).
Runs its own private clusters (max_connections 100); needs `make install`.
    .venv/bin/python bench/many_clients.py [--seconds 60] [--clients 50] [--only preload]
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from private_cluster import bench_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fake_openai import FakeOpenAI  # noqa: E402  a real loopback HTTP server

MODEL = "bench-model"
DELAY_S = 0.05
PG_BINDIR = subprocess.run(["/usr/lib/postgresql/15/bin/pg_config", "--bindir"],
                           capture_output=True, text=True, check=True).stdout.strip()


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _direct_process(url: str, threads: int, seconds: float, ready, go, out) -> None:
    import openai

    latencies, errors = [], []
    lock = threading.Lock()
    apis = [openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)
            for _ in range(threads)]
    ready.put(True)
    go.wait()  # the clock starts once every process has imported openai
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        api = apis[n]
        i = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                api.chat.completions.create(model=MODEL, messages=[
                    {"role": "user", "content": f"{n} {i}"}])
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
            except Exception as exc:  # counted, as pgbench counts failed transactions
                with lock:
                    errors.append(repr(exc))
            i += 1

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((latencies, errors))


def run_direct(url: str, clients: int, seconds: float) -> dict:
    processes = 5 if clients % 5 == 0 else 1
    queue, ready, go = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Event()
    procs = [multiprocessing.Process(target=_direct_process,
                                     args=(url, clients // processes, seconds, ready, go, queue))
             for _ in range(processes)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    started = time.monotonic()
    go.set()
    latencies, errors = [], []
    for _ in procs:
        lat, err = queue.get()
        latencies += lat
        errors += err
    for p in procs:
        p.join()
    elapsed = max(time.monotonic() - started, seconds)
    return {"transactions": len(latencies), "errors": len(errors), "tps": len(latencies) / elapsed,
            "p50": percentile(latencies, .5), "p95": percentile(latencies, .95),
            "samples": sorted(set(errors))[:3]}


MODEL_QUERY = ("\\set r random(1, 1000000000)\n"
               # :r::text folds to a constant: the prompt is pushed down as content = '<r>'
               "SELECT answer FROM ft WHERE content = :r::text;\n")


def run_pgbench(conn, clients: int, seconds: int, new_connections: bool,
                sql: str = MODEL_QUERY) -> dict:
    info = conn.info
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "script.sql"
        script.write_text(sql)
        command = [f"{PG_BINDIR}/pgbench", "-n", "-h", info.host, "-p", str(info.port),
                   "-U", "postgres", "-c", str(clients), "-j", "4", "-T", str(seconds),
                   "-f", str(script), "-l", "--log-prefix", f"{tmp}/log", info.dbname]
        if new_connections:
            command.insert(1, "-C")
        result = subprocess.run(command, capture_output=True, text=True)
        output = result.stdout + result.stderr
        latencies = []
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000.0)

    def number(pattern: str) -> float:
        found = re.search(pattern, output)
        return float(found.group(1)) if found else float("nan")

    processed = number(r"number of transactions actually processed: (\d+)")
    failed = number(r"number of failed transactions: (\d+)")
    errors = int(failed) if failed == failed else 0
    if result.returncode != 0:  # a client aborted on an error: pgbench does not count it as failed
        errors = max(errors, 1)
    return {"transactions": int(processed) if processed == processed else 0,
            "errors": errors,
            "tps": number(r"tps = ([\d.]+) \((?:including|without)"),
            "p50": percentile(latencies, .5), "p95": percentile(latencies, .95),
            "exit": result.returncode, "tail": output.strip().splitlines()[-3:]}


def leftovers(conn, fake: FakeOpenAI, own_pid: int, open_before: int) -> str:
    """Client backends and endpoint sockets still there after a run (10 s grace)."""
    deadline = time.monotonic() + 10
    while True:
        backends = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                "'client backend' AND pid <> %s", (own_pid,)).fetchone()[0]
        sockets = fake.connections_open - open_before
        if (backends == 0 and sockets <= 0) or time.monotonic() > deadline:
            return f"{backends} backends, {sockets} sockets to the endpoint"
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--only", choices=["default", "preload"])
    args = parser.parse_args()
    rows = []
    with FakeOpenAI(models=[MODEL], delay=DELAY_S) as fake:
        direct = run_direct(fake.url, args.clients, args.seconds)
        rows.append(("direct openai client", direct, f"{fake.connections_opened} sockets opened"))
        for label, preload in (("default", False), ("preload", True)):
            if args.only and args.only != label:
                continue
            with bench_database("bench_clients", preload=preload) as conn:
                conn.execute("SET client_min_messages = warning")
                conn.execute("CREATE EXTENSION pg_llm CASCADE")
                conn.execute("SELECT llm_create_engine('bench', base_url => %s, "
                             "api_key => 'sk-bench')", (fake.url,))
                conn.execute("SELECT llm_create_model('ft', engine => 'bench', model_name => %s,"
                             " prompt_template => '{{content}}')", (MODEL,))
                own_pid = conn.info.backend_pid
                if not preload:  # what a new connection costs this machine without any model
                    result = run_pgbench(conn, args.clients, args.seconds, True, "SELECT 1;\n")
                    rows.append(("pgbench -C, SELECT 1", result, "no model: the floor for -C"))
                for new_connections in (False, True):
                    opened, open_before = fake.connections_opened, fake.connections_open
                    result = run_pgbench(conn, args.clients, args.seconds, new_connections)
                    name = f"pgbench{' -C' if new_connections else ''} ({label})"
                    rows.append((name, result, f"{fake.connections_opened - opened} sockets "
                                 f"opened; left: {leftovers(conn, fake, own_pid, open_before)}"))
                    if result.get("exit"):
                        print(f"{name}: pgbench exited {result['exit']}: {result['tail']}")
    if direct["errors"]:
        print(f"direct client errors: {direct['samples']}")
    base = rows[0][1]["tps"]
    print(f"== {args.clients} clients, {args.seconds} s each, endpoint answers in "
          f"{DELAY_S * 1000:.0f} ms")
    print(f"{'':28s}{'txns':>8s}{'errors':>8s}{'tps':>9s}{'p50 ms':>9s}{'p95 ms':>9s}"
          f"{'vs direct':>11s}  afterwards")
    for name, r, note in rows:
        print(f"{name:28s}{r['transactions']:8d}{r['errors']:8d}{r['tps']:9.1f}{r['p50']:9.1f}"
              f"{r['p95']:9.1f}{r['tps'] / base:10.2f}x  {note}")
    print("target: 0 errors, nothing left afterwards, >= 0.5x the direct client's tps")


if __name__ == "__main__":
    main()
