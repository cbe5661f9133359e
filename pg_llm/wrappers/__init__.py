"""Wrapper classes other than the model table (pg_llm.fdw.ModelTable)."""
