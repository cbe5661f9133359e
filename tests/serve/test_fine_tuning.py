"""/v1/fine_tuning/jobs end to end: train a LoRA on the tiny model, publish it, chat with it;
events, pagination, cancel and the error cases, all through the official client."""

from __future__ import annotations

import io
from pathlib import Path

import openai
import pytest

from .helpers import jsonl, sql_rows, wait_for_job, wait_for_metrics, wait_until


def upload(client, rows):
    return client.files.create(file=("train.jsonl", io.BytesIO(jsonl(rows))),
                               purpose="fine-tune").id


def worker_pids(job_id: str) -> list[int]:
    """Training worker processes of a job (found by the spec path on their command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"pg_llm.serve.training.worker" in cmdline and job_id.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def test_fine_tune_publishes_a_model_that_answers(client):
    train_id = upload(client, sql_rows(24))
    valid_id = upload(client, sql_rows(4))
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=train_id, validation_file=valid_id, suffix="sql",
        hyperparameters={"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 10})
    assert job.id.startswith("ftjob-") and job.status == "validating_files"
    assert job.hyperparameters.n_epochs == 3 and job.hyperparameters.batch_size == 4
    assert job.fine_tuned_model is None

    job = wait_for_job(client, job.id, ("succeeded", "failed", "cancelled"))
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:tiny:sql:{job.id}"
    assert job.trained_tokens > 0 and job.finished_at >= job.created_at
    assert job.error is None

    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data[::-1]
    metrics = [e.data for e in events if e.type == "metrics"]
    assert [m["step"] for m in metrics] == list(range(1, 19))  # 24/4 x 3 epochs
    assert all(m["total_steps"] == 18 for m in metrics)
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    valid = [m["valid_loss"] for m in metrics if "valid_loss" in m]
    assert len(valid) >= 2 and valid[-1] < valid[0]
    assert any("successfully completed" in e.message for e in events)

    assert job.fine_tuned_model in [m.id for m in client.models.list().data]
    question = sql_rows(1)[0]["messages"][:2]
    # Same seed, same random draws: only a changed distribution can change the sample, so
    # a different answer shows llama.cpp really applies the adapter.
    sampled = {"messages": question, "max_tokens": 8, "temperature": 1.0, "seed": 123}
    tuned = client.chat.completions.create(model=job.fine_tuned_model, **sampled)
    again = client.chat.completions.create(model=job.fine_tuned_model, **sampled)
    base = client.chat.completions.create(model="tiny", **sampled)
    assert tuned.model == job.fine_tuned_model and tuned.usage.completion_tokens > 0
    assert tuned.choices[0].message.content == again.choices[0].message.content
    assert tuned.choices[0].message.content != base.choices[0].message.content
    assert not worker_pids(job.id)


@pytest.mark.parametrize("body,param", [
    ({"model": "nope"}, "model"),
    ({"training_file": "file-missing"}, "training_file"),
    ({"validation_file": "file-missing"}, "validation_file"),
    ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
    ({"hyperparameters": {"batch_size": 1.5}}, "hyperparameters.batch_size"),
    ({"hyperparameters": {"learning_rate_multiplier": -1}},
     "hyperparameters.learning_rate_multiplier"),
    ({"hyperparameters": {"warmup": 3}}, "hyperparameters"),
    ({"hyperparameters": {"lora_rank": 0}}, "hyperparameters.lora_rank"),
    ({"hyperparameters": {"lora_layers": 2.5}}, "hyperparameters.lora_layers"),
    ({"suffix": "has:colon"}, "suffix"),
])
def test_invalid_job_requests_are_400(client, body, param):
    request = {"model": "tiny", "training_file": upload(client, sql_rows(2)), **body}
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(**request)
    assert err.value.param == param


def test_unknown_job_is_404(client):
    for call in (client.fine_tuning.jobs.retrieve, client.fine_tuning.jobs.cancel,
                 client.fine_tuning.jobs.list_events):
        with pytest.raises(openai.NotFoundError):
            call("ftjob-doesnotexist")


def test_list_pagination_cancel_and_queue_limit(start_server, tiny_gguf):
    server = start_server(["--no-default-model", "--model", f"tiny={tiny_gguf}",
                           "--max-queued-jobs", "3"])
    client = server.client()
    train_id = upload(client, sql_rows(20))
    long = {"n_epochs": 50, "batch_size": 1}  # 1000 steps: still running when cancelled
    jobs = [client.fine_tuning.jobs.create(model="tiny", training_file=train_id,
                                           hyperparameters=long) for _ in range(3)]
    with pytest.raises(openai.RateLimitError):  # a 4th waiting job is over the limit
        client.fine_tuning.jobs.create(model="tiny", training_file=train_id)

    page = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == [jobs[2].id, jobs[1].id]  # newest first
    assert page.has_more
    rest = client.fine_tuning.jobs.list(limit=2, after=page.data[-1].id)
    assert [j.id for j in rest.data] == [jobs[0].id] and not rest.has_more

    running = wait_for_job(client, jobs[0].id, ("running",))
    queued = client.fine_tuning.jobs.cancel(jobs[2].id)
    assert queued.status == "cancelled"
    wait_for_metrics(client, running.id)
    assert worker_pids(running.id)
    client.fine_tuning.jobs.cancel(running.id)
    cancelled = wait_for_job(client, running.id, ("cancelled", "failed", "succeeded"), 30)
    assert cancelled.status == "cancelled" and cancelled.fine_tuned_model is None
    assert wait_until(lambda: not worker_pids(running.id))
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(running.id)  # already finished
    # The queue moves on to the next job, which we cancel too.
    wait_for_job(client, jobs[1].id, ("running",))
    client.fine_tuning.jobs.cancel(jobs[1].id)
    assert wait_for_job(client, jobs[1].id, ("cancelled",), 30).status == "cancelled"

    events = client.fine_tuning.jobs.list_events(running.id, limit=3)
    assert len(events.data) == 3 and events.has_more
    assert events.data[0].message == "Fine-tuning job cancelled"  # newest first
    older = client.fine_tuning.jobs.list_events(running.id, after=events.data[-1].id, limit=1)
    assert older.data[0].created_at <= events.data[-1].created_at


def test_killed_server_fails_the_running_job_and_keeps_the_rest(start_server, tiny_gguf,
                                                                tmp_path):
    args = ["--no-default-model", "--model", f"tiny={tiny_gguf}"]
    data_dir = tmp_path / "data"
    first = start_server(args, data_dir=data_dir)
    client = first.client()
    train_id = upload(client, sql_rows(8))
    done = client.fine_tuning.jobs.create(model="tiny", training_file=train_id, suffix="keep",
                                          hyperparameters={"n_epochs": 1, "batch_size": 8})
    done = wait_for_job(client, done.id, ("succeeded", "failed"))
    assert done.status == "succeeded", done.error
    crash = client.fine_tuning.jobs.create(model="tiny", training_file=train_id,
                                           hyperparameters={"n_epochs": 50, "batch_size": 1})
    wait_for_job(client, crash.id, ("running",))
    wait_for_metrics(client, crash.id)
    assert worker_pids(crash.id)
    first.kill()  # SIGKILL: no chance to clean up
    # The worker dies with its server instead of training an orphaned job.
    assert wait_until(lambda: not worker_pids(crash.id))

    second = start_server(args, data_dir=data_dir)
    client = second.client()
    job = client.fine_tuning.jobs.retrieve(crash.id)
    assert job.status == "failed"
    assert job.error.code == "job_interrupted" and "restart" in job.error.message
    assert client.files.retrieve(train_id).id == train_id
    assert done.fine_tuned_model in [m.id for m in client.models.list().data]
    answer = client.chat.completions.create(model=done.fine_tuned_model, max_tokens=3,
                                            messages=[{"role": "user", "content": "hi"}])
    assert answer.usage.completion_tokens == 3

    # Deleting a fine-tuned model unpublishes it (and it stays deleted after a restart).
    with pytest.raises(openai.BadRequestError):
        client.models.delete("tiny")
    assert client.models.delete(done.fine_tuned_model).deleted
    with pytest.raises(openai.NotFoundError):
        client.models.delete(done.fine_tuned_model)
    second.stop()
    third = start_server(args, data_dir=data_dir)
    assert [m.id for m in third.client().models.list().data] == ["tiny"]
