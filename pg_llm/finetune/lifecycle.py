"""The life of one fine-tuning job: every change of its state happens in this module.

    llm_finetune ── queue() ──▶ pending ─ hand_over() ─▶ queued / running ── _apply() ─┐
                                  │   (after commit: llm_wait, llm_refresh, pg_cron)    │
                                  │                                                     ▼
                                  └──────── cancel() ──▶ cancelled    succeeded: new version
                                                                      (+ activation)
                                                                      failed / cancelled: the
                                                                      previous version serves

Budget: queue() checks the budgets and books the job's estimate while it holds their lock, so
two fine-tunes that share a budget are checked one after the other; every end settles
(_settle: the estimate is released, what the provider trained is booked).

Transactions. queue() runs in the caller's transaction and sends nothing to the provider: the
training data waits in llm.job_files, so a fine-tune whose transaction rolls back or errors
leaves nothing at the provider and nothing in the catalog. A later transaction hands the job
over (hand_over(): from wait() for llm_wait, from submit() for llm_refresh and pg_cron), never
the one that queued it. Every other change of state runs in a subtransaction of its own: all
of it or nothing, and a job that fails to record in llm_refresh does not undo the others.

The provider is the source of truth. _apply() is idempotent (events deduplicated by the
provider's id; a finished job is never finished twice: its row is locked and re-read first),
and hand_over() first looks for its own earlier upload at the provider, so a hand-over whose
transaction was rolled back after the provider accepted it (a cancelled llm_wait) is adopted
the next time, not created twice.
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

from pg_llm.catalog import budgets as budget_catalog
from pg_llm.catalog import jobs as catalog
from pg_llm.catalog import models as model_catalog
from pg_llm.engines import settings_from_options
from pg_llm.engines.client import backend_interrupt_checker
from pg_llm.errors import (EngineAuthFailed, EngineUnavailable, EngineRequestFailed,
                           InsufficientPrivilege, JobStateError, LlmError, UndefinedObject)
from pg_llm.finetune.budget import Budget, check_budgets
from pg_llm.finetune.estimate import Estimate, usd_for
from pg_llm.finetune.provider import FINISHED, Provider, ProviderEvent, ProviderJob
from pg_llm.interrupts import sleep

SUFFIX_MAX = 40
POLL_INTERVAL_S = 1.0
SLEEP_SLICE_S = 0.1
# Consecutive failed polls (about one a second) before llm_wait gives up on an engine.
MAX_UNREACHABLE_POLLS = 15
# Errors after which a job stays pending: the engine or its key may come back.
RETRYABLE = (EngineUnavailable, EngineAuthFailed)


# ---- helpers: the provider of a job's engine

def provider_for(plpy, engine: str) -> Provider:
    options = catalog.engine_options(plpy, engine)
    # the engine's key is spent only by roles its owner let use it (docs/security.md, point 1)
    row = plpy.execute(plpy.prepare(
        "SELECT pg_catalog.has_server_privilege($1, 'USAGE') AS ok, "
        "pg_catalog.quote_ident(current_user) AS who", ["text"]), [engine])[0]
    if not row["ok"]:
        raise InsufficientPrivilege(
            f'permission denied for engine "{engine}"',
            detail="fine-tuning sends the training data with the engine's key",
            hint=f"the engine's owner can run: GRANT USAGE ON FOREIGN SERVER {engine} "
                 f"TO {row['who']};")
    return Provider(settings_from_options(options, engine=engine),
                    check_interrupts=interrupt_checker(plpy))


def interrupt_checker(plpy):
    """The C bridge's CHECK_FOR_INTERRUPTS when present, else a cheap SPI call (which
    raises QueryCanceled on statement_timeout or pg_cancel_backend)."""
    check = backend_interrupt_checker()
    if check is not None:
        return check
    plan = plpy.prepare("SELECT 1")
    return lambda: plpy.execute(plan)


def suffix_for(model: str) -> str:
    """The provider's suffix: fine-tuned ids read ft:<base>:<suffix>:<job-id>."""
    return re.sub(r"[^a-z0-9-]", "-", model.lower())[:SUFFIX_MAX].strip("-") or "pg-llm"


def describe_event(job_id: int, event: ProviderEvent) -> str:
    if event.step is not None and event.train_loss is not None:
        total = f"/{event.total_steps}" if event.total_steps else ""
        text = f"job {job_id} step {event.step}{total}: loss {event.train_loss:.4f}"
        if event.valid_loss is not None:
            text += f", valid loss {event.valid_loss:.4f}"
        return text
    return f"job {job_id}: {event.message}"


def _budgets(plpy, model: str, engine: str, *, reserve: bool) -> list[Budget]:
    return [Budget.from_status(r)
            for r in budget_catalog.status_for_job(plpy, model, engine, reserve=reserve)]


def check_budget(plpy, model: str, engine: str, est: Estimate) -> None:
    """The dry run's check: reads spend, reserves nothing."""
    check_budgets(_budgets(plpy, model, engine, reserve=False), est.trained_tokens, est.usd)


# ---- pending: queued in the caller's transaction

def _filename(job: dict, purpose: str) -> str:
    # Job ids repeat across databases that share a provider account; the creation time
    # (microseconds) does not, and lets submit() recognise its own upload.
    stamp = re.sub(r"\D", "", str(job["created_at"]))[:20]
    tail = "" if purpose == "training" else "-valid"
    return f"pg_llm-{job['model']}-job{job['id']}-{stamp}{tail}.jsonl"


def _jsonl(conversations) -> str:
    return "".join(json.dumps({"messages": c.as_openai()}, ensure_ascii=False) + "\n"
                   for c in conversations)


def queue(plpy, *, info: dict, est: Estimate, train, valid, hyperparameters: dict,
          options: dict, activate: bool) -> dict:
    """Check the budgets and book the estimate (atomically: under the budgets' lock), write the
    job 'pending' with its training data. Nothing goes to the provider here."""
    model, engine = info["name"], info["engine"]
    check_budgets(_budgets(plpy, model, engine, reserve=True), est.trained_tokens, est.usd)
    job = catalog.insert_job(
        plpy, model=model, engine=engine, status="pending", base_model=info["base_model"],
        hyperparameters=hyperparameters, options=options, activate=bool(activate),
        n_conversations=len(train), estimated_tokens=est.trained_tokens,
        estimated_usd=est.usd)
    budget_catalog.book(plpy, job, "estimate", est.trained_tokens, est.usd)
    catalog.store_file(plpy, job["id"], "training", _filename(job, "training"), _jsonl(train))
    if valid:
        catalog.store_file(plpy, job["id"], "validation", _filename(job, "validation"),
                           _jsonl(valid))
    return job


# ---- queued/running: handed to the provider by a later transaction

def _claim(plpy, job_id: int, *, wait: bool) -> bool:
    """Only one transaction at a time hands a job over: an advisory lock held to its end (a
    row lock would also block llm_cancel_job for as long as a llm_wait polls)."""
    key = "pg_catalog.hashtextextended('pg_llm.submit.' || $1, 0)"
    sql = (f"SELECT true AS ok FROM pg_catalog.pg_advisory_xact_lock({key})" if wait
           else f"SELECT pg_catalog.pg_try_advisory_xact_lock({key}) AS ok")
    return bool(plpy.execute(plpy.prepare(sql, ["bigint"]), [job_id])[0]["ok"])


class Refused(Exception):
    """The provider refused the job (the job fails; retrying would not help)."""

    def __init__(self, error: LlmError):
        super().__init__(error.message)
        self.error = error


def hand_over(plpy, job: dict) -> ProviderJob:
    """Create the pending job at the provider (or adopt the one an earlier, rolled-back
    submission created); writes nothing. The caller holds the claim and records the result.

    Raises JobStateError inside the transaction that queued the job (its budget reservation
    is not committed yet), Refused when the provider refuses it (its uploads are deleted
    again), and EngineUnavailable/EngineAuthFailed, after which the job stays pending."""
    if catalog.queued_in_this_transaction(plpy, job["id"]):
        raise JobStateError(
            f"fine-tuning job {job['id']} was queued in this transaction",
            detail="a job is handed to the provider only after the transaction that queued "
                   "it commits, so that a rolled-back llm_finetune never trains",
            hint=f"COMMIT, then SELECT * FROM llm_wait({job['id']})")
    files = catalog.job_files(plpy, job["id"])
    provider = provider_for(plpy, job["engine"])
    uploaded: list[str] = []
    try:
        pj, file_id = _adopt(provider, files)
        if pj is not None:
            return pj
        return _create(provider, job, files, file_id, uploaded)
    except RETRYABLE:
        _delete_uploads(plpy, provider, uploaded)
        raise
    except LlmError as exc:
        _delete_uploads(plpy, provider, uploaded)
        raise Refused(exc) from None
    # Cancelled mid-request (an interrupt, not an LlmError): the uploads stay, because the
    # job may exist already; the next hand-over finds them by name and adopts it.


def _adopt(provider: Provider, files: dict) -> tuple[ProviderJob | None, str | None]:
    """The provider job (or just the upload) of an earlier submission of these files."""
    try:
        return provider.find_by_training_filename(files["training"]["filename"])
    except (EngineRequestFailed, UndefinedObject):
        return None, None         # the engine cannot list files or jobs: nothing to adopt


def _create(provider: Provider, job: dict, files: dict, file_id: str | None,
            uploaded: list[str]) -> ProviderJob:
    if file_id is None:
        file_id = provider.upload_jsonl(files["training"]["content"],
                                        files["training"]["filename"])
        uploaded.append(file_id)
    valid_id = None
    if "validation" in files:
        valid_id = provider.upload_jsonl(files["validation"]["content"],
                                         files["validation"]["filename"])
        uploaded.append(valid_id)
    options = job["options"] or {}
    return provider.create_job(job["base_model"], file_id, job["hyperparameters"],
                               options.get("suffix") or suffix_for(job["model"]), valid_id,
                               options.get("seed"))


def _record_submission(plpy, job: dict, pj: ProviderJob, handed_at: str = "now") -> dict:
    """The job now lives at the provider: its ids, no more local copy of the data."""
    plpy.notice(f"pg_llm: fine-tuning job {job['id']} handed to engine \"{job['engine']}\" "
                f"as {pj.id}")
    catalog.drop_job_files(plpy, job["id"])
    ids = {"provider_job_id": pj.id, "provider_file_id": pj.training_file,
           "provider_validation_file_id": pj.validation_file}
    if job["status"] in FINISHED:
        return catalog.update_job(plpy, job["id"], **ids)
    # started_at = handed to the provider (finished_at - started_at is the job's duration).
    return catalog.update_job(plpy, job["id"], started_at=handed_at, **ids)


def _refused(plpy, job: dict, refused: Refused) -> dict:
    exc = refused.error
    with plpy.subtransaction():
        job = catalog.get_job(plpy, job["id"], lock=True)
        if job["status"] in FINISHED:
            return job
        return _finish_failed(plpy, job, "failed", f"the provider refused the job: "
                              f"{exc.message}" + (f" ({exc.detail})" if exc.detail else ""))


def submit(plpy, job: dict) -> dict | None:
    """Hand a pending job over and record it (llm_refresh); None when another transaction is
    handing it over right now."""
    if not _claim(plpy, job["id"], wait=False):
        return None
    try:
        pj = hand_over(plpy, job)
    except Refused as refused:
        return _refused(plpy, job, refused)
    with plpy.subtransaction():
        job = catalog.get_job(plpy, job["id"], lock=True)
        job = _record_submission(plpy, job, pj)
        if job["status"] in FINISHED:         # cancelled meanwhile: stop the provider's job
            _cancel_at_provider(plpy, job)
            return job
        return _apply(plpy, job, pj)


def _delete_uploads(plpy, provider: Provider, file_ids: list[str]) -> None:
    for file_id in file_ids:
        try:
            provider.delete_file(file_id)
        except Exception as exc:  # noqa: BLE001 -- the original error is the one to report
            plpy.warning(f"pg_llm: could not delete the uploaded file {file_id} at the "
                         f"provider: {exc}")


# ---- following a job: llm_wait (blocking) and llm_refresh (one poll of every job)

def final_warning(plpy, job: dict) -> None:
    if job["status"] == "failed":
        plpy.warning(f"pg_llm: fine-tuning job {job['id']} failed: {job['error']}; "
                     f"model \"{job['model']}\" keeps serving its active version")
    elif job["status"] == "cancelled":
        plpy.warning(f"pg_llm: fine-tuning job {job['id']} was cancelled; "
                     f"model \"{job['model']}\" keeps serving its active version")


def wait(plpy, job: dict, timeout_s: float | None) -> dict:
    """Poll until the job ends (NOTICE per new event); returns the final row.

    Writes nothing while it polls and records everything at the end, in one subtransaction,
    so it holds no row lock (llm_cancel_job elsewhere neither blocks nor is lost) and a
    cancelled wait loses nothing that llm_refresh cannot fetch again. A pending job is handed
    over first; until the end only this transaction knows its provider id (it holds the
    claim, and adopts nothing twice). A failed job is returned with a WARNING, not raised,
    because an error would roll back the row that records the failure.
    """
    started = time.monotonic()
    check = interrupt_checker(plpy)
    submitted = None                     # the provider job this wait handed over, unrecorded
    handed_at = "now"
    if job["status"] == "pending":
        if catalog.queued_in_this_transaction(plpy, job["id"]):
            hand_over(plpy, job)         # raises the explanation
        _claim(plpy, job["id"], wait=True)
        job = catalog.get_job(plpy, job["id"])    # whoever held the claim may have finished
    failures = 0
    while job["status"] == "pending":
        try:
            submitted = hand_over(plpy, job)
            handed_at = plpy.execute("SELECT pg_catalog.clock_timestamp()::text AS t")[0]["t"]
            plpy.notice(f"pg_llm: fine-tuning job {job['id']} handed to engine "
                        f"\"{job['engine']}\" as {submitted.id}")
            job = dict(job, provider_job_id=submitted.id)
            break
        except Refused as refused:
            job = _refused(plpy, job, refused)
        except RETRYABLE as exc:
            failures = _unreachable(plpy, job, exc, failures)
            sleep(POLL_INTERVAL_S, poll_interval=SLEEP_SLICE_S, check=check)
    if job["status"] in FINISHED:
        final_warning(plpy, job)
        return job
    if not job["provider_job_id"]:
        raise JobStateError(f"job {job['id']} was never started at the provider",
                            hint="start a new one with llm_finetune")
    provider = provider_for(plpy, job["engine"])
    seen = catalog.known_event_ids(plpy, job["id"])
    events: list[ProviderEvent] = []    # shown but not yet written (written once, at the end)
    failures = 0
    while True:
        if submitted is not None:
            row = catalog.get_job(plpy, job["id"])
            if row["status"] in FINISHED:     # cancelled elsewhere before we recorded it
                job = _record(plpy, job, events, None, submitted, handed_at)
                final_warning(plpy, job)
                return job
        try:
            pj = provider.retrieve(job["provider_job_id"])
            fresh = provider.new_events(job["provider_job_id"], seen)
            failures = 0
        except UndefinedObject:
            job = _record(plpy, job, events, None, submitted, handed_at)
            job = _forget(plpy, job)
            final_warning(plpy, job)
            return job
        except EngineUnavailable as exc:
            # Giving up raises, which rolls back what a record would write: nothing to do.
            failures = _unreachable(plpy, job, exc, failures)
            sleep(POLL_INTERVAL_S, poll_interval=SLEEP_SLICE_S, check=check)
            continue
        for event in fresh:
            seen.add(event.id)
            events.append(event)
            plpy.notice(describe_event(job["id"], event))
        if pj.status in FINISHED:
            job = _record(plpy, job, events, pj, submitted, handed_at)
            final_warning(plpy, job)
            return job
        if timeout_s is not None and time.monotonic() - started >= timeout_s:
            job = _record(plpy, job, events, pj, submitted, handed_at)
            plpy.notice(f"pg_llm: job {job['id']} is still {job['status']} after "
                        f"{timeout_s:g} s; llm_wait again or let llm_refresh follow it")
            return job
        sleep(POLL_INTERVAL_S, poll_interval=SLEEP_SLICE_S, check=check)


def _unreachable(plpy, job: dict, exc: LlmError, failures: int) -> int:
    """Count one failed call; give up (raise) after MAX_UNREACHABLE_POLLS, or at once when
    the key is refused."""
    failures += 1
    if isinstance(exc, EngineAuthFailed):
        raise exc
    if failures >= MAX_UNREACHABLE_POLLS:
        raise EngineUnavailable(
            f"engine \"{job['engine']}\" stopped answering while waiting for job {job['id']}",
            detail=exc.message,
            hint="the job may still run there: SELECT llm_refresh() later, or "
                 f"SELECT * FROM llm_wait({job['id']}) again") from None
    if failures == 1:
        plpy.notice(f"pg_llm: engine \"{job['engine']}\" is not answering; retrying")
    return failures


def refresh(plpy) -> dict:
    """Hand over every pending job and poll every unfinished one once; cheap when there is
    none. Returns a summary: how many were polled, new events, job ids by outcome."""
    summary = {"polled": 0, "new_events": 0, "submitted": [], "succeeded": [], "failed": [],
               "cancelled": [], "running": [], "unreachable": [], "errors": {}}
    providers: dict[str, Provider] = {}
    for job in catalog.unfinished_jobs(plpy):
        summary["polled"] += 1
        try:
            if job["status"] == "pending":
                if catalog.queued_in_this_transaction(plpy, job["id"]):
                    continue         # handed over once this transaction has committed
                job = submit(plpy, job)
                if job is None:      # a llm_wait is handing it over
                    continue
                if job["provider_job_id"]:
                    summary["submitted"].append(job["id"])
                if job["status"] in FINISHED:
                    summary[job["status"]].append(job["id"])
                    continue
            if job["engine"] not in providers:
                providers[job["engine"]] = provider_for(plpy, job["engine"])
            provider = providers[job["engine"]]
            pj = provider.retrieve(job["provider_job_id"])
            fresh = provider.new_events(job["provider_job_id"],
                                        catalog.known_event_ids(plpy, job["id"]))
        except UndefinedObject as exc:
            if not job["provider_job_id"]:            # e.g. the engine was dropped
                summary["errors"][str(job["id"])] = exc.message
                continue
            job = _forget(plpy, job)
            summary[job["status"]].append(job["id"])
            continue
        except EngineUnavailable:
            summary["unreachable"].append(job["id"])
            continue
        except LlmError as exc:
            summary["errors"][str(job["id"])] = exc.message
            continue
        summary["new_events"] += len(fresh)
        job = _record(plpy, job, fresh, pj)
        summary[job["status"] if job["status"] in FINISHED else "running"].append(job["id"])
    return summary


def _record(plpy, job: dict, events: list[ProviderEvent], pj: ProviderJob | None,
            submitted: ProviderJob | None = None, handed_at: str = "now") -> dict:
    """What a poll saw, in one subtransaction: the submission this transaction made (if
    any), the new events, then the provider's state."""
    with plpy.subtransaction():
        if submitted is not None:
            job = catalog.get_job(plpy, job["id"], lock=True)
            job = _record_submission(plpy, job, submitted, handed_at)
            if job["status"] in FINISHED:     # cancelled meanwhile: stop the provider's job
                _cancel_at_provider(plpy, job)
        catalog.add_events(plpy, job["id"], events)
        return _apply(plpy, job, pj) if pj is not None else catalog.get_job(plpy, job["id"])


def _apply(plpy, job: dict, pj: ProviderJob) -> dict:
    """Move the job's row to the provider's status; at an end, add the version and settle."""
    if pj.status not in FINISHED:
        if pj.status != job["status"]:
            changes = {"status": pj.status}
            if pj.status == "running" and job["started_at"] is None:
                changes["started_at"] = "now"
            job = catalog.update_job(plpy, job["id"], **changes)
        return job
    # Lock and re-read: a concurrent refresh may have finished it already.
    job = catalog.get_job(plpy, job["id"], lock=True)
    if job["status"] in FINISHED:
        return job
    if pj.status == "succeeded":
        if not pj.fine_tuned_model:
            return _finish_failed(plpy, job, "failed", "the provider reported success but no "
                                  "fine-tuned model id", pj.trained_tokens)
        return _finish_succeeded(plpy, job, pj)
    return _finish_failed(plpy, job, pj.status, pj.error, pj.trained_tokens,
                          pj.finished_at_iso)


def _forget(plpy, job: dict) -> dict:
    """The engine no longer knows the job (restarted without its state, or deleted)."""
    with plpy.subtransaction():
        job = catalog.get_job(plpy, job["id"], lock=True)
        if job["status"] in FINISHED:
            return job
        return _finish_failed(plpy, job, "failed",
                              f"engine \"{job['engine']}\" no longer knows job "
                              f"{job['provider_job_id']} (restarted or deleted)")


# ---- cancelled on request

def cancel(plpy, job: dict) -> dict:
    """Cancel at the provider (when handed over), then record it cancelled and settle."""
    if job["status"] in FINISHED:
        raise JobStateError(f"job {job['id']} already {job['status']}",
                            hint="only pending, queued or running jobs can be cancelled")
    if job["provider_job_id"]:
        provider = provider_for(plpy, job["engine"])
        try:
            pj = provider.cancel(job["provider_job_id"])
        except UndefinedObject:
            return _forget(plpy, job)
        except EngineRequestFailed:
            # The provider refused (e.g. it has just finished): record what it says.
            pj = provider.retrieve(job["provider_job_id"])
            if pj.status in FINISHED:
                return _record(plpy, job, [], pj)
            raise
        if pj.status in FINISHED:
            return _record(plpy, job, [], pj)
    # Acknowledged, or never handed over (a llm_wait that is handing it over right now sees
    # the row cancelled and cancels at the provider itself): ours to call cancelled.
    with plpy.subtransaction():
        job = catalog.get_job(plpy, job["id"], lock=True)
        if job["status"] in FINISHED:
            return job
        return _finish_failed(plpy, job, "cancelled", None)


def _cancel_at_provider(plpy, job: dict) -> None:
    try:
        provider_for(plpy, job["engine"]).cancel(job["provider_job_id"])
    except LlmError as exc:
        plpy.warning(f"pg_llm: could not cancel job {job['provider_job_id']} at engine "
                     f"\"{job['engine']}\": {exc.message}")


# ---- the ends: succeeded, failed, cancelled (always settling the budget)

def _settle(plpy, job: dict, trained_tokens: int | None) -> tuple[int | None, Decimal | None]:
    """Release the booked estimate; book the actual trained tokens (and their cost)."""
    tokens, usd = budget_catalog.booked_estimate(plpy, job["id"])
    if tokens or usd:
        budget_catalog.book(plpy, job, "release", -tokens, -usd)
    if trained_tokens is None:
        return None, None
    engine = model_catalog.get_engine(plpy, job["engine"]) or {}
    cost = usd_for(trained_tokens, engine.get("price_training") or 0)
    budget_catalog.book(plpy, job, "actual", trained_tokens, cost)
    return trained_tokens, cost


def _finish_succeeded(plpy, job: dict, pj: ProviderJob) -> dict:
    # Providers that do not report trained tokens are charged at the estimate.
    trained = pj.trained_tokens if pj.trained_tokens is not None else job["estimated_tokens"]
    trained, cost = _settle(plpy, job, trained)
    metrics = catalog.last_metrics(plpy, job["id"])
    version = model_catalog.next_version(plpy, job["model"])
    model_catalog.add_version(
        plpy, job["model"], version, pj.fine_tuned_model, job_id=job["id"],
        metrics={"train_loss": metrics["train_loss"], "valid_loss": metrics["valid_loss"],
                 "steps": metrics["steps"], "trained_tokens": trained,
                 "cost_usd": float(cost) if cost is not None else None,
                 "n_conversations": job["n_conversations"],
                 "hyperparameters": pj.hyperparameters or job["hyperparameters"]},
        cost_usd=cost)
    if job["activate"]:  # add_version already put the new version in the table's options
        model_catalog.set_active_version(plpy, job["model"], version)
        catalog.record_activation(plpy, job["model"], version, f"job {job['id']} succeeded")
    # A refresh may come a while after the end (cron): the provider's clock says when.
    return catalog.update_job(plpy, job["id"], status="succeeded",
                              finished_at=pj.finished_at_iso, trained_tokens=trained,
                              cost_usd=cost, result_version=version)


def _finish_failed(plpy, job: dict, status: str, error: str | None,
                   trained_tokens: int | None = None, finished_at: str = "now") -> dict:
    """failed or cancelled: the previous active version keeps serving."""
    trained, cost = _settle(plpy, job, trained_tokens)
    if job["provider_job_id"] is None:
        catalog.drop_job_files(plpy, job["id"])
    return catalog.update_job(plpy, job["id"], status=status, finished_at=finished_at,
                              error=error, trained_tokens=trained, cost_usd=cost)
