"""The answer cache: the same 100-prompt `= ANY` query twice against an endpoint that answers
after 200 ms. The first run sends 100 requests (concurrency 8: ~2.5 s); the second is answered
from llm.cache without an HTTP call. Target: second run <= 5% of the first.

Side by side in one run, plus the same query on a model without the cache (both runs send),
for scale. Runs its own private cluster (scripts/pgcluster.sh) and endpoint
(tests/fake_openai.py).
"""

from __future__ import annotations

import time

from fake_endpoint import MODEL, bench_engine

DELAY_S = 0.2
PROMPTS = 100
TARGET = 0.05


def timed(conn, sql, params) -> tuple[float, int, int]:
    started = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    return time.perf_counter() - started, len(rows), sum(1 for r in rows if r[1])


def main() -> None:
    with bench_engine("bench_cache", "--delay", str(DELAY_S)) as (conn, _url):
        run(conn)


def run(conn) -> None:
    for name, options in (("cached", '{"cache": "on", "temperature": 0}'),
                          ("uncached", '{"temperature": 0}')):
        conn.execute("SELECT llm_create_model(%s, engine => 'bench', model_name => %s, "
                     "prompt_template => '{{content}}', options => %s::jsonb)",
                     (name, MODEL, options))
        conn.execute(f"SELECT answer FROM {name} WHERE content = 'warm up'").fetchall()
    prompts = [f"question {i}" for i in range(PROMPTS)]
    results = {}
    for name in ("cached", "uncached"):
        sql = f"SELECT answer, cached FROM {name} WHERE content = ANY(%s)"
        results[name] = [timed(conn, sql, (prompts,)) for _ in range(2)]

    print(f"== {PROMPTS}-prompt = ANY query twice, endpoint answers after "
          f"{DELAY_S * 1000:.0f} ms, concurrency 8 (target: second run <= {TARGET:.0%} of the first)")
    print(f"{'model':10s} {'first run':>10s} {'second run':>11s} {'second/first':>13s} "
          f"{'cached rows (1st, 2nd)':>24s}")
    for name, ((s1, n1, c1), (s2, n2, c2)) in results.items():
        print(f"{name:10s} {s1:9.3f}s {s2:10.3f}s {s2 / s1:12.1%}  {c1:>10d}, {c2:d} of {n2}")
    (s1, _, _), (s2, _, _) = results["cached"]
    print(f"cache: second run is {s2 / s1:.1%} of the first -> "
          f"{'meets' if s2 / s1 <= TARGET else 'MISSES'} the {TARGET:.0%} target")


if __name__ == "__main__":
    main()
