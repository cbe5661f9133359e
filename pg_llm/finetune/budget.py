"""Hard budgets per engine or model: a job that would exceed what is left fails before upload.

A budget caps dollars, trained tokens, or both (tokens let a budget bite on the free local
engine). Spend is the sum of llm.ledger for the budget's scope: a job books its estimate when
it starts; on success the estimate is released and the actual trained tokens are booked; a
failed or cancelled job releases its estimate (and books what the provider says it trained).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pg_llm.errors import BudgetExceeded, InvalidParameter


@dataclass
class Budget:
    scope: str                  # "engine" | "model"
    target: str
    max_usd: Decimal | None
    max_tokens: int | None
    spent_usd: Decimal = Decimal(0)
    spent_tokens: int = 0

    @property
    def remaining_usd(self) -> Decimal | None:
        return None if self.max_usd is None else Decimal(self.max_usd) - self.spent_usd

    @property
    def remaining_tokens(self) -> int | None:
        return None if self.max_tokens is None else self.max_tokens - self.spent_tokens


def check_limits(max_usd, max_tokens) -> None:
    # NaN and Infinity are valid numerics but no budget (and NaN has no order).
    if max_usd is not None and not Decimal(str(max_usd)).is_finite():
        raise InvalidParameter(f"max_usd must be a finite number, got {max_usd}",
                               hint="give an amount in USD, or NULL for no dollar limit")
    if max_usd is not None and Decimal(str(max_usd)) < 0:
        raise InvalidParameter("max_usd must not be negative", hint="give 0 to block all jobs")
    if max_tokens is not None and int(max_tokens) < 0:
        raise InvalidParameter("max_tokens must not be negative", hint="give 0 to block all jobs")


def check_budgets(budgets: list[Budget], trained_tokens: int, usd: Decimal) -> None:
    """Raise BudgetExceeded (53400) for the first budget the estimate would break."""
    for b in budgets:
        over_tokens = b.remaining_tokens is not None and trained_tokens > b.remaining_tokens
        over_usd = b.remaining_usd is not None and usd > b.remaining_usd
        if not (over_tokens or over_usd):
            continue
        parts = []
        if over_tokens:
            parts.append(f"estimated {trained_tokens} trained tokens > {b.remaining_tokens} "
                         f"remaining of {b.max_tokens} ({b.spent_tokens} spent)")
        if over_usd:
            parts.append(f"estimated ${usd} > ${b.remaining_usd} remaining of ${b.max_usd} "
                         f"(${b.spent_usd} spent)")
        raise BudgetExceeded(
            f'fine-tuning job would exceed the budget of {b.scope} "{b.target}"',
            detail="; ".join(parts),
            hint=f"reduce the data or n_epochs (try dry_run => true), or raise the budget with "
                 f"SELECT llm_set_budget('{b.target}', max_usd => ..., max_tokens => ...)")
