"""What a model scan will cost (EXPLAIN) and what it spent (EXPLAIN ANALYZE).

``llm._fdw_explain(payload, mode)`` calls ``explain``; the C bridge (ext/cost.c) calls it
only for EXPLAIN. 'estimate': the scan's payload with its plan-time constant quals ->
[prompts, input tokens, output tokens, USD], from the same requests the scan would send
(de-duplicated; before the answer cache). 'actual': what the last scan of this backend did
-> [sent, cached, failed, retries, prompt tokens, completion tokens, USD].
"""

from __future__ import annotations

from pg_llm import answering, bridge, spending
from pg_llm.errors import LlmError


def explain(payload: str, mode: str) -> list[float] | None:
    if mode == "actual":
        s = dict(answering.last_scan_stats)
        answering.last_scan_stats.clear()  # a later call that sent nothing must not count it
        if not s:
            return None
        return [s["sent"], s["cached"], s["failed"], s["retries"], s["prompt_tokens"],
                s["completion_tokens"], float(s["usd"])]
    request = bridge.ScanRequest.parse(payload)
    if request.options.get("wrapper", bridge.DEFAULT_WRAPPER) != bridge.DEFAULT_WRAPPER:
        return None  # another wrapper class: not even built, EXPLAIN runs none of its code
    try:
        table = bridge.wrapper_for(request)
        requests = table.plan_requests(request.quals)[0]
    except LlmError:
        return None  # the scan itself will say what is wrong; EXPLAIN still shows the plan
    est = spending.estimate(requests, spending.prices(table.options))
    return [est.prompts, est.input_tokens, est.output_tokens, float(est.usd)]
