"""The local engine on a Ray cluster (docs/scale-out.md): `pg-llm serve --ray local
--replicas 2` answers, fine-tunes as a Ray task, keeps the job going when every replica that
could have accepted it is killed, and then serves the new version from either replica.
Needs the Ray venv (`make ray-venv`); minutes on 2 cores, hence slow."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from openai import OpenAI

from scaleout.ray_engine import RayEngine, ray_available
from serve.helpers import jsonl, sql_rows, wait_for_job
from serve.tiny_checkpoint import build_tiny_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(not ray_available(),
                                 reason="ray[serve] is not installed: make ray-venv")]


@pytest.fixture(scope="module")
def ray_engine(tmp_path_factory):
    from pg_llm.serve.store import Store
    from pg_llm.serve.training.gguf_export import cached_gguf

    tiny = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny-llama")
    data_dir = tmp_path_factory.mktemp("ray-data")
    Store(data_dir)  # the layout, then the GGUF converted once here, not by both replicas
    cached_gguf(tiny, data_dir / "cache")
    engine = RayEngine(data_dir, ["--no-default-model", "--model", f"tiny={tiny}",
                                  "--threads", "1"], replicas=2)
    yield engine
    engine.stop()


def chat(engine, model: str) -> httpx.Response:
    return httpx.post(f"{engine.base_url}/chat/completions", timeout=120, json={
        "model": model, "max_tokens": 6, "temperature": 0,
        "messages": sql_rows(1)[0]["messages"][:2]})


def answers_from_each_replica(engine, model: str, tries: int = 60) -> dict[str, str]:
    """replica tag -> answer, until two replicas have answered (Ray Serve picks them)."""
    seen: dict[str, str] = {}
    for _ in range(tries):
        response = chat(engine, model)
        assert response.status_code == 200, response.text
        seen[response.headers["x-pg-llm-replica"]] = response.json()["choices"][0]["message"]["content"]
        if len(seen) == 2:
            break
    return seen


def test_two_replicas_answer_fine_tune_and_serve_the_new_version(ray_engine):
    client = OpenAI(base_url=ray_engine.base_url, api_key="unused", max_retries=3, timeout=120)
    base = answers_from_each_replica(ray_engine, "tiny")
    assert len(base) == 2 and len(set(base.values())) == 1  # same weights, same greedy answer

    train_id = client.files.create(file=("t.jsonl", io.BytesIO(jsonl(sql_rows(8)))),
                                   purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=train_id, suffix="ray",
        hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 10})

    # every replica dies (so surely the one that accepted the job): the job runs on, in its
    # Ray task, and Ray Serve starts new replicas
    killed = ray_engine.kill_replicas()
    assert len(killed) == 2
    deadline = time.time() + 300
    while True:
        try:
            job = client.fine_tuning.jobs.retrieve(job.id)
            if job.status in ("succeeded", "failed", "cancelled"):
                break
        except Exception:  # noqa: BLE001 -- the proxy answers 503 until a replica is back
            pass
        assert time.time() < deadline, "the job did not finish after its replica was lost"
        time.sleep(1)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:tiny:ray:{job.id}"
    events = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data]
    assert any("successfully completed" in m for m in events)

    tuned = answers_from_each_replica(ray_engine, job.fine_tuned_model)
    assert len(tuned) == 2, tuned
    assert not set(tuned) & set(base)  # answered by the new replicas
    assert len(set(tuned.values())) == 1  # both apply the same adapter from the data dir
    assert job.fine_tuned_model in [m.id for m in client.models.list().data]
    # the PEFT copy is there too, for llm_deploy_version
    card = httpx.get(f"{ray_engine.base_url}/models/{job.fine_tuned_model}", timeout=30).json()
    assert card["adapter"]["path"].endswith(f"/jobs/{job.id}/adapter")
