"""Bodies of the SQL functions. Each validates its arguments at the boundary, then calls
pg_llm.catalog. The plpython wrappers in sql/ call them through pg_llm.boot.run_api.
"""
