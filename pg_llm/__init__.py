"""pg_llm: language models as PostgreSQL foreign tables.

Importing this package must stay cheap: the PostgreSQL backend imports it with only the
light dependencies (openai, httpx, sqlalchemy, sqlglot) installed.
"""

# Subpackages may also come from a pg_llm/ directory elsewhere on sys.path: the test suite's
# test-only wrappers (tests/backend_python/pg_llm/testing) are never installed with this one.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.2.0"
