"""Hard budgets per engine or model: a job that would exceed what is left fails before upload.

A budget caps dollars, trained tokens, or both (tokens let a budget bite on the free local
engine). Spend is the sum of llm.ledger for the budget's scope: a job books its estimate when
it starts; on success the estimate is released and the actual trained tokens are booked; a
failed or cancelled job releases its estimate (and books what the provider says it trained).
Inference on priced engines checks the same budgets (pg_llm.spending, through ``overrun``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pg_llm.errors import BudgetExceeded, InvalidParameter


@dataclass
class Budget:
    scope: str                  # "engine" | "model" | "role" (what a role's queries spend)
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

    @classmethod
    def from_status(cls, row) -> Budget:
        """A row of the view llm.budget_status."""
        return cls(row["scope"], row["target"],
                   None if row["max_usd"] is None else Decimal(str(row["max_usd"])),
                   None if row["max_tokens"] is None else int(row["max_tokens"]),
                   Decimal(str(row["spent_usd"])), int(row["spent_tokens"]))


def check_limits(max_usd, max_tokens) -> None:
    # NaN and Infinity are valid numerics but no budget (and NaN has no order).
    if max_usd is not None and not Decimal(str(max_usd)).is_finite():
        raise InvalidParameter(f"max_usd must be a finite number, got {max_usd}",
                               hint="give an amount in USD, or NULL for no dollar limit")
    if max_usd is not None and Decimal(str(max_usd)) < 0:
        raise InvalidParameter("max_usd must not be negative", hint="give 0 to block all jobs")
    if max_tokens is not None and int(max_tokens) < 0:
        raise InvalidParameter("max_tokens must not be negative", hint="give 0 to block all jobs")


def overrun(b: Budget, tokens: int, usd: Decimal, *, what: str = "trained tokens",
            usd_format: str = "") -> str | None:
    """What an estimate of `tokens` and `usd` would exceed of b's remaining budget, or None."""
    parts = []
    if b.remaining_tokens is not None and tokens > b.remaining_tokens:
        parts.append(f"estimated {tokens} {what} > {b.remaining_tokens} remaining of "
                     f"{b.max_tokens} ({b.spent_tokens} spent)")
    if b.remaining_usd is not None and usd > b.remaining_usd:
        parts.append(f"estimated ${usd:{usd_format}} > ${b.remaining_usd} remaining of "
                     f"${b.max_usd} (${b.spent_usd} spent)")
    return "; ".join(parts) or None


def check_budgets(budgets: list[Budget], trained_tokens: int, usd: Decimal) -> None:
    """Raise BudgetExceeded (53400) for the first budget the estimate would break."""
    for b in budgets:
        detail = overrun(b, trained_tokens, usd)
        if detail:
            raise BudgetExceeded(
                f'fine-tuning job would exceed the budget of {b.scope} "{b.target}"',
                detail=detail,
                hint=f"reduce the data or n_epochs (try dry_run => true), or raise the budget "
                     f"with SELECT llm_set_budget('{b.target}', max_usd => ..., "
                     f"max_tokens => ...)")
