"""Fixtures for the feature tests (issue 13): a recording loopback OpenAI server, an engine
with prices, a model on it, and an ordinary login role allowed to use it."""

import uuid

import psycopg
import pytest

from fake_openai import FakeOpenAI

API_KEY = "sk-features-test-0a1b2c3d4e"
BASE = "base-model"
TUNED = "ft:base-model:tuned:1"


@pytest.fixture
def fake():
    with FakeOpenAI(models=[BASE, TUNED], api_key=API_KEY) as server:
        yield server


@pytest.fixture
def engine(db, fake):
    # $2 / $4 per million tokens, so costs are visible in the ledger and the guards
    db.execute("SELECT llm_create_engine('paid', base_url => %s, api_key => %s, "
               "price_input => 2, price_output => 4, options => '{\"max_retries\": 0}')",
               (fake.url, API_KEY))
    return "paid"


def make_model(db, name="qa", options="{}"):
    db.execute("SELECT llm_create_model(%s, engine => 'paid', model_name => %s, "
               "prompt_template => 'Q: {{question}}', options => %s::jsonb)",
               (name, BASE, options))
    return name


def http_calls(fake) -> int:
    return len(fake.chat_requests())


@pytest.fixture
def analyst(db, engine):
    """An ordinary login role (no superuser, no catalog rights) that may use the engine."""
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    db.execute(f"GRANT USAGE ON FOREIGN SERVER paid TO {role}")
    info = db.info
    conn = psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=role,
                           autocommit=True)
    try:
        yield role, conn
    finally:
        conn.close()
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")
