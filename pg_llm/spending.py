"""What a scan costs, and the per-statement spending guards.

Prices are the engine's server options ``price_input`` / ``price_output`` (USD per million
tokens; the local engine's are 0). Before a scan sends anything, its cost is estimated from
the rendered prompts (about 4 characters per token) and, for the answers, ``max_tokens`` (or
ASSUMED_COMPLETION_TOKENS when the request has none). The settings
``pg_llm.max_prompts_per_statement`` and ``pg_llm.max_cost_per_statement`` (0 = no limit;
USERSET, so per role, per database or SET LOCAL) refuse a scan whose prompts, added to what
earlier scans of the same statement sent, would pass them: SQLSTATE 53400, nothing sent.
Answers served from the cache are not counted: they cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pg_llm.engines.client import ChatRequest
from pg_llm.errors import BudgetExceeded

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
