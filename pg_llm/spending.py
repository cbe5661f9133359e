"""What a scan costs, and the per-statement spending guards.

Prices are the engine's server options ``price_input`` / ``price_output`` (USD per million
tokens; the local engine's are 0). Before a scan sends anything, its cost is estimated from
the rendered prompts (about 4 characters per token) and, for the answers, ``max_tokens`` (or
ASSUMED_COMPLETION_TOKENS when the request has none). The settings
``pg_llm.max_prompts_per_statement`` and ``pg_llm.max_cost_per_statement`` (0 = no limit;
USERSET, so per role, per database or SET LOCAL) refuse a scan whose prompts, added to what
earlier scans of the same statement sent, would pass them: SQLSTATE 53400, nothing sent.
Answers served from the cache are not counted: they cost nothing.

On a priced engine (price_input or price_output > 0) a scan also checks the budgets of its
model, engine and role (llm.budget_status; tokens = input + output) before sending, and books
what it spent as one 'inference' row of llm.ledger afterwards. That costs one query and one
INSERT per scan, which a billed HTTP call dwarfs; free engines skip both.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pg_llm.catalog import budgets as budget_catalog
from pg_llm.engines.client import ChatRequest
from pg_llm.errors import BudgetExceeded, LlmError
from pg_llm.finetune.budget import Budget, overrun

CHARS_PER_TOKEN = 4
ASSUMED_COMPLETION_TOKENS = 256
MILLION = Decimal(1_000_000)


def _price(options: dict, name: str) -> Decimal:
    try:
        return Decimal(str(options.get(name) or 0))
    except ArithmeticError:
        return Decimal(0)


def prices(options: dict) -> tuple[Decimal, Decimal]:
    return _price(options, "price_input"), _price(options, "price_output")


def cost_usd(price: tuple[Decimal, Decimal], prompt_tokens, completion_tokens) -> Decimal:
    return ((price[0] * (prompt_tokens or 0) + price[1] * (completion_tokens or 0)) / MILLION)


@dataclass
class Estimate:
    prompts: int
    input_tokens: int
    output_tokens: int
    usd: Decimal


def estimate(requests: list[ChatRequest], price: tuple[Decimal, Decimal]) -> Estimate:
    input_tokens = output_tokens = 0
    for request in requests:
        chars = sum(len(content) for _, content in request.messages)
        input_tokens += max(1, -(-chars // CHARS_PER_TOKEN))
        output_tokens += dict(request.options).get("max_tokens") or ASSUMED_COMPLETION_TOKENS
    return Estimate(len(requests), input_tokens, output_tokens,
                    cost_usd(price, input_tokens, output_tokens))


# Spent so far by the statement that is running: {"statement": id, "prompts": n, "usd": x}.
_statement = {"statement": None, "prompts": 0, "usd": Decimal(0)}


def check_guards(limits: dict | None, model: str, est: Estimate) -> None:
    """Raise 53400 if this scan would pass a per-statement limit; else count it as spent."""
    if not limits or est.prompts == 0:
        return
    statement = limits.get("statement")
    if _statement["statement"] != statement:
        _statement.update(statement=statement, prompts=0, usd=Decimal(0))
    max_prompts = int(limits.get("max_prompts") or 0)
    max_cost = Decimal(str(limits.get("max_cost") or 0))
    prompts = _statement["prompts"] + est.prompts
    usd = _statement["usd"] + est.usd
    detail = (f"this scan of model \"{model}\" would send {est.prompts} prompts, about "
              f"{est.input_tokens} input tokens and at most {est.output_tokens} output tokens, "
              f"estimated ${est.usd:.6f}; the statement would then have sent {prompts} prompts "
              f"for ${usd:.6f}")
    if max_prompts and prompts > max_prompts:
        raise BudgetExceeded(
            f"query would send {prompts} prompts, more than pg_llm.max_prompts_per_statement "
            f"= {max_prompts}",
            detail=detail,
            hint="narrow the WHERE clause, or raise the limit for this transaction: "
                 f"SET LOCAL pg_llm.max_prompts_per_statement = {prompts}")
    if max_cost and usd > max_cost:
        raise BudgetExceeded(
            f"query would cost about ${usd:.6f}, more than pg_llm.max_cost_per_statement "
            f"= ${max_cost}",
            detail=detail,
            hint="narrow the WHERE clause, set a smaller max_tokens, or raise the limit: "
                 f"SET LOCAL pg_llm.max_cost_per_statement = {usd.quantize(Decimal('0.01')) + Decimal('0.01')}")
    _statement.update(prompts=prompts, usd=usd)


# ---- budgets and the ledger (priced engines only) -------------------------------------

def is_priced(price: tuple[Decimal, Decimal]) -> bool:
    return price[0] > 0 or price[1] > 0


def check_budgets(plpy, *, model: str, engine: str, role: str | None, est: Estimate) -> None:
    """Raise 53400 for the first budget (model, engine, then role) this scan would break."""
    read_only, rows = budget_catalog.for_scan(plpy, model, engine, role)
    if read_only:
        raise LlmError(f'model "{model}" is on a priced engine and cannot book its spend in a '
                       "read-only transaction", sqlstate="25006",
                       hint="query it in a read-write transaction (spend goes to llm.ledger)")
    tokens = est.input_tokens + est.output_tokens
    for row in rows:
        b = Budget.from_status(row)
        detail = overrun(b, tokens, est.usd, what="tokens", usd_format=".6f")
        if detail:
            raise BudgetExceeded(
                f'query would exceed the budget of {b.scope} "{b.target}"',
                detail=f"{est.prompts} prompts to model \"{model}\": {detail}",
                hint="narrow the query or set a smaller max_tokens, or raise the budget with "
                     f"SELECT llm_set_budget('{b.scope}:{b.target}', max_usd => ..., "
                     "max_tokens => ...)")


def book(plpy, *, model: str, engine: str, role: str | None, tokens: int, usd: Decimal) -> None:
    budget_catalog.book_inference(plpy, model, engine, role, tokens, usd)
