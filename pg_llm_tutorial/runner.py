"""Runs the tutorial's SQL files through the real psql client, echoing every statement and
its result, timing each step; then reads the outcome back from the catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .processes import ROOT

EXAMPLES = ROOT / "examples"
STEPS = (
    ("01-engine-and-model.sql", "engine and model; the base model's answer"),
    ("02-demo-data.sql", "training data and held-out split"),
    ("03-finetune.sql", "dry run, budget, fine-tune"),
    ("04-query-versions.sql", "fine-tuned answer; prompt-engineered model"),
    ("05-evaluate.sql", "evaluation: base vs prompt-engineered vs fine-tuned"),
    ("06-budget-guard.sql", "budget guard"),
)


class StepFailed(RuntimeError):
    def __init__(self, step: str, returncode: int, output: str):
        super().__init__(f"{step} failed (psql exit code {returncode})")
        self.step, self.returncode, self.output = step, returncode, output


@dataclass
class StepResult:
    file: str
    title: str
    seconds: float
    output: str = field(repr=False, default="")


def psql_env(pg_env: dict) -> dict:
    """psql's environment: the cluster's PG* variables, and this interpreter's bin directory
    first on PATH so the scripts' `\\! pg-llm ...` lines find the CLI."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, **pg_env, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "PSQL_PAGER": "", "PAGER": "cat", "PGOPTIONS": "-c client_min_messages=notice"}


def run_step(file: Path, pg_env: dict, variables: dict, *, echo: bool = True,
             log_dir: Path | None = None, cwd: Path = ROOT) -> StepResult:
    """`psql -a -f file` (-a echoes each input line, so the reader sees every statement
    before its result); NOTICEs are interleaved in order because stderr joins stdout."""
    cmd = ["psql", "-X", "-a", "-v", "ON_ERROR_STOP=1", "-P", "pager=off", "-f", str(file)]
    for name, value in variables.items():
        if value is not None:
            cmd += ["-v", f"{name}={value}"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=psql_env(pg_env), cwd=str(cwd), bufsize=1)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
        proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: do not leave psql (and its query) behind
            proc.terminate()
            proc.wait(10)
    output = "".join(lines)
    if log_dir:
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / (file.stem + ".log")).write_text(output)
    if proc.returncode != 0:
        raise StepFailed(file.name, proc.returncode, output)
    return StepResult(file.name, "", time.monotonic() - started, output)


def tutorial_variables(args, engine) -> dict:
    """psql variables of the examples from `pg-llm demo`'s options."""
    variables = {"base_model": args.model, "n_train": args.n_train,
                 "n_generate": args.n_generate, "n_eval": args.n_eval,
                 "n_epochs": args.epochs, "out_dir": str(Path(args.dir) / "out"),
                 "learning_rate_multiplier": args.learning_rate_multiplier,
                 "eval_limit": args.eval_limit}
    for name in ("n_real", "n_real_eval", "n_style_eval"):  # real-style mix (issue 15)
        if getattr(args, name, None) is not None:
            variables[name] = getattr(args, name)
    if engine.port != 8765:
        variables["engine_url"] = engine.base_url
    return variables


def run_tutorial(pg_env: dict, variables: dict, *, echo: bool = True,
                 log_dir: Path | None = None, steps=STEPS) -> list[StepResult]:
    results = []
    for file, title in steps:
        if echo:
            banner = f" {file}: {title} "
            print(f"\n{banner:=^100}\n", flush=True)
        result = run_step(EXAMPLES / file, pg_env, variables, echo=echo, log_dir=log_dir)
        result.title = title
        results.append(result)
        if echo:
            print(f"\n--- {file} took {result.seconds:.1f} s", flush=True)
    return results


def read_outcome(dsn: str) -> dict:
    """The numbers the summary reports, from the catalog the steps wrote."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        job = conn.execute(
            "SELECT id, status, trained_tokens, extract(epoch FROM finished_at - created_at) "
            "FROM llm.jobs WHERE model = 'ft_sql' ORDER BY id DESC LIMIT 1").fetchone()
        evals = conn.execute(
            "SELECT model, version, n, execution_match, exact_match, succinct_rate, "
            "avg_completion_tokens, avg_latency_ms FROM llm.evaluations "
            "WHERE run_id = (SELECT max(run_id) FROM llm.evaluations) ORDER BY id").fetchall()
        from .breakdown import read_breakdown
        breakdown = read_breakdown(conn)  # per schema style, join need and kind (issue 15)
    return {
        "breakdown": breakdown,
        "job": None if not job else {"id": job[0], "status": job[1], "trained_tokens": job[2],
                                     "seconds": float(job[3]) if job[3] is not None else None},
        "evaluation": [
            {"model": m, "version": v, "n": n, "execution_match": em, "exact_match": xm,
             "succinct_rate": sr, "avg_completion_tokens": ct, "avg_latency_ms": lat}
            for m, v, n, em, xm, sr, ct, lat in evals],
    }


def _pct(x) -> str:
    return "   -" if x is None else f"{100 * x:4.0f}%"


def format_summary(steps: list[StepResult], outcome: dict, total_s: float) -> str:
    lines = ["", "=" * 100, "Summary", ""]
    for s in steps:
        lines.append(f"  {s.file:<28} {s.seconds:7.1f} s   {s.title}")
    lines.append(f"  {'total (incl. set-up)':<28} {total_s:7.1f} s")
    job = outcome.get("job")
    if job:
        secs = f"{job['seconds']:.0f} s" if job["seconds"] is not None else "?"
        lines.append(f"\n  fine-tune job {job['id']}: {job['status']}, {secs}, "
                     f"{job['trained_tokens']} trained tokens")
    if outcome.get("evaluation"):
        lines.append(f"\n  {'model':<22}{'version':>8}{'n':>5}{'exec match':>12}{'exact':>8}"
                     f"{'succinct':>10}{'tokens':>8}")
        for e in outcome["evaluation"]:
            tokens = "-" if e["avg_completion_tokens"] is None else f"{e['avg_completion_tokens']:.0f}"
            lines.append(f"  {e['model']:<22}{e['version'] or '':>8}{e['n']:>5}"
                         f"{_pct(e['execution_match']):>12}{_pct(e['exact_match']):>8}"
                         f"{_pct(e['succinct_rate']):>10}{tokens:>8}")
    from .breakdown import format_breakdown
    lines.append(format_breakdown(outcome.get("breakdown") or {}))
    return "\n".join(lines)


def write_summary(path: Path, steps: list[StepResult], outcome: dict, total_s: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"steps": [{"file": s.file, "seconds": round(s.seconds, 2)}
                                          for s in steps],
                                "total_seconds": round(total_s, 2), **outcome}, indent=2,
                               default=str))
