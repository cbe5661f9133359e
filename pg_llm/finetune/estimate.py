"""Token and cost estimate of a fine-tuning job, before anything is uploaded.

Tokens are counted with the engine model's tokenizer where the engine offers one (the local
engine's POST /v1/tokenize); otherwise with a documented estimate: 3 characters per token
(rounded up) plus 4 tokens of chat-format overhead per message and 3 per conversation. The
usual 4 characters per token undercounted schema-and-SQL text (0.79 of SmolLM2's tokenizer on
sql-create-context); 3 gave 1.02 on the bench's 300 conversations (bench/finetune_e2e.py
--dry-run-only). An estimate that errs high keeps budgets safe.
Trained tokens = tokens x epochs; dollars = trained tokens / 1e6 x the engine's
``price_training`` (USD per million training tokens; 0 for the local engine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from pg_llm.errors import InvalidParameter
from pg_llm.finetune.shapes import Conversation

DEFAULT_EPOCHS = 3
MAX_EPOCHS = 50
CHARS_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4
TOKENS_PER_CONVERSATION = 3


@dataclass
class Estimate:
    conversations: int
    tokens: int                 # one pass over the data
    epochs: int
    trained_tokens: int         # tokens x epochs
    usd: Decimal
    method: str                 # "tokenizer" or "estimate"

    def as_row(self) -> dict:
        return {"conversations": self.conversations, "tokens": self.tokens,
                "epochs": self.epochs, "estimated_trained_tokens": self.trained_tokens,
                "estimated_usd": self.usd, "token_count_method": self.method}


def epochs_from_options(options: dict) -> int:
    value = options.get("n_epochs", DEFAULT_EPOCHS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EPOCHS:
        raise InvalidParameter(f"options.n_epochs must be an integer from 1 to {MAX_EPOCHS}, "
                               f"got {value!r}",
                               hint="the number of passes over the data, e.g. 3")
    return value


def estimate_message_tokens(messages: list[dict]) -> int:
    """The documented fallback when no tokenizer is available."""
    return TOKENS_PER_CONVERSATION + sum(
        TOKENS_PER_MESSAGE + math.ceil(len(m.get("content") or "") / CHARS_PER_TOKEN)
        for m in messages)


def count_tokens(conversations: list[Conversation], count_many=None) -> str:
    """Fill Conversation.tokens; ``count_many(list of message lists) -> list of counts``
    uses the engine's tokenizer. Returns the method used."""
    if count_many is not None:
        counts = count_many([c.as_openai() for c in conversations])
        for conv, n in zip(conversations, counts):
            conv.tokens = int(n)
        return "tokenizer"
    for conv in conversations:
        conv.tokens = estimate_message_tokens(conv.as_openai())
    return "estimate"


def usd_for(trained_tokens: int, price_training) -> Decimal:
    """Dollars for this many trained tokens at ``price_training`` USD per million."""
    price = Decimal(str(price_training or 0))
    return (Decimal(trained_tokens) * price / Decimal(1_000_000)).quantize(Decimal("0.000001"))


def estimate(conversations: list[Conversation], epochs: int, price_training, method: str
             ) -> Estimate:
    tokens = sum(c.tokens or 0 for c in conversations)
    trained = tokens * epochs
    return Estimate(len(conversations), tokens, epochs, trained,
                    usd_for(trained, price_training), method)
