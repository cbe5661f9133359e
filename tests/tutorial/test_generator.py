"""The tutorial's text-to-SQL generator: deterministic, disjoint splits, gold SQL that runs.

Every gold query is executed in a real PostgreSQL on the database its setup_sql builds.
"""

from __future__ import annotations

import collections
import csv
import io
import re
import subprocess
import sys
import uuid

import psycopg
import pytest

from pg_llm_tutorial.data import eval_rows, train_rows
from pg_llm_tutorial.generator import SYSTEM_PROMPT, generate, long_format_rows, multi_turn_rows
from pg_llm_tutorial.questions import KINDS
from pg_llm_tutorial.runner import EXAMPLES, StepFailed, run_step
from pg_llm_tutorial.schemas import EVAL_SCHEMAS, TRAIN_SCHEMAS

N_TRAIN, N_EVAL = 400, 60


@pytest.fixture(scope="module")
def splits():
    return generate(n_train=N_TRAIN, n_eval=N_EVAL, seed=42)


def test_same_seed_same_data_other_seed_other_data(splits):
    again = generate(n_train=N_TRAIN, n_eval=N_EVAL, seed=42)
    assert again == splits
    other = generate(n_train=N_TRAIN, n_eval=N_EVAL, seed=43)
    assert [e.content for e in other[0]] != [e.content for e in splits[0]]


def test_train_and_eval_schemas_are_disjoint(splits):
    train, evals = splits
    train_tables = {t.name for s in TRAIN_SCHEMAS for t in s.tables}
    eval_tables = {t.name for s in EVAL_SCHEMAS for t in s.tables}
    assert not train_tables & eval_tables
    assert {e.schema_key for e in train} <= {s.key for s in TRAIN_SCHEMAS}
    assert {e.schema_key for e in evals} == {s.key for s in EVAL_SCHEMAS}
    # No training prompt mentions an evaluation table.
    mentioned = {m for e in train for m in re.findall(r"CREATE TABLE (\w+)", e.content)}
    assert mentioned and not mentioned & eval_tables
    assert len(TRAIN_SCHEMAS) + len(EVAL_SCHEMAS) >= 12


def test_question_kinds_are_covered_evenly(splits):
    train, evals = splits
    for split, n in ((train, N_TRAIN), (evals, N_EVAL)):
        kinds = collections.Counter(e.kind for e in split)
        assert set(kinds) == set(KINDS)
        assert max(kinds.values()) - min(kinds.values()) <= 1, kinds
    gold = "\n".join(e.gold_sql for e in train)
    for construct in ("COUNT(*)", "SUM(", "AVG(", "MIN(", "MAX(", "GROUP BY", "HAVING",
                      "ORDER BY", "DESC LIMIT", "ASC", " JOIN ", " AND "):
        assert construct in gold, construct
    three_table = [e for e in train if e.gold_sql.count(" JOIN ") == 2]
    assert len(three_table) >= 5
    assert any(e.kind == "join" and e.gold_sql.count(" JOIN ") == 2 for e in evals)


def test_canada_question_is_in_the_training_style(splits):
    train, _ = splits
    canada = [e for e in train if "'Canada'" in e.gold_sql]
    assert canada, "the tutorial's 'customers from Canada' style must be trained on"


def test_long_format_shape(splits):
    train, _ = splits
    rows = long_format_rows(train)
    assert len(rows) == 3 * N_TRAIN
    by_chat = collections.defaultdict(list)
    for chat_id, message_id, role, content in rows:
        by_chat[chat_id].append((message_id, role, content))
    assert len(by_chat) == N_TRAIN
    for messages in by_chat.values():
        assert [(m[0], m[1]) for m in messages] == [(1, "system"), (2, "user"), (3, "assistant")]
        assert messages[0][2] == SYSTEM_PROMPT
        ddl, question = messages[1][2].rsplit("\n-- ", 1)
        assert ddl.startswith("CREATE TABLE ") and ddl.endswith(");") and question
        assert messages[2][2].startswith("SELECT ") and ";" not in messages[2][2]


def test_weighted_kinds_and_multi_turn_conversations():
    train, _ = generate(n_train=60, n_eval=0, seed=42, train_kinds=KINDS + ("join",))
    kinds = collections.Counter(e.kind for e in train)
    assert kinds["join"] == 20 and all(kinds[k] == 10 for k in KINDS if k != "join")

    rows = multi_turn_rows(train, 3)
    chats = collections.defaultdict(list)
    for chat_id, message_id, role, content in rows:
        chats[chat_id].append((message_id, role, content))
    assert sorted(chats) == list(range(1, len(chats) + 1))
    assert sum(len(m) for m in chats.values()) == len(rows)
    by_question = {e.question: e for e in train}
    answered = []
    for messages in chats.values():
        assert [m[0] for m in messages] == list(range(1, len(messages) + 1))
        roles = [m[1] for m in messages]
        assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2)
        assert 1 <= (len(roles) - 1) // 2 <= 3
        # The schema once, in the first question; later turns are the question alone.
        first = messages[1][2]
        ddl, question = first.rsplit("\n-- ", 1)
        schema = by_question[question].schema_key
        for _, role, content in messages[3::2]:
            assert role == "user" and content.startswith("-- ") and "CREATE TABLE" not in content
            assert by_question[content[3:]].schema_key == schema  # same schema all along
        for user, assistant in zip(messages[1::2], messages[2::2]):
            asked = user[2].rsplit("\n-- ", 1)[1] if user is messages[1] else user[2][3:]
            answered.append(asked)
            assert assistant[2] == by_question[asked].gold_sql
    assert sorted(answered) == sorted(by_question) and len(answered) == len(train)


def test_questions_are_distinct(splits):
    train, evals = splits
    assert len({e.content for e in train}) == N_TRAIN
    assert len({e.content for e in evals}) == N_EVAL


def test_gold_sql_is_one_postgres_statement():
    sqlglot = pytest.importorskip("sqlglot")
    train, evals = generate(n_train=N_TRAIN, n_eval=N_EVAL, seed=42)
    for e in train + evals:
        parsed = sqlglot.parse(e.gold_sql, read="postgres")
        assert len(parsed) == 1 and parsed[0] is not None, e.gold_sql


def _run_all(conn, examples):
    """Build each schema's database in its own PostgreSQL schema; run each gold query there."""
    built = set()
    results = {}
    for e in examples:
        ns = f"gen_{e.schema_key}"
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


def test_every_gold_query_returns_rows_on_its_database(db, splits):
    train, evals = splits
    for split in (train, evals):
        results = _run_all(db, split)
        for e in split:
            rows = results[e.id]
            assert rows, f"empty result: {e.question} / {e.gold_sql}"
            assert all(v is not None for v in rows[0]), e.gold_sql
            if e.kind == "aggregate" and "COUNT(*)" in e.gold_sql:
                assert rows[0][0] > 0, e.gold_sql


def test_order_by_limit_has_no_ties(db, splits):
    """A LIMIT answer is only checkable when the sort column has no ties."""
    train, evals = splits
    for split in (train, evals):
        limited = [e for e in split if " LIMIT " in e.gold_sql]
        assert len(limited) >= len(split) // 20
        checks = []
        for e in limited:
            table, column = re.search(r"FROM (\w+) .*ORDER BY (\w+)", e.gold_sql).groups()
            checks.append(e.__class__(**{**e.__dict__, "gold_sql":
                f"SELECT count(*) = count(DISTINCT {column}) FROM {table}"}))
        results = _run_all(db, checks)
        for e in checks:
            assert results[e.id] == [(True,)], e.gold_sql


# --- step 2 (examples/02-demo-data.sql) through the real psql client -----------------------

@pytest.fixture
def tutor(db):
    """A LOGIN role that owns one schema and may do nothing else: step 2 needs no more."""
    role = f"tutor_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
    db.execute(f"CREATE SCHEMA AUTHORIZATION {role}")
    yield role
    db.execute(f"DROP SCHEMA {role} CASCADE")
    db.execute(f"DROP ROLE {role}")


def step_2(db, role: str, **variables) -> str:
    info = db.info
    env = {"PGHOST": info.host, "PGPORT": str(info.port), "PGUSER": role,
           "PGDATABASE": info.dbname}
    return run_step(EXAMPLES / "02-demo-data.sql", env, variables, echo=False).output


def test_step_2_loads_the_generators_splits_as_an_ordinary_role(db, tutor, splits):
    out = step_2(db, tutor, n_generate=N_TRAIN, n_eval=N_EVAL, n_real=0, n_real_eval=0,
                 n_style_eval=0)
    train, evals = splits
    assert db.execute(f"SELECT * FROM {tutor}.demo_data ORDER BY chat_id, message_id").fetchall() \
        == train_rows(train)
    assert db.execute(f"SELECT * FROM {tutor}.demo_eval ORDER BY id").fetchall() == \
        eval_rows(evals)
    assert f"COPY {3 * N_TRAIN}" in out and f"COPY {N_EVAL}" in out
    assert f"{N_EVAL} held-out questions on 6 schemas never used in training" in out
    # Nothing of the tutorial lives in the database beyond its two tables.
    assert db.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE '%demo%'").fetchone() == (0,)


def test_step_2_stops_with_the_generators_hint(db, tutor):
    with pytest.raises(StepFailed) as err:
        step_2(db, tutor, n_generate=0)
    assert "--n must be between 1 and 100000, got 0" in err.value.output
    assert "Hint:" in err.value.output and "Traceback" not in err.value.output


def test_demo_data_prints_csv_and_a_summary():
    proc = subprocess.run([sys.executable, "-m", "pg_llm.cli", "demo-data", "eval", "--n", "5",
                           "--seed", "7"], capture_output=True, text=True, timeout=120, check=True)
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    _, evals = generate(n_train=0, n_eval=5, seed=7)
    assert rows == [[str(v) for v in row] for row in eval_rows(evals)]
    assert proc.stderr.startswith("5 held-out questions on ")


# --- the shared data set loader (make eval-shared) ----------------------------------------

def test_shared_dataset_loads_in_the_tutorial_shape(db):
    from pg_llm_tutorial.shared_dataset import SHARED_DIR, load_shared, question_kind

    if not (SHARED_DIR / "train.jsonl").is_file():
        pytest.skip(f"{SHARED_DIR} not present")
    loaded = load_shared(db, n_train=30, eval_limit=12)
    assert loaded["train"] == 30 and loaded["eval"] == 12
    shapes = db.execute("SELECT string_agg(role, ',' ORDER BY message_id) FROM demo_data "
                        "GROUP BY chat_id").fetchall()
    assert len(shapes) == 30 and {s for (s,) in shapes} == {"system,user,assistant"}
    assert db.execute("SELECT DISTINCT content FROM demo_data WHERE role = 'system'").fetchall() \
        == [(SYSTEM_PROMPT,)]
    # Training prompts come from train.jsonl only: no eval question appears in training.
    assert db.execute("SELECT count(*) FROM demo_eval e JOIN demo_data d "
                      "ON d.role = 'user' AND d.content = e.content").fetchone()[0] == 0
    # Gold answers are PostgreSQL: they run on their setup_sql.
    rows = db.execute("SELECT id, gold_sql, setup_sql, kind FROM demo_eval ORDER BY id").fetchall()
    ran = 0
    for id_, gold, setup, kind in rows:
        assert kind == question_kind(gold)
        try:
            with db.transaction(force_rollback=True):
                db.execute(f"CREATE SCHEMA shared_{id_}; SET LOCAL search_path = shared_{id_}")
                db.execute(setup)
                db.execute(gold).fetchall()
            ran += 1
        except psycopg.Error:
            pass
    assert ran >= len(rows) - 2
    assert question_kind("SELECT a FROM t JOIN u ON t.x = u.y") == "join"
    assert question_kind("SELECT COUNT(*) FROM t") == "aggregate"
    assert question_kind("SELECT a FROM t WHERE b = '1'") == "filter"
