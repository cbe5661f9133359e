"""The real-style splits (issue 15), as generator.Example rows:

    train        TRAIN_DOMAINS in the TRAIN_STYLES
    eval         HELDOUT_DOMAINS in the TRAIN_STYLES (new domains, familiar writing)
    eval_style   HELDOUT_DOMAINS in HELDOUT_STYLE (new domains, a writing never trained on:
                 keys `<table>_no`, table-level constraints, a comment on every column)

schema_key is "<domain>/<style>", so SQL can split the score by style (split_part). Kinds go
round-robin, (domain, style) pairs too; the same seed gives the same rows.
"""

from __future__ import annotations

import random

from .generator import Example, distinct_questions, user_message
from .realistic_questions import KINDS, TEMPLATES, RContext
from .realistic_schemas import (HELDOUT_DOMAINS, HELDOUT_STYLE, TRAIN_DOMAINS, TRAIN_STYLES,
                                ddl, populate, setup_sql)

SPLITS = {
    "train": (TRAIN_DOMAINS, TRAIN_STYLES),
    "eval": (HELDOUT_DOMAINS, TRAIN_STYLES),
    "eval_style": (HELDOUT_DOMAINS, (HELDOUT_STYLE,)),
}


def style_of(schema_key: str) -> str:
    return schema_key.split("/", 1)[1] if "/" in schema_key else "simple"


def realistic_examples(split: str, n: int, seed: int, first_id: int = 1,
                       kinds=KINDS) -> list[Example]:
    """n examples of one split, ids from first_id; no question repeats on a schema.
    kinds: the round-robin of question kinds (a kind listed twice gets twice the share)."""
    if n <= 0:
        return []
    domains, styles = SPLITS[split]
    rng = random.Random(f"{seed}:real:{split}")
    pairs = [(d, s) for d in domains for s in styles]
    rng.shuffle(pairs)
    dbs = {d.key: populate(d, seed) for d in domains}
    made = distinct_questions(
        n, kinds, pairs, lambda kind, pair: TEMPLATES[kind](RContext(*pair, dbs[pair[0].key], rng)),
        key=_schema_key, patience=20, rounds=6, what=f"{split} questions")
    setups: dict = {}
    out: list[Example] = []
    for kind, (domain, style), question, sql in made:
        key = _schema_key((domain, style))
        if key not in setups:
            setups[key] = (ddl(style, domain), setup_sql(style, domain, dbs[domain.key]))
        out.append(Example(first_id + len(out), key, kind, question,
                           user_message(setups[key][0], question), sql, setups[key][1]))
    return out


def _schema_key(pair) -> str:
    domain, style = pair
    return f"{domain.key}/{style.name}"


def interleave(*splits: list[Example]) -> list[Example]:
    """The splits merged evenly (every prefix holds each split in its share, so `chat_id <=
    n_train` and `LIMIT eval_limit` keep the mix), ids renumbered from 1; stable order."""
    tagged = [((i + 0.5) / len(split), n, i, e) for n, split in enumerate(splits)
              for i, e in enumerate(split)]
    tagged.sort(key=lambda t: t[:3])
    return [Example(k, e.schema_key, e.kind, e.question, e.content, e.gold_sql, e.setup_sql)
            for k, (*_, e) in enumerate(tagged, start=1)]


def mixed_train(simple: list[Example], n_real: int, seed: int, kinds=KINDS) -> list[Example]:
    """The simple training split with n_real real-style conversations mixed in."""
    return interleave(simple, realistic_examples("train", n_real, seed, kinds=kinds))


def mixed_eval(simple: list[Example], n_real: int, n_style: int, seed: int) -> list[Example]:
    """The simple held-out split with both real-style held-out splits mixed in."""
    return interleave(simple, realistic_examples("eval", n_real, seed),
                      realistic_examples("eval_style", n_style, seed))
