"""ALTER EXTENSION pg_llm UPDATE from every released version keeps everything working.

For each frozen install script in sql/released/ (other than the version being built), a
database is created at that version and filled with what its own functions made
(fixtures/pg_llm-VERSION.sql, see make_fixture.py): engines, keys in user mappings, models,
versions, succeeded/failed/cancelled jobs with events, ledger and activations, budgets and a
datasource. After the update, today's functions must serve, roll back, fine-tune and budget on
those rows, pg_dump/pg_restore must round-trip, and the catalog must match a fresh install.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from fake_finetune_provider import FakeFinetuneProvider

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
API_KEY = "sk-upgrade-fixture-5e4d3c2b1a"   # the key make_fixture.py stored in user mappings
ANALYST = "llm_upgrade_analyst"
CURRENT = re.search(r"^default_version\s*=\s*'([^']+)'",
                    (ROOT / "ext" / "pg_llm.control").read_text(), re.M).group(1)
RELEASED = sorted(p.name[len("pg_llm--"):-len(".sql.gz")]
                  for p in (ROOT / "sql" / "released").glob("pg_llm--*.sql.gz")
                  if p.name != f"pg_llm--{CURRENT}.sql.gz")
INCREMENTAL = sorted(p.name for p in (ROOT / "sql" / "incremental").glob("*.sql"))
BINDIR = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=True).stdout.strip())
if not (BINDIR / "pg_dump").exists():
    BINDIR = Path("/usr/lib/postgresql/15/bin")

# Everything the extension defines, one line per fact; two databases built differently
# (fresh install, upgrade) must give the same lines.
SHAPE = r"""
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'pg_llm'),
members AS (SELECT d.classid, d.objid FROM pg_depend d, ext
            WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
              AND d.deptype = 'e')
SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
UNION ALL
SELECT format('column %s.%s #%s %s null=%s default=%s', table_name, column_name,
              ordinal_position, data_type, is_nullable, column_default)
  FROM information_schema.columns WHERE table_schema = 'llm'
UNION ALL
SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
  FROM pg_constraint WHERE connamespace = 'llm'::regnamespace
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'llm'
UNION ALL
SELECT format('relation %s kind=%s owner=%s acl=%s', oid::regclass, relkind,
              pg_get_userbyid(relowner), relacl)
  FROM pg_class WHERE relnamespace = 'llm'::regnamespace
UNION ALL
SELECT format('view %s %s', oid::regclass, pg_get_viewdef(oid))
  FROM pg_class WHERE relkind = 'v' AND relnamespace = 'llm'::regnamespace
UNION ALL
SELECT format('function %s returns %s owner=%s acl=%s secdef=%s config=%s def=%s',
              p.oid::regprocedure, pg_get_function_result(p.oid), pg_get_userbyid(p.proowner),
              p.proacl, p.prosecdef, p.proconfig, md5(pg_get_functiondef(p.oid)))
  FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
UNION ALL
SELECT format('comment %s: %s', pg_describe_object(classoid, objoid, objsubid), description)
  FROM pg_description JOIN members m ON (m.classid, m.objid) = (classoid, objoid)
UNION ALL
SELECT format('initial privileges %s: %s', pg_describe_object(classoid, objoid, objsubid),
              initprivs)
  FROM pg_init_privs JOIN members m ON (m.classid, m.objid) = (classoid, objoid)
UNION ALL
SELECT format('dumped with pg_dump: %s where %s', c::regclass, coalesce(w, ''))
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, w)
 WHERE e.extname = 'pg_llm'
UNION ALL
SELECT format('schema llm owner=%s acl=%s', pg_get_userbyid(nspowner), nspacl)
  FROM pg_namespace WHERE nspname = 'llm'
UNION ALL
SELECT format('wrapper %s handler=%s validator=%s acl=%s', fdwname, fdwhandler::regproc,
              fdwvalidator::regproc, fdwacl)
  FROM pg_foreign_data_wrapper
ORDER BY 1
"""

# The catalog rows a user cares about, as one JSON value per table.
ROWS = {
    "engines": "SELECT name, provider, base_url, price_input, price_output, price_training, "
               "options FROM llm.engines ORDER BY name",
    "models": "SELECT name, engine, base_model, prompt_template, system_prompt, predict, "
              "options, active_version FROM llm.models ORDER BY name",
    "versions": "SELECT model, version, provider_model_id, job_id, metrics, cost_usd, dropped_at "
                "FROM llm.model_versions ORDER BY model, version",
    "jobs": "SELECT id, model, engine, status, provider_job_id, trained_tokens, cost_usd, error, "
            "result_version FROM llm.jobs ORDER BY id",
    "events": "SELECT job_id, provider_event_id, step, loss FROM llm.job_events ORDER BY id",
    "ledger": "SELECT job_id, kind, tokens, usd FROM llm.ledger ORDER BY id",
    "budgets": "SELECT scope, target, max_usd, max_tokens FROM llm.budgets ORDER BY scope, target",
    "activations": "SELECT model, version, reason FROM llm.activations ORDER BY id",
    "mappings": "SELECT srvname, usename, umoptions FROM pg_user_mappings ORDER BY 1, 2",
}


def catalog_rows(conn) -> dict:
    return {name: conn.execute(f"SELECT coalesce(json_agg(r), '[]') FROM ({sql}) r").fetchone()[0]
            for name, sql in ROWS.items()}


def connect(cluster, dbname, user="postgres"):
    return psycopg.connect(host=cluster["host"], port=cluster["port"], user=user, dbname=dbname,
                           autocommit=True)


@pytest.fixture
def new_database(pg_cluster):
    """Makes empty databases on the test cluster and drops them afterwards."""
    made = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with connect(pg_cluster, "postgres") as admin:
            admin.execute(f"CREATE DATABASE {name}")
        made.append(name)
        return name

    yield make
    with connect(pg_cluster, "postgres") as admin:
        for name in made:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def provider():
    fake = FakeFinetuneProvider(api_key=API_KEY).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(params=RELEASED)
def upgraded(request, pg_cluster, new_database, provider):
    """A database made by a released version (its fixture), then updated to CURRENT."""
    version = request.param
    fixture = FIXTURES / f"pg_llm-{version}.sql"
    assert fixture.exists(), (f"no data for released version {version}: run "
                              f"tests/upgrade/make_fixture.py {version} <its release commit>")
    dbname = new_database("upgrade_" + version.replace(".", "_"))
    with connect(pg_cluster, dbname) as conn:
        conn.execute(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                     f"'{ANALYST}') THEN CREATE ROLE {ANALYST} LOGIN; END IF; END $$")
        conn.execute(f"CREATE EXTENSION pg_llm VERSION '{version}' CASCADE")
    load = subprocess.run(
        [str(BINDIR / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg_cluster["host"],
         "-p", str(pg_cluster["port"]), "-U", "postgres", "-d", dbname, "-f", "-"],
        input=fixture.read_text().replace("@PROVIDER_URL@", provider.base_url),
        capture_output=True, text=True)
    assert load.returncode == 0, load.stderr
    with connect(pg_cluster, dbname) as conn:
        before = catalog_rows(conn)
        warnings = []
        conn.add_notice_handler(lambda d: warnings.append(d.message_primary)
                                if d.severity_nonlocalized == "WARNING" else None)
        conn.execute("ALTER EXTENSION pg_llm UPDATE")
        assert warnings == []
        # The released version's fine-tuned model is served by this provider too.
        ft_ids = [r[0] for r in conn.execute(
            "SELECT provider_model_id FROM llm.model_versions WHERE version > 1")]
        provider.base_models += ft_ids
        yield {"version": version, "db": dbname, "conn": conn, "before": before,
               "ft_id": ft_ids[0]}


def test_update_keeps_catalog_rows_and_records_migrations(upgraded):
    conn = upgraded["conn"]
    assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_llm'"
                        ).fetchone()[0] == CURRENT
    after = catalog_rows(conn)
    changed = {k: {"before": upgraded["before"][k], "after": after[k]}
               for k in ROWS if after[k] != upgraded["before"][k]}
    assert not changed, changed
    assert [r[0] for r in conn.execute("SELECT name FROM llm.migration ORDER BY name")] == \
        INCREMENTAL
    # The tutorial's generator is no longer the extension's.
    assert conn.execute("SELECT to_regproc('llm_generate_demo_data')").fetchone()[0] is None


def test_models_keys_and_versions_work_after_update(upgraded, pg_cluster, provider):
    conn, ft_id = upgraded["conn"], upgraded["ft_id"]
    ask = "SELECT answer, version FROM ft_sql WHERE content = %s"
    assert conn.execute(ask, ("hi",)).fetchone() == (f"[{ft_id}] hi", 2)
    assert conn.execute(ask + " AND version = 1", ("hi",)).fetchone() == ("[fake-base] hi", 1)
    assert conn.execute("SELECT reply FROM qa WHERE question = 'why' AND lang = 'en'"
                        ).fetchone() == ("[fake-base] Q: why (en)",)
    # The key of the role's own user mapping, as an ordinary role.
    with connect(pg_cluster, upgraded["db"], user=ANALYST) as analyst:
        assert analyst.execute(ask, ("from analyst",)).fetchone() == \
            (f"[{ft_id}] from analyst", 2)
        assert analyst.execute("SELECT active_model_id, versions, foreign_table FROM "
                               "llm.model_summary WHERE model = 'ft_sql'"
                               ).fetchone() == (ft_id, 2, "public.ft_sql")
    # Versions made by the released version are switched by today's functions.
    assert conn.execute("SELECT llm_set_active_version('ft_sql', 1)").fetchone()[0] == 1
    assert conn.execute(ask, ("x",)).fetchone() == ("[fake-base] x", 1)
    assert conn.execute("SELECT llm_rollback('ft_sql')").fetchone()[0] == 2
    assert conn.execute(ask, ("x",)).fetchone() == (f"[{ft_id}] x", 2)


def test_jobs_and_budgets_work_after_update(upgraded, provider):
    conn = upgraded["conn"]
    jobs = dict(conn.execute("SELECT id, status FROM llm.jobs ORDER BY id").fetchall())
    assert sorted(jobs.values()) == ["cancelled", "failed", "succeeded"]
    succeeded = next(i for i, s in jobs.items() if s == "succeeded")
    cur = conn.execute("SELECT * FROM llm_wait(%s::bigint)", (succeeded,))
    row = dict(zip([d.name for d in cur.description], cur.fetchone()))
    assert row["status"] == "succeeded" and row["result_version"] == 2
    spent_before = conn.execute("SELECT spent_tokens FROM llm.budget_status WHERE scope = "
                                "'engine' AND target = 'hosted'").fetchone()[0]
    assert spent_before > 0                          # the released version's actual spend

    # A new job on the old rows: ids continue, version 3 is made, spend is added.
    provider.script("succeed", steps=2, step_seconds=0.02)
    job_id = conn.execute("SELECT job_id FROM llm_finetune('ft_sql', "
                          "$$SELECT * FROM demo_data$$)").fetchone()[0]
    assert job_id == max(jobs) + 1
    cur = conn.execute("SELECT * FROM llm_wait('ft_sql')")
    row = dict(zip([d.name for d in cur.description], cur.fetchone()))
    assert row["id"] == job_id and row["status"] == "succeeded" and row["result_version"] == 3
    new_id = conn.execute("SELECT provider_model_id FROM llm.model_versions WHERE model = "
                          "'ft_sql' AND version = 3").fetchone()[0]
    assert conn.execute("SELECT answer FROM ft_sql WHERE content = 'v3'").fetchone() == \
        (f"[{new_id}] v3",)
    spent_after = conn.execute("SELECT spent_tokens FROM llm.budget_status WHERE scope = "
                               "'engine' AND target = 'hosted'").fetchone()[0]
    assert spent_after > spent_before

    # The released version's budget still stops a job that would exceed it.
    conn.execute("SELECT llm_set_budget('ft_sql', max_tokens => %s::bigint)",
                 (int(spent_after) + 1,))
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT job_id FROM llm_finetune('ft_sql', $$SELECT * FROM demo_data$$)")
    assert err.value.diag.message_hint
    assert conn.execute("SELECT max(id) FROM llm.jobs").fetchone()[0] == job_id
    assert conn.execute("SELECT url, has_password FROM llm.datasources").fetchone() == \
        ("postgresql://reader@warehouse.example:5432/sales", True)


def test_upgraded_database_round_trips_through_pg_dump(upgraded, pg_cluster, new_database,
                                                       tmp_path):
    conn, ft_id = upgraded["conn"], upgraded["ft_id"]
    before = catalog_rows(conn)
    args = ["-h", pg_cluster["host"], "-p", str(pg_cluster["port"]), "-U", "postgres"]
    dump = tmp_path / "upgraded.dump"
    subprocess.run([BINDIR / "pg_dump", *args, "-Fc", "-f", dump, upgraded["db"]], check=True)
    target = new_database("restored")
    restore = subprocess.run([BINDIR / "pg_restore", *args, "--exit-on-error", "-d", target,
                              dump], capture_output=True, text=True)
    assert restore.returncode == 0, restore.stderr
    with connect(pg_cluster, target) as restored:
        assert restored.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_llm'"
                                ).fetchone()[0] == CURRENT
        assert catalog_rows(restored) == before
        assert restored.execute("SELECT answer FROM ft_sql WHERE content = 'restored'"
                                ).fetchone() == (f"[{ft_id}] restored",)
        # Sequences came along: the next job id follows the dumped ones.
        assert restored.execute("SELECT nextval('llm.jobs_id_seq')").fetchone()[0] == \
            1 + restored.execute("SELECT max(id) FROM llm.jobs").fetchone()[0]


@pytest.mark.parametrize("version", RELEASED)
def test_fresh_install_and_upgrade_define_the_same_catalog(version, pg_cluster, new_database):
    """Catches an incremental file that only one of the two paths runs (or a change made to a
    released incremental file, which upgraded databases never see)."""
    fresh, old = new_database("fresh"), new_database("from_" + version.replace(".", "_"))
    with connect(pg_cluster, fresh) as conn:
        conn.execute("CREATE EXTENSION pg_llm CASCADE")
        fresh_shape = [r[0] for r in conn.execute(SHAPE)]
    with connect(pg_cluster, old) as conn:
        conn.execute(f"CREATE EXTENSION pg_llm VERSION '{version}' CASCADE")
        conn.execute("ALTER EXTENSION pg_llm UPDATE")
        upgraded_shape = [r[0] for r in conn.execute(SHAPE)]
    assert len(fresh_shape) > 100
    diff = "\n".join(difflib.unified_diff(fresh_shape, upgraded_shape, "fresh install",
                                          f"upgraded from {version}", lineterm=""))
    assert fresh_shape == upgraded_shape, diff


def test_idempotent_files_run_again_without_error_or_change(pg_cluster, new_database):
    """Every upgrade re-runs sql/idempotent/: a plain CREATE (not OR REPLACE) or a table
    there would break the next release's upgrade, so run them once more on a fresh install."""
    dbname = new_database("idempotent")
    with connect(pg_cluster, dbname) as conn:
        conn.execute("CREATE EXTENSION pg_llm CASCADE")
        shape = [r[0] for r in conn.execute(SHAPE)]
    script = "".join(p.read_text() for p in sorted((ROOT / "sql" / "idempotent").glob("*.sql")))
    script = script.replace("@extschema@", "public").replace("MODULE_PATHNAME", "$libdir/pg_llm")
    rerun = subprocess.run(
        [str(BINDIR / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg_cluster["host"],
         "-p", str(pg_cluster["port"]), "-U", "postgres", "-d", dbname, "-1", "-f", "-"],
        input=script, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    with connect(pg_cluster, dbname) as conn:
        assert [r[0] for r in conn.execute(SHAPE)] == shape
