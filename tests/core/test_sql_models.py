"""llm_create_model / llm_drop_model and the errors a model query can raise."""

import json

import psycopg
import pytest

from core.conftest import BASE_MODEL


def error_of(db, sql, params=None):
    with pytest.raises(psycopg.Error) as err:
        db.execute(sql, params)
    return err.value


def columns_of(db, table):
    return db.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                      "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum", (table,)).fetchall()


def test_model_is_a_foreign_table_whose_columns_are_the_template_variables(db, ft_sql, bridge):
    # under Multicorn2 one more column carries errors with their SQLSTATE (docs/multicorn.md)
    relay = [("multicorn_error", "llm.multicorn_error")] if bridge == "multicorn" else []
    assert columns_of(db, "ft_sql") == [
        ("content", "text"), ("answer", "text"), ("max_tokens", "integer"),
        ("temperature", "double precision"), ("top_p", "double precision"), ("seed", "integer"),
        ("stop", "text"), ("version", "integer"), ("on_error", "text"), ("model_id", "text"), ("prompt_tokens", "integer"),
        ("completion_tokens", "integer"), ("latency_ms", "double precision"), ("finish_reason", "text"),
        ("error", "text"), ("cached", "boolean"), ("request_id", "bigint")] + relay
    assert db.execute("SELECT name, engine, base_model, prompt_template, predict, active_version "
                      "FROM llm.models").fetchall() == [
        ("ft_sql", "openai_compat", BASE_MODEL, "{{content}}", "answer", 1)]
    assert db.execute("SELECT model, version, provider_model_id, dropped_at FROM llm.model_versions"
                      ).fetchall() == [("ft_sql", 1, BASE_MODEL, None)]
    assert db.execute("SELECT model, active_model_id, foreign_table FROM llm.model_summary").fetchall() == [
        ("ft_sql", BASE_MODEL, "public.ft_sql")]


def test_table_options_mirror_the_catalog(db, ft_sql):
    options = dict(o.split("=", 1) for o in db.execute(
        "SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'ft_sql'::regclass").fetchone()[0])
    assert options["model"] == "ft_sql" and options["prompt_columns"] == "content"
    assert json.loads(options["versions"]) == {"1": BASE_MODEL}
    assert options["active_version"] == "1"


def test_several_variables_system_prompt_and_options(db, ft_sql, fake):
    db.execute("""SELECT llm_create_model('qa', engine => 'openai_compat', model_name => %s,
                  prompt_template => 'Context: {{context}} Question: {{question}}', predict => 'reply',
                  system_prompt => 'Answer in {{language}}.',
                  options => '{"max_tokens": 64, "temperature": 0.2, "concurrency": 2}')""", (BASE_MODEL,))
    assert [c for c, _ in columns_of(db, "qa")][:4] == ["context", "question", "language", "reply"]
    row = db.execute("SELECT reply, max_tokens, temperature FROM qa WHERE context = 'c' "
                     "AND question = 'q' AND language = 'French'").fetchone()
    assert row == ("echo:Context: c Question: q", 64, 0.2)
    body = fake.chat_requests()[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert body["max_tokens"] == 64 and body["temperature"] == 0.2


@pytest.fixture
def offline_engine(db):
    """An engine that is never called: argument checks need no endpoint."""
    db.execute("SELECT llm_create_engine('openai_compat', provider => 'local', verify => false)")
    db.execute("SELECT llm_create_model('ft_sql', engine => 'openai_compat', model_name => 'x', "
               "prompt_template => '{{content}}')")
    return db


BAD_TEMPLATES = [
    ("no placeholder", "has no {{column}} placeholder"),
    ("{{content", "unbalanced"),
    ("{{}}", "empty placeholder"),
    ("{{max_tokens}}", "reserved column"),
    ("{{answer}}", "reserved column"),
    ("{{Bad-Name}}", "not a valid column name"),
]


def test_invalid_templates_are_refused(offline_engine):
    db = offline_engine
    for template, fragment in BAD_TEMPLATES:
        err = error_of(db, "SELECT llm_create_model('m2', engine => 'openai_compat', model_name => 'x', "
                           "prompt_template => %s)", (template,))
        assert (template, err.sqlstate) == (template, "22023")
        assert fragment in err.diag.message_primary and err.diag.message_hint, template
    assert db.execute("SELECT count(*) FROM llm.models").fetchone() == (1,)
    assert db.execute("SELECT to_regclass('m2')").fetchone() == (None,)


BAD_MODEL_ARGS = [
    ("'m2', engine => 'nope', model_name => 'x', prompt_template => '{{c}}'", "42704", "openai_compat"),
    ("'ft_sql', engine => 'openai_compat', model_name => 'x', prompt_template => '{{c}}'", "42710", "llm_drop_model"),
    ("'m2', engine => 'openai_compat', model_name => '', prompt_template => '{{c}}'", "22023", "model id"),
    ("'plain', engine => 'openai_compat', model_name => 'x', prompt_template => '{{c}}'", "42710", "another name"),
    ("'m2', engine => 'openai_compat', model_name => 'x', prompt_template => '{{c}}', predict => 'seed'", "22023", "predict"),
    ("'m2', engine => 'openai_compat', model_name => 'x', prompt_template => '{{c}}', options => '{\"max_tokens\": 0}'", "22023", "max_tokens"),
    ("'m2', engine => 'openai_compat', model_name => 'x', prompt_template => '{{c}}', options => '{\"temprature\": 1}'", "22023", "temperature"),
    ("'m2', engine => 'openai_compat', model_name => 'x', prompt_template => '{{c}}', options => '[1]'", "22023", "max_tokens"),
]


def test_bad_model_arguments(offline_engine):
    db = offline_engine
    db.execute("CREATE TABLE plain (id int)")
    for args, state, hint in BAD_MODEL_ARGS:
        err = error_of(db, f"SELECT llm_create_model({args})")
        assert (args, err.sqlstate) == (args, state), err
        assert hint in err.diag.message_hint, args
    assert db.execute("SELECT count(*) FROM llm.models").fetchone() == (1,)


def test_drop_model_removes_table_and_catalog_rows(db, ft_sql):
    db.execute("SELECT llm_drop_model('ft_sql')")
    assert db.execute("SELECT to_regclass('ft_sql'), (SELECT count(*) FROM llm.models), "
                      "(SELECT count(*) FROM llm.model_versions)").fetchone() == (None, 0, 0)
    err = error_of(db, "SELECT llm_drop_model('ft_sql')")
    assert err.sqlstate == "42704"


def test_query_without_the_template_variable_says_which_where_clause_to_add(db, ft_sql, fake):
    err = error_of(db, "SELECT answer FROM ft_sql WHERE max_tokens = 5")
    assert err.sqlstate == "22004"
    assert '"content"' in err.diag.message_primary
    assert err.diag.message_hint == "add WHERE content = '...'"
    assert fake.chat_requests() == []


BAD_OPTION_VALUES = [
    ("max_tokens = 0", "22023", "max_tokens"),
    ("max_tokens = -5", "22023", "max_tokens"),
    ("temperature = 3", "22023", "temperature"),
    ("top_p = 1.5", "22023", "top_p"),
    ("version = 7", "42704", "available versions: 1"),
]


def test_bad_option_values_in_the_where_clause(offline_engine):
    # refused before any request: the engine of offline_engine has no server behind it
    db = offline_engine
    for where, state, fragment in BAD_OPTION_VALUES:
        err = error_of(db, f"SELECT answer FROM ft_sql WHERE content = 'x' AND {where}")
        assert (where, err.sqlstate) == (where, state), err
        assert fragment in (err.diag.message_primary + (err.diag.message_hint or "")), where


def test_unknown_model_at_the_engine_is_undefined_object(db, ft_sql, fake):
    db.execute("SELECT llm_create_model('ghost', engine => 'openai_compat', model_name => 'not-served', "
               "prompt_template => '{{content}}')")
    err = error_of(db, "SELECT answer FROM ghost WHERE content = 'x'")
    assert err.sqlstate == "42704" and 'model "not-served"' in err.diag.message_primary


def test_engine_down_at_query_time(db, ft_sql, refused_url):
    db.execute(f"ALTER SERVER openai_compat OPTIONS (ADD max_retries '0', SET base_url '{refused_url}')")
    err = error_of(db, "SELECT answer FROM ft_sql WHERE content = 'x'")
    assert err.sqlstate == "08001" and "pg-llm serve" in err.diag.message_hint
    assert db.execute("SELECT 1").fetchone() == (1,)


def test_endpoint_errors_are_retried_then_reported(db, ft_sql, fake):
    fake.fail(503, times=1, retry_after_ms=10)
    assert db.execute("SELECT answer FROM ft_sql WHERE content = 'x'").fetchone() == ("echo:x",)
    assert len(fake.chat_requests()) == 2
    fake.fail(400)
    err = error_of(db, "SELECT answer FROM ft_sql WHERE content = 'y'")
    assert err.sqlstate == "HV000" and "HTTP 400" in err.diag.message_primary


def test_a_models_call_options_win_over_its_engines(db, ft_sql, fake):
    """Model options override engine options on both bridges, although Multicorn2 lets a
    server option shadow a table option of the same name."""
    db.execute("ALTER SERVER openai_compat OPTIONS (ADD concurrency '6')")
    db.execute("SELECT llm_create_model('narrow', engine => 'openai_compat', model_name => %s, "
               "prompt_template => '{{content}}', options => '{\"concurrency\": 2}')", (BASE_MODEL,))
    fake.delay = 0.05
    db.execute("SELECT answer FROM narrow WHERE content = ANY(%s)", ([f"q{i}" for i in range(12)],))
    assert fake.max_in_flight == 2
    fake.reset()
    db.execute("SELECT answer FROM ft_sql WHERE content = ANY(%s)", ([f"q{i}" for i in range(12)],))
    assert fake.max_in_flight > 2  # the engine's own setting still applies to its other models
