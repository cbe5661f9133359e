"""sql-create-context -> PostgreSQL: literal rules, synthetic rows that make execution
match meaningful, measured on the real shared data set and a real PostgreSQL."""

import json

import psycopg
import pytest
import sqlglot
from sqlglot import exp

from conftest import ROOT
from pg_llm_tutorial.sqlite_compat import (ConversionError, check_examples,
                                           convert_example, load_examples, parse_schema,
                                           to_postgres)

SHARED = ROOT.parent / "shared" / "datasets" / "sql-create-context"
needs_shared = pytest.mark.skipif(not (SHARED / "eval.jsonl").exists(),
                                  reason="../shared/datasets/sql-create-context is not here")


def convert(context, answer):
    schema, _ddl = parse_schema(context)
    return to_postgres(answer, schema)


def test_double_quoted_values_become_string_literals():
    assert convert("CREATE TABLE t (a VARCHAR, b VARCHAR)", 'SELECT a FROM t WHERE b = "x y"') \
        == "SELECT a FROM t WHERE b = 'x y'"


def test_quoted_names_that_exist_stay_identifiers():
    sql = convert('CREATE TABLE t (a VARCHAR, "order" VARCHAR)', 'SELECT a FROM t WHERE "order" = "1"')
    assert sql == "SELECT a FROM t WHERE \"order\" = '1'"


def test_numbers_compared_with_varchar_become_text_like_sqlite_affinity():
    sql = convert("CREATE TABLE t (a VARCHAR, n VARCHAR, i INTEGER)",
                  "SELECT a FROM t WHERE n < 2 AND i > 3 AND 5 = n")
    assert sql == "SELECT a FROM t WHERE n < '2' AND i > 3 AND '5' = n"


def test_sum_and_avg_of_varchar_cast_to_numeric_and_aliases_resolve():
    sql = convert("CREATE TABLE a (x VARCHAR, k VARCHAR); CREATE TABLE b (k VARCHAR, name VARCHAR)",
                  'SELECT SUM(T1.x) FROM a AS T1 JOIN b AS T2 ON T1.k = T2.k WHERE T2.name = "Bo"')
    assert sql == ("SELECT SUM(CAST(T1.x AS DECIMAL)) FROM a AS T1 JOIN b AS T2 ON T1.k = T2.k "
                   "WHERE T2.name = 'Bo'")


def test_bad_rows_raise_conversion_error():
    with pytest.raises(ConversionError):
        parse_schema("SELECT 1")
    with pytest.raises(ConversionError):
        convert("CREATE TABLE t (a VARCHAR)", "SELECT FROM WHERE (((")


def test_content_uses_the_tutorial_message_format():
    example = convert_example(7, {"question": "Name the mascot for shelbyville",
                                  "context": "CREATE TABLE table_name_33 (mascot VARCHAR, school VARCHAR)",
                                  "answer": 'SELECT mascot FROM table_name_33 WHERE school = "shelbyville"'})
    assert example.content == ("CREATE TABLE table_name_33 (mascot VARCHAR, school VARCHAR);\n"
                               "-- Name the mascot for shelbyville")
    assert example.gold_sql == "SELECT mascot FROM table_name_33 WHERE school = 'shelbyville'"
    assert example.setup_sql.startswith(example.ddl + "\nINSERT INTO table_name_33")


def _run(conn, setup, sql):
    with conn.transaction(force_rollback=True):
        conn.execute("CREATE SCHEMA llm_check; SET LOCAL search_path = llm_check")
        conn.execute(setup)
        return sorted(map(repr, conn.execute(sql).fetchall()))


def _without_condition(gold: str, index: int) -> str | None:
    tree = sqlglot.parse_one(gold, read="postgres")
    where = tree.args.get("where")
    if where is None:
        return None
    parts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    if index >= len(parts):
        return None
    rest = [p for i, p in enumerate(parts) if i != index]
    if rest:
        tree.set("where", exp.Where(this=exp.and_(*[p.copy() for p in rest])))
    else:
        tree.set("where", None)
    return tree.sql(dialect="postgres")


@needs_shared
def test_synthetic_rows_make_gold_results_non_trivial(db):
    examples, skipped = load_examples(str(SHARED / "eval.jsonl"), limit=150)
    counts = check_examples(db, examples)
    assert skipped <= 3
    assert counts["non_empty"] >= 0.9 * counts["n"], counts
    # Dropping any single WHERE condition changes the result: a model that forgets one
    # condition does not get execution credit.
    changed = tried = 0
    for example in examples[:60]:
        for index in range(3):
            variant = _without_condition(example.gold_sql, index)
            if variant is None:
                break
            try:
                tried += 1
                changed += _run(db, example.setup_sql, variant) != _run(db, example.setup_sql, example.gold_sql)
            except psycopg.Error:
                tried -= 1
    assert tried >= 60 and changed >= 0.9 * tried, (changed, tried)


@needs_shared
def test_llm_evaluate_scores_converted_examples(eval_db, scripted):
    examples, _ = load_examples(str(SHARED / "eval.jsonl"), limit=5)
    eval_db.execute("CREATE TABLE shared_eval (id int, content text, gold_sql text, setup_sql text)")
    raw = [json.loads(line) for line in (SHARED / "eval.jsonl").read_text().splitlines()[:5]]
    for example, original in zip(examples, raw):
        eval_db.execute("INSERT INTO shared_eval VALUES (%s, %s, %s, %s)",
                        [example.id, example.content, example.gold_sql, example.setup_sql])
        # Three answers are the converted gold; two are the SQLite original ("x" = a column
        # in PostgreSQL), which must not count as a match.
        answer = example.gold_sql if example.id <= 3 else original["answer"]
        scripted.script("base-model", example.content, answer)
    row = eval_db.execute("SELECT execution_match, exact_match FROM llm_evaluate(ARRAY['sqlbot'], "
                          "'SELECT id, content, gold_sql, setup_sql FROM shared_eval')").fetchone()
    assert row == (pytest.approx(3 / 5), pytest.approx(3 / 5))
