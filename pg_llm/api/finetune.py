"""Bodies of llm_finetune, llm_wait, llm_refresh, llm_cancel_job, llm_set_budget,
llm_create_datasource / llm_drop_datasource and llm_schedule_refresh.

This module checks arguments and turns the training query into conversations and an
estimate; every change of a job's state is pg_llm.finetune.lifecycle's, and every SQL
statement on llm.* is pg_llm.catalog's.
"""

from __future__ import annotations

import json

from pg_llm.api.arguments import json_object
from pg_llm.catalog import budgets as budget_catalog
from pg_llm.catalog import cron
from pg_llm.catalog import jobs as catalog
from pg_llm.errors import (EngineRequestFailed, EngineUnavailable, FeatureNotSupported,
                           InvalidParameter, LlmError, UndefinedObject)
from pg_llm.finetune import datasources, estimate as estimates, lifecycle, shapes, validate
from pg_llm.finetune.budget import check_limits
from pg_llm.search_path import execute_as_written

HYPERPARAMETER_KEYS = ("n_epochs", "batch_size", "learning_rate_multiplier")
# The local engine's LoRA knobs: adapter rank, number of top layers adapted.
LOCAL_HYPERPARAMETER_KEYS = ("lora_rank", "lora_layers")
OPTION_KEYS = {"n_epochs", "batch_size", "learning_rate_multiplier", "suffix", "seed",
               *LOCAL_HYPERPARAMETER_KEYS,
               "validation_fraction", "min_conversations", "max_tokens_per_conversation",
               "columns", "tokenizer", *shapes.WIDE_OPTION_KEYS}


def _options(options) -> dict:
    options = json_object(options, 'e.g. options => \'{"n_epochs": 3}\'')
    unknown = set(options) - OPTION_KEYS
    if unknown:
        raise InvalidParameter("unknown fine-tuning options: " + ", ".join(sorted(unknown)),
                               hint="known options: " + ", ".join(sorted(OPTION_KEYS)))
    return options


# ---- llm_finetune

def _training_rows(plpy, query: str, datasource: str | None, search_path: str | None = None):
    if not isinstance(query, str) or not query.strip():
        raise InvalidParameter("query must not be empty",
                               hint="give the training data as a query, e.g. "
                                    "$$SELECT role, content, chat_id FROM my_chats$$")
    if datasource:
        return datasources.fetch_rows(plpy, datasource, query, lifecycle.interrupt_checker(plpy))
    # Wrapped as a subquery: only a SELECT/VALUES/WITH query can run here, no DML or DDL.
    # Runs with the caller's privileges and search_path (pg_llm.search_path).
    body = query.strip().rstrip(";")
    result = execute_as_written(plpy, f"SELECT * FROM (\n{body}\n) AS pg_llm_training_data",
                                search_path)
    return list(result.colnames()), [dict(r) for r in result]


def _count_method(options: dict, provider_kind: str) -> str:
    method = options.get("tokenizer", "auto")
    if method not in ("auto", "engine", "estimate"):
        raise InvalidParameter(f"options.tokenizer must be auto, engine or estimate, "
                               f"got {method!r}")
    if method == "auto":
        # Only the local engine has POST /v1/tokenize; hosted providers get the estimate.
        return "engine" if provider_kind == "local" else "estimate"
    return method


def _count_tokens(plpy, conversations, info, options) -> str:
    if _count_method(options, info["provider"]) == "engine":
        provider = lifecycle.provider_for(plpy, info["engine"])
        try:
            return estimates.count_tokens(
                conversations, lambda convs: provider.count_tokens(info["base_model"], convs))
        except (EngineUnavailable, EngineRequestFailed, UndefinedObject) as exc:
            if options.get("tokenizer") == "engine":
                raise
            plpy.notice(f"pg_llm: the engine's tokenizer is unavailable ({exc.message}); "
                        "using the character-based estimate")
    return estimates.count_tokens(conversations)


def _check_local_hyperparameters(options: dict, info: dict) -> None:
    given = [k for k in LOCAL_HYPERPARAMETER_KEYS if k in options]
    if given and info["provider"] != "local":
        raise FeatureNotSupported(
            f"options.{given[0]} is a LoRA setting of the local engine; engine "
            f"\"{info['engine']}\" is a {info['provider']} provider",
            hint="leave it out for hosted engines (they choose their own adapter)")
    for key in given:
        value = options[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 256:
            raise InvalidParameter(f"options.{key} must be an integer from 1 to 256, "
                                   f"got {value!r}",
                                   hint="lora_rank: e.g. 16; lora_layers: how many of the "
                                        "model's top layers the adapter changes, e.g. 10")


def _hyperparameters(options: dict, epochs: int) -> dict:
    hyper = {k: options[k] for k in (*HYPERPARAMETER_KEYS, *LOCAL_HYPERPARAMETER_KEYS)
             if k in options}
    hyper["n_epochs"] = epochs   # always explicit: the estimate assumed it
    return hyper


def _split_validation(conversations, options):
    fraction = options.get("validation_fraction", 0)
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or \
            not 0 <= fraction < 0.5:
        raise InvalidParameter("options.validation_fraction must be a number from 0 to 0.5",
                               hint="e.g. 0.1 holds out the last 10% of conversations")
    n_valid = int(len(conversations) * fraction)
    if fraction and n_valid == 0:
        n_valid = 1
    if n_valid == 0:
        return conversations, []
    return conversations[:-n_valid], conversations[-n_valid:]


def finetune(plpy, model, query, options=None, dry_run=False, activate=True, datasource=None,
             search_path=None):
    options = _options(options)
    info = catalog.model_info(plpy, model)
    epochs = estimates.epochs_from_options(options)
    _check_local_hyperparameters(options, info)

    columns, rows = _training_rows(plpy, query, datasource, search_path)
    shape = shapes.detect_shape(columns, options)
    conversations = shapes.to_conversations(rows, shape)
    validate.check_structure(conversations, options)
    method = _count_tokens(plpy, conversations, info, options)
    validate.check_token_limits(conversations, options)
    train, valid = _split_validation(conversations, options)
    est = estimates.estimate(train, epochs, info["price_training"], method)
    row = {"job_id": None, "status": "dry_run", "provider_job_id": None, **est.as_row()}

    if dry_run:
        try:
            lifecycle.check_budget(plpy, model, info["engine"], est)
        except LlmError as exc:
            plpy.warning(f"{exc.message}: {exc.detail}")
        return [row]

    job = lifecycle.queue(plpy, info=info, est=est, train=train, valid=valid,
                          hyperparameters=_hyperparameters(options, epochs), options=options,
                          activate=activate)
    plpy.notice(f"pg_llm: fine-tuning job {job['id']} queued for engine \"{info['engine']}\": "
                f"{est.conversations} conversations, {est.tokens} tokens x {epochs} epochs; it "
                f"is handed to the engine after this transaction commits, by "
                f"SELECT * FROM llm_wait({job['id']}) or llm_refresh()")
    row.update(job_id=job["id"], status=job["status"])
    return [row]


# ---- llm_wait / llm_refresh / llm_cancel_job

def _resolve_job(plpy, ref) -> dict:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        return catalog.get_job(plpy, int(ref))
    if not isinstance(ref, str) or not ref:
        raise InvalidParameter("give a model name or a job id",
                               hint="SELECT * FROM llm_wait('my_model') or llm_wait(42)")
    return catalog.latest_job(plpy, ref)


def wait(plpy, ref, timeout_s=None):
    return catalog.as_sql_row(lifecycle.wait(plpy, _resolve_job(plpy, ref), timeout_s))


def refresh(plpy):
    """One poll of every unfinished job; cheap when there is none."""
    return json.dumps(lifecycle.refresh(plpy))


def cancel_job(plpy, job_id):
    return catalog.as_sql_row(lifecycle.cancel(plpy, catalog.get_job(plpy, job_id)))


# ---- budgets, datasources, cron

def set_budget(plpy, target, max_usd=None, max_tokens=None):
    if not isinstance(target, str) or not target.strip():
        raise InvalidParameter("target must name an engine or a model",
                               hint="e.g. llm_set_budget('ft_sql', max_usd => 5), or "
                                    "'engine:name' / 'model:name' when a name is both")
    check_limits(max_usd, max_tokens)
    scope, name = budget_catalog.resolve_target(plpy, target)
    budget_catalog.set_budget(plpy, scope, name, max_usd, max_tokens)
    return budget_catalog.status(plpy, scope, name)


def datasource(plpy, action, name, url=None, replace=False):
    """llm._datasource: the one entry of llm_create_datasource and llm_drop_datasource."""
    if action == "create":
        return datasources.create(plpy, name, url, replace=bool(replace))
    if action == "drop":
        return datasources.drop(plpy, name)
    raise InvalidParameter(f'unknown datasource action "{action}"',
                           hint="use llm_create_datasource or llm_drop_datasource")


def schedule_refresh(plpy, schedule="* * * * *"):
    if not cron.has_pg_cron(plpy):
        plpy.notice(
            "pg_llm: pg_cron is not installed in this database, so nothing was scheduled. "
            "Either CREATE EXTENSION pg_cron in the database named by cron.database_name and "
            "run there SELECT cron.schedule_in_database('pg_llm_refresh', '* * * * *', "
            "'SELECT llm_refresh()', '<this database>'), or run SELECT llm_refresh() "
            "yourself (e.g. `pg-llm jobs --watch`).")
        return None
    return cron.schedule_refresh(plpy, schedule)
