"""`pg-llm evaluate ...` and `pg-llm plot evaluation <id|latest>` (psycopg; CLI side only).

Both connect with --dsn or the PG* environment variables, like `pg-llm jobs`.
"""

from __future__ import annotations

import sys

from pg_llm.cli import plot_subparsers
from pg_llm.evaluate.report import format_table


def _connect(dsn: str | None):
    import psycopg

    conn = psycopg.connect(dsn or "", autocommit=True)
    # llm_evaluate reports progress and its table as NOTICEs: show them as they come.
    conn.add_notice_handler(lambda diag: print(diag.message_primary, file=sys.stderr, flush=True))
    return conn


def run_evaluation(conn, models: list[str], data: str, *, name=None, max_tokens=200,
                   statement_timeout_ms=2000) -> list[dict]:
    cursor = conn.execute(
        "SELECT * FROM llm_evaluate(%s, %s, name => %s, max_tokens => %s, "
        "statement_timeout_ms => %s)", (models, data, name, max_tokens, statement_timeout_ms))
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def cmd_evaluate(args) -> int:
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    with _connect(args.dsn) as conn:
        rows = run_evaluation(conn, models, args.data, name=args.name,
                              max_tokens=args.max_tokens,
                              statement_timeout_ms=args.statement_timeout_ms)
        print(format_table(rows))
        if args.chart:
            from pg_llm.evaluate.charts import plot_run

            plot_run(conn, str(rows[0]["evaluation_id"]), args.chart)
            print(f"wrote {args.chart}")
    return 0


def cmd_plot_evaluation(args) -> int:
    from pg_llm.evaluate.charts import plot_run

    with _connect(args.dsn) as conn:
        run_id, labels = plot_run(conn, args.evaluation, args.output)
    print(f"wrote {args.output} (run {run_id}: {', '.join(labels)})")
    return 0


def add_parser(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="compare models on a text-to-SQL data set (calls llm_evaluate)")
    evaluate.add_argument("--models", required=True,
                          help="comma-separated model names or name@version")
    evaluate.add_argument("--data", required=True,
                          help="query returning content (template columns), gold_sql, "
                               "optionally setup_sql and id")
    evaluate.add_argument("--name")
    evaluate.add_argument("--max-tokens", type=int, default=200)
    evaluate.add_argument("--statement-timeout-ms", type=int, default=2000)
    evaluate.add_argument("--chart", help="also write the PNG chart here")
    evaluate.add_argument("--dsn", help="libpq connection string (default: PG* environment)")
    evaluate.set_defaults(func=cmd_evaluate)

    plot = plot_subparsers(subparsers).add_parser(
        "evaluation", help="bar chart of an evaluation run (execution/exact/succinct)")
    plot.add_argument("evaluation", help="an evaluation id (its whole run is drawn) or 'latest'")
    plot.add_argument("-o", "--output", default="evaluation.png")
    plot.add_argument("--dsn", help="libpq connection string (default: PG* environment)")
    plot.set_defaults(func=cmd_plot_evaluation)
