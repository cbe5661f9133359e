"""The life of a fine-tuning job after it started: apply what the provider reports.

The provider is the source of truth. llm_wait, llm_refresh (and cron through it) and
llm_cancel_job all call ``apply_provider_state``; it is idempotent (events deduplicated by the
provider's id, a finished job is never finished twice: the row is locked and re-read first),
so whichever caller sees the end first records it, in its own transaction.
"""

from __future__ import annotations

import re
from decimal import Decimal

from pg_llm.catalog import jobs as catalog
from pg_llm.catalog import models as model_catalog
from pg_llm.engines import settings_from_options
from pg_llm.engines.client import backend_interrupt_checker
from pg_llm.finetune.estimate import usd_for
from pg_llm.finetune.provider import FINISHED, Provider, ProviderEvent, ProviderJob

SUFFIX_MAX = 40


def provider_for(plpy, engine: str) -> Provider:
    options = catalog.engine_options(plpy, engine)
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


def record_events(plpy, job: dict, events: list[ProviderEvent]) -> int:
    return catalog.add_events(plpy, job["id"], events)


def apply_provider_state(plpy, job: dict, pj: ProviderJob) -> dict:
    """Move the job's row to the provider's status; on an end, add the version / settle the
    ledger. Returns the current row."""
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
            return finish_failed(plpy, job, "failed", "the provider reported success but no "
                                 "fine-tuned model id", pj.trained_tokens)
        return finish_succeeded(plpy, job, pj)
    return finish_failed(plpy, job, pj.status, pj.error, pj.trained_tokens, pj.finished_at_iso)


def _price(plpy, engine: str):
    engine_row = model_catalog.get_engine(plpy, engine) or {}
    return engine_row.get("price_training") or 0


def _settle(plpy, job: dict, trained_tokens: int | None) -> tuple[int | None, Decimal | None]:
    """Release the booked estimate; book the actual trained tokens (and their cost)."""
    tokens, usd = catalog.booked_estimate(plpy, job["id"])
    if tokens or usd:
        catalog.book(plpy, job, "release", -tokens, -usd)
    if trained_tokens is None:
        return None, None
    cost = usd_for(trained_tokens, _price(plpy, job["engine"]))
    catalog.book(plpy, job, "actual", trained_tokens, cost)
    return trained_tokens, cost


def finish_succeeded(plpy, job: dict, pj: ProviderJob) -> dict:
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
    if job["activate"]:
        model_catalog.set_active_version(plpy, job["model"], version)
        catalog.record_activation(plpy, job["model"], version, f"job {job['id']} succeeded")
    else:
        model_catalog.sync_table_options(plpy, job["model"])
    # A refresh may come a while after the end (cron): the provider's clock says when.
    return catalog.update_job(plpy, job["id"], status="succeeded",
                              finished_at=pj.finished_at_iso, trained_tokens=trained,
                              cost_usd=cost, result_version=version)


def finish_failed(plpy, job: dict, status: str, error: str | None,
                  trained_tokens: int | None = None, finished_at: str = "now") -> dict:
    """failed or cancelled: the previous active version keeps serving."""
    trained, cost = _settle(plpy, job, trained_tokens)
    return catalog.update_job(plpy, job["id"], status=status, finished_at=finished_at,
                              error=error, trained_tokens=trained, cost_usd=cost)
