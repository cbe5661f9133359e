"""The real-style generator (issue 15): varied DDL, keys and nouns, the SQL constructs real
questions need, held-out splits disjoint in domain and in style, and gold SQL that runs on
its rows in PostgreSQL."""

from __future__ import annotations

import collections
import re

import pytest

from pg_llm_tutorial.realistic import SPLITS, realistic_examples, style_of
from pg_llm_tutorial.realistic_questions import KINDS
from pg_llm_tutorial.realistic_schemas import (HELDOUT_DOMAINS, HELDOUT_STYLE, TRAIN_DOMAINS,
                                               TRAIN_STYLES)

SIZES = {"train": 300, "eval": 60, "eval_style": 30}


@pytest.fixture(scope="module")
def splits():
    return {name: realistic_examples(name, n, seed=42) for name, n in SIZES.items()}


def _ddl(example) -> str:
    return example.content.rsplit("\n-- ", 1)[0]


def test_deterministic_per_seed(splits):
    assert realistic_examples("train", 300, seed=42) == splits["train"]
    assert [e.content for e in realistic_examples("train", 300, seed=7)] != \
        [e.content for e in splits["train"]]


def test_schemas_have_three_to_six_tables_and_nouns_that_differ_from_names():
    for domain in TRAIN_DOMAINS + HELDOUT_DOMAINS:
        assert 3 <= len(domain.tables) <= 6, domain.key
        # Some question nouns are not the table's name ("patients" asks about `person`).
        assert any(t.noun.replace(" ", "_") not in (t.name, t.name + "s") for t in domain.tables), domain.key


def test_training_ddl_is_varied(splits):
    ddls = {_ddl(e) for e in splits["train"]}
    text = "\n".join(ddls)
    one_line = [d for d in ddls if all(line.endswith(");") for line in d.splitlines())]
    multi_line = [d for d in ddls if "(\n" in d]
    assert one_line and multi_line
    for construct in ("NOT NULL", "NUMERIC(10,2)", "DATE", "TIMESTAMP", "CHECK (", "DEFAULT ",
                      "  -- ", "integer", "numeric(", "REFERENCES"):
        assert construct in text, construct
    # Keys: `id`, named after the table (`vessel_id`), and natural codes.
    assert re.search(r"\bid INTEGER PRIMARY KEY", text)
    assert re.search(r"\bvessel_id INTEGER PRIMARY KEY", text)
    assert re.search(r"\bcode CHAR\(2\) PRIMARY KEY", text)
    assert any(e.schema_key.endswith("/" + s.name) for s in TRAIN_STYLES for e in splits["train"])


def test_kinds_round_robin_and_constructs(splits):
    for name, split in splits.items():
        counts = collections.Counter(e.kind for e in split)
        assert set(counts) == set(KINDS), name
        assert max(counts.values()) - min(counts.values()) <= 1, (name, counts)
    gold = [e.gold_sql for e in splits["train"]]
    two = [g for g in gold if g.count(" JOIN ") == 1]
    three = [g for g in gold if g.count(" JOIN ") == 2]
    assert len(two) >= 20 and len(three) >= 20
    text = "\n".join(gold)
    for construct in ("HAVING COUNT(*) >", "HAVING AVG(", "DESC LIMIT", "ASC LIMIT", " IN (SELECT ",
                      " NOT IN (SELECT ", "(SELECT AVG(", "SELECT DISTINCT ", "COUNT(DISTINCT ",
                      "EXTRACT(YEAR FROM ", " IS NULL", " IS NOT NULL", " AND "):
        assert construct in text, construct
    # Joins use the key names the schema really has, not a guessed `id`.
    assert any(re.search(r"= \w+\.\w+_id\b", g) for g in two + three)
    assert any(re.search(r"= \w+\.code\b", g) for g in two + three)


def test_held_out_splits_are_disjoint_in_domain_and_style(splits):
    train_tables = {t.name for d in TRAIN_DOMAINS for t in d.tables}
    held_tables = {t.name for d in HELDOUT_DOMAINS for t in d.tables}
    assert not train_tables & held_tables
    for name in ("eval", "eval_style"):
        domains = {e.schema_key.split("/")[0] for e in splits[name]}
        assert domains == {d.key for d in HELDOUT_DOMAINS}
        mentioned = {m for e in splits[name] for m in re.findall(r"CREATE TABLE (\w+)", e.content)}
        assert mentioned <= held_tables
    train_mentioned = {m for e in splits["train"] for m in re.findall(r"CREATE TABLE (\w+)", e.content)}
    assert train_mentioned and not train_mentioned & held_tables
    # The held-out style shares no key suffix, layout or comment density with training.
    assert HELDOUT_STYLE.key_suffix not in {s.key_suffix for s in TRAIN_STYLES}
    assert HELDOUT_STYLE.layout not in {s.layout for s in TRAIN_STYLES}
    assert HELDOUT_STYLE.comments not in {s.comments for s in TRAIN_STYLES}
    assert {style_of(e.schema_key) for e in splits["eval_style"]} == {HELDOUT_STYLE.name}
    assert HELDOUT_STYLE.name not in {style_of(e.schema_key) for e in splits["train"] + splits["eval"]}
    # ...and that shows in the text: no trained key ends in _no, no trained table puts its
    # PRIMARY KEY in a table constraint, and every held-out-style column carries a comment.
    train_text = "\n".join(_ddl(e) for e in splits["train"])
    assert not re.search(r"\b\w+_no INTEGER", train_text)
    assert "    PRIMARY KEY (" not in train_text
    for e in splits["eval_style"]:
        columns = [l for l in _ddl(e).splitlines() if l.startswith("    ") and
                   not l.lstrip().startswith(("PRIMARY KEY", "FOREIGN KEY"))]
        assert columns and all("  -- " in l for l in columns), e.content
        assert re.search(r"\b\w+_no INTEGER NOT NULL", e.content)


def test_questions_are_distinct(splits):
    for name, split in splits.items():
        assert len({e.content for e in split}) == len(split), name


def test_gold_sql_is_one_postgres_statement(splits):
    sqlglot = pytest.importorskip("sqlglot")
    for split in splits.values():
        for e in split:
            parsed = sqlglot.parse(e.gold_sql, read="postgres")
            assert len(parsed) == 1 and parsed[0] is not None, e.gold_sql


def _run_all(conn, examples):
    """Each (domain, style) database in its own PostgreSQL schema; every gold query there."""
    built, results = set(), {}
    for e in examples:
        ns = "real_" + re.sub(r"\W", "_", e.schema_key)
        if ns not in built:
            conn.execute(f"CREATE SCHEMA {ns}")
            conn.execute(f"SET search_path = {ns}")
            conn.execute(e.setup_sql)
            built.add(ns)
        conn.execute(f"SET search_path = {ns}")
        results[e.id] = conn.execute(e.gold_sql).fetchall()
    conn.execute("RESET search_path")
    for ns in built:
        conn.execute(f"DROP SCHEMA {ns} CASCADE")
    return results


def test_every_gold_query_returns_rows(db, splits):
    for name, split in splits.items():
        results = _run_all(db, split)
        for e in split:
            rows = results[e.id]
            assert rows, f"{name}: empty result: {e.question} / {e.gold_sql}"
            assert all(v is not None for v in rows[0]), e.gold_sql
            if e.gold_sql.startswith("SELECT COUNT("):
                assert rows[0][0] > 0, e.gold_sql


def test_the_prompt_ddl_builds_the_database(db, splits):
    """The schema the model reads is exactly the one the answers run on."""
    for split in splits.values():
        for e in split:
            assert e.setup_sql.startswith(_ddl(e) + "\nINSERT INTO ")


def test_order_by_limit_has_no_ties(db, splits):
    for split in splits.values():
        limited = [e for e in split if " LIMIT " in e.gold_sql]
        assert limited
        checks = []
        for e in limited:
            table, column = re.search(r"FROM (\w+) ORDER BY (\w+)", e.gold_sql).groups()
            checks.append(e.__class__(**{**e.__dict__, "gold_sql":
                          f"SELECT count(*) = count(DISTINCT {column}) FROM {table}"}))
        for e in checks:
            assert _run_all(db, [e])[e.id] == [(True,)], e.gold_sql


def test_splits_are_named():
    assert set(SPLITS) == {"train", "eval", "eval_style"}


def test_no_held_out_table_of_either_generator_is_trained_on():
    """The simple and the real-style generators are mixed: neither one's training tables may
    be the other's held-out tables."""
    from pg_llm_tutorial.schemas import EVAL_SCHEMAS, TRAIN_SCHEMAS

    simple_train = {t.name for s in TRAIN_SCHEMAS for t in s.tables}
    simple_eval = {t.name for s in EVAL_SCHEMAS for t in s.tables}
    real_train = {t.name for d in TRAIN_DOMAINS for t in d.tables}
    real_held = {t.name for d in HELDOUT_DOMAINS for t in d.tables}
    assert not (simple_train | real_train) & (simple_eval | real_held)


def test_interleave_keeps_the_share_in_every_prefix():
    from pg_llm_tutorial.generator import generate
    from pg_llm_tutorial.realistic import mixed_eval, mixed_train

    simple, simple_eval = generate(n_train=300, n_eval=40, seed=42)
    train = mixed_train(simple, 100, seed=42)
    assert [e.id for e in train] == list(range(1, 401))
    first = train[:300]
    assert sum("/" in e.schema_key for e in first) == 75
    evals = mixed_eval(simple_eval, 10, 10, seed=42)
    assert len(evals) == 60 and [e.id for e in evals] == list(range(1, 61))
    assert sum(e.schema_key.endswith("/documented") for e in evals[:30]) == 5


def test_demo_data_cli_mixes_and_refuses_bad_counts(capsys):
    import csv
    import io
    from argparse import Namespace

    from pg_llm_tutorial.data import run

    assert run(Namespace(split="eval", n=12, seed=42, real=4, style=2)) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    keys = [r[4] for r in rows]
    assert len(rows) == 12 and sum(k.endswith("/documented") for k in keys) == 2
    assert sum("/" in k for k in keys) == 6
    assert run(Namespace(split="train", n=10, seed=42, real=11, style=0)) == 2
    assert "--real and --style" in capsys.readouterr().err
