"""End-to-end fine-tuning from SQL on the real local model (SmolLM2-135M-Instruct, LoRA, CPU).

Starts its own PostgreSQL cluster and `pg-llm serve`, loads N text-to-SQL examples from
shared/datasets/sql-create-context/train.jsonl (never eval.jsonl) into a table in the long chat
format, then runs the tutorial's statements and prints, side by side from this one run:
- tokens: the engine tokenizer's count vs the character-based estimate (ratio),
- estimated vs actually trained tokens (ratio),
- wall time of llm_finetune + llm_wait vs the engine's own training time (overhead ratio),
- trained tokens per second,
- one answer of the base (version 1) and of the fine-tuned version 2.

    .venv/bin/python bench/finetune_e2e.py            # 300 conversations x 3 epochs (~7+ min)
    .venv/bin/python bench/finetune_e2e.py --n 30 --epochs 1   # a quick check
    .venv/bin/python bench/finetune_e2e.py --dry-run-only      # tokens only, no training
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pg_llm_tutorial.processes import Cluster, LocalEngineProcess, free_port  # noqa: E402

TRAIN = Path("/work/shared/datasets/sql-create-context/train.jsonl")
SYSTEM = "Answer with one SQL query and nothing else."
BASE_MODEL = "smollm2-135m-instruct"


def load_examples(conn, n: int) -> None:
    assert TRAIN.name == "train.jsonl"   # the held-out eval.jsonl is never trained on
    rows = []
    with TRAIN.open() as f:
        for chat_id, line in enumerate(f, start=1):
            if chat_id > n:
                break
            ex = json.loads(line)
            rows += [(chat_id, 1, "system", SYSTEM),
                     (chat_id, 2, "user", f"{ex['context']}\n-- {ex['question']}"),
                     (chat_id, 3, "assistant", ex["answer"])]
    conn.execute("CREATE TABLE demo_data (chat_id int, message_id int, role text, content text)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO demo_data VALUES (%s, %s, %s, %s)", rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="conversations to train on")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--dry-run-only", action="store_true",
                        help="only compare the tokenizer count with the estimate (no training)")
    args = parser.parse_args()

    # A SIGTERM (e.g. from `timeout`) must still stop the engine and the cluster below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="pg_llm-ft-bench-"))
    work.chmod(0o755)
    cluster = Cluster(work / "pg", free_port())
    engine = LocalEngineProcess(work / "engine", free_port())
    try:
        cluster.start()
        engine.start()
        with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE ft_bench")
        with psycopg.connect(cluster.dsn("ft_bench"), autocommit=True) as conn:
            return run(conn, engine, args)
    finally:
        engine.stop()
        cluster.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(conn, engine, args) -> int:
    steps = []

    def on_notice(diag):
        msg = diag.message_primary
        if re.search(r"job \d+ step \d+", msg):
            steps.append(msg)
            m = re.search(r"step (\d+)/(\d+)", msg)
            if m and (int(m[1]) % 10 == 0 or m[1] == m[2] or m[1] == "1"):
                print(f"  {msg}", flush=True)
        elif not msg.startswith("pg_llm: fine-tuning job"):
            print(f"  {diag.severity_nonlocalized}: {msg}", flush=True)

    conn.add_notice_handler(on_notice)
    conn.execute("CREATE EXTENSION pg_llm CASCADE")
    conn.execute("SELECT llm_create_engine('local', provider => 'local', base_url => %s)",
                 (engine.base_url,))
    conn.execute("SELECT llm_create_model('ft_sql', engine => 'local', model_name => %s, "
                 "prompt_template => '{{content}}', system_prompt => %s)", (BASE_MODEL, SYSTEM))
    load_examples(conn, args.n)
    options = json.dumps({"n_epochs": args.epochs, "batch_size": args.batch_size})
    query = "SELECT * FROM demo_data"

    t = time.perf_counter()
    dry = conn.execute("SELECT conversations, tokens, estimated_trained_tokens, token_count_method"
                       " FROM llm_finetune('ft_sql', %s, options => %s, dry_run => true)",
                       (query, options)).fetchone()
    dry_s = time.perf_counter() - t
    rough = conn.execute("SELECT tokens FROM llm_finetune('ft_sql', %s, options => %s, "
                         "dry_run => true)",
                         (query, json.dumps({**json.loads(options), "tokenizer": "estimate"}))
                         ).fetchone()[0]

    if args.dry_run_only:
        print(f"{'conversations':34}{dry[0]:>14}")
        print(f"{'tokens (engine tokenizer)':34}{dry[1]:>14}")
        print(f"{'tokens (character estimate)':34}{rough:>14}   ratio estimate/tokenizer "
              f"{rough / dry[1]:.2f}")
        print(f"{'dry run (count + validate)':34}{dry_s:>13.2f}s")
        return 0
    print(f"fine-tuning {dry[0]} conversations x {args.epochs} epochs on {BASE_MODEL} "
          f"(batch {args.batch_size})", flush=True)
    t0 = time.perf_counter()
    job_id = conn.execute("SELECT job_id FROM llm_finetune('ft_sql', %s, options => %s)",
                          (query, options)).fetchone()[0]
    start_s = time.perf_counter() - t0
    cur = conn.execute("SELECT status, trained_tokens, error FROM llm_wait(%s::bigint)", (job_id,))
    status, trained, error = cur.fetchone()
    total_s = time.perf_counter() - t0
    if status != "succeeded":
        print(f"job {job_id} {status}: {error}")
        return 1
    train_s = None
    for (message,) in conn.execute("SELECT message FROM llm.job_events WHERE job_id = %s",
                                   (job_id,)):
        m = re.search(r"Trained \d+ steps in ([\d.]+) s", message or "")
        if m:
            train_s = float(m[1])

    question = conn.execute("SELECT content FROM demo_data WHERE role = 'user' "
                            "ORDER BY chat_id LIMIT 1").fetchone()[0]
    answers = {}
    for version in (1, 2):
        t = time.perf_counter()
        answers[version] = conn.execute(
            "SELECT answer FROM ft_sql WHERE content = %s AND version = %s AND max_tokens = 64",
            (question, version)).fetchone()[0]
        answers[version] = (answers[version], time.perf_counter() - t)

    print()
    print(f"{'':34}{'value':>14}")
    print(f"{'conversations':34}{dry[0]:>14}")
    print(f"{'tokens (engine tokenizer)':34}{dry[1]:>14}")
    print(f"{'tokens (character estimate)':34}{rough:>14}   ratio estimate/tokenizer "
          f"{rough / dry[1]:.2f}")
    print(f"{'dry run (count + validate)':34}{dry_s:>13.2f}s")
    print(f"{'estimated trained tokens':34}{dry[2]:>14}")
    print(f"{'trained tokens (engine)':34}{trained:>14}   ratio trained/estimated "
          f"{trained / dry[2]:.2f}")
    print(f"{'llm_finetune (validate + queue)':34}{start_s:>13.2f}s")
    print(f"{'llm_finetune + llm_wait':34}{total_s:>13.2f}s")
    if train_s:
        print(f"{'engine training time':34}{train_s:>13.2f}s   ratio wall/training "
              f"{total_s / train_s:.2f}")
    print(f"{'trained tokens / s (wall)':34}{trained / total_s:>14.1f}")
    print(f"{'steps reported as NOTICEs':34}{len(steps):>14}")
    print()
    print(f"question: {question!r}")
    for version, (answer, seconds) in answers.items():
        print(f"version {version} ({seconds:.2f} s): {answer!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
