"""Test-only wrappers. Never installed: the backend of a test cluster finds them because
tests start PostgreSQL with PYTHONPATH=tests/backend_python (see scripts/pgcluster.sh), and
pg_llm's __init__ extends its package path over every pg_llm/ directory on sys.path."""
