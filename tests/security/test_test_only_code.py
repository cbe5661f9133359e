"""Nothing test-only in production (issue 9, point 11).

The diagnostic EchoTable wrapper shows the options it was built with (the user mapping's key
among them), so it lives in tests/backend_python and is never installed: the backend of an
installed extension cannot import it, only a test cluster started with it on PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = os.environ.get("PG_LLM_PYTHON_PATH", "/usr/local/lib/pg_llm/python")
ECHO = "pg_llm.testing.echo"


def _import_in_backend_python(extra_path: str | None) -> subprocess.CompletedProcess:
    """Import the echo wrapper the way a backend does: system python3, the installed path
    first on sys.path, and PYTHONPATH only when given."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if extra_path:
        env["PYTHONPATH"] = extra_path
    code = (f"import sys; sys.path.insert(0, {INSTALLED!r}); import pg_llm; "
            f"assert pg_llm.__file__.startswith({INSTALLED!r}), pg_llm.__file__; "
            f"import {ECHO}")
    return subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                          env=env, cwd="/")


def test_the_installed_package_has_no_echo_wrapper():
    result = _import_in_backend_python(None)
    assert result.returncode != 0
    assert "No module named 'pg_llm.testing'" in result.stderr
    assert not (Path(INSTALLED) / "pg_llm" / "wrappers").exists()
    assert not (Path(INSTALLED) / "pg_llm" / "testing").exists()


def test_a_test_cluster_finds_it_through_pythonpath():
    result = _import_in_backend_python(str(ROOT / "tests" / "backend_python"))
    assert result.returncode == 0, result.stderr


def test_a_wrapper_class_that_cannot_be_imported_fails_cleanly(db):
    """What an installed backend answers for the echo class path: 22023, no traceback."""
    import psycopg
    import pytest

    db.execute("CREATE SERVER echo_gone FOREIGN DATA WRAPPER pg_llm "
               "OPTIONS (wrapper 'pg_llm.testing.missing.EchoTable')")
    db.execute("CREATE FOREIGN TABLE echo_gone_t (content text, answer text) SERVER echo_gone")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        db.execute("SELECT * FROM echo_gone_t WHERE content = 'x'")
    assert "cannot be loaded" in err.value.diag.message_primary
    assert "Traceback" not in (err.value.diag.context or "")
