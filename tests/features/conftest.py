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


def assert_schema_variable_option_is_validated(db, option: str, engine: str, model: str):
    """An option naming the template variable that holds a schema's DDL (sql_grammar_from,
    sql_infer_joins_from): 22023 for a name that is no variable, a non-text value, a model
    with output_columns, on llm_alter_model, and as an engine default."""
    cases = [  # (options of a new model on `engine`, words of the message or hint)
        (f'{{"{option}": "schema_text"}}', "not a variable"),
        (f'{{"{option}": 3}}', "template variable"),
        (f'{{"{option}": "ddl", "output_columns": {{"sql": "text"}}}}', "either output_columns"),
    ]
    for options, words in cases:
        with pytest.raises(psycopg.Error) as err:
            db.execute("SELECT llm_create_model('m2', %s, %s, '{{ddl}} {{question}}', "
                       "options => %s::jsonb)", (engine, BASE, options))
        assert err.value.sqlstate == "22023", options
        diag = err.value.diag
        assert words in (diag.message_primary + (diag.message_hint or "")), options
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT llm_alter_model(%s, %s)", (model, f'{{"{option}": "nope"}}'))
    assert err.value.sqlstate == "22023"
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT llm_create_engine('e9', provider => 'local', verify => false, "
                   "options => %s)", (f'{{"{option}": "ddl"}}',))
    assert err.value.sqlstate == "22023"


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
