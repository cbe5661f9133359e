"""examples/07-cache-guards-audit.sql through the real psql client, after step 1's engine
and model, against a recording loopback engine."""

import subprocess
from pathlib import Path

from fake_openai import FakeOpenAI

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_step_7(db, dsn):
    with FakeOpenAI(models=["tiny"]) as fake:
        subprocess.run(["psql", dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "base_model=tiny",
                        "-v", f"engine_url={fake.url}", "-v", "answer_tokens=8",
                        "-f", str(EXAMPLES / "01-engine-and-model.sql")],
                       check=True, capture_output=True, text=True, timeout=120)
        fake.reset()
        out = subprocess.run(["psql", dsn, "-X", "-v", "ON_ERROR_STOP=1", "-v", "answer_tokens=8",
                              "-f", str(EXAMPLES / "07-cache-guards-audit.sql")],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert len(fake.chat_requests()) == 2  # the two questions, once each
    text = out.stdout
    assert "LLM Prompts: 2" in text and "LLM Estimated Cost: 0.000000 USD" in text
    assert "LLM Cache Hits: 2" in text
    assert "guard_sqlstate: 53400" in text
    assert "more than pg_llm.max_prompts_per_statement = 1" in out.stderr
    requests = db.execute("SELECT count(*) FROM llm.requests").fetchone()
    assert requests == (4,)  # 2 sent + 2 cached (EXPLAIN ANALYZE); the guard step rolled back
    assert db.execute("SELECT count(*) FROM llm.cache").fetchone() == (0,)
    assert db.execute("SELECT options FROM llm.models WHERE name = 'ft_sql'").fetchone() == (
        {"temperature": 0, "seed": 42, "sql_grammar_from": "content",
         "sql_infer_joins_from": "content"},)  # as step 1 left them
