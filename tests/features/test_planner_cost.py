"""The planner costs each prompt as an expensive remote call (pg_llm.prompt_cost, or the
engine's option prompt_cost): cheap joins and filters run before a model scan, and a batched
join asks only for the outer rows the query keeps. Counted on a recording fake endpoint."""

import psycopg
import pytest

from features.conftest import http_calls, make_model

BIG_SMALL = ("SELECT b.id, m.answer FROM big b JOIN small s ON s.id = b.id "
             "JOIN qa m ON m.question = b.q ORDER BY b.id")
KEPT = [(100, "echo:Q: question 100"), (200, "echo:Q: question 200")]


def prompts_sent(fake) -> list[str]:
    return sorted(r.body["messages"][-1]["content"] for r in fake.chat_requests())


def plan_of(db, sql, analyze=False):
    options = "ANALYZE, TIMING OFF, SUMMARY OFF, " if analyze else ""
    return db.execute(f"EXPLAIN ({options}FORMAT JSON) " + sql).fetchone()[0][0]["Plan"]


def nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def relations(plan) -> set:
    return {n["Relation Name"] for n in nodes(plan) if "Relation Name" in n}


def model_join(plan, model="qa"):
    """(the join node whose inner side scans the model, that scan)."""
    for node in nodes(plan):
        for child in node.get("Plans", []):
            scans = [n for n in nodes(child) if n.get("Relation Name") == model]
            if scans and child.get("Parent Relationship") == "Inner" and "Join Type" in node:
                return node, scans[0]
    raise AssertionError(f"no join over {model}: {plan}")


@pytest.fixture
def big_small(db, engine):
    make_model(db)
    db.execute("CREATE TABLE big AS SELECT g AS id, 'question ' || g AS q FROM generate_series(1, 200) g")
    db.execute("CREATE TABLE small (id int PRIMARY KEY)")
    db.execute("INSERT INTO small VALUES (100), (200)")
    db.execute("CREATE TABLE picks AS SELECT id FROM small, generate_series(1, 3)")  # repeats
    db.execute("ANALYZE big; ANALYZE small; ANALYZE picks")
    return db


def test_a_reducing_join_runs_first_and_the_batch_asks_only_its_rows(big_small, fake):
    db = big_small
    assert db.execute(BIG_SMALL).fetchall() == KEPT
    assert prompts_sent(fake) == ["Q: question 100", "Q: question 200"]
    plan = plan_of(db, BIG_SMALL)
    join, scan = model_join(plan)
    outer = next(c for c in join["Plans"] if c.get("Parent Relationship") == "Outer")
    assert relations(outer) == {"big", "small"}, plan  # joined before the model
    # one batch, collected from the join of big and small, not from all of big
    assert "LLM Batch" in scan, plan
    initplans = [c for c in plan.get("Plans", []) if c.get("Parent Relationship") == "InitPlan"]
    assert [relations(p) for p in initplans] == [{"big", "small"}], plan
    fake.reset()
    analyzed = plan_of(db, BIG_SMALL, analyze=True)
    _, scan = model_join(analyzed)
    assert scan["LLM Calls"] == 1 and scan["LLM Prompts Sent"] == 2, analyzed
    assert http_calls(fake) == 2


@pytest.mark.parametrize("sql, batched", [
    # IN over a unique column is an inner join to PostgreSQL: the batch joins it
    ("SELECT b.id, m.answer FROM big b JOIN qa m ON m.question = b.q "
     "WHERE b.id IN (SELECT id FROM small) ORDER BY b.id", True),
    # a semi-join reduces too; it cannot join the batch, so each kept row is asked alone
    ("SELECT b.id, m.answer FROM big b JOIN qa m ON m.question = b.q "
     "WHERE b.id IN (SELECT id FROM picks) ORDER BY b.id", False),
    # the same for a subquery the batch could not read again
    ("SELECT b.id, m.answer FROM big b JOIN (SELECT id FROM small GROUP BY id) s "
     "ON s.id = b.id JOIN qa m ON m.question = b.q ORDER BY b.id", False),
    # the reducing join written after the model, and through a second table
    ("SELECT b.id, m.answer FROM big b JOIN qa m ON m.question = b.q "
     "JOIN big b2 ON b2.id = b.id JOIN small s ON s.id = b2.id ORDER BY b.id", True),
], ids=["unique-in", "semi-join", "subquery", "two-hops"])
def test_other_reducing_shapes_send_only_the_kept_prompts(big_small, fake, sql, batched):
    assert big_small.execute(sql).fetchall() == KEPT
    assert prompts_sent(fake) == ["Q: question 100", "Q: question 200"]
    _, scan = model_join(plan_of(big_small, sql))
    assert ("LLM Batch" in scan) == batched, scan


def test_a_left_join_does_not_stop_the_batch(big_small, fake):
    """A left join keeps every row of big: the batch reads big alone, in one call."""
    sql = ("SELECT count(*), count(s.id), count(m.answer) FROM big b "
           "LEFT JOIN small s ON s.id = b.id JOIN qa m ON m.question = b.q")
    assert big_small.execute(sql).fetchone() == (200, 2, 200)
    assert http_calls(fake) == 200
    _, scan = model_join(plan_of(big_small, sql, analyze=True))
    assert scan["LLM Calls"] == 1 and "LLM Batch" in scan, scan


def test_as_an_ordinary_role(big_small, fake, analyst):
    role, conn = analyst
    big_small.execute(f"GRANT SELECT ON qa, big, small TO {role}")
    assert conn.execute(BIG_SMALL).fetchall() == KEPT
    assert http_calls(fake) == 2
    # the batch reads the tables as the querying role: without SELECT on small, no answer
    big_small.execute(f"REVOKE SELECT ON small FROM {role}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(BIG_SMALL)
    assert http_calls(fake) == 2


@pytest.fixture
def questions(db, engine):
    make_model(db)
    db.execute("CREATE TABLE questions (id int PRIMARY KEY, text text)")
    db.execute("INSERT INTO questions VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'two')")
    db.execute("ANALYZE questions")
    return db


ANSWERS = [(1, "echo:Q: one"), (2, "echo:Q: two"), (3, "echo:Q: three"), (4, "echo:Q: two")]


@pytest.mark.parametrize("sql", [
    "SELECT q.id, m.answer FROM questions q JOIN qa m ON m.question = q.text ORDER BY q.id",
    "SELECT q.id, a.answer FROM questions q, "
    "LATERAL (SELECT answer FROM qa WHERE question = q.text) a ORDER BY q.id",
], ids=["join", "lateral"])
def test_a_plain_table_joined_to_a_model_is_still_one_batch(questions, fake, sql):
    assert questions.execute(sql).fetchall() == ANSWERS
    assert prompts_sent(fake) == ["Q: one", "Q: three", "Q: two"]
    _, scan = model_join(plan_of(questions, sql, analyze=True))
    assert scan["LLM Calls"] == 1 and "LLM Batch" in scan


def test_two_models_asked_the_same_questions_are_each_one_batch(questions, fake):
    make_model(questions, "qa2")
    sql = ("SELECT q.id, m.answer, n.answer FROM questions q JOIN qa m ON m.question = q.text "
           "JOIN qa2 n ON n.question = q.text ORDER BY q.id")
    assert questions.execute(sql).fetchall() == [(i, a, a) for i, a in ANSWERS]
    assert http_calls(fake) == 6
    plan = plan_of(questions, sql, analyze=True)
    scans = [n for n in nodes(plan) if n.get("Relation Name") in ("qa", "qa2")]
    assert [(s["LLM Calls"], "LLM Batch" in s) for s in scans] == [(1, True), (1, True)], plan


def test_any_array_is_one_call(questions, fake):
    sql = "SELECT question, answer FROM qa WHERE question = ANY (ARRAY['one', 'two', 'one'])"
    assert sorted(questions.execute(sql).fetchall()) == [("one", "echo:Q: one"), ("two", "echo:Q: two")]
    assert plan_of(questions, sql, analyze=True)["LLM Calls"] == 1
    assert http_calls(fake) == 4


def test_a_scan_costs_prompt_cost_per_prompt(questions, fake):
    sql = "SELECT answer FROM qa WHERE question IN ('a', 'b')"
    plan = plan_of(questions, sql)
    # one Python call (10) plus 2 prompts at the default 100 each; 2 rows at 0.01
    assert (plan["Startup Cost"], plan["Total Cost"]) == (210.0, 210.02)
    questions.execute("SET pg_llm.prompt_cost = 50")
    assert plan_of(questions, sql)["Startup Cost"] == 110.0
    # the engine's own option wins over the setting, and a model table's over the engine's
    questions.execute("ALTER SERVER paid OPTIONS (ADD prompt_cost '5000')")
    assert plan_of(questions, sql)["Startup Cost"] == 10010.0
    questions.execute("ALTER FOREIGN TABLE qa OPTIONS (ADD prompt_cost '0.5')")
    assert plan_of(questions, sql)["Startup Cost"] == 11.0
    assert http_calls(fake) == 0
    # the options are the planner's: the scan itself runs as before
    assert questions.execute(sql + " ORDER BY answer").fetchall() == [("echo:Q: a",), ("echo:Q: b",)]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        questions.execute("ALTER SERVER paid OPTIONS (SET prompt_cost 'cheap')")


def test_a_join_costs_each_distinct_outer_value_as_a_prompt(questions, fake):
    sql = "SELECT q.id, m.answer FROM questions q JOIN qa m ON m.question = q.text"
    questions.execute("SET pg_llm.join_batch_size = 0")
    per_row = plan_of(questions, sql)["Total Cost"]
    questions.execute("RESET pg_llm.join_batch_size")
    batched = plan_of(questions, sql)["Total Cost"]
    # 3 distinct questions at 100 each (Memoize asks each once); the batch saves the calls
    assert 300 < batched < per_row < 400, (batched, per_row)
    assert http_calls(fake) == 0
