"""llm_evaluate: ask models through their foreign tables, score the answers.

- ``metrics``: succinct check and normalised exact match (sqlglot, postgres dialect).
- ``execution``: run gold and generated SQL in a throwaway schema as a read-only role.
- ``runner``: the body of the SQL function ``llm_evaluate``.
- ``charts``/``cli``: the PNG chart and ``pg-llm plot evaluation`` (CLI side only).
"""
