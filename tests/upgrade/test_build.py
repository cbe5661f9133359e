"""sql/build.py refuses the mistakes that would break upgrades, before anything is installed."""

from __future__ import annotations

import gzip
import hashlib
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


# What every 0.1.0 database was created from: the frozen script may never change.
SHA256_0_1_0 = "0501d6ca35aecf26972f0e6ef73cf963ff9c31e176fd025fe72f1557a011f18c"


def recorded(sql: Path) -> dict[str, str]:
    lines = (sql / "released" / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ") for line in lines)}


def test_each_released_script_has_its_recorded_sha256():
    sums = recorded(ROOT / "sql")
    archives = sorted((ROOT / "sql" / "released").glob("pg_llm--*.sql.gz"))
    assert sorted(sums) == [a.name[:-len(".gz")] for a in archives]
    for archive in archives:
        text = gzip.decompress(archive.read_bytes())
        assert hashlib.sha256(text).hexdigest() == sums[archive.name[:-len(".gz")]]
    assert sums["pg_llm--0.1.0.sql"] == SHA256_0_1_0


def test_the_released_script_is_built_and_installed_byte_for_byte(sql):
    assert build(sql, "pg_llm--0.1.0.sql").returncode == 0
    built = (sql.parent / "pg_llm--0.1.0.sql").read_bytes()
    assert hashlib.sha256(built).hexdigest() == SHA256_0_1_0
    sharedir = subprocess.run(["pg_config", "--sharedir"], capture_output=True, text=True,
                              check=True).stdout.strip()
    installed = Path(sharedir) / "extension" / "pg_llm--0.1.0.sql"
    assert installed.read_bytes() == built, "make install did not install the frozen script"


def test_an_edited_released_script_is_refused(sql):
    archive = sql / "released" / "pg_llm--0.1.0.sql.gz"
    edited = gzip.decompress(archive.read_bytes()).replace(b"CREATE TABLE", b"CREATE  TABLE", 1)
    archive.write_bytes(gzip.compress(edited, mtime=0))
    for target in ("pg_llm--0.1.0.sql", "pg_llm--0.1.0--9.9.9.sql"):
        result = build(sql, target)
        assert result.returncode != 0 and "SHA-256 differs" in result.stderr, target
