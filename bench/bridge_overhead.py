"""Overhead of the C bridge, and what batching a join saves. Ratios measured side by side.

1. A query on a model table (the EchoTable wrapper: no model, no HTTP) against the same
   query without the foreign table, simple and prepared protocol: the cost of C -> plpython
   -> pg_llm.bridge -> wrapper -> rows.
2. A 100-row JOIN with a wrapper that takes 20 ms per call: batched (one `= ANY` call) vs
   pg_llm.join_batch_size = 0 (one call per distinct outer value, as a plain nested loop).
3. End to end: a 100-row JOIN of a real model table (ModelTable, the openai client) with
   tests/fake_openai.py answering in 200 ms, engine concurrency 8: batched vs the ideal
   100 / 8 x 0.2 s = 2.5 s, and vs per row (measured on 20 rows, scaled to 100).

Runs its own private cluster (scripts/pgcluster.sh); needs `make ext backend-python`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.fake_openai import FakeOpenAI  # noqa: E402  a real loopback HTTP server
from private_cluster import bench_database, create_echo_table  # noqa: E402
N = int(os.environ.get("BENCH_N", "2000"))


def per_query_ms(conn, sql, n, prepare=False) -> float:
    with conn.cursor() as cur:
        started = time.perf_counter()
        for _ in range(n):
            cur.execute(sql, prepare=prepare)
            cur.fetchall()
        return (time.perf_counter() - started) * 1000 / n


def side_by_side(conn, base_sql, fdw_sql, prepare, rounds=20) -> tuple[float, float]:
    """Best per-query time of each over interleaved rounds (the machine is shared)."""
    per_query_ms(conn, base_sql, 50, prepare)  # warm caches, the plpython import, plans
    per_query_ms(conn, fdw_sql, 50, prepare)
    base, fdw = [], []
    for _ in range(rounds):
        base.append(per_query_ms(conn, base_sql, N // rounds, prepare))
        fdw.append(per_query_ms(conn, fdw_sql, N // rounds, prepare))
    return min(base), min(fdw)


def timed(conn, sql) -> float:
    started = time.perf_counter()
    conn.execute(sql).fetchall()
    return time.perf_counter() - started


def main() -> None:
    with bench_database("bench_bridge") as conn:
        run(conn)


def run(conn) -> None:
    create_echo_table(conn)
    conn.execute("CREATE TABLE plain_t (content text, answer text)")
    conn.execute("INSERT INTO plain_t VALUES ('x', 'echo: x')")

    print(f"== bridge overhead per query ({N} queries each, best of 20 interleaved rounds)")
    for protocol, prepare in (("simple", False), ("prepared", True)):
        base, fdw = side_by_side(conn, "SELECT content, answer FROM plain_t WHERE content = 'x'",
                                 "SELECT content, answer FROM echo_t WHERE content = 'x'", prepare)
        print(f"{protocol:9s} plain table {base:.3f} ms   model table {fdw:.3f} ms   "
              f"overhead {fdw - base:.3f} ms/query   ratio {fdw / base:.2f}x")

    conn.execute("CREATE FOREIGN TABLE slow_t (content text, answer text) SERVER echo "
                 "OPTIONS (prompt_columns 'content', sleep_ms '20')")
    conn.execute("CREATE TABLE questions AS SELECT g AS id, 'question ' || g AS text "
                 "FROM generate_series(1, 100) g")
    conn.execute("ANALYZE questions")
    join = "SELECT q.id, f.answer FROM questions q JOIN slow_t f ON f.content = q.text"
    print("== 100-row JOIN, wrapper takes 20 ms per call")
    conn.execute("RESET pg_llm.join_batch_size")
    batched = min(timed(conn, join) for _ in range(3))
    conn.execute("SET pg_llm.join_batch_size = 0")
    per_row = min(timed(conn, join) for _ in range(3))
    conn.execute("RESET pg_llm.join_batch_size")
    print(f"batched (1 call)        {batched * 1000:8.1f} ms")
    print(f"per row (100 calls)     {per_row * 1000:8.1f} ms")
    print(f"per-row / batched       {per_row / batched:8.1f}x")

    with FakeOpenAI(models=["bench-model"], delay=0.2) as fake:
        conn.execute("SELECT llm_create_engine('fake', base_url => %s, api_key => 'sk-bench', "
                     "verify => false, options => '{\"concurrency\": 8}')", [fake.url])
        conn.execute("SELECT llm_create_model('qa', engine => 'fake', model_name => 'bench-model', "
                     "prompt_template => '{{content}}')")
        conn.execute("CREATE TABLE q20 AS SELECT * FROM questions WHERE id <= 20")
        conn.execute("ANALYZE q20")
        print("== 100-row JOIN of a model table, endpoint 200 ms, concurrency 8 (ideal 2.5 s)")
        conn.execute("SELECT answer FROM qa WHERE content = 'warm up'")  # import openai once
        fake.requests.clear()
        batched = timed(conn, "SELECT q.id, f.answer FROM questions q JOIN qa f ON f.content = q.text")
        calls = len([r for r in fake.requests if r.path.endswith("/chat/completions")])
        conn.execute("SET pg_llm.join_batch_size = 0")
        per_row20 = timed(conn, "SELECT q.id, f.answer FROM q20 q JOIN qa f ON f.content = q.text")
        conn.execute("RESET pg_llm.join_batch_size")
        print(f"batched                 {batched * 1000:8.1f} ms   {calls} requests   "
              f"{batched / 2.5:.2f}x the ideal (target <= 1.25x)")
        print(f"per row, 20 rows        {per_row20 * 1000:8.1f} ms   (x5 = {per_row20 * 5:.1f} s for 100)")
        print(f"per-row / batched       {per_row20 * 5 / batched:8.1f}x")


if __name__ == "__main__":
    main()
