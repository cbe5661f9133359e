"""The local engine under hostile or unlucky input (issue 9, point 10): where it may listen,
bodies bounded while read, numbers that are not numbers, odd headers, crashes mid-write and a
cancel racing the end of a job. Real servers on 127.0.0.1; no test measures a duration: a
server that waited for a body it should refuse would never answer, and the socket's timeout
(a bound, not a measurement) turns that into a failure."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import openai
import pytest

from .helpers import jsonl, sql_rows, wait_for_job, wait_for_metrics
from .test_fine_tuning import upload

SOCKET_TIMEOUT_S = 60


def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, dict]:
    """Sends a request head and (part of) a body; returns the status and JSON of the answer,
    read while the rest of the body is never sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        return read_answer(sock)


def read_answer(sock) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    status_line, rest = data.split(b"\r\n", 1)
    return int(status_line.split()[1]), json.loads(rest.split(b"\r\n\r\n", 1)[1])


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


# ---- where it listens ----------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com"])
def test_a_non_loopback_address_needs_an_api_key(host, tmp_path, tiny_gguf):
    env = {k: v for k, v in os.environ.items() if k != "PG_LLM_SERVE_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "pg_llm.serve", "--host", host,
                           "--no-default-model", "--model", f"tiny={tiny_gguf}",
                           "--data-dir", str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"refusing to listen on {host} without an API key" in proc.stderr
    assert "Hint: pass --api-key" in proc.stderr
    assert not (tmp_path / "d").exists()  # refused before anything was created


def test_loopback_or_a_key_is_allowed():
    from argparse import Namespace

    from pg_llm.serve.cli import bind_error

    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert bind_error(Namespace(host=host, api_key=None)) is None, host
    assert bind_error(Namespace(host="0.0.0.0", api_key="k")) is None


# ---- bodies bounded while read -------------------------------------------------------------

def test_a_declared_oversized_upload_is_refused_before_its_body_is_read(server):
    head = ("POST /v1/files HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; boundary=b\n"
            f"Content-Length: {600 * 1024 * 1024}\n")
    status, body = raw_request(server.port, head, b"--b\r\n")  # 5 of 600 MiB sent
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert "536870912 bytes" in body["error"]["message"]


def test_a_chunked_json_body_is_cut_off_at_the_limit(server):
    from pg_llm.serve.api.body_limit import MAX_JSON_BYTES

    over = MAX_JSON_BYTES + 1
    head = ("POST /v1/chat/completions HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Transfer-Encoding: chunked\n")
    # One byte over the limit and the body still open (no final chunk): the answer can only
    # come from counting while reading.
    status, body = raw_request(server.port, head, f"{over:x}\r\n".encode() + b" " * over)
    assert status == 413 and str(MAX_JSON_BYTES) in body["error"]["message"]
    assert httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=30).status_code == 200


def test_other_requests_are_answered_while_an_upload_is_arriving(server, client):
    content = jsonl(sql_rows(40))
    boundary = "pgllmboundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
            f"fine-tune\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"t.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() \
        + content + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {len(form)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(head + form[:len(form) // 2])
        # Half the upload is in: the server still answers everyone else.
        assert [m.id for m in client.models.list().data][0] == "tiny"
        r = client.chat.completions.create(model="tiny", max_tokens=2, temperature=0,
                                           messages=[{"role": "user", "content": "hi"}])
        assert r.usage.completion_tokens == 2
        sock.sendall(form[len(form) // 2:])
        status, meta = read_answer(sock)
    assert status == 200, meta
    assert meta["bytes"] == len(content) and meta["purpose"] == "fine-tune"
    assert client.files.content(meta["id"]).read() == content


# ---- numbers and headers -------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("temperature", "NaN"), ("temperature", "Infinity"), ("top_p", "-Infinity"),
    ("max_tokens", "NaN"), ("max_tokens", "1e400"), ("max_tokens", "-5"), ("seed", "NaN"),
    ("temperature", "-0.5"), ("top_p", "-1"), ("n", "-1"),
])
def test_non_finite_and_negative_chat_numbers_are_400(server, field, value):
    body = ('{"model": "tiny", "messages": [{"role": "user", "content": "x"}], '
            f'"{field}": {value}}}')
    r = httpx.post(server.base_url + "/chat/completions", content=body,
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("extra", [
    '"hyperparameters": {"n_epochs": NaN}', '"hyperparameters": {"n_epochs": 1e400}',
    '"hyperparameters": {"batch_size": -2}', '"hyperparameters": {"learning_rate_multiplier": -1}',
    '"seed": -1', '"seed": Infinity',
])
def test_non_finite_and_negative_job_numbers_are_400(server, client, extra):
    train_id = upload(client, sql_rows(2))
    r = httpx.post(server.base_url + "/fine_tuning/jobs", timeout=30,
                   content=f'{{"model": "tiny", "training_file": "{train_id}", {extra}}}',
                   headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert all(j.training_file != train_id for j in client.fine_tuning.jobs.list().data)


@pytest.mark.parametrize("query", ["limit=-1", "limit=nan", "limit=1e400", "limit=0"])
def test_bad_list_limits_are_400(server, query):
    r = httpx.get(f"{server.base_url}/fine_tuning/jobs?{query}", timeout=30)
    assert r.status_code == 400, r.text


def test_a_non_ascii_authorization_header_is_401(start_server, tiny_gguf):
    server = start_server(["--no-default-model", "--model", f"tiny={tiny_gguf}",
                           "--api-key", "s3cret"])
    for header in ("Bearer s3cr\u00e9t".encode("utf-8"), "Bearer \u00ff".encode("latin-1"),
                   b"\xff\xfe"):
        r = httpx.get(server.base_url + "/models", headers={"authorization": header},
                      timeout=30)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert [m.id for m in server.client(api_key="s3cret").models.list().data] == ["tiny"]


# ---- crashes and races ---------------------------------------------------------------------

def test_a_crash_mid_write_leaves_the_job_and_its_events_readable(start_server, tiny_gguf,
                                                                  tmp_path):
    args = ["--no-default-model", "--model", f"tiny={tiny_gguf}"]
    data_dir = tmp_path / "data"
    first = start_server(args, data_dir=data_dir)
    client = first.client()
    job = client.fine_tuning.jobs.create(model="tiny", training_file=upload(client, sql_rows(8)),
                                         hyperparameters={"n_epochs": 50, "batch_size": 1})
    wait_for_metrics(client, job.id, timeout_s=250)
    before = client.fine_tuning.jobs.list_events(job.id, limit=1000).data
    first.kill()
    # What a kill in the middle of writing leaves: half an event line, half a temp file.
    job_dir = data_dir / "jobs" / job.id
    with (job_dir / "events.jsonl").open("a") as f:
        f.write('{"object": "fine_tuning.job.event", "id": "ftevent-')
    (job_dir / "job.json.tmp").write_text('{"object": "fine_tun')

    second = start_server(args, data_dir=data_dir)
    client = second.client()
    assert client.fine_tuning.jobs.retrieve(job.id).status == "failed"  # interrupted
    after = client.fine_tuning.jobs.list_events(job.id, limit=1000).data
    assert "The server stopped while this job was" in after[0].message  # appended intact
    assert [e.id for e in after[1:]][-len(before):] == [e.id for e in before]
    assert len({e.id for e in after}) == len(after)
    assert "torn by a crash" in second.log()


@pytest.mark.parametrize("when", ["mid-run", "at the last step"])
def test_a_cancel_leaves_job_and_adapter_consistent(start_server, tiny_gguf, when):
    """Cancelled: nothing published, no adapter kept. Finished first: the cancel is refused and
    the model answers. Whichever wins the race, never half of each."""
    server = start_server(["--no-default-model", "--model", f"tiny={tiny_gguf}"])
    client = server.client()
    # mid-run: 1,000 steps, far from done when the first one is reported; at the last step:
    # 2 steps, then the worker exports its adapter, and the cancel races that.
    rows, epochs, batch = (20, 50, 1) if when == "mid-run" else (4, 1, 2)
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=upload(client, sql_rows(rows)),
        hyperparameters={"n_epochs": epochs, "batch_size": batch})
    if when == "mid-run":
        wait_for_metrics(client, job.id, timeout_s=250)
    else:
        while not any(e.type == "metrics" and e.data["step"] == e.data["total_steps"]
                      for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data):
            if client.fine_tuning.jobs.retrieve(job.id).status in ("succeeded", "failed"):
                break
            time.sleep(0.02)
    try:
        client.fine_tuning.jobs.cancel(job.id)
    except openai.BadRequestError as exc:
        assert exc.code == "job_not_cancellable"
    job = wait_for_job(client, job.id, ("succeeded", "cancelled", "failed"), timeout_s=250)
    adapter = server.data_dir / "jobs" / job.id / "adapter.gguf"
    models = [m.id for m in client.models.list().data]
    if job.status == "cancelled":
        assert job.fine_tuned_model is None and not adapter.exists()
        assert not [m for m in models if job.id in m]
    else:
        assert job.status == "succeeded" and when != "mid-run", job.error
        assert adapter.exists() and job.fine_tuned_model in models
        answer = client.chat.completions.create(model=job.fine_tuned_model, max_tokens=2,
                                                messages=[{"role": "user", "content": "hi"}])
        assert answer.usage.completion_tokens == 2
