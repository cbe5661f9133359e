"""Schema-constrained SQL decoding: model option sql_grammar_from names the template variable
holding the schema's DDL; the scan sends the grammar of that schema in the request body's
"grammar" field, and only to engines that apply it.

The grammar builder is checked on DDL of every layout against what PostgreSQL itself makes of
that DDL, and the grammars against llama.cpp's own grammar engine (tests/sql_grammar_check)."""

from __future__ import annotations

import psycopg
import pytest

from fake_openai import FakeOpenAI
from features.conftest import API_KEY, BASE, assert_schema_variable_option_is_validated
from sql_grammar_check import admits

from pg_llm import sql_grammar

LAYOUTS = {
    "one line": (
        "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT, country TEXT);\n"
        "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT REFERENCES customers(id), "
        "amount NUMERIC(12,2));\n-- How many orders per country?",
        ["customers", "orders"], ["id", "name", "country", "customer_id", "amount"]),
    "multi-line, comments, constraints": (
        """-- hospital schema
CREATE TABLE IF NOT EXISTS person (
    patient_no   INTEGER NOT NULL,          -- the key, not "id"
    full_name    VARCHAR(80) NOT NULL,
    grade        CHAR(1) CHECK (grade IN ('J', 'S', 'L')),  /* J = junior, S, L */
    note         TEXT DEFAULT 'a, b -- not a comment',
    born_on      DATE,
    PRIMARY KEY (patient_no),
    CONSTRAINT person_grade_ck CHECK (length(full_name) > 0)
);
create table visit (
    visit_no integer primary key,
    patient_no integer not null,
    fee numeric(10, 2) default 0,
    foreign key (patient_no) references person (patient_no),
    unique (visit_no, fee)
);""",
        ["person", "visit"], ["patient_no", "full_name", "grade", "note", "born_on",
                              "visit_no", "fee"]),
    "quoted identifiers and a schema": (
        'CREATE TABLE sales."Order Lines" ("Line Id" INT, "qty" INT, price NUMERIC);\n'
        'CREATE TEMP TABLE "Mixed" ("CamelCase" TEXT, "a""b" TEXT);',
        ["sales", "Order Lines", "Mixed"], ["Line Id", "qty", "price", "CamelCase", 'a"b']),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_names_are_what_postgresql_makes_of_the_ddl(db, layout):
    ddl, tables, columns = LAYOUTS[layout]
    assert sql_grammar.schema_names(ddl) == (tables, columns)
    db.execute("CREATE SCHEMA IF NOT EXISTS sales")
    db.execute(ddl)  # the same DDL, run by PostgreSQL: its columns are the ones we found
    made = db.execute("""SELECT DISTINCT a.attname FROM pg_attribute a JOIN pg_class c ON
                         c.oid = a.attrelid WHERE c.relname = ANY(%s) AND a.attnum > 0
                         AND NOT a.attisdropped""", ([t for t in tables if t != "sales"],)).fetchall()
    assert {r[0] for r in made} == set(columns)


def test_real_style_schemas_of_the_tutorial(db):
    """Every layout the tutorial's real-style generator writes (compact, orm, annotated,
    documented): the names found are exactly the tables and columns PostgreSQL creates."""
    from pg_llm_tutorial.realistic import realistic_examples

    seen = {}
    for split in ("eval", "eval_style", "train"):
        for example in realistic_examples(split, 40, 42):
            seen.setdefault(example.schema_key, example)
    assert {key.split("/")[1] for key in seen} == {"compact", "orm", "annotated", "documented"}
    for key, example in seen.items():
        schema = "s_" + key.replace("/", "_")
        db.execute(f"CREATE SCHEMA {schema}")
        db.execute(f"SET search_path = {schema}")
        db.execute(example.setup_sql)
        db.execute("SET search_path = public")
        tables = {r[0] for r in db.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = %s", (schema,))}
        columns = {r[0] for r in db.execute("SELECT column_name FROM information_schema.columns "
                                            "WHERE table_schema = %s", (schema,))}
        found_tables, found_columns = sql_grammar.schema_names(example.content)
        assert (set(found_tables), set(found_columns)) == (tables, columns), key


def test_the_grammar_admits_the_schemas_sql_and_nothing_else():
    ddl = LAYOUTS["multi-line, comments, constraints"][0] + "\n-- Which patients paid fees?"
    grammar = sql_grammar.grammar_for_ddl(ddl)
    good = [
        "SELECT full_name FROM person WHERE grade = 'S' ORDER BY born_on DESC LIMIT 3",
        "select count(*) from visit;",
        "SELECT fee - -1, fee / 2, fee-1, -fee FROM visit WHERE fee*2 > (fee - 3)",
        "SELECT DISTINCT person.full_name FROM person JOIN visit ON visit.patient_no = "
        "person.patient_no WHERE visit.fee > 10.5",
        "SELECT T1.full_name, SUM(T2.fee) AS total FROM person AS T1 JOIN visit AS T2 ON "
        "T1.patient_no = T2.patient_no GROUP BY T1.full_name HAVING COUNT(*) >= 2",
        "SELECT full_name FROM person WHERE patient_no IN (SELECT patient_no FROM visit "
        "WHERE EXTRACT(YEAR FROM born_on) = 1990) AND note IS NOT NULL",
        "WITH T1 AS (SELECT fee FROM visit) SELECT AVG(T1.fee) FROM T1",
        "SELECT \"full_name\" FROM person WHERE note LIKE '%it''s%'",
        "SELECT person.* FROM person WHERE person.patient_no = 3.5",
        "SELECT AVG(T1.fee) FROM (SELECT fee FROM visit) AS T1",
        "SELECT COUNT(*) FROM visit WHERE EXTRACT(month from born_on) = 2",
        "SELECT fee::numeric(10, 2), CAST(fee AS INTEGER) FROM visit WHERE born_on > DATE '2020-01-01'",
        "SELECT fee FROM visit WHERE born_on < timestamp '2020-01-01 10:00' + INTERVAL '1 day'",
    ]
    bad = [
        "SELECT person.id FROM person",              # the key is patient_no
        "SELECT visit.full_name FROM visit",         # a column of another table
        "SELECT DATE.fee FROM visit",                # a keyword is no table
        "SELECT name FROM patients",                 # invented names
        "SELECT full_name FROM person; DROP TABLE person",
        "SELECT full_name FROM person -- person.id",  # no comments
        "SELECT full_name FROM person /* x */",
        "Here is the query: SELECT full_name FROM person",
        "SELECT full_name FROM person p",            # an alias the grammar does not know
        "WITH t AS (SELECT fee FROM visit) SELECT AVG(fee) FROM t",  # ... nor a CTE name
        "SELECT full_name FROM full_name",           # FROM and JOIN take a table ...
        "SELECT fee FROM visit JOIN fee ON fee = 1",
        "SELECT full_name FROM person.full_name",    # ... not table.column
        "SELECT person FROM person",                 # and a table is no column
        "SELECT AVG(numeric) FROM visit",            # nor a type name
        "SELECT AVG(smallint 'A') FROM visit",       # nor a typed literal of a non-date type
    ]
    for sql in good:
        assert admits(grammar, sql), sql
    for sql in bad:
        assert not admits(grammar, sql), sql
    assert admits(grammar, "SELECT full_name FROM pers", complete=False)  # a cut-off answer
    quoted = sql_grammar.grammar_for_ddl(LAYOUTS["quoted identifiers and a schema"][0])
    assert admits(quoted, 'SELECT "Line Id", qty FROM sales."Order Lines"')
    assert admits(quoted, 'SELECT "Order Lines".qty FROM "Order Lines"')
    assert not admits(quoted, 'SELECT "Mixed".qty FROM "Mixed"')
    assert not admits(quoted, "SELECT line id FROM order_lines")
    assert not admits(quoted, 'SELECT camelcase FROM "Mixed"')  # quoted with capitals: only quoted


def test_every_gold_query_of_the_tutorial_and_the_shared_eval_is_admitted():
    """The grammar never rules out the right answer: the gold SQL of the held-out splits
    (simple, real-style, documented) and of sql-create-context's first 100 questions."""
    from pathlib import Path

    from pg_llm_tutorial.generator import generate
    from pg_llm_tutorial.realistic import realistic_examples

    examples = (generate(n_train=0, n_eval=60)[1] + realistic_examples("eval", 30, 42)
                + realistic_examples("eval_style", 30, 42))
    shared = Path(__file__).resolve().parents[3] / "shared/datasets/sql-create-context/eval.jsonl"
    if shared.is_file():
        from pg_llm_tutorial.sqlite_compat import load_examples

        examples += load_examples(str(shared), limit=100)[0]
    for example in examples:
        assert admits(sql_grammar.grammar_for_ddl(example.content), example.gold_sql), \
            example.gold_sql


def test_bounds_and_missing_ddl():
    many = "CREATE TABLE t (" + ", ".join(f"c{i} INT" for i in range(sql_grammar.MAX_NAMES)) + ")"
    with pytest.raises(sql_grammar.InvalidParameter, match="at most"):
        sql_grammar.grammar_for_ddl(many)
    with pytest.raises(sql_grammar.InvalidParameter, match="no CREATE TABLE"):
        sql_grammar.grammar_for_ddl("-- How many customers?")


# ---- through PostgreSQL: the option, the request, the refusals ---------------------------

DDL = "CREATE TABLE person (patient_no INT PRIMARY KEY, full_name TEXT);"


@pytest.fixture
def recorder():
    with FakeOpenAI(models=[BASE], api_key=API_KEY,
                    answer=lambda messages, body: "SELECT full_name FROM person") as server:
        yield server


@pytest.fixture
def local(db, recorder):
    """A 'local' engine (the provider that takes a grammar) aimed at the recording fake."""
    db.execute("SELECT llm_create_engine('loc', provider => 'local', base_url => %s, "
               "api_key => %s, options => '{\"max_retries\": 0}')", (recorder.url, API_KEY))
    db.execute("SELECT llm_create_model('sqlgen', 'loc', %s, '{{ddl}}\n-- {{question}}', "
               "options => '{\"sql_grammar_from\": \"ddl\", \"temperature\": 0}')", (BASE,))
    return "sqlgen"


def test_requests_carry_the_grammar_of_their_schema(db, local, recorder):
    other = "CREATE TABLE vessel (vessel_id INT, tonnage INT);"
    rows = db.execute("SELECT ddl, answer FROM sqlgen WHERE ddl = ANY(%s) AND question = 'x'",
                      ([DDL, other],)).fetchall()
    assert sorted(r[0] for r in rows) == sorted([DDL, other])
    sent = {r.body["messages"][-1]["content"].split("\n")[0]: r.body for r in recorder.chat_requests()}
    assert sent[DDL]["grammar"] == sql_grammar.grammar_for_ddl(DDL)
    assert sent[other]["grammar"] == sql_grammar.grammar_for_ddl(other)
    assert "response_format" not in sent[DDL]
    # off again: no grammar in the body
    db.execute("""SELECT llm_alter_model('sqlgen', '{"sql_grammar_from": null}')""")
    db.execute("SELECT answer FROM sqlgen WHERE ddl = %s AND question = 'y'", (DDL,))
    assert "grammar" not in recorder.chat_requests()[-1].body


def test_a_value_without_ddl_is_refused_before_sending(db, local, recorder):
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM sqlgen WHERE ddl = 'no schema here' AND question = 'x'")
    assert err.value.sqlstate == "22023" and "sql_grammar_from" in err.value.diag.message_hint
    assert recorder.chat_requests() == []


def test_the_option_is_validated(db, local):
    assert_schema_variable_option_is_validated(db, "sql_grammar_from", engine="loc", model="sqlgen")


def test_engines_that_cannot_apply_a_grammar_refuse_it(db, local, recorder):
    """Hosted OpenAI-compatible APIs would ignore or reject the field: the option refuses
    (0A000) instead of answering unconstrained without a word."""
    db.execute("SELECT llm_create_engine('hosted', base_url => %s, api_key => %s)",
               (recorder.url, API_KEY))
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT llm_create_model('h', 'hosted', %s, '{{ddl}}', "
                   "options => '{\"sql_grammar_from\": \"ddl\"}')", (BASE,))
    assert err.value.sqlstate == "0A000" and "provider 'local'" in err.value.diag.message_hint
    db.execute("SELECT llm_create_model('h', 'hosted', %s, '{{ddl}}')", (BASE,))
    with pytest.raises(psycopg.Error) as err:
        db.execute("""SELECT llm_alter_model('h', '{"sql_grammar_from": "ddl"}')""")
    assert err.value.sqlstate == "0A000"
    # an engine whose provider changes later: the scan refuses before sending anything
    db.execute("ALTER SERVER loc OPTIONS (SET provider 'openai')")
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT answer FROM sqlgen WHERE ddl = %s AND question = 'x'", (DDL,))
    assert err.value.sqlstate == "0A000"
    assert recorder.chat_requests() == []


def test_an_ordinary_role_queries_it_and_cannot_change_it(db, local, recorder):
    db.execute("CREATE ROLE grammar_reader LOGIN")
    try:
        db.execute("GRANT SELECT ON sqlgen TO grammar_reader")
        info = db.info
        with psycopg.connect(host=info.host, port=info.port, dbname=info.dbname,
                             user="grammar_reader", autocommit=True) as conn:
            answer = conn.execute("SELECT answer FROM sqlgen WHERE ddl = %s AND question = 'q'",
                                  (DDL,)).fetchone()[0]
            assert answer == "SELECT full_name FROM person"
            assert recorder.chat_requests()[-1].body["grammar"] == sql_grammar.grammar_for_ddl(DDL)
            with pytest.raises(psycopg.Error) as err:  # the model's owner sets it, nobody else
                conn.execute("""SELECT llm_alter_model('sqlgen', '{"sql_grammar_from": null}')""")
            assert err.value.sqlstate == "42501"
    finally:
        db.execute("DROP OWNED BY grammar_reader")
        db.execute("DROP ROLE grammar_reader")


# ---- end to end: PostgreSQL, the local engine, the tiny random model ---------------------

@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory):
    from serve.tiny_checkpoint import build_tiny_checkpoint

    from pg_llm_tutorial.processes import LocalEngineProcess, free_port

    tiny = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny-llama")
    data = tmp_path_factory.mktemp("engine")
    engine = LocalEngineProcess(data / "data", free_port(),
                                ["--no-default-model", "--model", f"tiny={tiny}",
                                 "--threads", "1"], log_path=data / "engine.log")
    engine.start()
    yield engine
    engine.stop()


def test_the_local_engine_answers_within_the_schemas_grammar(db, tiny_engine):
    """A random model at temperature 1: every answer is SQL over the schema's own names."""
    db.execute("SELECT llm_create_engine('tiny_local', provider => 'local', base_url => %s)",
               (tiny_engine.base_url,))
    db.execute("SELECT llm_create_model('tiny_sql', 'tiny_local', 'tiny', '{{ddl}}\n-- {{question}}', "
               "options => '{\"sql_grammar_from\": \"ddl\", \"temperature\": 1, \"max_tokens\": 16}')")
    other = "CREATE TABLE vessel (vessel_no INT PRIMARY KEY, tonnage NUMERIC(10,2));"
    rows = db.execute("SELECT ddl, seed, answer, finish_reason FROM tiny_sql WHERE ddl = ANY(%s) "
                      "AND question = 'how many?' AND seed = ANY('{1,2}')", ([DDL, other],)).fetchall()
    assert len(rows) == 4
    for ddl, seed, answer, finish in rows:
        assert admits(sql_grammar.grammar_for_ddl(ddl), answer, complete=finish == "stop"), answer
