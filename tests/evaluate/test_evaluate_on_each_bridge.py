"""Versions and llm_evaluate on a Multicorn2 engine work as on the C bridge: llm_evaluate asks
each model through its foreign table from inside PL/Python, so under Multicorn2 the scan runs
nested in a PL/Python call and must still keep away from plpy (docs/multicorn.md)."""

import pytest

from evaluate.scripted_engine import EXAMPLES, SHOP_SETUP, add_version
from evaluate.test_llm_evaluate import PROSE, TUNED, evaluate, script


@pytest.fixture
def unpriced(db, scripted, bridge):
    """eval_db's model `sqlbot`, on an engine without prices (a Multicorn2 scan cannot book
    spending), with versions 1 (prose) and 2 (the tuned answers)."""
    db.execute("SELECT llm_create_engine('fake', base_url => %s, api_key => 'sk-test', "
               "bridge => %s)", [scripted.fake.url, bridge])
    db.execute("SELECT llm_create_model('sqlbot', engine => 'fake', model_name => 'base-model', "
               "prompt_template => '{{content}}', system_prompt => 'Answer with SQL only.')")
    db.execute("CREATE TABLE shop_eval (id int, content text, gold_sql text, setup_sql text)")
    for item_id, question, gold in EXAMPLES:
        db.execute("INSERT INTO shop_eval VALUES (%s, %s, %s, %s)",
                   [item_id, question, gold, SHOP_SETUP])
    add_version(db, "sqlbot", 2, "tuned-model")
    script(scripted, "base-model", {i: PROSE for i in TUNED})
    script(scripted, "tuned-model", TUNED)
    return db


def test_versions_and_evaluation(unpriced, scripted):
    result = evaluate(unpriced, ["sqlbot@1", "sqlbot@2"], name="base vs tuned")
    base, tuned = result["sqlbot@1"], result["sqlbot@2"]
    assert (base["n"], base["execution_match"]) == (4, 0)
    assert (tuned["n"], tuned["execution_match"], tuned["exact_match"]) == (4, 0.75, 0.5)
    unpriced.execute("SELECT llm_set_active_version('sqlbot', 2)")
    question = EXAMPLES[0][1]
    assert unpriced.execute("SELECT version, answer FROM sqlbot WHERE content = %s",
                            [question]).fetchone() == (2, TUNED[1])
    assert unpriced.execute("SELECT answer FROM sqlbot WHERE content = %s AND version = 1",
                            [question]).fetchone() == (PROSE,)
    assert evaluate(unpriced, ["sqlbot"])["sqlbot"]["version"] == 2
