"""sql/build.py refuses the mistakes that would break upgrades, before anything is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sql(tmp_path) -> Path:
    copy = tmp_path / "sql"
    shutil.copytree(ROOT / "sql", copy)
    return copy


def build(sql: Path, target: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(sql / "build.py"), str(sql.parent / target)],
                          capture_output=True, text=True)


def test_two_incremental_files_with_one_number_are_refused(sql):
    (sql / "incremental" / "001-again.sql").write_text("SELECT 1;\n")
    result = build(sql, "pg_llm--9.9.9.sql")
    assert result.returncode != 0 and "share the number 001" in result.stderr


def test_the_build_quote_inside_a_file_is_refused(sql):
    (sql / "incremental" / "999-quote.sql").write_text("SELECT $migration_body$x$migration_body$;\n")
    result = build(sql, "pg_llm--9.9.9.sql")
    assert result.returncode != 0 and "must not contain $migration_body$" in result.stderr


def test_upgrade_needs_a_released_version(sql):
    result = build(sql, "pg_llm--0.0.1--9.9.9.sql")
    assert result.returncode != 0 and "no released version 0.0.1" in result.stderr


def test_upgrade_from_0_1_0_records_what_it_already_holds(sql):
    assert build(sql, "pg_llm--0.1.0--9.9.9.sql").returncode == 0
    script = (sql.parent / "pg_llm--0.1.0--9.9.9.sql").read_text()
    fresh = build(sql, "pg_llm--9.9.9.sql")
    assert fresh.returncode == 0
    assert "0.1.0 predates llm.migration" in script
    assert "0.1.0 predates" not in (sql.parent / "pg_llm--9.9.9.sql").read_text()
    assert script.startswith('\\echo Use "ALTER EXTENSION pg_llm UPDATE"')
