"""What a new backend's first model query loads: only the scan's own modules. The openai
client (~0.5 s to import), httpx and OpenSSL's digests (hashlib, ~7 ms: only the answer cache
and the audit trail hash) stay out of a backend that does not use them (docs/performance.md)."""

import psycopg
import pytest

NOT_ON_THE_SCAN_PATH = {"openai", "httpx", "pydantic", "hashlib", "_hashlib"}


def test_a_new_backends_first_scan_loads_no_client_library_and_no_digests(db, ft_sql, dsn):
    db.execute("CREATE FUNCTION loaded_modules() RETURNS text[] LANGUAGE plpython3u AS "
               "$$ import sys; return sorted(sys.modules) $$")
    with psycopg.connect(dsn, autocommit=True) as conn:  # a fresh backend and interpreter
        assert conn.execute("SELECT answer FROM ft_sql WHERE content = 'imports'").fetchone() == (
            "echo:imports",)
        loaded = set(conn.execute("SELECT loaded_modules()").fetchone()[0])
    assert "pg_llm.fdw" in loaded
    assert NOT_ON_THE_SCAN_PATH & loaded == set()


@pytest.mark.parametrize("bridge", ["c"], indirect=True)  # Multicorn2 scans cannot cache
def test_the_answer_cache_loads_its_digests_when_it_is_on(db, ft_sql, dsn):
    db.execute("CREATE FUNCTION loaded_modules() RETURNS text[] LANGUAGE plpython3u AS "
               "$$ import sys; return sorted(sys.modules) $$")
    db.execute("ALTER FOREIGN TABLE ft_sql OPTIONS (ADD cache 'always')")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(2):  # the second answer comes from the cache, under the same key
            assert conn.execute("SELECT answer, cached FROM ft_sql WHERE content = 'cached'"
                                ).fetchone()[0] == "echo:cached"
        assert conn.execute("SELECT cached FROM ft_sql WHERE content = 'cached'").fetchone() == (
            True,)
        assert "hashlib" in set(conn.execute("SELECT loaded_modules()").fetchone()[0])
