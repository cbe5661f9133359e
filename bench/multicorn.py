"""The same model queries on the C bridge and on Multicorn2, side by side (docs/multicorn.md).

A loopback engine that answers after 20 ms; each query runs REPEAT times per bridge, in
alternation, and the median is printed with the Multicorn2/C ratio. Also: how long after
statement_timeout = 1 s a scan stuck on a hung engine ends, on each bridge.

    .venv/bin/python bench/multicorn.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fake_openai import FakeOpenAI  # noqa: E402
from private_cluster import bench_database  # noqa: E402

REPEAT = 15
DELAY_S = 0.02
QUERIES = {
    "one constant": "SELECT answer FROM m_{b} WHERE content = 'q' || {i}",
    "= ANY of 40": "SELECT count(answer) FROM m_{b} WHERE content = ANY(ARRAY(SELECT 'q{i}-' || g "
                   "FROM generate_series(1, 40) g))",
    "join of 20 rows": "SELECT count(f.answer) FROM questions q JOIN m_{b} f "
                       "ON f.content = q.t || '{i}'",
}


def main() -> None:
    with FakeOpenAI(models=["m"], delay=DELAY_S) as fake, bench_database("bench_multicorn") as db:
        db.execute("CREATE EXTENSION pg_llm CASCADE")
        db.execute("CREATE EXTENSION multicorn")
        for bridge in ("pg_llm", "multicorn"):
            db.execute(f"SELECT llm_create_engine('e_{bridge}', base_url => %s, bridge => %s)",
                       (fake.url, bridge))
            db.execute(f"SELECT llm_create_model('m_{bridge}', engine => 'e_{bridge}', "
                       "model_name => 'm', prompt_template => '{{content}}')")
        db.execute("CREATE TABLE questions AS SELECT 'row ' || g AS t FROM generate_series(1, 20) g")
        db.execute("ANALYZE questions")
        print(f"engine answers after {DELAY_S * 1000:.0f} ms; median of {REPEAT} runs")
        print(f"{'query':<18}{'C bridge ms':>13}{'Multicorn2 ms':>15}{'ratio':>8}")
        for label, sql in QUERIES.items():
            times = {"pg_llm": [], "multicorn": []}
            for i in range(REPEAT):
                for bridge in times:  # alternate, so drift hits both alike
                    started = time.perf_counter()
                    db.execute(sql.format(b=bridge, i=i)).fetchall()
                    times[bridge].append((time.perf_counter() - started) * 1000)
            c, m = (statistics.median(times[b]) for b in ("pg_llm", "multicorn"))
            print(f"{label:<18}{c:>13.1f}{m:>15.1f}{m / c:>8.2f}")

        fake.hang()
        db.execute("SET statement_timeout = '1s'")
        print(f"{'hung engine':<18}{'C bridge s':>13}{'Multicorn2 s':>15}   (statement_timeout 1 s)")
        ended = {}
        for bridge in ("pg_llm", "multicorn"):
            started = time.perf_counter()
            try:
                db.execute(f"SELECT answer FROM m_{bridge} WHERE content = 'stuck'")
            except psycopg.errors.QueryCanceled:
                ended[bridge] = time.perf_counter() - started
        print(f"{'ends after':<18}{ended['pg_llm']:>13.3f}{ended['multicorn']:>15.3f}")
        fake.release()


if __name__ == "__main__":
    main()
