"""The contract with the demo data: llm_evaluate on the tutorial generator's held-out split.

A model that answers every gold query scores 100% on all three metrics, one that answers
prose 0%, one that answers another question's SQL is succinct but
not correct, and every example is executable (its setup builds a database the gold runs on).
"""

from pg_llm_tutorial.data import load_demo_data
from pg_llm_tutorial.generator import SYSTEM_PROMPT

DATA = "SELECT id, content, gold_sql, setup_sql FROM demo_eval"


def test_perfect_prose_and_shuffled_models_on_the_demo_split(eval_db, scripted):
    load_demo_data(eval_db, n_train=10, n_eval=30)  # what examples/02 loads, smaller
    eval_db.execute("SELECT llm_create_model('perfect', engine => 'fake', model_name => "
                    "'tuned-model', prompt_template => '{{content}}', system_prompt => %s)",
                    [SYSTEM_PROMPT])
    eval_db.execute("SELECT llm_create_model('shuffled', engine => 'fake', model_name => "
                    "'other-model', prompt_template => '{{content}}', system_prompt => %s)",
                    [SYSTEM_PROMPT])
    rows = eval_db.execute("SELECT content, gold_sql FROM demo_eval ORDER BY id").fetchall()
    for (content, gold), (_, other_gold) in zip(rows, rows[1:] + rows[:1]):
        scripted.script("tuned-model", content, gold)
        scripted.script("other-model", content, other_gold)  # valid SQL, wrong question
    result = {r[0]: r[1:] for r in eval_db.execute(
        "SELECT model, n, execution_match, exact_match, succinct_rate "
        "FROM llm_evaluate(ARRAY['perfect', 'shuffled', 'sqlbot'], %s)", [DATA])}
    assert result["perfect"] == (30, 1.0, 1.0, 1.0)
    assert result["sqlbot"] == (30, 0.0, 0.0, 0.0)  # prose
    shuffled = result["shuffled"]
    assert shuffled[3] == 1.0 and shuffled[2] == 0.0 and shuffled[1] < 0.2
    assert eval_db.execute("SELECT min(n_executable) FROM llm.evaluations").fetchone()[0] == 30
    kinds = dict(eval_db.execute("""
        SELECT d.kind, avg(i.execution_match::int) FROM llm.evaluation_items i
        JOIN llm.evaluations e ON e.id = i.evaluation_id AND e.model = 'perfect'
        JOIN demo_eval d ON d.id::text = i.item_id GROUP BY d.kind""").fetchall())
    assert set(kinds) == {"filter", "aggregate", "group", "order", "join"}
    assert all(v == 1 for v in kinds.values())
