"""Bodies of llm_finetune, llm_wait, llm_refresh, llm_cancel_job, llm_set_budget,
llm_create_datasource / llm_drop_datasource and llm_schedule_refresh.

Transactions: llm_finetune only starts the job (validate, estimate, check budgets, upload,
create) and returns; its statement commits the job row. The long part is llm_wait, which
writes nothing while it polls and records everything at the end, so a cancelled wait loses
nothing that llm_refresh cannot fetch again; a failed job is *returned* with a WARNING
instead of raised, because an error would roll back the row that records the failure.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

from pg_llm.catalog import jobs as catalog
from pg_llm.errors import (EngineRequestFailed, EngineUnavailable, InvalidParameter,
                           JobStateError, LlmError, UndefinedObject)
from pg_llm.finetune import datasources, estimate as estimates, shapes, validate
from pg_llm.finetune import jobs
from pg_llm.finetune.budget import Budget, check_budgets, check_limits
from pg_llm.finetune.provider import FINISHED

POLL_INTERVAL_S = 1.0
SLEEP_SLICE_S = 0.1
# Consecutive failed polls (about one a second) before llm_wait gives up on an engine.
MAX_UNREACHABLE_POLLS = 15
HYPERPARAMETER_KEYS = ("n_epochs", "batch_size", "learning_rate_multiplier")
OPTION_KEYS = {"n_epochs", "batch_size", "learning_rate_multiplier", "suffix", "seed",
               "validation_fraction", "min_conversations", "max_tokens_per_conversation",
               "columns", "tokenizer", *shapes.WIDE_OPTION_KEYS}


def _options(options) -> dict:
    if options is None:
        return {}
    if isinstance(options, str):
        options = json.loads(options)
    if not isinstance(options, dict):
        raise InvalidParameter("options must be a JSON object",
                               hint='e.g. options => \'{"n_epochs": 3}\'')
    unknown = set(options) - OPTION_KEYS
    if unknown:
        raise InvalidParameter("unknown fine-tuning options: " + ", ".join(sorted(unknown)),
                               hint="known options: " + ", ".join(sorted(OPTION_KEYS)))
    return options


# ---- llm_finetune

def _training_rows(plpy, query: str, datasource: str | None):
    if not isinstance(query, str) or not query.strip():
        raise InvalidParameter("query must not be empty",
                               hint="give the training data as a query, e.g. "
                                    "$$SELECT role, content, chat_id FROM my_chats$$")
    if datasource:
        return datasources.fetch_rows(plpy, datasource, query, jobs.interrupt_checker(plpy))
    # Wrapped as a subquery: only a SELECT/VALUES/WITH query can run here, no DML or DDL.
    # Runs with the caller's privileges and search_path.
    body = query.strip().rstrip(";")
    result = plpy.execute(f"SELECT * FROM (\n{body}\n) AS pg_llm_training_data")
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
        provider = jobs.provider_for(plpy, info["engine"])
        try:
            return estimates.count_tokens(
                conversations, lambda convs: provider.count_tokens(info["base_model"], convs))
        except (EngineUnavailable, EngineRequestFailed, UndefinedObject) as exc:
            if options.get("tokenizer") == "engine":
                raise
            plpy.notice(f"pg_llm: the engine's tokenizer is unavailable ({exc.message}); "
                        "using the character-based estimate")
    return estimates.count_tokens(conversations)


def _hyperparameters(options: dict, epochs: int) -> dict:
    hyper = {k: options[k] for k in HYPERPARAMETER_KEYS if k in options}
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


def _budgets(plpy, model: str, engine: str) -> list[Budget]:
    return [Budget(r["scope"], r["target"],
                   Decimal(str(r["max_usd"])) if r["max_usd"] is not None else None,
                   int(r["max_tokens"]) if r["max_tokens"] is not None else None,
                   Decimal(str(r["spent_usd"])), int(r["spent_tokens"]))
            for r in catalog.budgets_for(plpy, model, engine)]


def finetune(plpy, model, query, options=None, dry_run=False, activate=True, datasource=None):
    options = _options(options)
    info = catalog.model_info(plpy, model)
    epochs = estimates.epochs_from_options(options)

    columns, rows = _training_rows(plpy, query, datasource)
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
            check_budgets(_budgets(plpy, model, info["engine"]), est.trained_tokens, est.usd)
        except LlmError as exc:
            plpy.warning(f"{exc.message}: {exc.detail}")
        return [row]

    check_budgets(_budgets(plpy, model, info["engine"]), est.trained_tokens, est.usd)
    hyper = _hyperparameters(options, epochs)
    job = catalog.insert_job(
        plpy, model=model, engine=info["engine"], status="queued",
        base_model=info["base_model"], hyperparameters=hyper, options=options,
        activate=bool(activate), n_conversations=len(train),
        estimated_tokens=est.trained_tokens, estimated_usd=est.usd)
    catalog.book(plpy, job, "estimate", est.trained_tokens, est.usd)

    provider = jobs.provider_for(plpy, info["engine"])
    name = f"pg_llm-{model}-job{job['id']}"
    uploaded: list[str] = []
    try:
        file_id = provider.upload([c.as_openai() for c in train], f"{name}.jsonl")
        uploaded.append(file_id)
        valid_id = (provider.upload([c.as_openai() for c in valid], f"{name}-valid.jsonl")
                    if valid else None)
        if valid_id:
            uploaded.append(valid_id)
        pj = provider.create_job(info["base_model"], file_id, hyper,
                                 options.get("suffix") or jobs.suffix_for(model), valid_id,
                                 options.get("seed"))
    except Exception:
        # The job row rolls back with this statement; the provider's copies of the data
        # would otherwise stay behind with nothing pointing at them.
        _delete_uploads(plpy, provider, uploaded)
        raise
    # started_at = handed to the provider (finished_at - started_at is the job's duration).
    job = catalog.update_job(plpy, job["id"], provider_job_id=pj.id, provider_file_id=file_id,
                             provider_validation_file_id=valid_id, started_at="now")
    job = jobs.apply_provider_state(plpy, job, pj)
    plpy.notice(f"pg_llm: fine-tuning job {job['id']} ({pj.id}) started on engine "
                f"\"{info['engine']}\": {est.conversations} conversations, {est.tokens} tokens "
                f"x {epochs} epochs; follow it with SELECT * FROM llm_wait({job['id']})")
    row.update(job_id=job["id"], status=job["status"], provider_job_id=pj.id)
    return [row]


def _delete_uploads(plpy, provider, file_ids: list[str]) -> None:
    for file_id in file_ids:
        try:
            provider.delete_file(file_id)
        except Exception as exc:  # noqa: BLE001 -- the original error is the one to report
            plpy.warning(f"pg_llm: could not delete the uploaded file {file_id} at the "
                         f"provider: {exc}")


# ---- llm_wait / llm_refresh / llm_cancel_job

def _resolve_job(plpy, ref) -> dict:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        return catalog.get_job(plpy, int(ref))
    if not isinstance(ref, str) or not ref:
        raise InvalidParameter("give a model name or a job id",
                               hint="SELECT * FROM llm_wait('my_model') or llm_wait(42)")
    return catalog.latest_job(plpy, ref)


def _sleep(plpy, seconds: float, check) -> None:
    """Sleep in small slices, checking for cancellation in between."""
    end = time.monotonic() + seconds
    while True:
        check()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(SLEEP_SLICE_S, left))


def _final_warning(plpy, job: dict) -> None:
    if job["status"] == "failed":
        plpy.warning(f"pg_llm: fine-tuning job {job['id']} failed: {job['error']}; "
                     f"model \"{job['model']}\" keeps serving its active version")
    elif job["status"] == "cancelled":
        plpy.warning(f"pg_llm: fine-tuning job {job['id']} was cancelled; "
                     f"model \"{job['model']}\" keeps serving its active version")


def wait(plpy, ref, timeout_s=None):
    return catalog.as_sql_row(_wait(plpy, ref, timeout_s))


def _wait(plpy, ref, timeout_s):
    job = _resolve_job(plpy, ref)
    if job["status"] in FINISHED:
        _final_warning(plpy, job)
        return job
    if not job["provider_job_id"]:
        raise JobStateError(f"job {job['id']} was never started at the provider",
                            hint="start a new one with llm_finetune")
    provider = jobs.provider_for(plpy, job["engine"])
    check = provider.check_interrupts
    seen = catalog.known_event_ids(plpy, job["id"])
    pending = []        # events shown but not yet written (written once, at the end)
    started = time.monotonic()
    failures = 0
    while True:
        try:
            pj = provider.retrieve(job["provider_job_id"])
            fresh = provider.new_events(job["provider_job_id"], seen)
            failures = 0
        except UndefinedObject:
            job = _forget(plpy, job, pending)
            _final_warning(plpy, job)
            return job
        except EngineUnavailable as exc:
            failures += 1
            if failures >= MAX_UNREACHABLE_POLLS:
                jobs.record_events(plpy, job, pending)
                raise EngineUnavailable(
                    f"engine \"{job['engine']}\" stopped answering while waiting for job "
                    f"{job['id']}", detail=exc.message,
                    hint="the job may still run there: SELECT llm_refresh() later, or "
                         f"SELECT * FROM llm_wait({job['id']}) again") from None
            if failures == 1:
                plpy.notice(f"pg_llm: engine \"{job['engine']}\" is not answering; retrying")
            _sleep(plpy, POLL_INTERVAL_S, check)
            continue
        for event in fresh:
            seen.add(event.id)
            pending.append(event)
            plpy.notice(jobs.describe_event(job["id"], event))
        if pj.status in FINISHED:
            jobs.record_events(plpy, job, pending)
            job = jobs.apply_provider_state(plpy, job, pj)
            _final_warning(plpy, job)
            return job
        if timeout_s is not None and time.monotonic() - started >= timeout_s:
            jobs.record_events(plpy, job, pending)
            job = jobs.apply_provider_state(plpy, job, pj)
            plpy.notice(f"pg_llm: job {job['id']} is still {job['status']} after "
                        f"{timeout_s:g} s; llm_wait again or let llm_refresh follow it")
            return job
        _sleep(plpy, POLL_INTERVAL_S, check)


def _forget(plpy, job: dict, pending) -> dict:
    """The engine no longer knows the job (restarted without its state, or deleted)."""
    jobs.record_events(plpy, job, pending)
    job = catalog.get_job(plpy, job["id"], lock=True)
    if job["status"] in FINISHED:
        return job
    return jobs.finish_failed(plpy, job, "failed",
                              f"engine \"{job['engine']}\" no longer knows job "
                              f"{job['provider_job_id']} (restarted or deleted)")


def refresh(plpy):
    """One poll of every unfinished job; cheap when there is none."""
    summary = {"polled": 0, "new_events": 0, "succeeded": [], "failed": [], "cancelled": [],
               "running": [], "unreachable": [], "errors": {}}
    providers = {}
    for job in catalog.unfinished_jobs(plpy):
        summary["polled"] += 1
        if not job["provider_job_id"]:
            continue
        try:
            if job["engine"] not in providers:
                providers[job["engine"]] = jobs.provider_for(plpy, job["engine"])
        except LlmError as exc:      # e.g. the engine was dropped
            summary["errors"][str(job["id"])] = exc.message
            continue
        provider = providers[job["engine"]]
        try:
            pj = provider.retrieve(job["provider_job_id"])
            fresh = provider.new_events(job["provider_job_id"],
                                        catalog.known_event_ids(plpy, job["id"]))
        except UndefinedObject:
            job = _forget(plpy, job, [])
            summary[job["status"]].append(job["id"])
            continue
        except EngineUnavailable:
            summary["unreachable"].append(job["id"])
            continue
        except LlmError as exc:
            summary["errors"][str(job["id"])] = exc.message
            continue
        summary["new_events"] += jobs.record_events(plpy, job, fresh)
        job = jobs.apply_provider_state(plpy, job, pj)
        summary[job["status"] if job["status"] in FINISHED else "running"].append(job["id"])
    return json.dumps(summary)


def cancel_job(plpy, job_id):
    return catalog.as_sql_row(_cancel_job(plpy, job_id))


def _cancel_job(plpy, job_id):
    job = catalog.get_job(plpy, job_id)
    if job["status"] in FINISHED:
        raise JobStateError(f"job {job_id} already {job['status']}",
                            hint="only queued or running jobs can be cancelled")
    if job["provider_job_id"]:
        provider = jobs.provider_for(plpy, job["engine"])
        try:
            pj = provider.cancel(job["provider_job_id"])
        except UndefinedObject:
            return _forget(plpy, job, [])
        except EngineRequestFailed:
            # The provider refused (e.g. it has just finished): record what it says.
            pj = provider.retrieve(job["provider_job_id"])
            if pj.status in FINISHED:
                return jobs.apply_provider_state(plpy, job, pj)
            raise
        if pj.status in FINISHED:
            return jobs.apply_provider_state(plpy, job, pj)
    # Acknowledged: the job is ours to call cancelled even if the engine needs a moment.
    job = catalog.get_job(plpy, job_id, lock=True)
    if job["status"] in FINISHED:
        return job
    return jobs.finish_failed(plpy, job, "cancelled", None)


# ---- budgets, datasources, cron

def set_budget(plpy, target, max_usd=None, max_tokens=None):
    check_limits(max_usd, max_tokens)
    scope, name = catalog.resolve_budget_target(plpy, target)
    catalog.set_budget(plpy, scope, name, max_usd, max_tokens)
    return plpy.execute(plpy.prepare("SELECT * FROM llm.budget_status WHERE scope = $1 AND "
                                     "target = $2", ["text", "text"]), [scope, name])


def create_datasource(plpy, name, url, replace=False):
    datasources.create(plpy, name, url, replace=bool(replace))


def drop_datasource(plpy, name):
    datasources.drop(plpy, name)


CRON_JOB_NAME = "pg_llm_refresh"


def schedule_refresh(plpy, schedule="* * * * *"):
    has_cron = plpy.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'cron'")
    if not has_cron:
        plpy.notice(
            "pg_llm: pg_cron is not installed in this database, so nothing was scheduled. "
            "Either CREATE EXTENSION pg_cron in the database named by cron.database_name and "
            "run there SELECT cron.schedule_in_database('pg_llm_refresh', '* * * * *', "
            "'SELECT llm_refresh()', '<this database>'), or run SELECT llm_refresh() "
            "yourself (e.g. `pg-llm jobs --watch`).")
        return None
    extschema = plpy.execute("SELECT n.nspname FROM pg_catalog.pg_extension e JOIN "
                             "pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
                             "WHERE e.extname = 'pg_llm'")[0]["nspname"]
    command = f"SELECT {plpy.quote_ident(extschema)}.llm_refresh()"
    # cron.schedule(name, ...) replaces an existing job of the same name.
    row = plpy.execute(plpy.prepare("SELECT cron.schedule($1, $2, $3) AS id",
                                    ["text", "text", "text"]),
                       [CRON_JOB_NAME, schedule, command])
    return row[0]["id"]
