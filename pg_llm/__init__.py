"""pg_llm: language models as PostgreSQL foreign tables.

Importing this package must stay cheap: the PostgreSQL backend imports it with only the
light dependencies (openai, httpx, sqlalchemy, sqlglot) installed.
"""

__version__ = "0.1.0"
