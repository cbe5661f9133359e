"""Deterministic text-to-SQL data for the tutorial: training conversations and a held-out
evaluation split on schemas the training never uses.

Pure standard library; `pg-llm demo-data` (data.py) writes it as CSV for psql to load.

    train, evals = generate(n_train=400, n_eval=60, seed=42)
    train[0].messages()  -> [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...}]
    evals[0].setup_sql   -> CREATE TABLE ...; INSERT ...;  (gold_sql returns rows on it)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .questions import KINDS, TEMPLATES, Context, ask
from .schemas import EVAL_SCHEMAS, TRAIN_SCHEMAS, Schema, populate, setup_sql

# The same system prompt at training and inference time; the tutorial's models use it too.
SYSTEM_PROMPT = "Answer with one SQL query and nothing else."


def user_message(ddl: str, question: str) -> str:
    """The user turn: the schema, then the question as an SQL comment."""
    return f"{ddl}\n-- {question}"


@dataclass(frozen=True)
class Example:
    id: int
    schema_key: str
    kind: str
    question: str
    content: str        # the user message (schema + question)
    gold_sql: str
    setup_sql: str

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": self.content},
                {"role": "assistant", "content": self.gold_sql}]


def _examples(schemas: tuple, n: int, seed: int, salt: str) -> list[Example]:
    """n examples, kinds in round-robin (equal coverage), schemas in round-robin per kind,
    no repeated question on the same schema."""
    if n <= 0:
        return []
    rng = random.Random(f"{seed}:{salt}")
    dbs = {s.key: populate(s, seed) for s in schemas}
    setups = {s.key: setup_sql(s, dbs[s.key]) for s in schemas}
    seen: set[tuple[str, str]] = set()
    out: list[Example] = []
    order = list(schemas)
    rng.shuffle(order)
    failures = 0
    while len(out) < n:
        # Kinds and schemas both go round-robin; their counts are coprime (5 kinds; 14 and 6
        # schemas), so every schema meets every kind and even a small split spans many
        # schemas. A schema that cannot give a new question of this kind (a single table has
        # no join) hands the slot to the next schema after a few tries.
        kind = KINDS[len(out) % len(KINDS)]
        schema: Schema = order[(len(out) + failures // 30) % len(order)]
        made = ask(rng.choice(TEMPLATES[kind]), Context(schema, dbs[schema.key], rng))
        if made is None or (schema.key, made[0]) in seen:
            failures += 1
            if failures > 30 * len(order) * 4:
                raise RuntimeError(f"could not generate {n} distinct questions (got {len(out)})")
            continue
        failures = 0
        question, sql = made
        seen.add((schema.key, question))
        out.append(Example(len(out) + 1, schema.key, kind, question,
                           user_message(schema.ddl(), question), sql, setups[schema.key]))
    return out


def generate(n_train: int = 400, n_eval: int = 60, seed: int = 42) -> tuple[list[Example], list[Example]]:
    """(training examples on TRAIN_SCHEMAS, evaluation examples on EVAL_SCHEMAS)."""
    return (_examples(TRAIN_SCHEMAS, n_train, seed, "train"),
            _examples(EVAL_SCHEMAS, n_eval, seed, "eval"))


def long_format_rows(examples: list[Example]) -> list[tuple[int, int, str, str]]:
    """(chat_id, message_id, role, content) rows: the tutorial's demo_data table."""
    return [(ex.id, i, m["role"], m["content"])
            for ex in examples for i, m in enumerate(ex.messages(), start=1)]
