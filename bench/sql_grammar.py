"""Schema-constrained SQL decoding (model option sql_grammar_from) on the tutorial's fine-tuned
SmolLM2-135M: execution match with and without the grammar, side by side in one run.

1. The tutorial's held-out split (examples/02's default: 40 simple + 10 real-style in the
   trained styles + 10 in the never-trained `documented` style), the fine-tuned adapter of
   the last `pg-llm demo` (.demo/engine/jobs/<job>, copied into this benchmark's engine
   directory), scored by llm_evaluate and split by style, join need and kind
   (pg_llm_tutorial/breakdown.py).
2. sql-create-context (`make eval-shared`): the first 100 questions of eval.jsonl, with an
   adapter trained here on the first --shared-n-train convertible rows of train.jsonl with
   the tutorial's recipe (3 epochs; never on eval.jsonl). It is kept in the engine directory
   and reused by the next run.
3. Decode speed: tokens per second between the first and the last streamed token, the same
   prompts with and without the grammar, fine-tuned and base model, one request at a time.

    .venv/bin/python bench/sql_grammar.py [--engine-dir DIR] [--skip-shared] [--base]

`--base` also scores the base and prompt-engineered models (slow: ~150 tokens per answer).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from pathlib import Path

import httpx
import psycopg

from local_common import ROOT, load_average, local_server
from private_cluster import bench_database

sys.path.insert(0, str(ROOT))
from pg_llm import sql_grammar  # noqa: E402
from pg_llm_tutorial import breakdown  # noqa: E402
from pg_llm_tutorial.data import eval_rows, load_tables  # noqa: E402
from pg_llm_tutorial.generator import SYSTEM_PROMPT, generate  # noqa: E402
from pg_llm_tutorial.realistic import mixed_eval  # noqa: E402

BASE = "smollm2-135m-instruct"
SUCCINCT = ("Write one PostgreSQL query that answers the question. Reply with the SQL query "
            "only: no explanation, no markdown, no comments.\n\n{{content}}\n\nSQL:")
MAX_TOKENS = 200  # examples/05's eval_max_tokens
SHARED_MARKER = "shared_model_id.txt"


def newest_tutorial_job(jobs: Path) -> Path | None:
    done = [p for p in jobs.glob("ftjob-*") if (p / "adapter.gguf").is_file()
            and json.loads((p / "job.json").read_text()).get("status") == "succeeded"]
    return max(done, key=lambda p: p.stat().st_mtime, default=None)


def prepare_engine_dir(engine_dir: Path, tutorial_job: Path) -> str:
    """The engine directory serves the tutorial's adapter (copied): its fine-tuned model id."""
    target = engine_dir / "jobs" / tutorial_job.name
    if not target.exists():
        shutil.copytree(tutorial_job, target)
    return json.loads((target / "job.json").read_text())["fine_tuned_model"]


def create_models(conn, prefix: str, model_id: str, *, base: bool) -> list[str]:
    """<prefix> and <prefix>_grammar on the fine-tuned id (version 1 of each: the same
    weights); with `base`, the base and prompt-engineered models the same two ways."""
    entries = []
    specs = [(prefix, model_id, "{{content}}")]
    if base:
        specs += [(f"{prefix}_base", BASE, "{{content}}"), (f"{prefix}_succinct", BASE, SUCCINCT)]
    for name, provider_id, template in specs:
        for suffix, options in (("", {"temperature": 0}),
                                ("_grammar", {"temperature": 0, "sql_grammar_from": "content"})):
            conn.execute("SELECT llm_create_model(%s, 'local', %s, %s, system_prompt => %s, "
                         "options => %s::jsonb)", (name + suffix, provider_id, template,
                                                   SYSTEM_PROMPT, json.dumps(options)))
            entries.append(name + suffix)
    return entries


def evaluate(conn, entries: list[str], name: str) -> tuple[list, float]:
    started = time.perf_counter()
    rows = conn.execute(
        "SELECT model, n, execution_match, succinct_rate, avg_completion_tokens, avg_latency_ms "
        "FROM llm_evaluate(models => %s, data => 'SELECT id, content, gold_sql, setup_sql "
        "FROM demo_eval ORDER BY id', name => %s, max_tokens => %s)",
        (entries, name, MAX_TOKENS)).fetchall()
    return rows, time.perf_counter() - started


def print_scores(rows, seconds: float) -> None:
    print(f"  {'model':24s} {'n':>4s} {'exec match':>11s} {'succinct':>9s} {'tokens':>7s} "
          f"{'latency ms':>11s}")
    for model, n, em, sr, tokens, latency in rows:
        print(f"  {model:24s} {n:4d} {100 * em:10.0f}% {100 * sr:8.0f}% {tokens:7.1f} "
              f"{latency:11.0f}")
    print(f"  ({seconds:.0f} s for the evaluation, load {load_average()})")


def tutorial_part(conn, model_id: str, base: bool) -> list[str]:
    _, simple = generate(n_train=0, n_eval=40)
    load_tables(conn, [], eval_rows(mixed_eval(simple, 10, 10, 42)))
    entries = create_models(conn, "ft_sql", model_id, base=base)
    rows, seconds = evaluate(conn, entries, "sql_grammar tutorial")
    print(f"\n== tutorial held-out split (40 simple + 10 real-style + 10 documented), "
          f"max_tokens {MAX_TOKENS}, temperature 0")
    print_scores(rows, seconds)
    print(breakdown.format_breakdown(breakdown.read_breakdown(conn)))
    kinds = breakdown.read_breakdown(conn).get("kind") or []
    if kinds:
        print("\n  execution match by kind:")
        for entry in dict.fromkeys(r["entry"] for r in kinds):
            cells = ", ".join(f"{r['part']} {100 * r['execution_match']:.0f}% of {r['n']}"
                              for r in kinds if r["entry"] == entry)
            print(f"  {entry:22s} {cells}")
    return [r[0] for r in rows]


def shared_model(conn, engine_dir: Path, n_train: int) -> str:
    """The adapter trained on train.jsonl (reused from an earlier run of this benchmark)."""
    if getattr(shared_model, "given", None):
        return shared_model.given
    marker = engine_dir / SHARED_MARKER
    if marker.is_file():
        return marker.read_text().strip()
    conn.execute("SELECT llm_create_model('ft_shared_train', 'local', %s, '{{content}}', "
                 "system_prompt => %s, options => '{\"temperature\": 0}')", (BASE, SYSTEM_PROMPT))
    started = time.perf_counter()
    conn.execute("SELECT * FROM llm_finetune('ft_shared_train', format('SELECT * FROM demo_data "
                 "WHERE chat_id <= %%s ORDER BY chat_id, message_id', %s::int), "
                 "options => '{\"n_epochs\": 3}')", (n_train,))
    status = conn.execute("SELECT status, trained_tokens FROM llm_wait('ft_shared_train')").fetchone()
    model_id = conn.execute("SELECT provider_model_id FROM llm.model_versions WHERE "
                            "model = 'ft_shared_train' ORDER BY version DESC LIMIT 1").fetchone()[0]
    print(f"  trained {model_id} on {n_train} train.jsonl conversations x 3 epochs: {status} "
          f"in {time.perf_counter() - started:.0f} s (load {load_average()})", flush=True)
    marker.write_text(model_id)
    return model_id


def shared_part(conn, engine_dir: Path, n_train: int, base: bool) -> None:
    from pg_llm_tutorial.shared_dataset import load_shared

    loaded = load_shared(conn, n_train, 100)
    model_id = shared_model(conn, engine_dir, n_train)
    entries = create_models(conn, "shared", model_id, base=base)
    rows, seconds = evaluate(conn, entries, "sql_grammar shared")
    trained = (f"adapter {model_id} (--shared-model)" if getattr(shared_model, "given", None)
               else f"adapter trained on {n_train} train.jsonl rows")
    print(f"\n== sql-create-context eval.jsonl, first {loaded['eval']} convertible questions "
          f"(make eval-shared), {trained}")
    print_scores(rows, seconds)
    print(breakdown.format_breakdown(breakdown.read_breakdown(conn)))


def decode_speed(url: str, model_id: str, prompts: list[str]) -> None:
    """tokens/s from the first to the last streamed token: decoding only, no prompt."""
    print(f"\n== decode speed, {len(prompts)} prompts one at a time, max_tokens 48, "
          f"temperature 0 (load {load_average()} before)")
    print(f"  {'model':24s} {'grammar':>8s} {'tokens':>7s} {'tokens/s':>9s}")
    with httpx.Client(timeout=600) as client:
        for label, model in (("fine-tuned", model_id), ("base", BASE)):
            for use in (False, True):
                tokens, seconds = 0, 0.0
                for prompt in prompts:
                    n, s = _stream(client, url, model, prompt,
                                   sql_grammar.grammar_for_ddl(prompt) if use else None)
                    tokens += n
                    seconds += s
                print(f"  {label:24s} {'on' if use else 'off':>8s} {tokens:7d} "
                      f"{tokens / seconds if seconds else 0:9.1f}", flush=True)
    print(f"  (load {load_average()} after)")


def _stream(client, url, model, prompt, grammar) -> tuple[int, float]:
    body = {"model": model, "stream": True, "max_tokens": 48, "temperature": 0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                         {"role": "user", "content": prompt}]}
    if grammar:
        body["grammar"] = grammar
    first = last = None
    tokens = 0
    with client.stream("POST", f"{url}/chat/completions", json=body) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                last = time.perf_counter()
                first = first or last
    # tokens after the first one, over the time they took
    return max(0, tokens - 1), (last - first) if first and last else 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine-dir", default="/tmp/pg_llm-bench-sql-grammar")
    p.add_argument("--tutorial-job", default=None,
                   help="a succeeded job directory (default: the newest in .demo/engine/jobs)")
    p.add_argument("--shared-n-train", type=int, default=300)
    p.add_argument("--shared-model", default=None,
                   help="score this served model id on the shared questions instead of "
                        "training one ('tutorial': the tutorial's adapter)")
    p.add_argument("--skip-shared", action="store_true")
    p.add_argument("--skip-tutorial", action="store_true")
    p.add_argument("--base", action="store_true", help="also the base and prompt-engineered models")
    args = p.parse_args()
    # a background run ignores SIGINT: let `kill` stop the engine and the cluster too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    engine_dir = Path(args.engine_dir)
    engine_dir.mkdir(parents=True, exist_ok=True)
    job = Path(args.tutorial_job) if args.tutorial_job else newest_tutorial_job(ROOT / ".demo/engine/jobs")
    if job is None:
        sys.exit("no fine-tuned tutorial adapter: run `make demo` first, or pass --tutorial-job")
    model_id = prepare_engine_dir(engine_dir, job)
    if args.shared_model:
        shared_model.given = model_id if args.shared_model == "tutorial" else args.shared_model
    print(f"sql_grammar bench: {time.strftime('%Y-%m-%d %H:%M:%S')}, tutorial adapter "
          f"{model_id}, load {load_average()}", flush=True)
    started = time.perf_counter()
    with local_server("--threads", "2", data_dir=str(engine_dir)) as url, \
            bench_database("bench_sql_grammar") as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION pg_llm CASCADE")
        conn.execute("SELECT llm_create_engine('local', provider => 'local', base_url => %s, "
                     "options => '{\"timeout\": 1800}')", (url,))
        prompts = []
        if not args.skip_tutorial:
            tutorial_part(conn, model_id, args.base)
            prompts = [r[0] for r in conn.execute(
                "SELECT content FROM demo_eval ORDER BY id LIMIT 12")]
            decode_speed(url, model_id, prompts)
        if not args.skip_shared:
            info = conn.info
            conn.execute("DROP DATABASE IF EXISTS bench_sql_grammar_shared")
            conn.execute("CREATE DATABASE bench_sql_grammar_shared")
            with psycopg.connect(host=info.host, port=info.port, user=info.user,
                                 dbname="bench_sql_grammar_shared", autocommit=True) as shared:
                shared.execute("SET client_min_messages = warning")
                shared.execute("CREATE EXTENSION pg_llm CASCADE")
                shared.execute("SELECT llm_create_engine('local', provider => 'local', "
                               "base_url => %s, options => '{\"timeout\": 1800}')", (url,))
                shared_part(shared, engine_dir, args.shared_n_train, args.base)
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load {load_average()}")


if __name__ == "__main__":
    main()
