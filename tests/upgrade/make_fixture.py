"""Captures what a database of a released version holds, for tests/upgrade (run once per release).

    .venv/bin/python tests/upgrade/make_fixture.py VERSION GIT_COMMIT

VERSION's frozen install script must be installed (`make install`), and GIT_COMMIT is the
commit that released it: its pg_llm package is what the backend runs here, so every row is
written by that release's own SQL functions and Python, not by today's. The script starts a
private cluster, makes engines, keys (user mappings, one per role), models, a succeeded, a
failed and a cancelled fine-tuning job (versions, events, ledger, activations), budgets and a
datasource against the fake provider, and writes a plain pg_dump of the result (without the
CREATE EXTENSION, which the test issues at VERSION) to fixtures/pg_llm-VERSION.sql, the
provider's URL replaced by @PROVIDER_URL@.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_finetune_provider import FakeFinetuneProvider  # noqa: E402

BACKEND_PYTHON = Path("/usr/local/lib/pg_llm/python")
API_KEY = "sk-upgrade-fixture-5e4d3c2b1a"
ANALYST = "llm_upgrade_analyst"
BINDIR = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=True).stdout.strip())
if not (BINDIR / "pg_dump").exists():
    BINDIR = Path("/usr/lib/postgresql/15/bin")


def release_python(commit: str, into: Path) -> Path:
    """The backend's dependencies with the release's own pg_llm package."""
    into.mkdir()
    for entry in BACKEND_PYTHON.iterdir():
        if entry.name != "pg_llm":
            (into / entry.name).symlink_to(entry)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "pg_llm"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(into)], check=True)
    return into


def populate(conn, provider: FakeFinetuneProvider) -> None:
    q = conn.execute
    q(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ANALYST}') "
      f"THEN CREATE ROLE {ANALYST} LOGIN; END IF; END $$")
    q("SELECT llm_create_engine('hosted', base_url => %s, api_key => %s, price_training => 8, "
      "price_input => 0.5, price_output => 1.5, options => '{\"timeout\": 30}')",
      (provider.base_url, API_KEY))
    q("SELECT llm_set_api_key('hosted', %s, role => %s)", (API_KEY, ANALYST))
    q("SELECT llm_create_model('ft_sql', engine => 'hosted', model_name => 'fake-base', "
      "prompt_template => '{{content}}', system_prompt => 'Answer with SQL.', "
      "options => '{\"max_tokens\": 50}')")
    q("SELECT llm_create_model('qa', engine => 'hosted', model_name => 'fake-base', "
      "prompt_template => 'Q: {{question}} ({{lang}})', predict => 'reply')")
    q(f"GRANT SELECT ON ft_sql TO {ANALYST}")
    q(f"GRANT USAGE ON FOREIGN SERVER hosted TO {ANALYST}")
    q("CREATE TABLE demo_data (chat_id int, message_id int, role text, content text)")
    q("""INSERT INTO demo_data
         SELECT c, m, (ARRAY['system', 'user', 'assistant'])[m],
                CASE m WHEN 1 THEN 'Answer with one SQL query.'
                       WHEN 2 THEN 'CREATE TABLE t' || c || ' (a int) -- How many rows?'
                       ELSE 'SELECT count(*) FROM t' || c END
         FROM generate_series(1, 12) c, generate_series(1, 3) m ORDER BY c, m""")
    q("SELECT llm_set_budget('hosted', max_usd => 5)")
    q("SELECT llm_set_budget('ft_sql', max_tokens => 1000000)")
    start = "SELECT job_id FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$, options => %s)"
    provider.script("succeed", steps=3, step_seconds=0.05)
    q(start, ('{"n_epochs": 2}',))
    q("SELECT * FROM llm_wait('ft_sql')")
    provider.script("fail", steps=4, fail_at=2, step_seconds=0.05)
    failed = q(start, ('{}',)).fetchone()[0]
    q("SELECT * FROM llm_wait(%s::bigint)", (failed,))
    provider.script("hang")
    hanging = q(start, ('{}',)).fetchone()[0]
    q("SELECT llm_refresh()")
    q("SELECT * FROM llm_cancel_job(%s)", (hanging,))
    q("SELECT llm_create_datasource('warehouse', "
      "'postgresql://reader:s3cret@warehouse.example:5432/sales')")


def dump(dsn_args: list[str], dbname: str, provider_url: str) -> str:
    text = subprocess.run([str(BINDIR / "pg_dump"), *dsn_args, "-Fp", dbname],
                          capture_output=True, text=True, check=True).stdout
    # The test creates the extension itself, at the version under test.
    text = re.sub(r"^(CREATE EXTENSION|COMMENT ON EXTENSION) .*\n", "", text, flags=re.M)
    # pg_dump 15.14's \restrict guard: older psql clients do not know the command.
    text = re.sub(r"^\\(un)?restrict .*\n", "", text, flags=re.M)
    assert provider_url in text
    return text.replace(provider_url, "@PROVIDER_URL@")


def main(version: str, commit: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="pg_llm-fixture-"))
    os.chmod(work, 0o755)
    port = 55000 + os.getpid() % 1000
    cluster = ROOT / "scripts" / "pgcluster.sh"
    subprocess.run([str(cluster), "start", str(work / "pg"), str(port)], check=True)
    provider = FakeFinetuneProvider(api_key=API_KEY).start()
    try:
        python_dir = release_python(commit, work / "python")
        args = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as admin:
            admin.execute("CREATE DATABASE fixture")
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="fixture",
                             autocommit=True) as conn:
            conn.execute(f"SET pg_llm.python_path = '{python_dir}'")
            conn.execute(f"CREATE EXTENSION pg_llm VERSION '{version}' CASCADE")
            populate(conn, provider)
        out = HERE / "fixtures" / f"pg_llm-{version}.sql"
        out.parent.mkdir(exist_ok=True)
        out.write_text(f"-- A pg_llm {version} database as made by tests/upgrade/make_fixture.py "
                       f"{version} {commit}.\n" + dump(args, "fixture", provider.base_url))
        print(f"wrote {out}")
    finally:
        provider.stop()
        subprocess.run([str(cluster), "stop", str(work / "pg")], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
