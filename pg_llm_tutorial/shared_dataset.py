"""`pg-llm demo --dataset shared` (make eval-shared): the same tutorial and evaluation, with
../shared/datasets/sql-create-context in place of the built-in generator.

Both splits go through pg_llm_tutorial.sqlite_compat (SQLite -> PostgreSQL, synthetic rows
built from each gold query's conditions), so the model is trained on the same SQL style it is
scored against. Training uses only train.jsonl; eval.jsonl is only evaluated on.
"""

from __future__ import annotations

import time
from pathlib import Path

from .data import load_tables
from .generator import SYSTEM_PROMPT
from .processes import ROOT, Cluster, DemoError, LocalEngineProcess
from .runner import (STEPS, StepFailed, StepResult, format_summary, read_outcome, run_tutorial,
                     tutorial_variables, write_summary)
from .sqlite_compat import load_examples

SHARED_DIR = ROOT.parent / "shared" / "datasets" / "sql-create-context"
# The tutorial's own steps, minus step 2 (the generator), which the loader below replaces.
SHARED_STEPS = ("01-engine-and-model.sql", "03-finetune.sql", "04-query-versions.sql",
                "05-evaluate.sql", "06-budget-guard.sql")


def question_kind(sql: str) -> str:
    """The generator's kinds, read off a gold query, for the per-kind table of step 5."""
    upper = f" {sql.upper()} "
    if " JOIN " in upper:
        return "join"
    if " GROUP BY " in upper:
        return "group"
    if " ORDER BY " in upper:
        return "order"
    if any(f in upper for f in ("COUNT(", "SUM(", "AVG(", "MIN(", "MAX(")):
        return "aggregate"
    return "filter"


def load_shared(conn, n_train: int, eval_limit: int | None, data_dir: Path = SHARED_DIR) -> dict:
    """demo_data (long chat format) from train.jsonl, demo_eval from eval.jsonl."""
    train_path, eval_path = data_dir / "train.jsonl", data_dir / "eval.jsonl"
    for path in (train_path, eval_path):
        if not path.is_file():
            raise DemoError(f"{path} is missing: --dataset shared needs the shared data set "
                            f"at {data_dir}")
    train, train_skipped = load_examples(str(train_path), limit=n_train)
    evals, eval_skipped = load_examples(str(eval_path), limit=eval_limit)
    train_rows = [(chat_id, message_id, role, content)
                  for chat_id, ex in enumerate(train, start=1)
                  for message_id, (role, content) in enumerate(
                      (("system", SYSTEM_PROMPT), ("user", ex.content), ("assistant", ex.gold_sql)),
                      start=1)]
    eval_rows = [(ex.id, ex.content, ex.gold_sql, ex.setup_sql, "sql-create-context",
                  question_kind(ex.gold_sql)) for ex in evals]
    load_tables(conn, train_rows, eval_rows)
    return {"train": len(train), "train_skipped": train_skipped, "eval": len(evals),
            "eval_skipped": eval_skipped}


def run_shared(args, cluster: Cluster, engine: LocalEngineProcess, dbname: str,
               started: float) -> int:
    import psycopg

    out = Path(args.dir) / "out" / "shared"  # its charts must not replace the tutorial's
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with psycopg.connect(cluster.dsn(dbname), autocommit=True) as conn:
        loaded = load_shared(conn, args.n_train, args.eval_limit)
    load_step = StepResult("(load shared data set)",
                           f"{loaded['train']} training conversations from train.jsonl, "
                           f"{loaded['eval']} questions from eval.jsonl", time.monotonic() - t0)
    print(f"pg-llm demo: loaded {load_step.title} (not convertible to PostgreSQL, skipped: "
          f"{loaded['train_skipped']} train, {loaded['eval_skipped']} eval)", flush=True)
    variables = tutorial_variables(args, engine)
    variables["out_dir"] = str(out)
    variables["eval_limit"] = None  # demo_eval already holds exactly the questions to use
    variables["n_generate"] = loaded["train"]
    titles = dict(STEPS)
    try:
        steps = run_tutorial(cluster.env(dbname), variables, echo=not args.quiet,
                             log_dir=out / "logs",
                             steps=[(f, titles[f]) for f in SHARED_STEPS])
    except StepFailed as exc:
        print(f"\npg-llm demo: {exc}; full output in {out / 'logs'}; engine log: "
              f"{engine.log_path}")
        return 1
    total = time.monotonic() - started
    outcome = read_outcome(cluster.dsn(dbname))
    print(format_summary([load_step, *steps], outcome, total))
    write_summary(out / "summary.json", [load_step, *steps], outcome, total)
    print(f"\n  charts in {out}: {', '.join(sorted(p.name for p in out.glob('*.png'))) or 'none'}")
    return 0
