"""50 clients at once against a 50 ms endpoint, side by side in one run:

  direct             50 clients (5 processes x 10 threads, one openai client each) calling
                     the endpoint themselves, connections kept alive: the baseline
  direct, new conn   the same, but a new HTTP connection per request (information only: it
                     shows what a new connection costs the endpoint side, not a target)
  pgbench -C SELECT 1  a new PostgreSQL connection per transaction with no model: the floor
                     of any -C run on this machine
  pgbench            50 persistent connections, one model query per transaction
  pgbench -C         a new connection for every transaction
each for --seconds (default 60); the three pgbench runs with pg_llm preloaded
(shared_preload_libraries) and not. Reports transactions, errors, tps, p50/p95 latency, the
ratio to the baseline (target >= 0.5x), for -C the ratio to its own SELECT 1 floor, the CPU
each transaction cost (server: the postmaster and the backends it reaped; client: pgbench or
the direct clients; endpoint), and what is left afterwards: client backends, sockets open to
the endpoint, threads of the postmaster.

The endpoint is tests/fake_openai.py in this process (its counters show the sockets).
Runs its own private clusters (max_connections 100); needs `make install`.
    .venv/bin/python bench/many_clients.py [--seconds 60] [--clients 50] [--only preload]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
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


def _direct_process(url: str, threads: int, seconds: float, keep_alive: bool, ready, go,
                    out) -> None:
    import openai

    latencies, errors = [], []
    lock = threading.Lock()

    def http_client():
        if keep_alive:
            return None  # the openai client's own (keep-alive) pool
        import httpx

        return openai.DefaultHttpxClient(limits=httpx.Limits(max_keepalive_connections=0))

    apis = [openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0,
                          http_client=http_client()) for _ in range(threads)]
    ready.put(True)
    go.wait()  # the clock starts once every process has imported openai
    deadline = time.monotonic() + seconds
    cpu_before = os.times()

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
    cpu = os.times()
    out.put((latencies, errors, cpu.user + cpu.system - cpu_before.user - cpu_before.system))


def run_direct(url: str, clients: int, seconds: float, keep_alive: bool = True) -> dict:
    processes = 5 if clients % 5 == 0 else 1
    queue, ready, go = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Event()
    procs = [multiprocessing.Process(target=_direct_process,
                                     args=(url, clients // processes, seconds, keep_alive, ready,
                                           go, queue))
             for _ in range(processes)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    started = time.monotonic()
    go.set()
    latencies, errors, cpu_s = [], [], 0.0
    for _ in procs:
        lat, err, cpu = queue.get()
        latencies += lat
        errors += err
        cpu_s += cpu  # requests only: importing openai is not counted
    for p in procs:
        p.join()
    elapsed = max(time.monotonic() - started, seconds)
    return {"transactions": len(latencies), "errors": len(errors), "tps": len(latencies) / elapsed,
            "p50": percentile(latencies, .5), "p95": percentile(latencies, .95),
            "samples": sorted(set(errors))[:3], "client_cpu_s": cpu_s}


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


def postmaster_pid(conn) -> int:
    data = conn.execute("SHOW data_directory").fetchone()[0]
    return int(Path(data, "postmaster.pid").read_text().split()[0])


def server_cpu_s(pid: int) -> float:
    """CPU seconds of the postmaster and of every child it has reaped (the backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU spent during one run by the server, the clients (this process's children: pgbench
    or the direct clients) and the endpoint (the fake server's threads in this process)."""

    def __init__(self, postmaster: int | None = None):
        self.postmaster = postmaster
        self.start = self._now()

    def _now(self) -> tuple:
        t = os.times()
        server = server_cpu_s(self.postmaster) if self.postmaster else 0.0
        return (server, t.children_user + t.children_system, t.user + t.system)

    def per_transaction_ms(self, transactions: int) -> tuple:
        """Call after the run's processes have exited (leftovers() waits for that)."""
        end = self._now()
        n = max(transactions, 1)
        return tuple((b - a) * 1000 / n for a, b in zip(self.start, end))


def leftovers(conn, fake: FakeOpenAI, own_pid: int, open_before: int, postmaster: int) -> str:
    """Client backends, endpoint sockets and postmaster threads still there after a run
    (10 s grace)."""
    deadline = time.monotonic() + 10
    while True:
        backends = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                "'client backend' AND pid <> %s", (own_pid,)).fetchone()[0]
        sockets = fake.connections_open - open_before
        threads = len(os.listdir(f"/proc/{postmaster}/task"))
        if (backends == 0 and sockets <= 0) or time.monotonic() > deadline:
            return (f"{backends} backends, {sockets} sockets to the endpoint, "
                    f"{threads} postmaster thread{'s' if threads != 1 else ''}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--only", choices=["default", "preload"])
    args = parser.parse_args()
    rows = []  # (name, result, cpu ms per transaction, floor tps or None, note)
    with FakeOpenAI(models=[MODEL], delay=DELAY_S) as fake:
        for keep_alive in (True, False):
            opened, meter = fake.connections_opened, CpuMeter()
            result = run_direct(fake.url, args.clients, args.seconds, keep_alive)
            name = "direct openai client" if keep_alive else "direct, new conn (info)"
            _, _, endpoint_ms = meter.per_transaction_ms(result["transactions"])
            client_ms = result["client_cpu_s"] * 1000 / max(result["transactions"], 1)
            rows.append((name, result, (0.0, client_ms, endpoint_ms), None,
                         f"{fake.connections_opened - opened} sockets opened"))
            if result["errors"]:
                print(f"{name} errors: {result['samples']}")
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
                own_pid, postmaster = conn.info.backend_pid, postmaster_pid(conn)
                floor = None
                # what a new connection costs this server without any model: the -C floor
                for name, new_connections, sql in (
                        (f"{label}: pgbench -C SELECT 1", True, "SELECT 1;\n"),
                        (f"{label}: pgbench", False, MODEL_QUERY),
                        (f"{label}: pgbench -C", True, MODEL_QUERY)):
                    opened, open_before = fake.connections_opened, fake.connections_open
                    meter = CpuMeter(postmaster)
                    result = run_pgbench(conn, args.clients, args.seconds, new_connections, sql)
                    left = leftovers(conn, fake, own_pid, open_before, postmaster)
                    cpu = meter.per_transaction_ms(result["transactions"])
                    is_floor = sql != MODEL_QUERY
                    rows.append((name, result, cpu, None if is_floor or not new_connections
                                 else floor, f"{fake.connections_opened - opened} sockets "
                                 f"opened; left: {left}"))
                    if is_floor:
                        floor = result["tps"]
                    if result.get("exit"):
                        print(f"{name}: pgbench exited {result['exit']}: {result['tail']}")
    base = rows[0][1]["tps"]
    print(f"== {args.clients} clients, {args.seconds} s each, endpoint answers in "
          f"{DELAY_S * 1000:.0f} ms; CPU ms per transaction: server (postmaster + backends) / "
          f"client / endpoint")
    print(f"{'':30s}{'txns':>7s}{'errors':>7s}{'tps':>8s}{'p50 ms':>8s}{'p95 ms':>8s}"
          f"{'vs direct':>10s}{'of floor':>9s}{'CPU ms/txn':>19s}  afterwards")
    for name, r, cpu, floor, note in rows:
        of_floor = f"{r['tps'] / floor:8.2f}x" if floor else f"{'':9s}"
        print(f"{name:30s}{r['transactions']:7d}{r['errors']:7d}{r['tps']:8.1f}{r['p50']:8.1f}"
              f"{r['p95']:8.1f}{r['tps'] / base:9.2f}x{of_floor}"
              f"{cpu[0]:7.2f}/{cpu[1]:5.2f}/{cpu[2]:5.2f}  {note}")
    print("target: 0 errors, nothing left afterwards, >= 0.5x the direct client's tps; "
          "'of floor': a -C model query's tps over the same server's -C SELECT 1")


if __name__ == "__main__":
    main()
