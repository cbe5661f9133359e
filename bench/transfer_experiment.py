"""Issue 15, point 3: which training mix carries over to real-style schemas? (a measurement,
not a test: the real model, minutes to hours).

Trains one LoRA version per configuration on the tutorial's engine, then scores all of them
in one llm_evaluate over a held-out split mixed like the tutorial's (simple, real-style in
trained styles, real-style in the never-trained `documented` style), and prints execution
match per model x style, per model x kind, and on questions that need a join. Base and
prompt-engineered rows are left out (0% in every measured run, docs/tutorial.md) to save time.

    .venv/bin/python bench/transfer_experiment.py --threads 1 \\
        --config simple:0:3:1 --config mix50:150:3:1 --n-train 300 --eval 10:25:25
    .venv/bin/python bench/transfer_experiment.py --eval-only --grammar-only --config mix50:150:3:1

--config NAME:N_REAL:EPOCHS:LR_MULT[:N_TRAIN][,layers=L][,rank=R][,joins=J][,turns=T]
(N_REAL of the N_TRAIN conversations are real-style; N_TRAIN defaults to --n-train;
layers/rank: the job's lora_layers/lora_rank; joins=J: the join kinds J times in the
training round-robin instead of once; turns=T: T questions on one schema per conversation;
qualify=1: one-table gold answers name every column by its table, pg_llm_tutorial/qualify.py)
Writes <dir>/transfer.json (--eval-only: transfer_eval.json); the cluster and engine live in
<dir> (default .transfer/). Two runs can train at once, each with its own --dir; under load,
--threads 1 per engine steps faster than two threads each.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pg_llm_tutorial.data import load_tables, eval_rows, train_rows  # noqa: E402
from pg_llm_tutorial import questions, realistic_questions  # noqa: E402
from pg_llm_tutorial.generator import generate, multi_turn_rows  # noqa: E402
from pg_llm_tutorial.qualify import qualify  # noqa: E402
from pg_llm_tutorial.processes import Cluster, LocalEngineProcess, free_port  # noqa: E402
from pg_llm_tutorial.realistic import mixed_eval, mixed_train  # noqa: E402
from pg_llm_tutorial.runner import EXAMPLES, run_step  # noqa: E402

DB = "transfer"
BREAKDOWN = """
SELECT e.model, coalesce(nullif(split_part(d.schema_key, '/', 2), ''), 'simple') AS style,
       {group} AS part, count(*), round(avg(coalesce(i.execution_match, false)::int), 3),
       round(avg(i.succinct::int), 3)
FROM llm.evaluations e JOIN llm.evaluation_items i ON i.evaluation_id = e.id
JOIN demo_eval d ON d.id::text = i.item_id
WHERE e.run_id = (SELECT max(run_id) FROM llm.evaluations)
GROUP BY ROLLUP (1, 2, 3) ORDER BY 1, 2, 3"""
# The targets: all real-style questions (trained styles and `documented`), and those
# of them that need a join.
REAL = """
SELECT e.model, (d.gold_sql LIKE '% JOIN %')::text AS needs_join, count(*),
       round(avg(coalesce(i.execution_match, false)::int), 3), round(avg(i.succinct::int), 3)
FROM llm.evaluations e JOIN llm.evaluation_items i ON i.evaluation_id = e.id
JOIN demo_eval d ON d.id::text = i.item_id
WHERE e.run_id = (SELECT max(run_id) FROM llm.evaluations) AND d.schema_key LIKE '%/%'
GROUP BY ROLLUP (1, 2) ORDER BY 1, 2"""


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--config", action="append", required=True)
    p.add_argument("--n-train", type=int, default=300)
    p.add_argument("--eval", default="20:20:20", help="simple:real:style questions")
    p.add_argument("--dir", default=str(ROOT / ".transfer"))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--grammar", action="store_true",
                   help="score again with the schema-constrained SQL grammar (sql_grammar_from)")
    p.add_argument("--joins", action="store_true",
                   help="with --grammar/--grammar-only: also infer missing joins "
                        "(sql_infer_joins_from), the tutorial's default")
    p.add_argument("--grammar-only", action="store_true",
                   help="with --eval-only: score with the grammar only (the plain scores exist)")
    p.add_argument("--threads", type=int, default=None,
                   help="the engine's --threads (1 trains faster than 2 on an oversubscribed machine)")
    p.add_argument("--eval-only", action="store_true",
                   help="score the models an earlier run trained (its database and engine files)")
    args = p.parse_args()
    # kill/Ctrl-C end in the cleanup below (a background start ignores SIGINT otherwise).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    base = Path(args.dir).resolve()
    started = time.monotonic()
    cluster = Cluster.at(base / "pg", free_port())
    engine = LocalEngineProcess(base / "engine", free_port(),
                                ["--threads", str(args.threads)] if args.threads else [],
                                log_path=base / "engine.log")
    import psycopg

    result = {"configs": args.config, "n_train": args.n_train, "eval": args.eval,
              "load_before": os.getloadavg()}
    try:
        cluster.start()
        if args.eval_only:
            conn = psycopg.connect(cluster.dsn(DB), autocommit=True)
            # The catalog keeps the engine's URL: serve the same data dir on the same port.
            url = conn.execute("SELECT base_url FROM llm.engines WHERE name = 'local'").fetchone()[0]
            engine.port = int(url.rsplit(":", 1)[1].split("/")[0])
            engine.start(timeout_s=900)
            names = [spec.split(",")[0].split(":")[0] for spec in args.config]
        else:
            conn, names = _train(args, cluster, engine, result)
        with conn:
            if not args.grammar_only:
                _score(conn, names, result, "")
            if args.grammar or args.grammar_only:
                options = {"sql_grammar_from": "content"}
                if args.joins:
                    options["sql_infer_joins_from"] = "content"
                for name in names:
                    conn.execute("SELECT llm_alter_model(%s, %s)", (name, json.dumps(options)))
                _score(conn, names, result, "grammar_joins_" if args.joins else "grammar_")
    finally:
        engine.stop()
        cluster.stop()
    result["total_seconds"] = round(time.monotonic() - started, 1)
    result["load_after"] = os.getloadavg()
    # --eval-only keeps the training run's transfer.json.
    out = base / ("transfer_eval.json" if args.eval_only else "transfer.json")
    out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, indent=1, default=str))
    return 0


def _score(conn, names, result, prefix):
    """One llm_evaluate of every model on demo_eval; scores overall, by kind, join, real-style."""
    t0 = time.monotonic()
    rows = conn.execute(
        "SELECT model, n, execution_match, succinct_rate FROM llm_evaluate(models => %s, "
        "data => 'SELECT id, content, gold_sql, setup_sql FROM demo_eval ORDER BY id', "
        "name => 'transfer', max_tokens => 200)", (names,)).fetchall()
    result[prefix + "eval_seconds"] = round(time.monotonic() - t0, 1)
    result[prefix + "eval_load"] = os.getloadavg()
    result[prefix + "overall"] = [list(map(str, r)) for r in rows]
    for part, group in (("kind", "d.kind"), ("join", "(d.gold_sql LIKE '% JOIN %')::text")):
        result[f"{prefix}by_{part}"] = [[str(x) for x in r] for r in
                                        conn.execute(BREAKDOWN.format(group=group)).fetchall()]
    result[prefix + "real_style"] = [[str(x) for x in r] for r in conn.execute(REAL).fetchall()]
    print(json.dumps({k: v for k, v in result.items() if k.startswith(prefix + "real")}), flush=True)


def _train(args, cluster, engine, result):
    """Fresh database, the eval split, then one fine-tuned model per --config."""
    import psycopg

    for db, sql in (("postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"),
                    ("postgres", f"CREATE DATABASE {DB}"), (DB, "CREATE EXTENSION pg_llm CASCADE")):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       env={**os.environ, **cluster.env(db)}, check=True)
    engine.start(timeout_s=900)
    run_step(EXAMPLES / "01-engine-and-model.sql", cluster.env(DB),
             {"engine_url": engine.base_url, "answer_tokens": 20}, echo=False)
    n_simple, n_real, n_style = (int(x) for x in args.eval.split(":"))
    _, simple_eval = generate(n_train=0, n_eval=n_simple, seed=args.seed)
    evals = mixed_eval(simple_eval, n_real, n_style, args.seed)
    conn = psycopg.connect(cluster.dsn(DB), autocommit=True)
    load_tables(conn, [], eval_rows(evals))
    names = []
    for spec in args.config:
        head, *extras = spec.split(",")
        extra = dict(e.split("=", 1) for e in extras)
        name, real, epochs, lr, *n_train = head.split(":")
        n_train = int(n_train[0]) if n_train else args.n_train
        joins, turns = int(extra.get("joins", 1)), int(extra.get("turns", 1))
        simple_kinds = questions.KINDS + ("join",) * (joins - 1)
        real_kinds = realistic_questions.KINDS + realistic_questions.MULTI_TABLE_KINDS * (joins - 1)
        # turns > 1: more questions than conversations (and spare ones: a schema's last
        # conversation can be short), cut back to n_train conversations below.
        simple, _ = generate(n_train=(n_train - int(real)) * turns, n_eval=0, seed=args.seed,
                             train_kinds=simple_kinds)
        train = mixed_train(simple, int(real) * turns, args.seed, kinds=real_kinds)
        if extra.get("qualify") == "1":
            train = [dataclasses.replace(e, gold_sql=qualify(e.gold_sql, e.content))
                     for e in train]
        rows = multi_turn_rows(train, turns) if turns > 1 else train_rows(train)
        rows = [r for r in rows if r[0] <= n_train]
        load_tables(conn, rows, [], f"train_{name}", f"unused_{name}")
        conn.execute(
            "SELECT llm_create_model(%s, engine => 'local', model_name => 'smollm2-135m-instruct', "
            "prompt_template => '{{content}}', predict => 'answer', "
            "system_prompt => 'Answer with one SQL query and nothing else.', "
            "options => '{\"temperature\": 0, \"seed\": 42}')", (name,))
        options = {"n_epochs": int(epochs), "learning_rate_multiplier": float(lr)}
        if "layers" in extra:
            options["lora_layers"] = int(extra["layers"])
        if "rank" in extra:
            options["lora_rank"] = int(extra["rank"])
        options = json.dumps(options)
        conn.execute("SELECT * FROM llm_finetune(%s, %s, options => %s)",
                     (name, f"SELECT * FROM train_{name} ORDER BY chat_id, message_id", options))
        t0 = time.monotonic()
        job = conn.execute("SELECT id, status, trained_tokens FROM llm_wait(%s)", (name,)).fetchone()
        result[f"train_{name}"] = {"job": job[0], "status": job[1], "trained_tokens": job[2],
                                   "conversations": n_train, "real": int(real), **extra,
                                   "seconds": round(time.monotonic() - t0, 1),
                                   "load": os.getloadavg()}
        print(name, result[f"train_{name}"], flush=True)
        names.append(name)
    return conn, names


if __name__ == "__main__":
    sys.exit(main())
