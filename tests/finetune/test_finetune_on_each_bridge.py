"""Fine-tuning a model whose engine runs on Multicorn2: the job, the new version and the
rollback work as on the C bridge (docs/multicorn.md)."""

from __future__ import annotations

import pytest

from .conftest import API_KEY, BASE, PRICE_TRAINING, make_long_table
from .helpers import job_row


@pytest.fixture
def hosted_on_bridge(db, provider, bridge):
    """conftest's `hosted` (engine, model ft_sql, demo_data), on each bridge."""
    db.execute("SELECT llm_create_engine('hosted', base_url => %s, api_key => %s, "
               "price_training => %s, bridge => %s)",
               (provider.base_url, API_KEY, PRICE_TRAINING, bridge))
    db.execute("SELECT llm_create_model('ft_sql', engine => 'hosted', model_name => %s, "
               "prompt_template => '{{content}}', predict => 'answer')", (BASE,))
    make_long_table(db)
    provider.requests.clear()
    return provider


def test_finetune_serves_the_new_version_and_rolls_back(db, hosted_on_bridge):
    hosted = hosted_on_bridge
    hosted.script("succeed", steps=2, step_seconds=0.05)
    db.execute("SELECT * FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$)")
    job = job_row(db, "SELECT * FROM llm_wait('ft_sql')")
    assert job["status"] == "succeeded" and job["result_version"] == 2
    ft_id = hosted.fine_tuned_id(hosted.jobs[job["provider_job_id"]])
    assert db.execute("SELECT answer, version FROM ft_sql WHERE content = 'hi'").fetchone() == \
        (f"[{ft_id}] hi", 2)
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'hi' AND version = 1"
                      ).fetchone() == (f"[{BASE}] hi",)
    assert db.execute("SELECT llm_set_active_version('ft_sql', 1)").fetchone() == (1,)
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'x'").fetchone() == \
        (f"[{BASE}] x",)
