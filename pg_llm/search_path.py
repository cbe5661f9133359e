"""search_path for SQL that the caller wrote.

Every function of the extension runs with ``search_path = pg_catalog, pg_temp``
(docs/security.md, point 7), so no schema or temporary table of the caller can stand in for
what the extension's own SQL names. A query the caller passes in (llm_finetune's training
query, llm_evaluate's data query) must still resolve names as in the caller's session: those
SQL functions take the caller's path as an argument whose default,
``current_setting('search_path')``, PostgreSQL evaluates in the caller's context before the
function's own SET clause applies.
"""

from __future__ import annotations


def _set(plpy, path: str) -> None:
    plpy.execute(plpy.prepare("SELECT pg_catalog.set_config('search_path', $1, true)",
                              ["text"]), [path])


def execute_as_written(plpy, sql: str, search_path: str | None):
    """plpy.execute(sql) under the caller's search_path, then back to the function's own."""
    if not search_path:
        return plpy.execute(sql)
    own = plpy.execute("SELECT pg_catalog.current_setting('search_path') AS p")[0]["p"]
    _set(plpy, search_path)
    try:
        return plpy.execute(sql)
    finally:
        _set(plpy, own)
