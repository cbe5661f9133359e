"""Validation of fine-tuning files: JSONL, one {"messages": [...]} conversation per line.

Checked on upload so a bad file fails fast with line numbers, not minutes into a job.
"""

from __future__ import annotations

import json

ROLES = ("system", "user", "assistant")
MAX_REPORTED_ERRORS = 10


class DatasetError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        shown = errors[:MAX_REPORTED_ERRORS]
        more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
        super().__init__("Invalid fine-tuning file: " + "; ".join(shown) + more)


def _conversation_error(obj) -> str | None:
    if not isinstance(obj, dict):
        return "expected a JSON object"
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        return "missing 'messages' (a non-empty list)"
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            return f"messages[{i}] is not an object"
        if msg.get("role") not in ROLES:
            return f"messages[{i}].role must be one of {', '.join(ROLES)}, got {msg.get('role')!r}"
        if not isinstance(msg.get("content"), str):
            return f"messages[{i}].content must be a string"
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        return "no assistant message with content to learn from"
    return None


def parse_conversations(content: bytes) -> list[list[dict]]:
    """Returns each line's messages; raises DatasetError listing every bad line."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError([f"file is not UTF-8 ({exc.reason} at byte {exc.start})"]) from None
    conversations, errors = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {lineno}: not valid JSON ({exc.msg})")
            continue
        problem = _conversation_error(obj)
        if problem:
            errors.append(f"line {lineno}: {problem}")
        else:
            conversations.append([{"role": m["role"], "content": m["content"]}
                                  for m in obj["messages"]])
    if not conversations and not errors:
        errors.append("file has no conversations")
    if errors:
        raise DatasetError(errors)
    return conversations
