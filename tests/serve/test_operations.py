"""Operations: API key (flag and environment), bounded queue (503), request log, data dir."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

HELLO = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_api_key_is_required_when_configured(start_server, tiny_gguf, how):
    args = ["--no-default-model", "--model", f"tiny={tiny_gguf}"]
    if how == "flag":
        server = start_server(args + ["--api-key", "s3cret"])
    else:
        server = start_server(args, env={"PG_LLM_SERVE_API_KEY": "s3cret"})
    with pytest.raises(openai.AuthenticationError) as err:
        server.client(api_key="wrong").models.list()
    assert err.value.code == "invalid_api_key"
    assert httpx.post(server.base_url + "/chat/completions", json={}).status_code == 401
    assert [m.id for m in server.client(api_key="s3cret").models.list().data] == ["tiny"]
    # /health stays open for liveness probes.
    assert httpx.get(f"http://127.0.0.1:{server.port}/health").status_code == 200


def test_full_queue_answers_503_and_the_rest_complete(start_server, tiny_gguf):
    server = start_server(["--no-default-model", "--model", f"tiny={tiny_gguf}",
                           "--parallel", "1", "--max-queue", "1"])
    client = server.client(timeout=180)

    def ask(_):
        try:
            r = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=600,
                                               temperature=0)
            return r.usage.completion_tokens
        except openai.InternalServerError as exc:
            return exc

    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(ask, range(5)))
    rejected = [r for r in results if isinstance(r, Exception)]
    completed = [r for r in results if not isinstance(r, Exception)]
    assert rejected and all(r.status_code == 503 for r in rejected)
    assert "busy" in rejected[0].body["message"]
    assert len(completed) >= 2  # one running + one waiting fit
    assert all(n > 0 for n in completed)


def test_one_log_line_per_request_and_default_bind(start_server, tiny_gguf):
    server = start_server(["--no-default-model", "--model", f"tiny={tiny_gguf}"])
    server.client().models.list()
    with pytest.raises(openai.NotFoundError):
        server.client().models.retrieve("missing")
    log = server.log()
    assert "127.0.0.1 GET /v1/models 200" in log
    assert "127.0.0.1 GET /v1/models/missing 404" in log
    assert f"http://127.0.0.1:{server.port}/v1" in log  # binds loopback unless told otherwise
    assert (server.data_dir / "files").is_dir() and (server.data_dir / "jobs").is_dir()


def test_missing_model_file_is_a_clear_startup_error(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pg_llm.serve", "--no-default-model",
                           "--model", f"x={tmp_path}/missing.gguf", "--data-dir",
                           str(tmp_path / "d")], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2
    assert "missing.gguf does not exist" in proc.stderr
