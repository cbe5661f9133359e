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
from .schemas import EVAL_SCHEMAS, TRAIN_SCHEMAS, populate, setup_sql

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


def _examples(schemas: tuple, n: int, seed: int, salt: str, kinds=KINDS) -> list[Example]:
    """n examples, kinds in round-robin (equal coverage), schemas in round-robin per kind,
    no repeated question on the same schema."""
    if n <= 0:
        return []
    rng = random.Random(f"{seed}:{salt}")
    dbs = {s.key: populate(s, seed) for s in schemas}
    setups = {s.key: setup_sql(s, dbs[s.key]) for s in schemas}
    order = list(schemas)
    rng.shuffle(order)
    # Kinds and schemas both go round-robin; their counts are coprime (5 kinds; 14 and 6
    # schemas), so every schema meets every kind and even a small split spans many schemas.
    made = distinct_questions(
        n, kinds, order, lambda kind, schema: ask(rng.choice(TEMPLATES[kind]),
                                                  Context(schema, dbs[schema.key], rng)),
        key=lambda schema: schema.key, patience=30, rounds=4, what="questions")
    return [Example(i, schema.key, kind, question, user_message(schema.ddl(), question), sql,
                    setups[schema.key])
            for i, (kind, schema, question, sql) in enumerate(made, start=1)]


def distinct_questions(n: int, kinds, targets: list, make, *, key, patience: int, rounds: int,
                       what: str) -> list[tuple]:
    """n (kind, target, question, sql), kinds and targets (schemas) in round-robin, no question
    twice on one key(target). make(kind, target) gives (question, sql) or None; a target that
    cannot give a new question of this kind (a single table has no join) hands the slot to
    the next one after `patience` tries; RuntimeError after `rounds` fruitless passes."""
    seen: set = set()
    out: list[tuple] = []
    failures = 0
    while len(out) < n:
        kind = kinds[len(out) % len(kinds)]
        target = targets[(len(out) + failures // patience) % len(targets)]
        made = make(kind, target)
        if made is None or (key(target), made[0]) in seen:
            failures += 1
            if failures > patience * len(targets) * rounds:
                raise RuntimeError(f"could not generate {n} distinct {what} (got {len(out)})")
            continue
        failures = 0
        seen.add((key(target), made[0]))
        out.append((kind, target, *made))
    return out


def generate(n_train: int = 400, n_eval: int = 60, seed: int = 42,
             train_kinds=KINDS) -> tuple[list[Example], list[Example]]:
    """(training examples on TRAIN_SCHEMAS, evaluation examples on EVAL_SCHEMAS).
    train_kinds: the round-robin of question kinds in training (a kind listed twice gets
    twice the share); evaluation always uses KINDS once each."""
    return (_examples(TRAIN_SCHEMAS, n_train, seed, "train", train_kinds),
            _examples(EVAL_SCHEMAS, n_eval, seed, "eval"))


def long_format_rows(examples: list[Example]) -> list[tuple[int, int, str, str]]:
    """(chat_id, message_id, role, content) rows: the tutorial's demo_data table."""
    return [(ex.id, i, m["role"], m["content"])
            for ex in examples for i, m in enumerate(ex.messages(), start=1)]


def multi_turn_rows(examples: list[Example], turns: int) -> list[tuple[int, int, str, str]]:
    """Like long_format_rows, but up to `turns` questions on one schema make one conversation:
    the first user turn holds the schema and a question, each later one only `-- question`
    (the schema is already in the conversation). Conversations keep the order of their first
    question, so a prefix keeps the mix of the examples."""
    by_schema: dict[str, list[Example]] = {}
    for ex in examples:
        by_schema.setdefault(ex.schema_key, []).append(ex)
    chats = [group[i:i + turns] for group in by_schema.values()
             for i in range(0, len(group), turns)]
    chats.sort(key=lambda chat: chat[0].id)
    rows = []
    for chat_id, chat in enumerate(chats, start=1):
        messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        for n, ex in enumerate(chat):
            messages.append({"role": "user",
                             "content": ex.content if n == 0 else f"-- {ex.question}"})
            messages.append({"role": "assistant", "content": ex.gold_sql})
        rows += [(chat_id, i, m["role"], m["content"]) for i, m in enumerate(messages, start=1)]
    return rows
