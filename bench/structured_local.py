"""Structured output on the local engine: the tutorial's 60 held-out questions asked through
a model with output_columns, on SmolLM2 (`pg-llm serve`, grammar-constrained decoding).
Target: 100% of the answers parse into the declared types (no `error`).

Side by side in one run, the same questions and the same JSON instruction without the
schema (a plain model whose answer is parsed by the same code afterwards): what the grammar
buys. Runs its own private cluster and engine.
"""

from __future__ import annotations

import os
import sys
import time

from local_common import ROOT, load_average, local_server
from private_cluster import bench_database

sys.path.insert(0, str(ROOT))
from pg_llm import structured_output  # noqa: E402
from pg_llm_tutorial.generator import generate  # noqa: E402

COLUMNS = [["sql", "text"], ["tables", "text[]"]]
SYSTEM = ('Answer with a JSON object {"sql": "<one SQL query>", "tables": ["<table>", ...]} '
          "and nothing else.")
MAX_TOKENS = 256
N = int(os.environ.get("BENCH_N", "60"))  # fewer questions for a quick look


def main() -> None:
    _, evals = generate(n_eval=60)
    questions = [e.content for e in evals][:N]
    with local_server("--threads", "2") as url, bench_database("bench_structured") as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION pg_llm CASCADE")
        conn.execute("SELECT llm_create_engine('local', provider => 'local', base_url => %s, "
                     "options => '{\"timeout\": 900}')", (url,))
        conn.execute("SELECT llm_create_model('typed', 'local', 'smollm2-135m-instruct', "
                     "'{{content}}', system_prompt => %s, output_columns => %s::jsonb, "
                     "options => '{\"temperature\": 0, \"on_error\": \"null\"}')",
                     (SYSTEM, str(COLUMNS).replace("'", '"')))
        conn.execute("SELECT llm_create_model('plain', 'local', 'smollm2-135m-instruct', "
                     "'{{content}}', system_prompt => %s, options => '{\"temperature\": 0}')",
                     (SYSTEM,))
        started = time.perf_counter()
        typed = conn.execute("SELECT content, sql, tables, error, finish_reason FROM typed "
                             "WHERE content = ANY(%s) AND max_tokens = %s",
                             (questions, MAX_TOKENS)).fetchall()
        typed_s = time.perf_counter() - started
        parsed_typed = sum(1 for row in typed if row[3] is None)
        print(f"typed: {parsed_typed} of {len(typed)} parse in {typed_s:.1f} s", flush=True)
        started = time.perf_counter()
        plain = conn.execute("SELECT content, answer FROM plain WHERE content = ANY(%s) "
                             "AND max_tokens = %s", (questions, MAX_TOKENS)).fetchall()
        plain_s = time.perf_counter() - started

    columns = dict(COLUMNS)
    parsed_plain = 0
    for _, answer in plain:
        try:
            structured_output.parse_answer(answer, columns)
            parsed_plain += 1
        except structured_output.StructuredOutputError:
            pass
    print(f"== {len(questions)} tutorial questions, SmolLM2-135M on the local engine, "
          f"max_tokens {MAX_TOKENS}, temperature 0 (load {load_average()})")
    print(f"{'model':28s} {'answers':>8s} {'parse':>6s} {'rate':>7s} {'seconds':>8s}")
    print(f"{'output_columns (grammar)':28s} {len(typed):8d} {parsed_typed:6d} "
          f"{parsed_typed / len(typed):7.1%} {typed_s:8.1f}")
    print(f"{'plain, same instruction':28s} {len(plain):8d} {parsed_plain:6d} "
          f"{parsed_plain / len(plain):7.1%} {plain_s:8.1f}")
    for content, sql, tables, error, finish in typed[:3]:
        print(f"  sql={sql!r} tables={tables} finish={finish}")
    for row in typed:
        if row[3] is not None:
            print(f"  failed: {row[3][:160]} (finish {row[4]})")
    print("target: 100% of the typed answers parse ->",
          "met" if parsed_typed == len(typed) else "MISSED")


if __name__ == "__main__":
    main()
