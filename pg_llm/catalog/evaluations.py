"""The one module that writes llm.evaluations and llm.evaluation_items.

One llm_evaluate call is a *run*: one llm.evaluations row per model entry, all sharing
``run_id`` (the id of the run's first row), and one llm.evaluation_items row per entry and
data row. Runs inside the backend through ``plpy``; callers validate the values first.
"""

from __future__ import annotations

import json

from pg_llm.catalog.plans import execute as _exec

_SUMMARY_COLUMNS = ("name", "entry", "model", "version", "provider_model_id", "n", "n_executable",
                    "execution_match", "exact_match", "succinct_rate", "avg_prompt_tokens",
                    "avg_completion_tokens", "avg_latency_ms", "cost_usd", "max_tokens",
                    "data_query")
_SUMMARY_TYPES = ("text", "text", "text", "int", "text", "int", "int", "float8", "float8", "float8",
                  "float8", "float8", "float8", "numeric", "int", "text")

_ITEM_COLUMNS = ("item_id text, prompt text, answer text, gold_sql text, succinct boolean, "
                 "exact boolean, executed_ok boolean, execution_match boolean, error text, "
                 "latency_ms float8, prompt_tokens int, completion_tokens int")

def privileges(plpy) -> dict:
    """store: may the current role write a run; sandbox: may it create the schemas setup_sql
    runs in; who: the role."""
    return plpy.execute("""
        SELECT pg_catalog.has_table_privilege('llm.evaluations', 'INSERT')
               AND pg_catalog.has_table_privilege('llm.evaluation_items', 'INSERT')
               AND pg_catalog.has_sequence_privilege('llm.evaluations_id_seq', 'USAGE') AS store,
               pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') AS sandbox,
               current_user AS who""")[0]


def new_run_id(plpy) -> int:
    """Reserve the id of a run's first evaluation row; it also names the run."""
    return plpy.execute("SELECT pg_catalog.nextval('llm.evaluations_id_seq') AS id")[0]["id"]


def insert_evaluation(plpy, run_id: int, summary: dict, *, first: bool) -> int:
    """One summary row; the first row of a run takes the reserved id itself."""
    columns = ", ".join(_SUMMARY_COLUMNS)
    params = ", ".join(f"${i + 3}" for i in range(len(_SUMMARY_COLUMNS)))
    values = [summary.get(column) for column in _SUMMARY_COLUMNS]
    return _exec(plpy, f"""
        INSERT INTO llm.evaluations (id, run_id, {columns})
        VALUES (CASE WHEN $1 THEN $2 ELSE pg_catalog.nextval('llm.evaluations_id_seq') END,
                $2, {params})
        RETURNING id""", ["boolean", "bigint", *_SUMMARY_TYPES], [first, run_id, *values])[0]["id"]


def insert_items(plpy, evaluation_id: int, items: list[dict]) -> None:
    """All items of one evaluation row in a single statement."""
    if not items:
        return
    _exec(plpy, f"""
        INSERT INTO llm.evaluation_items (evaluation_id, item_id, prompt, answer, gold_sql,
            succinct, exact, executed_ok, execution_match, error, latency_ms, prompt_tokens,
            completion_tokens)
        SELECT $1, i.* FROM pg_catalog.jsonb_to_recordset($2::jsonb) AS i({_ITEM_COLUMNS})""",
          ["bigint", "text"], [evaluation_id, json.dumps(items, allow_nan=False)])
