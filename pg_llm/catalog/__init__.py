"""The one place that reads and writes the llm.* catalog tables (and the SQL objects that
mirror them: foreign servers, user mappings, model foreign tables and their options).

models.py: engines, models, model versions. Other features add their own modules here
(jobs.py, evaluations.py).
"""
