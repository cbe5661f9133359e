"""Latency a model foreign table adds over calling the same endpoint with the openai client.

Side by side, interleaved rounds, one run:
  direct: the official openai client (this process) -> loopback OpenAI-compatible server
  table:  psycopg -> PostgreSQL -> C bridge -> plpython -> ModelTable -> pg_llm's HTTP client
          (pg_llm.engines.http, keep-alive; one prompt is sent from the backend thread) -> same server
The server (tests/fake_openai.py) runs in its own process and answers at once, so the
difference is what pg_llm adds per query. Target: <= 1 ms added at p50.

Runs its own private cluster (scripts/pgcluster.sh); needs `make ext backend-python`.
"""

from __future__ import annotations

import os
import statistics
import time

import openai

from fake_endpoint import MODEL, bench_engine

N = int(os.environ.get("BENCH_N", "1000"))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    with bench_engine("bench_fdw") as (conn, url):
        run(conn, url)


def run(conn, url: str) -> None:
    conn.execute("SELECT llm_create_model('ft', engine => 'bench', model_name => %s, "
                 "prompt_template => '{{content}}')", (MODEL,))
    # For the breakdown: the same openai call made by a plpython function in the backend's
    # own thread (no foreign table, no worker thread, not cancellable).
    conn.execute(f"""CREATE FUNCTION backend_call(prompt text) RETURNS text LANGUAGE plpython3u AS $$
if 'client' not in SD:
    import openai
    SD['client'] = openai.OpenAI(base_url='{url}', api_key='sk-bench', max_retries=0)
return SD['client'].chat.completions.create(
    model='{MODEL}', messages=[{{'role': 'user', 'content': prompt}}]).choices[0].message.content
$$""")
    client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)

    def direct(i: int) -> float:
        started = time.perf_counter()
        response = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"question {i}"}])
        assert response.choices[0].message.content == f"echo:question {i}"
        return (time.perf_counter() - started) * 1000

    def table(i: int, cur) -> float:
        started = time.perf_counter()
        cur.execute("SELECT answer FROM ft WHERE content = %s", (f"question {i}",), prepare=True)
        assert cur.fetchone()[0] == f"echo:question {i}"
        return (time.perf_counter() - started) * 1000

    def backend(i: int, cur) -> float:
        started = time.perf_counter()
        cur.execute("SELECT backend_call(%s)", (f"question {i}",), prepare=True)
        assert cur.fetchone()[0] == f"echo:question {i}"
        return (time.perf_counter() - started) * 1000

    def round_trip(i: int, cur) -> float:
        started = time.perf_counter()
        cur.execute("SELECT %s::text", (f"question {i}",), prepare=True)
        cur.fetchone()
        return (time.perf_counter() - started) * 1000

    with conn.cursor() as cur:
        for i in range(50):  # warm up: imports, plans, connections
            direct(i), table(i, cur), backend(i, cur), round_trip(i, cur)
        direct_ms, table_ms, backend_ms, trip_ms = [], [], [], []
        for i in range(N):  # alternate call by call: the machine is shared, load drifts
            direct_ms.append(direct(i))
            table_ms.append(table(i, cur))
            backend_ms.append(backend(i, cur))
            trip_ms.append(round_trip(i, cur))

    print(f"== model table vs direct openai client, {len(direct_ms)} calls each, "
          f"loopback endpoint answering at once")
    print(f"{'':10s}{'p50 ms':>10s}{'p95 ms':>10s}{'mean ms':>10s}")
    for name, samples in (("direct", direct_ms), ("table", table_ms)):
        print(f"{name:10s}{percentile(samples, .5):10.3f}{percentile(samples, .95):10.3f}"
              f"{statistics.fmean(samples):10.3f}")
    added50 = percentile(table_ms, .5) - percentile(direct_ms, .5)
    added95 = percentile(table_ms, .95) - percentile(direct_ms, .95)
    print(f"added by pg_llm: p50 {added50:+.3f} ms, p95 {added95:+.3f} ms; "
          f"ratio p50 {percentile(table_ms, .5) / percentile(direct_ms, .5):.2f}x "
          f"(target: <= 1 ms added at p50)")
    print("breakdown (p50): client -> PostgreSQL round trip (SELECT $1) "
          f"{percentile(trip_ms, .5):.3f} ms; same openai call from a plpython function in the "
          f"backend thread {percentile(backend_ms, .5):.3f} ms; so the foreign table itself "
          f"(bridge, ModelTable, its HTTP client) adds "
          f"{percentile(table_ms, .5) - percentile(backend_ms, .5):+.3f} ms over that function")


if __name__ == "__main__":
    main()
