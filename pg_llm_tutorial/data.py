"""The tutorial's two tables, written by the client, never by the database server:
`pg-llm demo-data train|eval` prints a split as CSV for psql's `\\copy ... FROM PROGRAM`
(examples/02-demo-data.sql), and `load_tables` fills them over psycopg (the shared data set,
tests). Loading needs no privilege beyond creating two tables: no PL/Python, no superuser.

    demo_data(chat_id, message_id, role, content)  long chat format, one row per message
    demo_eval(id, content, gold_sql, setup_sql, schema_key, kind)  held-out questions on
        schemas the training split never uses; setup_sql builds a database gold_sql runs on
"""

from __future__ import annotations

import csv
import sys

from .generator import Example, generate, long_format_rows

TRAIN_TABLE = ("chat_id int, message_id int, role text, content text, "
               "PRIMARY KEY (chat_id, message_id)")
EVAL_TABLE = ("id int PRIMARY KEY, content text, gold_sql text, setup_sql text, "
              "schema_key text, kind text")
MAX_EXAMPLES = 100_000


def train_rows(train: list[Example]) -> list[tuple]:
    return long_format_rows(train)


def eval_rows(evals: list[Example]) -> list[tuple]:
    return [(e.id, e.content, e.gold_sql, e.setup_sql, e.schema_key, e.kind) for e in evals]


def describe(split: str, examples: list[Example]) -> str:
    schemas = sorted({e.schema_key for e in examples})
    if split == "train":
        return (f"{len(examples)} training conversations (system, user, assistant) on "
                f"{len(schemas)} schemas: {', '.join(schemas)}")
    return (f"{len(examples)} held-out questions on {len(schemas)} schemas never used in "
            f"training: {', '.join(schemas)}")


def load_tables(conn, train_rows_: list[tuple], eval_rows_: list[tuple],
                train_table: str = "demo_data", eval_table: str = "demo_eval") -> None:
    """(Re)creates both tables in the connection's current schema and copies the rows in."""
    for table, columns, rows in ((train_table, TRAIN_TABLE, train_rows_),
                                 (eval_table, EVAL_TABLE, eval_rows_)):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} ({columns})")
        with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def load_demo_data(conn, n_train: int = 400, n_eval: int = 60, seed: int = 42) -> None:
    train, evals = generate(n_train=n_train, n_eval=n_eval, seed=seed)
    load_tables(conn, train_rows(train), eval_rows(evals))


CLI_DESCRIPTION = ("Print one split of the tutorial's data as CSV on stdout (a summary line on "
                   "stderr), for psql: \\copy demo_data FROM PROGRAM 'pg-llm demo-data train' "
                   "WITH (FORMAT csv)")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo-data", description=CLI_DESCRIPTION,
                              help="the tutorial's training or evaluation split as CSV")
    p.add_argument("split", choices=("train", "eval"))
    p.add_argument("--n", type=int, default=None,
                   help="conversations (train, default 400) or questions (eval, default 60)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--real", type=int, default=0,
                   help="how many of the --n are written in real-style schemas (realistic.py)")
    p.add_argument("--style", type=int, default=0,
                   help="eval: how many of the --n are in the schema style training never uses")
    p.set_defaults(func=run)


def run(args) -> int:
    low = 1 if args.split == "train" else 0
    n = args.n if args.n is not None else (400 if args.split == "train" else 60)
    if not low <= n <= MAX_EXAMPLES:
        print(f"pg-llm demo-data: --n must be between {low} and {MAX_EXAMPLES}, got {n}. "
              "Hint: the tutorial uses 400 training conversations and 60 questions.",
              file=sys.stderr)
        return 2
    n_real, n_style = args.real, args.style if args.split == "eval" else 0
    if n_real < 0 or n_style < 0 or n_real + n_style > n:
        print(f"pg-llm demo-data: --real and --style must be >= 0 and add up to at most --n ({n}). "
              "Hint: the tutorial mixes real-style questions into its splits this way.",
              file=sys.stderr)
        return 2
    n_simple = n - n_real - n_style
    train, evals = generate(n_train=n_simple if args.split == "train" else 0,
                            n_eval=n_simple if args.split == "eval" else 0, seed=args.seed)
    examples = train if args.split == "train" else evals
    if n_real or n_style:  # issue 15: real-style schemas mixed in evenly
        from .realistic import mixed_eval, mixed_train
        examples = (mixed_train(examples, n_real, args.seed) if args.split == "train"
                    else mixed_eval(examples, n_real, n_style, args.seed))
    rows = train_rows(examples) if args.split == "train" else eval_rows(examples)
    csv.writer(sys.stdout, lineterminator="\n").writerows(rows)
    print(describe(args.split, examples), file=sys.stderr)
    return 0
