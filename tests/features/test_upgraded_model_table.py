"""A model table made by 0.1.0 gets the feature columns on ALTER EXTENSION pg_llm UPDATE and
then serves per-row errors, the answer cache and the audit trail like a new one."""

from upgrade.test_upgrade import ANALYST, connect, new_database, provider, upgraded  # noqa: F401

NEW_COLUMNS = [("on_error", "text"), ("error", "text"), ("cached", "boolean"),
               ("request_id", "bigint")]


def test_upgraded_model_table_has_the_columns_and_the_features(upgraded, pg_cluster, provider):
    conn = upgraded["conn"]
    for table in ("ft_sql", "qa"):
        columns = conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                               "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
                               "ORDER BY attnum", (table,)).fetchall()
        assert columns[-4:] == NEW_COLUMNS, table
    conn.execute("""SELECT llm_alter_model('ft_sql', '{"cache": "on", "audit": "on"}')""")
    ask = "SELECT answer, cached, request_id IS NOT NULL FROM ft_sql WHERE content = 'hi' AND seed = 1"
    assert conn.execute(ask).fetchone()[1:] == (False, True)
    assert conn.execute(ask).fetchone()[1:] == (True, True)
    with connect(pg_cluster, upgraded["db"], user=ANALYST) as analyst:
        assert analyst.execute(ask).fetchone()[1:] == (True, True)
    assert conn.execute("SELECT role, cached FROM llm.requests ORDER BY id").fetchall() == [
        ("postgres", False), ("postgres", True), (ANALYST, True)]
    # per-row errors on the upgraded table: an unknown provider model fails only its row
    conn.execute("INSERT INTO llm.model_versions (model, version, provider_model_id) "
                 "VALUES ('ft_sql', 9, 'no-such-model')")
    conn.execute("SELECT llm_set_active_version('ft_sql', 9)")
    row = conn.execute("SELECT answer, error FROM ft_sql WHERE content = 'x' AND on_error = 'null'"
                       ).fetchone()
    assert row[0] is None and row[1].startswith("42704: ")
