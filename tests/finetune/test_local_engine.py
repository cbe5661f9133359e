"""The user story against the real local engine (`python -m pg_llm.serve`) with the tiny random
model the engine's own tests build: tokenizer-based estimate, a token budget on a free engine,
a real LoRA job followed by llm_wait, the new version answering, and a crash mid-job."""

from __future__ import annotations

import time
from unittest import mock

import httpx
import psycopg
import pytest

from serve.conftest import ServerProcess
from serve.tiny_checkpoint import build_tiny_checkpoint

from .conftest import make_long_table
from .helpers import job_row

# Each test starts a real engine process and trains a LoRA on CPU (about a minute each).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture
def local(db, tiny_dir, tmp_path):
    server = ServerProcess(tmp_path / "engine", ["--no-default-model", "--model",
                                                 f"tiny={tiny_dir}"])
    try:
        db.execute("SELECT llm_create_engine('local', provider => 'local', base_url => %s)",
                   (server.base_url,))
        db.execute("SELECT llm_create_model('ft_local', engine => 'local', model_name => 'tiny', "
                   "prompt_template => '{{content}}')")
        make_long_table(db)
        yield server
    finally:
        server.stop()


def tokenize_counts(server, db) -> int:
    rows = db.execute("SELECT chat_id, role, content FROM demo_data ORDER BY chat_id, "
                      "message_id").fetchall()
    chats = {}
    for chat, role, content in rows:
        chats.setdefault(chat, []).append({"role": role, "content": content})
    return sum(httpx.post(f"{server.base_url}/tokenize", json={"model": "tiny", "messages": m},
                          timeout=30).json()["count"] for m in chats.values())


def test_local_finetune_end_to_end(db, local, notices):
    dry = db.execute("SELECT tokens, epochs, estimated_trained_tokens, estimated_usd, "
                     "token_count_method FROM llm_finetune('ft_local', 'SELECT * FROM demo_data',"
                     " options => '{\"n_epochs\": 2}', dry_run => true)").fetchone()
    assert dry[0] == tokenize_counts(local, db) and dry[4] == "tokenizer"
    assert dry[2] == 2 * dry[0] and float(dry[3]) == 0        # local compute is free

    # A token budget bites on the free engine.
    db.execute("SELECT llm_set_budget('local', max_tokens => %s)", (dry[2] - 1,))
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded):
        db.execute("SELECT * FROM llm_finetune('ft_local', 'SELECT * FROM demo_data', "
                   "options => '{\"n_epochs\": 2}')")
    db.execute("SELECT llm_set_budget('local', max_tokens => %s)", (dry[2] * 10,))

    db.execute("SELECT * FROM llm_finetune('ft_local', 'SELECT * FROM demo_data', options => "
               "'{\"n_epochs\": 2, \"batch_size\": 4, \"learning_rate_multiplier\": 10, "
               "\"lora_rank\": 8, \"lora_layers\": 1}')")
    job = job_row(db, "SELECT * FROM llm_wait('ft_local')")
    assert job["status"] == "succeeded", job["error"]
    # The local engine's LoRA knobs reach its job as given.
    hyper = db.execute("SELECT hyperparameters FROM llm.jobs WHERE id = %s", (job["id"],)).fetchone()[0]
    assert hyper["lora_rank"] == 8 and hyper["lora_layers"] == 1
    steps = [n for n in notices.of("NOTICE") if f"job {job['id']} step" in n]
    assert len(steps) == 6 and steps[-1].startswith(f"job {job['id']} step 6/6: loss ")
    assert job["trained_tokens"] > 0 and job["result_version"] == 2

    model_id = db.execute("SELECT model_id FROM ft_local WHERE content = 'How many rows?' "
                          "AND max_tokens = 4").fetchone()[0]
    assert model_id == f"ft:tiny:ft-local:{job['provider_job_id']}"
    base_id = db.execute("SELECT model_id FROM ft_local WHERE content = 'How many rows?' "
                         "AND max_tokens = 4 AND version = 1").fetchone()[0]
    assert base_id == "tiny"
    spent = db.execute("SELECT spent_tokens FROM llm.budget_status").fetchone()[0]
    assert spent == job["trained_tokens"]


def test_local_engine_crash_mid_job(db, local):
    for k in (1, 2, 4):                     # 96 conversations: long enough to kill mid-way
        db.execute("INSERT INTO demo_data SELECT chat_id + %s, message_id, role, content "
                   "FROM demo_data", (k * 12,))
    job_id = db.execute("SELECT job_id FROM llm_finetune('ft_local', 'SELECT * FROM demo_data',"
                        " options => '{\"n_epochs\": 3, \"batch_size\": 2}')").fetchone()[0]
    # Follow it until the first step is recorded, then kill the engine.
    for _ in range(120):
        db.execute("SELECT llm_refresh()")
        if db.execute("SELECT count(*) FROM llm.job_events WHERE job_id = %s AND step IS NOT "
                      "NULL", (job_id,)).fetchone()[0]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the local job never reported a step")
    assert db.execute("SELECT status FROM llm.jobs WHERE id = %s", (job_id,)).fetchone()[0] == \
        "running"
    local.kill()
    assert db.execute("SELECT llm_refresh()").fetchone()[0]["unreachable"] == [job_id]

    # Restart on the same port and data dir: the engine fails the interrupted job.
    with mock.patch("serve.conftest._free_port", return_value=local.port):
        restarted = ServerProcess(local.data_dir, local.args)
    try:
        summary = db.execute("SELECT llm_refresh()").fetchone()[0]
        assert summary["failed"] == [job_id], summary
        error = db.execute("SELECT error FROM llm.jobs WHERE id = %s", (job_id,)).fetchone()[0]
        assert "job_interrupted" in error
        assert db.execute("SELECT active_version FROM llm.models").fetchone()[0] == 1
        assert db.execute("SELECT model_id FROM ft_local WHERE content = 'x' AND "
                          "max_tokens = 2").fetchone()[0] == "tiny"
    finally:
        restarted.stop()
