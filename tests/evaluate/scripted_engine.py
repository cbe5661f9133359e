"""A scripted loopback OpenAI server and a tiny SQL data set for llm_evaluate tests.

The server is the project's real fake (tests/fake_openai.py) with an answer function that
looks up (model id, user prompt) in a dict the test fills in.
"""

from __future__ import annotations

from fake_openai import FakeOpenAI

# One small database per example (setup_sql) and its reference query.
SHOP_SETUP = """
CREATE TABLE customers (id int PRIMARY KEY, name text, country text, age int);
INSERT INTO customers VALUES (1, 'Ann', 'Canada', 31), (2, 'Bob', 'France', 45),
    (3, 'Cid', 'Canada', 27), (4, 'Dee', 'Peru', 52), (5, 'Eve', 'Canada', NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total numeric(10,2));
INSERT INTO orders VALUES (1, 1, 10.50), (2, 1, 20.25), (3, 2, 5.00), (4, 3, 7.75);
"""

EXAMPLES = [
    # id, question (becomes content), gold
    (1, "Names of customers from Canada", "SELECT name FROM customers WHERE country = 'Canada'"),
    (2, "How many customers are there per country?",
     "SELECT country, count(*) FROM customers GROUP BY country"),
    (3, "The three oldest customers, oldest first",
     "SELECT name FROM customers WHERE age IS NOT NULL ORDER BY age DESC LIMIT 3"),
    (4, "Total spent by each customer name",
     "SELECT c.name, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name"),
]

DEFAULT_ANSWER = "I am not sure how to answer that."


class ScriptedEngine:
    """answers[(model_id, prompt)] = text; anything unscripted gets DEFAULT_ANSWER."""

    def __init__(self):
        self.answers: dict[tuple[str, str], str] = {}
        self.fake = FakeOpenAI(models=["base-model", "tuned-model", "other-model"],
                               answer=self._answer)

    def _answer(self, messages, body) -> str:
        user = [m.get("content") for m in messages if m.get("role") == "user"][-1]
        return self.answers.get((body.get("model"), user), DEFAULT_ANSWER)

    def script(self, model_id: str, prompt: str, answer: str) -> None:
        self.answers[(model_id, prompt)] = answer


def add_version(db, model: str, version: int, provider_model_id: str) -> None:
    """A new model version the way the fine-tuning code records one (catalog module)."""
    db.execute(f"""DO $$
        if 'pg_llm' not in GD: plpy.execute("SELECT llm._boot()")
        from pg_llm.catalog import models
        models.add_version(plpy, {model!r}, {version}, {provider_model_id!r})
        models.sync_table_options(plpy, {model!r})
    $$ LANGUAGE plpython3u""")
