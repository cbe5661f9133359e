"""Fixtures for fine-tuning tests: the fake hosted provider, an engine and model on it, and a
training table in the tutorial's long chat format."""

from __future__ import annotations

import pytest

from fake_finetune_provider import FakeFinetuneProvider

API_KEY = "sk-finetune-test-0a1b2c3d4e5f"
BASE = "fake-base"
PRICE_TRAINING = 8          # USD per million trained tokens


@pytest.fixture
def provider():
    fake = FakeFinetuneProvider(api_key=API_KEY).start()
    try:
        yield fake
    finally:
        fake.stop()


def make_long_table(db, name: str = "demo_data", n: int = 12) -> None:
    """n conversations: system, user, assistant rows, in chat_id/message_id order."""
    db.execute(f"CREATE TABLE {name} (chat_id int, message_id int, role text, content text)")
    db.execute(f"""
        INSERT INTO {name}
        SELECT c, m, (ARRAY['system', 'user', 'assistant'])[m],
               CASE m WHEN 1 THEN 'Answer with one SQL query.'
                      WHEN 2 THEN 'CREATE TABLE t' || c || ' (a int)' || chr(10) || '-- How many rows?'
                      ELSE 'SELECT count(*) FROM t' || c END
        FROM generate_series(1, {n}) c, generate_series(1, 3) m ORDER BY c, m""")


@pytest.fixture
def hosted(db, provider):
    """Engine `hosted` on the fake provider, model `ft_sql` (base fake-base), data `demo_data`."""
    db.execute("SELECT llm_create_engine('hosted', base_url => %s, api_key => %s, "
               "price_training => %s)", (provider.base_url, API_KEY, PRICE_TRAINING))
    db.execute("SELECT llm_create_model('ft_sql', engine => 'hosted', model_name => %s, "
               "prompt_template => '{{content}}', predict => 'answer')", (BASE,))
    make_long_table(db)
    provider.requests.clear()
    return provider


class Notices:
    """Collects NOTICE/WARNING messages a connection receives."""

    def __init__(self, conn):
        self.items: list[tuple[str, str]] = []
        conn.add_notice_handler(lambda d: self.items.append((d.severity_nonlocalized,
                                                             d.message_primary)))

    def of(self, severity: str) -> list[str]:
        return [m for s, m in self.items if s == severity]


@pytest.fixture
def notices(db):
    return Notices(db)
