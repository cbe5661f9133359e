"""The text-to-SQL tutorial, outside the extension: the deterministic data generator
(`generator`, `questions`, `schemas`), `pg-llm demo-data` (CSV for examples/02's \\copy),
the `pg-llm demo` runner (`cli`, `runner`, `processes`) and the shared data set's loader
(`shared_dataset`, `sqlite_compat`).

Installed in the project's virtualenv only: the PostgreSQL backend never imports it
(scripts/install-backend-python.sh copies `pg_llm/` alone).
"""
