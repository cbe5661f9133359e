"""Fixtures for the core tests: a real loopback OpenAI-compatible server and a model on it."""

import pytest

from fake_openai import FakeOpenAI

API_KEY = "sk-core-test-9f8e7d6c5b4a"
BASE_MODEL = "mistralai/Mistral-7B-Instruct-v0.1"


@pytest.fixture
def fake():
    with FakeOpenAI(models=[BASE_MODEL, "ft-model-2"], api_key=API_KEY) as server:
        yield server


@pytest.fixture
def ft_sql(db, fake, bridge):
    """The README's model: engine openai_compat, model ft_sql with template {{content}}, on
    each bridge (the C bridge, then Multicorn2)."""
    db.execute("SELECT llm_create_engine('openai_compat', base_url => %s, api_key => %s, "
               "bridge => %s)", (fake.url, API_KEY, bridge))
    db.execute("SELECT llm_create_model('ft_sql', engine => 'openai_compat', model_name => %s, "
               "prompt_template => '{{content}}', predict => 'answer')", (BASE_MODEL,))
    fake.reset()
    return "ft_sql"


@pytest.fixture
def refused_url():
    """A loopback URL that refuses connections: the port is bound (so nobody else takes it)
    but never listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
