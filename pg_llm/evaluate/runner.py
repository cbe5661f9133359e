"""Body of ``llm_evaluate(models, data, name, max_tokens, statement_timeout_ms)``.

1. resolve each entry ('name' = active version, 'name@N' = version N) from the catalog;
2. run the data query once (as the caller) and check it has the columns every model needs;
3. ask each entry for every data row THROUGH its foreign table: one ``= ANY`` scan per entry
   with all prompts, so the engine client sends them concurrently;
4. score every row once per entry: succinct + exact match (text), execution match
   (``execution.Sandbox``: gold and all answers on the row's own throwaway database);
5. store one llm.evaluations row per entry and its items; NOTICE a table; return summaries.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import Decimal

from pg_llm import templates
from pg_llm.catalog import evaluations as catalog
from pg_llm.catalog import models as model_catalog
from pg_llm.errors import InsufficientPrivilege, InvalidData, InvalidParameter, UndefinedObject
from pg_llm.evaluate.execution import Sandbox
from pg_llm.evaluate.metrics import exact_match, is_succinct
from pg_llm.evaluate.report import format_table
from pg_llm.search_path import execute_as_written

MAX_STATEMENT_TIMEOUT_MS = 600_000
_ENTRY = re.compile(r"^(?P<model>[^@]+?)(?:@(?P<version>[^@]*))?$")
_TEMPLATE_HINT_ROW = "the data query must return one column per template variable"


@dataclass
class ModelEntry:
    label: str              # as the user wrote it
    model: str
    version: int | None     # None: the active version at scan time
    table: str              # the foreign table, schema-qualified and quoted
    prompt_columns: list[str]
    predict: str
    price_input: Decimal | None
    price_output: Decimal | None


@dataclass
class Answer:
    text: str | None
    version: int | None
    model_id: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None


# -- arguments -----------------------------------------------------------------------------
def parse_entry(entry) -> tuple[str, int | None]:
    """'ft_sql' -> ('ft_sql', None); 'ft_sql@2' -> ('ft_sql', 2)."""
    match = _ENTRY.match(entry.strip()) if isinstance(entry, str) else None
    if not match:
        raise InvalidParameter(f"invalid model entry {entry!r}",
                               hint="write a model name, or name@version, e.g. 'ft_sql@1'")
    version_text = match.group("version")
    if version_text is None:
        return match.group("model").strip(), None
    if not version_text.isdigit() or int(version_text) < 1:
        raise InvalidParameter(f"invalid version in model entry {entry!r}",
                               hint="the version after @ is a positive integer, e.g. 'ft_sql@2'")
    return match.group("model").strip(), int(version_text)


def _check_arguments(models, data, max_tokens, statement_timeout_ms) -> None:
    if not models or any(m is None for m in models):
        raise InvalidParameter("models must be a non-empty array of model names",
                               hint="pass e.g. ARRAY['ft_sql', 'ft_sql@1']")
    if len(set(models)) != len(models):
        raise InvalidParameter("models lists the same entry twice",
                               hint="name each model or model@version once")
    if data is None or not data.strip():
        raise InvalidParameter("data must be a query",
                               hint="pass e.g. $$SELECT content, gold_sql, setup_sql FROM demo_eval$$")
    if max_tokens is None or max_tokens < 1:
        raise InvalidParameter(f"max_tokens must be at least 1, got {max_tokens}",
                               hint="the default is 200")
    if statement_timeout_ms is None or not 1 <= statement_timeout_ms <= MAX_STATEMENT_TIMEOUT_MS:
        raise InvalidParameter(
            f"statement_timeout_ms must be between 1 and {MAX_STATEMENT_TIMEOUT_MS}, "
            f"got {statement_timeout_ms}", hint="the default is 2000 (2 s per query)")


def resolve_entry(plpy, label: str) -> ModelEntry:
    name, version = parse_entry(label)
    model = model_catalog.get_model(plpy, name)
    if model is None:
        known = ", ".join(model_catalog.model_names(plpy)) or "none"
        raise UndefinedObject(f'model "{name}" does not exist',
                              hint=f"known models: {known} (create one with llm_create_model)")
    if version is not None:
        versions = model_catalog.live_versions(plpy, name)
        if version not in versions:
            known = ", ".join(str(v) for v in versions) or "none"
            raise UndefinedObject(f'model "{name}" has no version {version}',
                                  hint=f"available versions: {known} (see llm.model_versions)")
    table = model_catalog.find_model_table(plpy, name)
    if table is None:
        raise UndefinedObject(f'the foreign table of model "{name}" is missing',
                              hint="re-create the model with llm_create_model")
    columns = templates.parse_template(model["prompt_template"], predict=model["predict"])
    if model.get("system_prompt"):
        for column in templates.parse_template(model["system_prompt"], what="system_prompt"):
            if column not in columns:
                columns.append(column)
    engine = model_catalog.get_engine(plpy, model["engine"]) or {}
    return ModelEntry(label=label, model=name, version=version, table=table,
                      prompt_columns=columns, predict=model["predict"],
                      price_input=engine.get("price_input"),
                      price_output=engine.get("price_output"))


# -- data ------------------------------------------------------------------------------------
def load_data(plpy, data: str, entries: list[ModelEntry],
              search_path: str | None = None) -> tuple[list[dict], bool]:
    """Rows of the data query (run as the caller, under its search_path); whether it has a
    setup_sql column."""
    # A subquery: the text must be one query, never a command.
    result = execute_as_written(
        plpy, f"SELECT * FROM (\n{data.strip().rstrip(';')}\n) AS llm_eval_data", search_path)
    columns = list(result.colnames())
    if "gold_sql" not in columns:
        raise InvalidData("the data query has no gold_sql column",
                          detail=f"its columns: {', '.join(columns) or 'none'}",
                          hint="return the reference query as gold_sql, e.g. "
                               "SELECT content, gold_sql, setup_sql FROM demo_eval")
    for entry in entries:
        missing = [c for c in entry.prompt_columns if c not in columns]
        if missing:
            raise InvalidData(f'the data query has no column {", ".join(missing)} '
                              f'needed by model "{entry.model}"',
                              detail=f"its columns: {', '.join(columns)}",
                              hint=_TEMPLATE_HINT_ROW)
    rows = [dict(r) for r in result]
    if not rows:
        raise InvalidData("the data query returned no rows",
                          hint="check the query; evaluate at least one example")
    for index, row in enumerate(rows):
        row["__item_id"] = str(row["id"]) if row.get("id") is not None else str(index + 1)
    ids = [row["__item_id"] for row in rows]
    if len(set(ids)) != len(ids):
        raise InvalidData("the data query returned the same id twice",
                          hint="ids identify evaluation items; make them unique or drop the id column")
    return rows, "setup_sql" in columns


def _check_privileges(plpy, with_setup: bool) -> None:
    """Fail before asking any model (which costs money) when the results could not be kept."""
    row = catalog.privileges(plpy)
    if not row["store"]:
        raise InsufficientPrivilege(
            f'role "{row["who"]}" may not store evaluations',
            hint="an administrator can run: GRANT INSERT ON llm.evaluations, "
                 f"llm.evaluation_items TO {row['who']}; GRANT USAGE ON SEQUENCE "
                 f"llm.evaluations_id_seq TO {row['who']}")
    if with_setup and not row["sandbox"]:
        raise InsufficientPrivilege(
            "llm_evaluate needs to create a throwaway schema per example to run the queries",
            hint=f"GRANT CREATE ON DATABASE <this database> TO {row['who']}, or leave setup_sql "
                 "out of the data query to skip execution match")


# -- asking the models -------------------------------------------------------------------------
def _prompt_key(entry: ModelEntry, row: dict) -> tuple:
    return tuple(row[c] for c in entry.prompt_columns)


def ask(plpy, entry: ModelEntry, rows: list[dict], max_tokens: int) -> list[Answer]:
    """One scan of the model's foreign table per entry (per row when it has several
    template variables, since ANY lists would multiply)."""
    outputs = (f"{entry.predict} AS llm_answer, version, model_id, prompt_tokens, "
               "completion_tokens, latency_ms")
    # temperature 0: an evaluation should measure the model, not the sampling luck.
    fixed = "max_tokens = $1 AND temperature = 0"
    if entry.version is not None:
        fixed += f" AND version = {int(entry.version)}"
    answers: dict[tuple, Answer | None] = {}
    if len(entry.prompt_columns) == 1:
        column = plpy.quote_ident(entry.prompt_columns[0])
        plan = plpy.prepare(f"SELECT {column} AS llm_prompt, {outputs} FROM {entry.table} "
                            f"WHERE {fixed} AND {column} = ANY($2)", ["int", "text[]"])
        prompts = list(dict.fromkeys(_prompt_key(entry, row)[0] for row in rows))
        for r in plpy.execute(plan, [max_tokens, prompts]):
            answers[(r["llm_prompt"],)] = _answer(r)
    else:
        conditions = " AND ".join(f"{plpy.quote_ident(c)} = ${i + 2}"
                                  for i, c in enumerate(entry.prompt_columns))
        plan = plpy.prepare(f"SELECT {outputs} FROM {entry.table} WHERE {fixed} AND {conditions}",
                            ["int", *(["text"] * len(entry.prompt_columns))])
        for row in rows:
            key = _prompt_key(entry, row)
            if key not in answers:
                result = plpy.execute(plan, [max_tokens, *key])
                answers[key] = _answer(result[0]) if result.nrows() else None
    return [answers.get(_prompt_key(entry, row)) or Answer(None, None, None, None, None, None)
            for row in rows]


def _answer(r) -> Answer:
    return Answer(r["llm_answer"], r["version"], r["model_id"], r["prompt_tokens"],
                  r["completion_tokens"], r["latency_ms"])


# -- scoring and summaries ---------------------------------------------------------------------
def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 6) if values else None


def _rate(flags) -> float | None:
    return _mean([1.0 if f else 0.0 for f in flags if f is not None])


def _cost(entry: ModelEntry, answers: list[Answer]) -> Decimal | None:
    if entry.price_input is None or entry.price_output is None:
        return None  # unknown price: say so instead of claiming 0
    prompt = sum(a.prompt_tokens or 0 for a in answers)
    completion = sum(a.completion_tokens or 0 for a in answers)
    return (Decimal(prompt) * Decimal(entry.price_input)
            + Decimal(completion) * Decimal(entry.price_output)) / Decimal(1_000_000)


def _prompt_text(entry: ModelEntry, row: dict) -> str:
    if len(entry.prompt_columns) == 1:
        return row[entry.prompt_columns[0]]
    return "\n".join(f"{c}: {row[c]}" for c in entry.prompt_columns)


def evaluate(plpy, models, data, *, name=None, max_tokens=200, statement_timeout_ms=2000,
             search_path=None):
    _check_arguments(models, data, max_tokens, statement_timeout_ms)
    entries = [resolve_entry(plpy, label) for label in models]
    rows, with_setup = load_data(plpy, data, entries, search_path)
    _check_privileges(plpy, with_setup)

    answers_by_entry = []
    for entry in entries:
        # Asking is the slow part with a real model: say what is happening before it starts.
        plpy.notice(f"llm_evaluate: asking {entry.label} {len(rows)} questions "
                    f"(max_tokens {max_tokens})")
        started = time.monotonic()
        answers_by_entry.append(ask(plpy, entry, rows, max_tokens))
        plpy.notice(f"llm_evaluate: {entry.label} answered {len(rows)} prompts in "
                    f"{time.monotonic() - started:.1f} s")

    # Execution: one sandbox per data row, shared by every entry's answer to that row.
    started = time.monotonic()
    executions = [None] * len(rows)
    if with_setup:
        sandbox = Sandbox(plpy, statement_timeout_ms)
        for index, row in enumerate(rows):
            executions[index] = sandbox.score(
                row.get("setup_sql"), row["gold_sql"] or "",
                [answers[index].text for answers in answers_by_entry])
        plpy.notice(f"llm_evaluate: executed {len(rows)} gold queries and "
                    f"{len(rows) * len(entries)} answers in {time.monotonic() - started:.1f} s")

    run_id = catalog.new_run_id(plpy)
    summaries = []
    for position, (entry, answers) in enumerate(zip(entries, answers_by_entry)):
        items = []
        for index, (row, answer) in enumerate(zip(rows, answers)):
            execution = executions[index]
            executed = execution.answers[position] if execution else None
            items.append({
                "item_id": row["__item_id"], "prompt": _prompt_text(entry, row),
                "answer": answer.text, "gold_sql": row["gold_sql"],
                "succinct": is_succinct(answer.text),
                "exact": exact_match(answer.text, row["gold_sql"]),
                "executed_ok": executed.executed_ok if executed else None,
                "execution_match": executed.execution_match if executed else None,
                "error": executed.error if executed else None,
                "latency_ms": answer.latency_ms, "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens})
        versions = {a.version for a in answers if a.version is not None}
        model_ids = {a.model_id for a in answers if a.model_id is not None}
        summary = {
            "label": entry.label, "entry": entry.label, "name": name, "model": entry.model,
            "version": entry.version if entry.version is not None
            else (versions.pop() if len(versions) == 1 else None),
            "provider_model_id": model_ids.pop() if len(model_ids) == 1 else None,
            "n": len(rows),
            "n_executable": sum(1 for e in executions if e is not None and e.executable),
            "execution_match": _rate(i["execution_match"] for i in items),
            "exact_match": _rate(i["exact"] for i in items),
            "succinct_rate": _rate(i["succinct"] for i in items),
            "avg_prompt_tokens": _mean(a.prompt_tokens for a in answers),
            "avg_completion_tokens": _mean(a.completion_tokens for a in answers),
            "avg_latency_ms": _mean(a.latency_ms for a in answers),
            "cost_usd": _cost(entry, answers), "max_tokens": max_tokens, "data_query": data}
        summary["id"] = catalog.insert_evaluation(plpy, run_id, summary, first=position == 0)
        catalog.insert_items(plpy, summary["id"], items)
        summaries.append(summary)

    results = [{"evaluation_id": s["id"], "model": s["label"], "version": s["version"],
                "n": s["n"], "execution_match": s["execution_match"],
                "exact_match": s["exact_match"], "succinct_rate": s["succinct_rate"],
                "avg_prompt_tokens": s["avg_prompt_tokens"],
                "avg_completion_tokens": s["avg_completion_tokens"],
                "avg_latency_ms": s["avg_latency_ms"], "cost_usd": s["cost_usd"]}
               for s in summaries]
    plpy.notice(f"llm_evaluate: run {run_id}" + (f" ({name})" if name else "")
                + f", {len(rows)} examples\n" + format_table(results))
    return results
