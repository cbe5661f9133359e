"""Validation of conversations before anything is sent to an engine.

Rules (each failure is errors.InvalidData, SQLSTATE 22000, naming the offending row):
- roles: an optional system message, then user/assistant alternating, ending with assistant;
- no NULL or blank content;
- at least ``min_conversations`` conversations (default 10);
- at most ``max_tokens_per_conversation`` tokens in a conversation (checked once counted).
"""

from __future__ import annotations

from pg_llm.errors import InvalidData, InvalidParameter
from pg_llm.finetune.shapes import Conversation

DEFAULT_MIN_CONVERSATIONS = 10
DEFAULT_MAX_TOKENS_PER_CONVERSATION = 4096
ROLES = ("system", "user", "assistant")
ROLE_HINT = ("each conversation is an optional system message, then user and assistant "
             "messages alternating, ending with an assistant message (what the model learns)")


def _positive_int(options: dict, name: str, default: int) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameter(f"options.{name} must be a positive integer, got {value!r}")
    return value


def min_conversations(options: dict) -> int:
    return _positive_int(options, "min_conversations", DEFAULT_MIN_CONVERSATIONS)


def max_tokens_per_conversation(options: dict) -> int:
    return _positive_int(options, "max_tokens_per_conversation",
                         DEFAULT_MAX_TOKENS_PER_CONVERSATION)


def role_problem(conv: Conversation) -> tuple[str, str] | None:
    """(source, problem) for the first message that breaks the role order, else None."""
    messages = conv.messages
    for msg in messages:
        if msg.role not in ROLES:
            return msg.source, f"unknown role {msg.role!r} (expected system, user or assistant)"
    start = 1 if messages and messages[0].role == "system" else 0
    if start == len(messages):
        return messages[-1].source, "conversation has no user and assistant messages"
    expected = "user"
    for msg in messages[start:]:
        if msg.role != expected:
            if msg.role == "system":
                return msg.source, "a system message is only allowed first in a conversation"
            return msg.source, f"expected a {expected} message here, got {msg.role}"
        expected = "assistant" if expected == "user" else "user"
    if messages[-1].role != "assistant":
        return messages[-1].source, "conversation ends with a user message, not an assistant one"
    return None


def _raise(problems: list[tuple[str, str]], what: str, hint: str) -> None:
    first_source, first_problem = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    detail = "; ".join(f"{src}: {p}" for src, p in problems[:5])
    raise InvalidData(f"{what} at {first_source}: {first_problem}{more}",
                      detail=detail, hint=hint)


def check_structure(conversations: list[Conversation], options: dict) -> None:
    """Everything that needs no token counts: roles, empty content, enough conversations."""
    minimum = min_conversations(options)
    roles = [p for c in conversations if (p := role_problem(c))]
    if roles:
        _raise(roles, "invalid message order", ROLE_HINT)
    empty = [(m.source, f"{m.role} message has {'NULL' if m.content is None else 'blank'} "
              "content") for c in conversations for m in c.messages
             if m.content is None or not m.content.strip()]
    if empty:
        _raise(empty, "empty message", "remove or fill the empty messages, e.g. "
               "WHERE content <> '' in the query")
    if len(conversations) < minimum:
        raise InvalidData(
            f"too few conversations: {len(conversations)}, at least {minimum} are needed",
            detail="conversations are grouped by chat_id, or start at each system row "
                   "when there is no chat_id column",
            hint="add more examples, or lower the minimum with options => "
                 "'{\"min_conversations\": N}'")


def check_token_limits(conversations: list[Conversation], options: dict) -> None:
    """Run after the conversations were counted (Conversation.tokens)."""
    limit = max_tokens_per_conversation(options)
    too_long = [(c.source, f"{c.tokens} tokens > {limit}")
                for c in conversations if c.tokens is not None and c.tokens > limit]
    if too_long:
        _raise(too_long, "conversation too long",
               "shorten or drop the long conversations, or raise the limit with options => "
               "'{\"max_tokens_per_conversation\": N}' if the model's context allows it")
