"""Fine-tuning from SQL: dataset shapes, validation, token/cost estimate, provider calls, jobs.

Modules: shapes (rows -> conversations), validate (rules, 22000 errors), estimate (tokens,
dollars), budget (hard limits), provider (files + fine_tuning.jobs over the one HTTP client),
lifecycle (every change of a job's state: queued, handed over, events, ended, settled), datasources (external SQLAlchemy sources),
cli (`pg-llm jobs`, `pg-llm plot job`). None of them imports heavy libraries.
"""
