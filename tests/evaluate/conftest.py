"""Fixtures for llm_evaluate tests (see scripted_engine.py)."""

from __future__ import annotations

import pytest

from evaluate.scripted_engine import EXAMPLES, SHOP_SETUP, ScriptedEngine


@pytest.fixture
def scripted():
    engine = ScriptedEngine()
    with engine.fake:
        yield engine


@pytest.fixture
def eval_db(db, scripted):
    """A database with engine `fake` (priced), model `sqlbot` on base-model, table shop_eval."""
    db.execute("SELECT llm_create_engine('fake', provider => 'openai', base_url => %s, "
               "api_key => 'sk-test', price_input => 2, price_output => 6)", [scripted.fake.url])
    db.execute("SELECT llm_create_model('sqlbot', engine => 'fake', model_name => 'base-model', "
               "prompt_template => '{{content}}', system_prompt => 'Answer with SQL only.')")
    db.execute("CREATE TABLE shop_eval (id int, content text, gold_sql text, setup_sql text)")
    for item_id, question, gold in EXAMPLES:
        db.execute("INSERT INTO shop_eval VALUES (%s, %s, %s, %s)",
                   [item_id, question, gold, SHOP_SETUP])
    return db


