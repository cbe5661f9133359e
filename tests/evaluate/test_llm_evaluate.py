"""llm_evaluate end to end: a real PostgreSQL, each model asked through its foreign table,
a loopback OpenAI-compatible engine whose answers are scripted per (model id, prompt)."""

import struct
import subprocess
import zlib
from decimal import Decimal

import psycopg
import pytest

from conftest import ROOT, run_psql
from evaluate.scripted_engine import EXAMPLES, add_version

DATA = "SELECT id, content, gold_sql, setup_sql FROM shop_eval"
PROSE = "Sure! To find them you can run SELECT name FROM customers. Hope it helps!"
# What the "fine-tuned" model answers: right for 1, 2 and 4 (4 written differently),
# the right rows in the wrong order for 3 (whose gold query has ORDER BY).
TUNED = {
    1: "SELECT name FROM customers WHERE country = 'Canada'",
    2: "SELECT country, count(*) FROM customers GROUP BY country;",
    3: "SELECT name FROM customers WHERE age IS NOT NULL ORDER BY age ASC LIMIT 3",
    4: "SELECT customers.name, SUM(orders.total) AS spent FROM orders JOIN customers "
       "ON customers.id = orders.customer_id GROUP BY customers.name",
}


def evaluate(db, models, data=DATA, **kwargs):
    args = "".join(f", {k} => %({k})s" for k in kwargs)
    cursor = db.execute(f"SELECT * FROM llm_evaluate(%(models)s, %(data)s{args})",
                        {"models": models, "data": data, **kwargs})
    names = [d.name for d in cursor.description]
    return {row[1]: dict(zip(names, row)) for row in cursor.fetchall()}


def script(scripted, model_id, answers: dict):
    for item_id, question, _gold in EXAMPLES:
        scripted.script(model_id, question, answers[item_id])


@pytest.fixture
def two_versions(eval_db, scripted):
    """sqlbot@1 = base model answering prose, sqlbot@2 = the tuned model."""
    add_version(eval_db, "sqlbot", 2, "tuned-model")
    script(scripted, "base-model", {i: PROSE for i in TUNED})
    script(scripted, "tuned-model", TUNED)
    return eval_db


def test_compares_versions_with_the_at_syntax(two_versions):
    result = evaluate(two_versions, ["sqlbot@1", "sqlbot@2"], name="base vs tuned")
    base, tuned = result["sqlbot@1"], result["sqlbot@2"]
    assert (base["version"], tuned["version"]) == (1, 2)
    assert base["n"] == tuned["n"] == 4
    assert (base["execution_match"], base["exact_match"], base["succinct_rate"]) == (0, 0, 0)
    assert tuned["execution_match"] == pytest.approx(3 / 4)  # 3 has the wrong order
    assert tuned["exact_match"] == pytest.approx(2 / 4)  # 1 and 2 (semicolon ignored)
    assert tuned["succinct_rate"] == 1.0
    assert tuned["avg_completion_tokens"] > 0 and tuned["avg_latency_ms"] > 0


def test_execution_match_counts_the_join_written_differently(two_versions):
    evaluate(two_versions, ["sqlbot@2"])
    items = {row[0]: row[1:] for row in two_versions.execute(
        "SELECT item_id, exact, executed_ok, execution_match FROM llm.evaluation_items")}
    assert items["4"] == (False, True, True)   # not the same text, same result
    assert items["3"] == (False, True, False)  # same rows, wrong order: the gold orders
    assert items["1"] == (True, True, True)


def test_results_are_stored_in_the_catalog(two_versions, dsn):
    result = evaluate(two_versions, ["sqlbot@1", "sqlbot@2"], name="stored")
    ids = sorted(r["evaluation_id"] for r in result.values())
    rows = two_versions.execute(
        "SELECT id, run_id, name, entry, model, version, provider_model_id, n, n_executable, "
        "data_query FROM llm.evaluations ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ids
    assert {r[1] for r in rows} == {ids[0]}  # one run
    assert [(r[3], r[5], r[6]) for r in rows] == [("sqlbot@1", 1, "base-model"),
                                                  ("sqlbot@2", 2, "tuned-model")]
    assert all(r[2] == "stored" and r[7] == 4 and r[8] == 4 and r[9] == DATA for r in rows)
    answers = dict(two_versions.execute(
        "SELECT item_id, answer FROM llm.evaluation_items WHERE evaluation_id = %s",
        [ids[1]]).fetchall())
    assert answers == {str(k): v for k, v in TUNED.items()}
    # The cost is the engine's prices (2 and 6 USD per million tokens) times the tokens used.
    tokens = two_versions.execute(
        "SELECT sum(prompt_tokens), sum(completion_tokens) FROM llm.evaluation_items "
        "WHERE evaluation_id = %s", [ids[1]]).fetchone()
    assert result["sqlbot@2"]["cost_usd"] == (Decimal(tokens[0]) * 2 + Decimal(tokens[1]) * 6) / 10**6
    # Plain SQL from psql reads the same catalog.
    out = run_psql(dsn, "SELECT entry, round(execution_match::numeric, 2) FROM llm.evaluations "
                        "ORDER BY id").stdout.split()
    assert out == ["sqlbot@1|0.00", "sqlbot@2|0.75"]


def test_one_scan_per_model_sends_the_prompts_concurrently(eval_db, scripted):
    script(scripted, "base-model", TUNED)
    scripted.fake.delay = 0.3
    evaluate(eval_db, ["sqlbot"], max_tokens=77)
    requests = scripted.fake.chat_requests()
    assert len(requests) == len(EXAMPLES)
    assert scripted.fake.max_in_flight >= 2
    assert {(r.body["max_tokens"], r.body.get("temperature")) for r in requests} == {(77, 0)}


def test_a_name_without_version_uses_the_active_version(two_versions):
    two_versions.execute("SELECT llm_set_active_version('sqlbot', 2)")
    result = evaluate(two_versions, ["sqlbot", "sqlbot@1"])
    assert result["sqlbot"]["version"] == 2
    assert result["sqlbot"]["succinct_rate"] == 1.0
    assert result["sqlbot@1"]["succinct_rate"] == 0.0


def test_harmful_and_endless_answers_are_contained(eval_db, scripted):
    script(scripted, "base-model", {1: "DROP TABLE shop_eval", 2: "DELETE FROM shop_eval",
                                    3: "SELECT pg_sleep(60)", 4: "SELECT 1; DROP TABLE shop_eval"})
    result = evaluate(eval_db, ["sqlbot"], statement_timeout_ms=300)
    assert result["sqlbot"]["execution_match"] == 0
    errors = dict(eval_db.execute("SELECT item_id, error FROM llm.evaluation_items").fetchall())
    assert errors["3"] == "57014: stopped after 300 ms"
    assert all(errors[k].startswith("42601") for k in ("1", "2", "4"))
    assert eval_db.execute("SELECT count(*) FROM shop_eval").fetchone()[0] == len(EXAMPLES)


def test_without_setup_sql_execution_match_is_not_available(eval_db, scripted):
    script(scripted, "base-model", TUNED)
    result = evaluate(eval_db, ["sqlbot"], data="SELECT content, gold_sql FROM shop_eval")
    assert result["sqlbot"]["execution_match"] is None
    assert result["sqlbot"]["exact_match"] == pytest.approx(2 / 4)
    assert eval_db.execute("SELECT n_executable FROM llm.evaluations").fetchone()[0] == 0


def test_a_model_with_two_template_columns(eval_db, scripted):
    eval_db.execute("SELECT llm_create_model('twocol', engine => 'fake', model_name => "
                    "'other-model', prompt_template => 'Question: {{question}}\nTables: {{tables}}')")
    scripted.script("other-model", "Question: Names of customers from Canada\nTables: customers",
                    TUNED[1])
    result = evaluate(eval_db, ["twocol"], data=(
        "SELECT id, content AS question, 'customers' AS tables, gold_sql, setup_sql "
        "FROM shop_eval WHERE id IN (1, 2)"))
    assert result["twocol"]["execution_match"] == 0.5
    assert result["twocol"]["n"] == 2


def test_the_summary_is_printed_as_a_notice_table(two_versions):
    notices = []
    two_versions.add_notice_handler(lambda d: notices.append(d.message_primary))
    evaluate(two_versions, ["sqlbot@1", "sqlbot@2"])
    table = notices[-1]
    assert "exec match" in table and "succinct" in table
    assert any(line.startswith("sqlbot@2 ") and "75.0%" in line and "100.0%" in line
               for line in table.splitlines())


BAD_INPUT = [
    (["nope"], DATA, {}, "42704", "known models: sqlbot"),
    (["sqlbot@9"], DATA, {}, "42704", "available versions: 1"),
    (["sqlbot@x"], DATA, {}, "22023", "positive integer"),
    ([], DATA, {}, "22023", "ARRAY["),
    (["sqlbot", "sqlbot"], DATA, {}, "22023", "once"),
    (["sqlbot"], "SELECT content, setup_sql FROM shop_eval", {}, "22000", "gold_sql"),
    (["sqlbot"], "SELECT gold_sql FROM shop_eval", {}, "22000", "template variable"),
    (["sqlbot"], "SELECT content, gold_sql FROM shop_eval WHERE false", {}, "22000", "at least one"),
    (["sqlbot"], "  ", {}, "22023", "SELECT content"),
    (["sqlbot"], DATA, {"max_tokens": 0}, "22023", "default is 200"),
    (["sqlbot"], DATA, {"statement_timeout_ms": 0}, "22023", "default is 2000"),
]


def test_bad_input_gets_a_clear_error(eval_db):
    # One database for every case (each case is its own failed statement).
    for models, data, kwargs, sqlstate, hint in BAD_INPUT:
        with pytest.raises(psycopg.Error) as info:
            evaluate(eval_db, models, data, **kwargs)
        assert (info.value.sqlstate, models) == (sqlstate, models)
        assert hint in (info.value.diag.message_hint or ""), (models, data, kwargs)
    assert eval_db.execute("SELECT count(*) FROM llm.evaluations").fetchone()[0] == 0


def test_the_data_query_must_be_a_query(eval_db):
    with pytest.raises(psycopg.errors.SyntaxError):
        evaluate(eval_db, ["sqlbot"], "DELETE FROM shop_eval")
    assert eval_db.execute("SELECT count(*) FROM shop_eval").fetchone()[0] == len(EXAMPLES)


def test_plpgsql_can_catch_errors_by_sqlstate(eval_db):
    eval_db.execute("""DO $$
        BEGIN
            PERFORM * FROM llm_evaluate(ARRAY['missing'], 'SELECT content, gold_sql FROM shop_eval');
            RAISE EXCEPTION 'not reached';
        EXCEPTION WHEN undefined_object THEN
            RAISE NOTICE 'caught';
        END $$""")


def _png_text_chunks(data: bytes) -> dict:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        crc = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])[0]
        assert zlib.crc32(kind + body) == crc
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            chunks[key.decode()] = value.decode("latin-1")
        offset += 12 + length
    return chunks


def test_cli_evaluates_and_draws_the_chart(two_versions, dsn, tmp_path):
    cli = str(ROOT / ".venv" / "bin" / "pg-llm")
    run = subprocess.run([cli, "evaluate", "--models", "sqlbot@1,sqlbot@2", "--data", DATA,
                          "--name", "cli run", "--dsn", dsn], capture_output=True, text=True,
                         timeout=120, check=True)
    assert "sqlbot@2" in run.stdout and "exec match" in run.stdout
    chart = tmp_path / "evaluation.png"
    run = subprocess.run([cli, "plot", "evaluation", "latest", "-o", str(chart), "--dsn", dsn],
                         capture_output=True, text=True, timeout=120, check=True)
    assert "sqlbot@1, sqlbot@2" in run.stdout
    text = _png_text_chunks(chart.read_bytes())
    assert text["Title"] == "cli run"
    assert text["Description"] == "models: sqlbot@1, sqlbot@2"
    missing = subprocess.run([cli, "plot", "evaluation", "999999", "-o", str(chart), "--dsn", dsn],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_an_ordinary_role_needs_grants_and_then_works(two_versions):
    db = two_versions
    db.execute("DROP ROLE IF EXISTS eval_alice; CREATE ROLE eval_alice")
    try:
        db.execute("GRANT SELECT ON sqlbot, shop_eval TO eval_alice; "
                   "GRANT USAGE ON FOREIGN SERVER fake TO eval_alice")
        db.execute("SET ROLE eval_alice")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            evaluate(db, ["sqlbot@2"])
        assert "GRANT INSERT ON llm.evaluations" in info.value.diag.message_hint
        db.execute("RESET ROLE")
        db.execute("GRANT INSERT ON llm.evaluations, llm.evaluation_items TO eval_alice; "
                   "GRANT USAGE ON SEQUENCE llm.evaluations_id_seq TO eval_alice")
        db.execute("SET ROLE eval_alice")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            evaluate(db, ["sqlbot@2"])
        assert "GRANT CREATE ON DATABASE" in info.value.diag.message_hint
        db.execute("RESET ROLE")
        db.execute(f"GRANT CREATE ON DATABASE {db.info.dbname} TO eval_alice")
        db.execute("SET ROLE eval_alice")
        result = evaluate(db, ["sqlbot@2"])
        assert result["sqlbot@2"]["execution_match"] == pytest.approx(3 / 4)
        assert db.execute("SELECT current_user").fetchone()[0] == "eval_alice"
    finally:
        db.execute("RESET ROLE")
        db.execute("DROP OWNED BY eval_alice; DROP ROLE eval_alice")


def test_sqlalchemy_calls_it_and_reads_the_catalog(two_versions, dsn):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    info = two_versions.info
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg://postgres@{info.host}:{info.port}/{info.dbname}")
    try:
        with engine.begin() as conn:
            rows = conn.execute(sqlalchemy.text(
                "SELECT model, execution_match FROM llm_evaluate(:models, :data, name => :name)"),
                {"models": ["sqlbot@1", "sqlbot@2"], "data": DATA, "name": "orm"}).all()
        assert [(r.model, r.execution_match) for r in rows] == [("sqlbot@1", 0.0),
                                                                ("sqlbot@2", 0.75)]
        evaluations = sqlalchemy.Table("evaluations", sqlalchemy.MetaData(), schema="llm",
                                       autoload_with=engine)
        with engine.connect() as conn:
            stored = conn.execute(sqlalchemy.select(evaluations.c.entry, evaluations.c.name)
                                  .order_by(evaluations.c.id)).all()
        assert stored == [("sqlbot@1", "orm"), ("sqlbot@2", "orm")]
    finally:
        engine.dispose()
