"""Fixtures for the security tests: ordinary login roles, the engine's real loopback server
and the attacker's listener (attacker.py). Every probe runs as a non-superuser."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from fake_openai import FakeOpenAI
from security.attacker import Attacker

API_KEY = "sk-engine-secret-0a1b2c3d4e5f"
MODEL_ID = "m1"


@pytest.fixture
def engine_server():
    """The engine's real endpoint: only this one may ever see API_KEY."""
    with FakeOpenAI(models=[MODEL_ID, "victim-model"], api_key=API_KEY) as server:
        yield server


@pytest.fixture
def attacker():
    with Attacker() as listener:
        yield listener


@pytest.fixture
def login(db):
    """login(*grants) -> (role, autocommit connection) for a new non-superuser LOGIN role."""
    made = []

    def make(*grants: str, prefix: str = "r"):
        role = f"{prefix}_{uuid.uuid4().hex[:8]}"
        db.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
        for grant in grants:
            db.execute(grant.format(role=role))
        info = db.info
        conn = psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=role,
                               autocommit=True)
        made.append((role, conn))
        return role, conn

    yield make
    for role, conn in made:
        conn.close()
        db.execute(f"DROP OWNED BY {role} CASCADE")
        db.execute(f"DROP ROLE {role}")


@pytest.fixture
def engine(db, engine_server):
    """Engine `eng` (created by the superuser) with a PUBLIC key, and model `m` on it."""
    db.execute("SELECT llm_create_engine('eng', base_url => %s, api_key => %s)",
               (engine_server.url, API_KEY))
    db.execute("SELECT llm_create_model('m', engine => 'eng', model_name => %s, "
               "prompt_template => '{{content}}')", (MODEL_ID,))
    engine_server.reset()
    return "eng"


def error_of(conn, sql: str, params=None) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as err:
        conn.execute(sql, params)
    return err.value
