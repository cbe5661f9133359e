"""100 prompts in one query against an endpoint that answers after 200 ms.

With concurrency 8 (the default) the ideal wall time is 100 / 8 x 0.2 s = 2.5 s; the target is
within 1.25x of it. Measured side by side in one run:
  = ANY      SELECT ... WHERE content = ANY(array of 100 prompts)
  JOIN       SELECT ... FROM questions q JOIN ft f ON f.content = q.text  (100-row table)
  one by one 100 separate queries (what a client loop would do), for scale

Runs its own private cluster (scripts/pgcluster.sh) and endpoint (tests/fake_openai.py).
"""

from __future__ import annotations

import time


from fake_endpoint import MODEL, bench_engine

DELAY_S = 0.2
PROMPTS = 100
CONCURRENCY = 8


def timed(conn, sql, params=None) -> tuple[float, int]:
    started = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    return time.perf_counter() - started, len(rows)


def main() -> None:
    with bench_engine("bench_batch", "--delay", str(DELAY_S),
                      engine_options={"concurrency": CONCURRENCY}) as (conn, _url):
        run(conn)


def run(conn) -> None:
    conn.execute("SELECT llm_create_model('ft', engine => 'bench', model_name => %s, "
                 "prompt_template => '{{content}}')", (MODEL,))
    conn.execute("SELECT answer FROM ft WHERE content = 'warm up'").fetchall()
    conn.execute("CREATE TABLE questions AS SELECT g AS id, 'question ' || g AS text "
                 "FROM generate_series(1, %s) g" % PROMPTS)
    conn.execute("ANALYZE questions")

    ideal = PROMPTS / CONCURRENCY * DELAY_S
    results = []
    any_s, n = timed(conn, "SELECT content, answer FROM ft WHERE content = ANY(%s)",
                     ([f"any {i}" for i in range(PROMPTS)],))
    results.append(("= ANY (100 prompts)", any_s, n))
    join_s, n = timed(conn, "SELECT q.id, f.answer FROM questions q JOIN ft f ON f.content = q.text")
    results.append(("JOIN over 100 rows", join_s, n))
    started = time.perf_counter()
    for i in range(PROMPTS):
        conn.execute("SELECT answer FROM ft WHERE content = %s", (f"loop {i}",)).fetchall()
    results.append(("100 single queries", time.perf_counter() - started, PROMPTS))

    print(f"== {PROMPTS} prompts, endpoint answers after {DELAY_S * 1000:.0f} ms, "
          f"concurrency {CONCURRENCY}; ideal {ideal:.2f} s (target within 1.25x)")
    for name, seconds, rows in results:
        print(f"{name:22s} {seconds:7.2f} s  rows {rows:3d}  vs ideal {seconds / ideal:5.2f}x")


if __name__ == "__main__":
    main()
