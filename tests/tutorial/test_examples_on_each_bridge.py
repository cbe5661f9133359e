"""The tutorial's model queries run unchanged on a Multicorn2-backed engine.

examples/01 and 04 run through the real psql client against a loopback engine that echoes
each prompt. The only change to their text is the engine's creation, which gains
`bridge => :'bridge'`; every model query is the tutorial's own. Both bridges must send the
same requests and print the same answers.
"""

from __future__ import annotations

from fake_openai import FakeOpenAI
from pg_llm_tutorial.runner import EXAMPLES, run_step

QUESTION_START = "CREATE TABLE customers (id INT PRIMARY KEY"


def with_bridge(example: str, tmp_path):
    text = (EXAMPLES / example).read_text()
    engine_call = "SELECT llm_create_engine('local', provider => 'local'"
    assert text.count(engine_call) == 2  # with and without engine_url
    path = tmp_path / example
    path.write_text(text.replace(engine_call, engine_call + ", bridge => :'bridge'"))
    return path


def test_tutorial_model_queries_answer_the_same_on_each_bridge(db, bridge, tmp_path):
    env = {"PGHOST": db.info.host, "PGPORT": str(db.info.port), "PGUSER": "postgres",
           "PGDATABASE": db.info.dbname}
    with FakeOpenAI(models=["tiny"]) as fake:
        variables = {"base_model": "tiny", "engine_url": fake.url, "bridge": bridge,
                     "answer_tokens": 400, "max_tokens": 500}
        first = run_step(with_bridge("01-engine-and-model.sql", tmp_path), env, variables,
                         echo=False).output
        # 04 as it is: the model queries of the tutorial, versions, a second model
        later = run_step(EXAMPLES / "04-query-versions.sql", env, variables, echo=False).output
        bodies = [r.body for r in fake.chat_requests()]

    assert db.execute("SELECT w.fdwname FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w "
                      "ON w.oid = s.srvfdw WHERE s.srvname = 'local'").fetchone() == (bridge,)
    # 01: one answer from version 1; 04: the active version, version 1, the succinct model
    for output, queries in ((first, 1), (later, 3)):
        assert output.count("(1 row)") >= queries
        assert output.count(f"echo:{QUESTION_START}") + output.count("echo:Write one PostgreSQL") \
            == queries
    assert [(b["max_tokens"], b["temperature"], b["messages"][0]) for b in bodies] == [
        (400, 0, {"role": "system", "content": "Answer with one SQL query and nothing else."}),
        (500, 0, {"role": "system", "content": "Answer with one SQL query and nothing else."}),
        (400, 0, {"role": "system", "content": "Answer with one SQL query and nothing else."}),
        (400, 0, {"role": "system", "content": "Answer with one SQL query and nothing else."})]
    assert bodies[-1]["messages"][1]["content"].startswith("Write one PostgreSQL query")
    assert all(b["model"] == "tiny" for b in bodies)
