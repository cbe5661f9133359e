"""One scan's distinct requests -> outcomes: the answer cache, the spending guards, the HTTP
calls (with per-row errors), then the audit trail. ModelTable.execute calls ``answer``.

With every feature off this is exactly one ``chat_many`` call: no catalog query.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pg_llm import answer_cache, audit, row_errors, scan_context, spending, structured_output
from pg_llm.engines import client
from pg_llm.engines.client import ChatRequest, ChatResult, backend_interrupt_checker, chat_many
from pg_llm.errors import LlmError


@dataclass
class Outcome:
    result: ChatResult | None = None
    error: LlmError | None = None
    cached: bool = False
    request_id: int | None = None
    values: dict | None = None  # typed output columns (pg_llm.structured_output)


def _plpy():
    from pg_llm import multicorn_scan

    if multicorn_scan.active():
        return None  # a Multicorn2 scan may not run SQL (pg_llm.multicorn_scan)
    try:
        import plpy  # only inside a backend; the cache and audit need the database
    except ImportError:
        return None
    return plpy


def _refuse_unrecorded(table, why: str) -> None:
    """No answer that the audit trail or the budget ledger should see but cannot: a
    Multicorn2 scan may not run SQL (pg_llm.multicorn_scan)."""
    from pg_llm import multicorn_scan

    if not multicorn_scan.active():
        return  # outside a backend (unit tests): nothing to record into
    what = ("model \"%s\" has audit on" % table.model if why == "audit"
            else "engine \"%s\" has prices" % (table.options.get("engine") or table.settings.name))
    raise LlmError(f"{what}, which a Multicorn2 scan cannot record", sqlstate="0A000",
                   detail="the audit trail and the spending ledger are written with SQL, which "
                          "Python cannot run inside a Multicorn2 scan",
                   hint="use an engine on the pg_llm bridge (llm_create_engine(..., bridge => "
                        "'pg_llm')) for this model; see docs/multicorn.md")


def _scan_limits():
    """The per-statement guards the C bridge put in the payload (absent when all are 0)."""
    from pg_llm import multicorn_scan

    if multicorn_scan.active():
        return multicorn_scan.statement_limits()  # no payload: read where the C bridge does
    request = scan_context.current_request
    return getattr(request, "limits", None) if request is not None else None


def _scan_role():
    request = scan_context.current_request
    return request.user if request is not None else None


def answer(table, requests: list[ChatRequest], versions: list[int],
           tolerate: list[bool]) -> list[Outcome]:
    """``tolerate[i]``: request i may fail without failing the statement (on_error = 'null'
    for every row that uses it)."""
    features, settings = table.features, table.settings
    price = spending.prices(table.options)
    priced = spending.is_priced(price)
    plpy = _plpy() if (features.cache != "off" or features.audit or priced) else None
    if (features.audit or priced) and plpy is None:
        _refuse_unrecorded(table, "audit" if features.audit else "priced")
    engine = table.options.get("engine") or settings.name
    outcomes: list[Outcome | None] = [None] * len(requests)
    # each version's engine: the table's own, or where llm_deploy_version put it
    routes = [table.settings_for(v) for v in versions] if getattr(table, "deployments", None) \
        else [settings] * len(requests)
    keys = [answer_cache.request_key(routes[i], r) for i, r in enumerate(requests)] \
        if (plpy is not None) else [None] * len(requests)

    cacheable = [plpy is not None and answer_cache.cacheable(features.cache, r) for r in requests]
    if any(cacheable):
        hits = answer_cache.lookup(plpy, [k for k, c in zip(keys, cacheable) if c])
        for i, key in enumerate(keys):
            if cacheable[i] and key in hits:
                outcomes[i] = Outcome(result=hits[key], cached=True)

    to_send = [i for i in range(len(requests)) if outcomes[i] is None]
    limits = _scan_limits()
    booking = priced and plpy is not None and bool(to_send)
    if limits or booking:
        estimate = spending.estimate([requests[i] for i in to_send], price)
        if limits:
            spending.check_guards(limits, table.model, estimate)
        if booking:
            spending.check_budgets(plpy, model=table.model, engine=engine, role=_scan_role(),
                                   est=estimate)
    retries_before = client.retries_sent()
    for route in dict.fromkeys(routes[i] for i in to_send):
        sending = [i for i in to_send if routes[i] == route]
        lenient = any(tolerate[i] for i in sending)
        results = chat_many(route, [requests[i] for i in sending], backend_interrupt_checker(),
                            errors_as_results=lenient)
        for i, result in zip(sending, results):
            if isinstance(result, LlmError):
                if not tolerate[i]:
                    raise result
                outcomes[i] = Outcome(error=result)
            else:
                outcomes[i] = Outcome(result=result)

    if getattr(table, "output_columns", None):
        _parse_structured(table.output_columns, outcomes, tolerate)
    if booking:
        sent = [outcomes[i].result for i in to_send if outcomes[i].result is not None]
        tokens = sum((r.prompt_tokens or 0) + (r.completion_tokens or 0) for r in sent)
        spending.book(plpy, model=table.model, engine=engine, role=_scan_role(), tokens=tokens,
                      usd=sum((spending.cost_usd(price, r.prompt_tokens, r.completion_tokens)
                               for r in sent), Decimal(0)))
    if any(cacheable):
        answer_cache.store(plpy, model=table.model, ttl_s=features.cache_ttl,
                           max_rows=features.cache_max_rows,
                           entries=[(keys[i], versions[i], requests[i].model, outcomes[i].result)
                                    for i in to_send
                                    if cacheable[i] and outcomes[i].error is None])
    if features.audit and plpy is not None:
        _audit(plpy, table, requests, versions, keys, outcomes, price)
    _record_stats(outcomes, to_send, client.retries_sent() - retries_before, price)
    return outcomes


def _parse_structured(columns, outcomes, tolerate) -> None:
    """Answers -> typed values; one that does not parse is its request's failure (the result
    stays: it was paid for; it is never cached)."""
    for i, outcome in enumerate(outcomes):
        if outcome.error is not None:
            continue
        try:
            outcome.values = structured_output.parse_answer(outcome.result.text, columns)
        except structured_output.StructuredOutputError as exc:
            if not tolerate[i]:
                raise
            outcome.error = exc


# What the last scan of this backend did, for EXPLAIN ANALYZE (pg_llm.scan_cost).
last_scan_stats: dict = {}


def _record_stats(outcomes, to_send, retries, price) -> None:
    sent = [outcomes[i].result for i in to_send if outcomes[i].result is not None]
    prompt_tokens = sum(r.prompt_tokens or 0 for r in sent)
    completion_tokens = sum(r.completion_tokens or 0 for r in sent)
    last_scan_stats.update(
        sent=len(to_send), cached=len(outcomes) - len(to_send),
        failed=sum(1 for o in outcomes if o.error is not None), retries=retries,
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
        usd=spending.cost_usd(price, prompt_tokens, completion_tokens))


def _audit(plpy, table, requests, versions, keys, outcomes, price) -> None:
    rows = []
    for i, outcome in enumerate(outcomes):
        result = outcome.result
        rows.append({
            "request_key": keys[i], "version": versions[i], "provider_model_id": requests[i].model,
            "prompt_hash": audit.prompt_hash(requests[i]),
            "prompt_tokens": result.prompt_tokens if result else None,
            "completion_tokens": result.completion_tokens if result else None,
            "cost_usd": (0 if outcome.cached or result is None else
                         spending.cost_usd(price, result.prompt_tokens, result.completion_tokens)),
            "latency_ms": round(result.latency_ms, 3) if result else None,
            "cached": outcome.cached,
            "error": None if outcome.error is None else row_errors.error_text(outcome.error),
        })
    ids = audit.record(plpy, role=_scan_role(), model=table.model,
                       engine=table.options.get("engine") or table.settings.name, rows=rows)
    for key, outcome in zip(keys, outcomes):
        outcome.request_id = ids.get(key)
