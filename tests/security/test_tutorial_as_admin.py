"""Point 8 of issue 9: the whole tutorial (examples/01..06, through the real psql client) as a
non-superuser granted llm_admin. The engine is tests/fake_finetune_provider.py, a real loopback
server speaking OpenAI's chat, files, fine-tuning and tokenize routes, so the fine-tune step
trains in seconds. What a database owner does once beforehand is exactly what
docs/security.md ("The tutorial as llm_admin") says:

    GRANT llm_admin TO alice;
    GRANT CREATE ON DATABASE tutorial TO alice;       (her schema, llm_evaluate's sandboxes)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from fake_finetune_provider import FakeFinetuneProvider

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
STEPS = ["01-engine-and-model.sql", "02-demo-data.sql", "03-finetune.sql",
         "04-query-versions.sql", "05-evaluate.sql", "06-budget-guard.sql"]


def psql(env: dict, *args: str) -> subprocess.CompletedProcess:
    # the venv's bin first on PATH: the scripts' `\! pg-llm plot ...` lines find the CLI
    path = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    return subprocess.run(["psql", "-X", "-a", "-v", "ON_ERROR_STOP=1", "-P", "pager=off", *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, **env, "PATH": path, "PAGER": "cat"})


@pytest.fixture
def provider():
    server = FakeFinetuneProvider(tokenize=True).start()
    yield server
    server.stop()


@pytest.fixture
def alice(db):
    """A LOGIN role granted llm_admin and CREATE on the database, nothing else."""
    role = f"alice_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
    db.execute(f"GRANT llm_admin TO {role}")
    db.execute(f"GRANT CREATE ON DATABASE {db.info.dbname} TO {role}")
    yield role
    db.execute(f"DROP OWNED BY {role} CASCADE")
    db.execute(f"REVOKE CREATE ON DATABASE {db.info.dbname} FROM {role}")
    db.execute(f"DROP ROLE {role}")


def test_the_whole_tutorial_runs_as_llm_admin(db, alice, provider, tmp_path):
    info = db.info
    env = {"PGHOST": info.host, "PGPORT": str(info.port), "PGDATABASE": info.dbname}
    # alice's own schema: first on her default search_path ("$user", public)
    done = psql({**env, "PGUSER": alice}, "-c", f"CREATE SCHEMA {alice}")
    assert done.returncode == 0, done.stderr

    variables = {"base_model": "fake-base", "engine_url": provider.base_url, "n_generate": 300,
                 "n_eval": 10, "n_train": 16, "n_epochs": 1, "eval_limit": 4,
                 "out_dir": tmp_path, "answer_tokens": 8, "max_tokens": 8, "eval_max_tokens": 8}
    args = [a for name, value in variables.items() for a in ("-v", f"{name}={value}")]
    outputs = {}
    for step in STEPS:
        done = psql({**env, "PGUSER": alice}, *args, "-f", str(EXAMPLES / step))
        outputs[step] = done.stdout + done.stderr
        assert done.returncode == 0, f"{step} failed as {alice}:\n{outputs[step][-4000:]}"

    def one(sql):
        return db.execute(sql).fetchone()

    # everything alice made is hers, in her schema
    assert one("SELECT owner FROM llm.engines WHERE name = 'local'") == (alice,)
    assert one("SELECT foreign_table FROM llm.model_summary WHERE model = 'ft_sql'") == \
        (f"{alice}.ft_sql",)
    assert one(f"SELECT relowner::regrole::text FROM pg_class WHERE oid = '{alice}.ft_sql'::regclass") \
        == (alice,)
    # step 3 trained version 2 at the provider and activated it
    assert one("SELECT status FROM llm.jobs WHERE model = 'ft_sql' ORDER BY id LIMIT 1") == \
        ("succeeded",)
    assert one("SELECT active_version FROM llm.models WHERE name = 'ft_sql'") == (2,)
    assert re.search(r"NOTICE:\s+job \d+ step 1/\d+: loss", outputs["03-finetune.sql"])
    assert (tmp_path / "loss.png").stat().st_size > 1000
    # step 5 stored an evaluation of three models; step 6 was refused by the budget
    assert one("SELECT count(*) FROM llm.evaluations WHERE name = 'tutorial'") == (3,)
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
    assert "Budget guard: the fine-tune was refused (SQLSTATE 53400)" in outputs["06-budget-guard.sql"]
    # the key-less local engine got the prompts; nothing needed a superuser after setup
    assert all("permission denied" not in out for out in outputs.values())
