"""Privileges checked in C per scan, internal functions closed to PUBLIC, option validation."""

from __future__ import annotations

import uuid

import psycopg
import pytest

# roles are cluster-wide: a unique name keeps parallel or repeated runs apart
ALICE = f"alice_{uuid.uuid4().hex[:8]}"

INTERNAL = ["llm._fdw_handler()", "llm._fdw_validator(text[], oid)", "llm._python_path()",
            "llm._fdw_execute(text)"]
# run as the caller inside every llm_* function: open to PUBLIC, harmless by construction
CALLER_SIDE = ["llm._boot()", "llm._check_interrupts()"]


@pytest.fixture
def alice(echo):
    echo.execute(f"DROP ROLE IF EXISTS {ALICE}")
    echo.execute(f"CREATE ROLE {ALICE}")
    echo.execute(f"GRANT SELECT ON echo_t TO {ALICE}")
    yield echo
    echo.execute("RESET ROLE")
    echo.execute(f"DROP OWNED BY {ALICE}")
    echo.execute(f"DROP ROLE {ALICE}")


def test_the_scanning_role_needs_select_not_usage(alice):
    # SELECT on a model is what lets a role ask it; USAGE on the engine is for its owner
    alice.execute(f"SET ROLE {ALICE}")
    assert alice.execute("SELECT content FROM echo_t WHERE content = 'x'").fetchall() == [("x",)]


def test_a_table_whose_owner_lost_usage_on_the_engine_is_refused(alice):
    bob = f"bob_{uuid.uuid4().hex[:8]}"
    alice.execute(f"CREATE ROLE {bob}")
    try:
        alice.execute(f"GRANT USAGE ON FOREIGN SERVER echo TO {bob}")
        alice.execute(f"GRANT CREATE ON SCHEMA public TO {bob}")
        alice.execute(f"SET ROLE {bob}")
        alice.execute("CREATE FOREIGN TABLE bob_t (content text, answer text) SERVER echo")
        alice.execute(f"GRANT SELECT ON bob_t TO {ALICE}")
        alice.execute(f"SET ROLE {ALICE}")
        assert alice.execute("SELECT content FROM bob_t WHERE content = 'b'").fetchall() == [("b",)]
        alice.execute("RESET ROLE")
        alice.execute(f"REVOKE USAGE ON FOREIGN SERVER echo FROM {bob}")
        alice.execute(f"SET ROLE {ALICE}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
            alice.execute("SELECT * FROM bob_t WHERE content = 'x'")
        assert "foreign server echo" in str(err.value)
        assert f"GRANT USAGE ON FOREIGN SERVER echo TO {bob}" in err.value.diag.message_hint
    finally:
        alice.execute("RESET ROLE")
        alice.execute(f"DROP OWNED BY {bob}")
        alice.execute(f"DROP ROLE {bob}")


def test_explain_checks_select_too(alice):
    alice.execute(f"REVOKE SELECT ON echo_t FROM {ALICE}")
    alice.execute(f"SET ROLE {ALICE}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("EXPLAIN SELECT * FROM echo_t WHERE content = 'x'")


def test_plan_prepared_before_set_role_is_checked_again(alice):
    alice.execute(f"REVOKE SELECT ON echo_t FROM {ALICE}")
    alice.execute("SET plan_cache_mode = force_generic_plan")
    alice.execute("PREPARE p(text) AS SELECT content FROM echo_t WHERE content = $1")
    assert alice.execute("EXECUTE p('a')").fetchall() == [("a",)]
    alice.execute(f"SET ROLE {ALICE}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("EXECUTE p('a')")


def test_no_select_on_the_table_is_denied(alice):
    alice.execute(f"REVOKE SELECT ON echo_t FROM {ALICE}")
    alice.execute(f"GRANT USAGE ON FOREIGN SERVER echo TO {ALICE}")
    alice.execute(f"SET ROLE {ALICE}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SELECT * FROM echo_t WHERE content = 'x'")


def test_column_privileges_are_enough_for_the_columns_read(alice):
    alice.execute(f"REVOKE SELECT ON echo_t FROM {ALICE}")
    alice.execute(f"GRANT SELECT (content, answer) ON echo_t TO {ALICE}")
    alice.execute(f"GRANT USAGE ON FOREIGN SERVER echo TO {ALICE}")
    alice.execute(f"SET ROLE {ALICE}")
    assert alice.execute("SELECT answer FROM echo_t WHERE content = 'c'").fetchall() == [("echo: c",)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SELECT quals FROM echo_t WHERE content = 'c'")


def test_a_view_runs_with_its_owners_privileges(alice):
    # the view owner (postgres) has USAGE; alice only needs SELECT on the view
    alice.execute("CREATE VIEW echo_v AS SELECT content, answer FROM echo_t")
    alice.execute(f"GRANT SELECT ON echo_v TO {ALICE}")
    alice.execute(f"SET ROLE {ALICE}")
    assert alice.execute("SELECT answer FROM echo_v WHERE content = 'v'").fetchall() == [("echo: v",)]


def test_internal_functions_are_not_executable_by_public(alice):
    for fn in INTERNAL + CALLER_SIDE:
        (allowed,) = alice.execute(f"SELECT has_function_privilege('{ALICE}', %s, 'EXECUTE')", [fn]).fetchone()
        assert allowed is (fn in CALLER_SIDE), fn
    alice.execute(f"GRANT USAGE ON SCHEMA llm TO {ALICE}")
    alice.execute(f"SET ROLE {ALICE}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("""SELECT llm._fdw_execute('{"relid": 0, "table": "t", "options": {"wrapper": "pg_llm.x.Y"}, "columns": [], "needed": [], "quals": []}')""")


@pytest.mark.parametrize("ddl, sqlstate", [
    ("CREATE SERVER bad FOREIGN DATA WRAPPER pg_llm OPTIONS (wrapper 'os.system')", "22023"),
    ("CREATE SERVER bad FOREIGN DATA WRAPPER pg_llm OPTIONS (wrapper 'pg_llm..x')", "22023"),
    ("CREATE SERVER bad FOREIGN DATA WRAPPER pg_llm OPTIONS (wrapper 'pg_llm')", "22023"),
    ("CREATE SERVER bad FOREIGN DATA WRAPPER pg_llm OPTIONS (api_key 'sk-visible')", "HV00D"),
    ("CREATE SERVER bad FOREIGN DATA WRAPPER pg_llm OPTIONS (base_url 'ftp://x')", "22023"),
    ("CREATE SERVER bad FOREIGN DATA WRAPPER pg_llm OPTIONS (price_input '-1')", "22023"),
    ("CREATE SERVER bad FOREIGN DATA WRAPPER pg_llm OPTIONS (\"Bad-Name\" 'x')", "HV00D"),
    ("CREATE FOREIGN TABLE bad (content text) SERVER echo OPTIONS (wrapper 'pg_llm.fdw.ModelTable')", "HV00D"),
    ("CREATE FOREIGN TABLE bad (content text) SERVER echo OPTIONS (prompt_columns 'a,,b')", "22023"),
    ("ALTER FOREIGN DATA WRAPPER pg_llm OPTIONS (ADD x 'y')", "HV00D"),
    ("CREATE USER MAPPING FOR PUBLIC SERVER echo OPTIONS (prompt_columns 'x')", "HV00D"),
])
def test_validator_rejects_bad_options_with_a_hint(echo, ddl, sqlstate):
    with pytest.raises(psycopg.Error) as err:
        echo.execute(ddl)
    assert err.value.sqlstate == sqlstate, str(err.value)
    assert err.value.diag.message_hint


def test_prompt_columns_naming_a_missing_column(echo):
    echo.execute("CREATE FOREIGN TABLE nocol (content text) SERVER echo OPTIONS (prompt_columns 'question')")
    with pytest.raises(psycopg.errors.UndefinedColumn) as err:
        echo.execute("SELECT * FROM nocol WHERE content = 'x'")
    assert "question" in str(err.value) and err.value.diag.message_hint


def test_python_path_guc_is_superuser_only_and_reported(alice):
    (path,) = alice.execute("SELECT llm._python_path()").fetchone()
    assert path == alice.execute("SHOW pg_llm.python_path").fetchone()[0]
    assert alice.execute("SELECT llm._check_interrupts() IS NOT DISTINCT FROM NULL").fetchone() is not None
    alice.execute(f"SET ROLE {ALICE}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SET pg_llm.python_path = '/tmp/evil'")


def test_a_plain_role_can_boot_but_not_choose_the_path(alice, dsn):
    alice.execute(f"ALTER ROLE {ALICE} LOGIN")
    with psycopg.connect(dsn.replace("user=postgres", f"user={ALICE}"), autocommit=True) as conn:
        conn.execute("SELECT llm._boot()")
        conn.execute("SELECT llm._check_interrupts()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT llm._python_path()")
