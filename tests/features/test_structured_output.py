"""Structured output: output_columns give the model's table typed columns, requests carry a
strict JSON schema, answers are parsed into the declared types; an answer that does not
parse follows on_error."""

import json

import psycopg
import pytest

from fake_openai import FakeOpenAI
from features.conftest import API_KEY, BASE, http_calls

COLUMNS = '[["sql", "text"], ["confidence", "float8"], ["tables", "text[]"], ["n", "int"], ["ok", "bool"]]'


def structured_answer(messages, body):
    """Answers in the requested shape, or garbage for prompts containing 'garbage'."""
    question = messages[-1]["content"]
    if "garbage" in question:
        return "Sure! Here is your SQL: SELECT 1"
    if "wrongtype" in question:
        return json.dumps({"sql": 1, "confidence": 0.5, "tables": [], "n": 1, "ok": True})
    if "newline" in question:  # a raw control character inside a string, as models write
        return '{"sql": "SELECT 1\nFROM t", "confidence": 1, "tables": [], "n": 0, "ok": false}'
    return json.dumps({"sql": f"SELECT * FROM t -- {question}", "confidence": 0.75,
                       "tables": ["t", 'odd "name"', None], "n": 3, "ok": True})


@pytest.fixture
def structured_fake():
    with FakeOpenAI(models=[BASE], api_key=API_KEY, answer=structured_answer) as server:
        yield server


@pytest.fixture
def sq(db, structured_fake):
    db.execute("SELECT llm_create_engine('js', base_url => %s, api_key => %s, "
               "options => '{\"max_retries\": 0}')", (structured_fake.url, API_KEY))
    db.execute("SELECT llm_create_model('sq', 'js', %s, 'Q: {{question}}', "
               "options => jsonb_build_object('output_columns', %s::jsonb))", (BASE, COLUMNS))
    return "sq"


def test_the_table_gets_typed_columns_and_answers_parse_into_them(db, sq, structured_fake):
    types = db.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                       "WHERE attrelid = 'sq'::regclass AND attnum > 0 ORDER BY attnum").fetchall()
    assert types[-5:] == [("sql", "text"), ("confidence", "double precision"),
                          ("tables", "text[]"), ("n", "integer"), ("ok", "boolean")]
    row = db.execute("SELECT sql, confidence, tables, n, ok, answer IS NOT NULL FROM sq "
                     "WHERE question = 'list t'").fetchone()
    assert row == ("SELECT * FROM t -- Q: list t", 0.75, ["t", 'odd "name"', None], 3, True, True)
    assert db.execute("SELECT sql, confidence, tables, ok FROM sq WHERE question = 'newline'"
                      ).fetchone() == ("SELECT 1\nFROM t", 1.0, [], False)
    sent = structured_fake.chat_requests()[0].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    schema = sent["json_schema"]["schema"]
    assert schema["required"] == ["sql", "confidence", "tables", "n", "ok"]
    assert schema["properties"]["tables"] == {"type": "array", "items": {"type": "string"}}
    assert schema["additionalProperties"] is False


def test_an_answer_that_does_not_parse_follows_on_error(db, sq, structured_fake):
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT sql FROM sq WHERE question = 'garbage please'")
    assert err.value.sqlstate == "22032" and "not valid JSON" in err.value.diag.message_primary
    rows = db.execute("SELECT question, sql, split_part(error, ':', 1) FROM sq "
                      "WHERE question = ANY (ARRAY['fine', 'garbage', 'wrongtype']) "
                      "AND on_error = 'null' ORDER BY question").fetchall()
    assert rows == [("fine", "SELECT * FROM t -- Q: fine", None), ("garbage", None, "22032"),
                    ("wrongtype", None, "22032")]


def test_invalid_answers_are_not_cached(db, sq, structured_fake):
    db.execute("""SELECT llm_alter_model('sq', '{"cache": "on", "temperature": 0, "on_error": "null"}')""")
    for _ in range(2):
        db.execute("SELECT sql FROM sq WHERE question = ANY (ARRAY['fine', 'garbage'])")
    assert http_calls(structured_fake) == 3  # 'fine' once, 'garbage' twice
    assert db.execute("SELECT cached FROM sq WHERE question = 'fine'").fetchone() == (True,)


def test_declarations_are_validated(db, sq):
    for bad, hint in (('{"x": "blob"}', "types:"), ('{"answer": "text"}', None),
                      ('{"model_id": "text"}', "reserved"), ('[]', None),
                      ('{"Bad Name": "text"}', None)):
        with pytest.raises(psycopg.Error) as err:
            db.execute("SELECT llm_create_model('sq2', 'js', 'm', 'Q: {{question}}', "
                       "options => jsonb_build_object('output_columns', %s::jsonb))", (bad,))
        assert err.value.sqlstate in ("22023", "42701"), (bad, err.value.sqlstate)
        if hint:
            assert hint in err.value.diag.message_hint
    with pytest.raises(psycopg.Error) as err:
        db.execute("""SELECT llm_alter_model('sq', '{"output_columns": {"x": "text"}}')""")
    assert err.value.sqlstate == "22023" and "llm_create_model" in err.value.diag.message_hint
    with pytest.raises(psycopg.Error) as err:
        db.execute("""SELECT llm_create_engine('e3', base_url => 'http://127.0.0.1:1/v1',
                      verify => false, options => '{"output_columns": {"x": "text"}}')""")
    assert err.value.sqlstate == "22023"


def test_output_columns_argument_from_psql_as_an_ordinary_role(db, sq, structured_fake, dsn):
    from conftest import run_psql

    run_psql(dsn, "SELECT llm_create_model('sq3', 'js', 'base-model', 'Q: {{question}}', "
                  "output_columns => '{\"sql\": \"text\", \"n\": \"int\"}')")
    db.execute("CREATE ROLE sq_reader LOGIN")
    try:
        db.execute("GRANT USAGE ON FOREIGN SERVER js TO sq_reader")
        db.execute("GRANT SELECT ON sq3 TO sq_reader")
        info = db.info
        with psycopg.connect(host=info.host, port=info.port, dbname=info.dbname,
                             user="sq_reader", autocommit=True) as conn:
            assert conn.execute("SELECT n, sql FROM sq3 WHERE question = 'x'").fetchone() == (
                3, "SELECT * FROM t -- Q: x")
    finally:
        db.execute("DROP OWNED BY sq_reader")
        db.execute("DROP ROLE sq_reader")
