"""The text-to-SQL tutorial: a deterministic data generator and the `pg-llm demo` runner.

`generator` is pure Python with no third-party imports: the PostgreSQL backend runs it
(`llm_generate_demo_data`) as well as the tests and the CLI.
"""
