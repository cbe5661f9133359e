"""`pg-llm jobs [--watch]` and `pg-llm plot job ID -o loss.png`: follow fine-tuning from a shell.

Both read the catalog over psycopg through pg_llm.catalog.reports (DSN from --dsn, else the
PG* environment variables); `--watch` also calls llm_refresh() each round, so jobs move even
without pg_cron. tqdm and matplotlib are imported here only: the backend never imports this
module.
"""

from __future__ import annotations

import sys
import time

from pg_llm.catalog import reports
from pg_llm.cli import plot_subparsers


def _connect(dsn: str | None):
    import psycopg

    return psycopg.connect(dsn or "", autocommit=True)


def _fmt(value, spec="") -> str:
    return "-" if value is None else format(value, spec)


def print_jobs(jobs: list[dict], out=sys.stdout) -> None:
    header = f"{'id':>5}  {'model':<16} {'status':<10} {'step':>9}  {'loss':>8}  {'version':>7}  error"
    print(header, file=out)
    for j in jobs:
        step = f"{_fmt(j['step'])}/{_fmt(j['total_steps'])}" if j["step"] else "-"
        print(f"{j['id']:>5}  {j['model'][:16]:<16} {j['status']:<10} {step:>9}  "
              f"{_fmt(j['loss'], '.4f'):>8}  {_fmt(j['result_version']):>7}  "
              f"{(j['error'] or '')[:60]}", file=out)


def watch(conn, *, interval: float, refresh: bool, out=sys.stderr) -> int:
    """A progress bar per unfinished job until none is left."""
    from tqdm import tqdm

    bars: dict[int, tqdm] = {}
    try:
        while True:
            if refresh:
                conn.execute("SELECT llm_refresh()")
            running = {j["id"]: j for j in reports.jobs(conn, unfinished_only=True, limit=1000)}
            for job_id, j in running.items():
                bar = bars.get(job_id)
                if bar is None:
                    bar = bars[job_id] = tqdm(total=j["total_steps"], desc=f"job {job_id} "
                                              f"{j['model']}", unit="step", file=out,
                                              leave=True, dynamic_ncols=True)
                if j["total_steps"] and bar.total != j["total_steps"]:
                    bar.total = j["total_steps"]
                bar.n = j["step"] or 0
                bar.set_postfix_str(f"{j['status']} loss={_fmt(j['loss'], '.4f')}",
                                    refresh=False)
                bar.refresh()
            for job_id in [k for k in bars if k not in running]:
                final = reports.job(conn, job_id)
                bar = bars.pop(job_id)
                bar.n = final["last_step"] or bar.n    # the steps recorded since the last round
                bar.set_postfix_str(final["status"] + (
                    f" -> version {final['result_version']}" if final["result_version"]
                    else f": {final['error'] or ''}"))
                bar.close()
            if not running:
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 130
    finally:
        for bar in bars.values():
            bar.close()


def cmd_jobs(args) -> int:
    with _connect(args.dsn) as conn:
        if args.watch:
            status = watch(conn, interval=args.interval, refresh=not args.no_refresh)
            print_jobs(reports.jobs(conn, limit=args.limit))
            return status
        if not args.no_refresh:
            conn.execute("SELECT llm_refresh()")
        print_jobs(reports.jobs(conn, limit=args.limit))
    return 0


def plot_job(conn, job_id: int, output: str) -> int:
    """Train (and validation) loss per step of one job into a PNG; returns the point count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    job = reports.job(conn, job_id)
    if job is None:
        raise SystemExit(f"pg-llm plot: job {job_id} does not exist (see `pg-llm jobs`)")
    rows = reports.job_losses(conn, job_id)
    if not rows:
        raise SystemExit(f"pg-llm plot: job {job_id} has no step events yet "
                         "(SELECT llm_refresh() records them)")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r[0] for r in rows], [r[1] for r in rows], marker=".", label="train loss")
    valid = [(r[0], r[2]) for r in rows if r[2] is not None]
    if valid:
        ax.plot([v[0] for v in valid], [v[1] for v in valid], marker="o", label="valid loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    version = f", version {job['result_version']}" if job["result_version"] else ""
    ax.set_title(f"job {job_id}: {job['model']} ({job['status']}{version})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return len(rows)


def cmd_plot_job(args) -> int:
    with _connect(args.dsn) as conn:
        n = plot_job(conn, args.job_id, args.output)
    print(f"wrote {args.output} ({n} steps)")
    return 0


def add_parser(subparsers) -> None:
    jobs = subparsers.add_parser("jobs", help="list fine-tuning jobs; --watch shows progress")
    jobs.add_argument("--dsn", help="libpq connection string (default: PG* environment)")
    jobs.add_argument("--watch", action="store_true",
                      help="progress bars until every queued/running job has finished")
    jobs.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    jobs.add_argument("--no-refresh", action="store_true",
                      help="only read the catalog; do not call llm_refresh()")
    jobs.add_argument("--limit", type=int, default=20, help="jobs to list")
    jobs.set_defaults(func=cmd_jobs)

    job = plot_subparsers(subparsers).add_parser("job", help="loss curve of a fine-tuning job")
    job.add_argument("job_id", type=int)
    job.add_argument("-o", "--output", default="loss.png")
    job.add_argument("--dsn", help="libpq connection string (default: PG* environment)")
    job.set_defaults(func=cmd_plot_job)
