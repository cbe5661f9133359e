"""Training data shapes: query rows -> conversations (lists of {role, content} messages).

Three shapes, chosen from the options first and the column names second:
- long:  one row per message (role, content; optional chat_id and message_id to group and
         order). Without chat_id a new conversation starts at each system row, in query order.
- wide:  one row per conversation (e.g. question, context, answer) rendered through templates:
         user = "{{context}}\\n-- {{question}}", assistant = "{{answer}}", optional system.
- explicit mapping in options: {"columns": {"role": "speaker", "content": "text", ...}} for the
         long shape, {"user_template": ..., "assistant_column"|"assistant_template": ...,
         "system_prompt"|"system_template"|"system_column": ...} for the wide shape.
Each message remembers the row it came from, so validation errors can name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pg_llm.errors import InvalidData, InvalidParameter

LONG_KEYS = ("role", "content", "chat_id", "message_id")
WIDE_OPTION_KEYS = ("user_template", "assistant_template", "assistant_column",
                    "system_prompt", "system_template", "system_column")
DEFAULT_USER_TEMPLATE_WITH_CONTEXT = "{{context}}\n-- {{question}}"
DEFAULT_USER_TEMPLATE = "{{question}}"
DEFAULT_ASSISTANT_TEMPLATE = "{{answer}}"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

SHAPES_HINT = ("return either one row per message with columns role and content (optionally "
               "chat_id and message_id), or one row per example with question and answer "
               "(optionally context), or map your columns with options => "
               "'{\"columns\": {\"role\": \"...\", \"content\": \"...\"}}' or "
               "'{\"user_template\": \"...\", \"assistant_column\": \"...\"}'")


@dataclass
class Message:
    role: str | None
    content: str | None
    source: str          # "row 12" or "chat_id=3, message_id=2": where an error points


@dataclass
class Conversation:
    messages: list[Message]
    source: str          # the first row of the conversation
    tokens: int | None = None

    def as_openai(self) -> list[dict]:
        return [{"role": m.role, "content": m.content} for m in self.messages]


@dataclass
class Shape:
    kind: str                                  # "long" | "wide"
    columns: dict = field(default_factory=dict)    # long: logical name -> column
    user_template: str | None = None
    assistant_template: str | None = None
    system_template: str | None = None
    system_prompt: str | None = None      # a literal system message (braces are not placeholders)

    def describe(self) -> str:
        if self.kind == "long":
            return "long (" + ", ".join(f"{k}={v}" for k, v in self.columns.items()) + ")"
        return f"wide (user={self.user_template!r}, assistant={self.assistant_template!r})"


def _text(value) -> str | None:
    return None if value is None else str(value)


def _template_columns(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def _render(template: str, row: dict) -> str | None:
    """Render {{column}}; None when every referenced value is NULL (an empty message)."""
    names = _template_columns(template)
    if names and all(row.get(n) is None for n in names):
        return None
    return _PLACEHOLDER.sub(lambda m: "" if row.get(m.group(1)) is None
                            else str(row[m.group(1)]), template)


def _check_columns_exist(wanted: dict[str, str], available: list[str], where: str) -> None:
    for logical, column in wanted.items():
        if column not in available:
            raise InvalidParameter(
                f'{where}: column "{column}" (for {logical}) is not in the query result',
                detail="the query returns: " + ", ".join(available),
                hint="fix the mapping in options or alias the column in the query")


def detect_shape(columns: list[str], options: dict) -> Shape:
    """Pick the shape from options, then from the query's column names."""
    mapping = options.get("columns")
    if mapping is not None:
        if not isinstance(mapping, dict) or not {"role", "content"} <= set(mapping):
            raise InvalidParameter(
                "options.columns must map at least role and content to column names",
                hint='e.g. options => \'{"columns": {"role": "speaker", "content": "text"}}\'')
        unknown = set(mapping) - set(LONG_KEYS)
        if unknown:
            raise InvalidParameter(f"options.columns has unknown keys: {', '.join(sorted(unknown))}",
                                   hint="the keys are " + ", ".join(LONG_KEYS))
        _check_columns_exist(mapping, columns, "options.columns")
        return Shape("long", columns=dict(mapping))

    if any(k in options for k in WIDE_OPTION_KEYS):
        return _wide_shape(columns, options)

    if "role" in columns and "content" in columns:
        return Shape("long", columns={k: k for k in LONG_KEYS if k in columns})
    if "question" in columns and "answer" in columns:
        return _wide_shape(columns, options)
    raise InvalidData("cannot tell the shape of the training data",
                      detail="the query returns: " + ", ".join(columns), hint=SHAPES_HINT)


def _wide_shape(columns: list[str], options: dict) -> Shape:
    user = options.get("user_template") or (
        DEFAULT_USER_TEMPLATE_WITH_CONTEXT if "context" in columns else DEFAULT_USER_TEMPLATE)
    if options.get("assistant_column"):
        assistant = "{{" + str(options["assistant_column"]) + "}}"
    else:
        assistant = options.get("assistant_template") or DEFAULT_ASSISTANT_TEMPLATE
    system = None
    if options.get("system_column"):
        system = "{{" + str(options["system_column"]) + "}}"
    elif options.get("system_template"):
        system = options["system_template"]
    for name, template in (("user_template", user), ("assistant", assistant),
                           ("system", system)):
        if template is None:
            continue
        if not isinstance(template, str):
            raise InvalidParameter(f"options.{name} must be a string")
        names = _template_columns(template)
        if name != "system" and not names:
            raise InvalidParameter(f"options.{name} uses no {{{{column}}}} of the query",
                                   hint="e.g. \"{{context}}\\n-- {{question}}\"")
        _check_columns_exist({f"{{{{{n}}}}} in {name}": n for n in names}, columns, "template")
    system_prompt = options.get("system_prompt")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise InvalidParameter("options.system_prompt must be a string")
    return Shape("wide", user_template=user, assistant_template=assistant,
                 system_template=system, system_prompt=system_prompt)


def _long_source(row: dict, shape: Shape, index: int) -> str:
    cols = shape.columns
    if "chat_id" in cols:
        label = f"chat_id={row.get(cols['chat_id'])}"
        if "message_id" in cols:
            label += f", message_id={row.get(cols['message_id'])}"
        return f"{label} (row {index})"
    return f"row {index}"


def _sort_key(value):
    # Numbers sort numerically, everything else as text; NULL last.
    if value is None:
        return (2, 0, "")
    if isinstance(value, (int, float)):
        return (0, value, "")
    return (1, 0, str(value))


def to_conversations(rows: list[dict], shape: Shape) -> list[Conversation]:
    if shape.kind == "wide":
        return _wide_conversations(rows, shape)
    return _long_conversations(rows, shape)


def _wide_conversations(rows, shape):
    conversations = []
    for index, row in enumerate(rows, start=1):
        source = f"row {index}"
        messages = []
        if shape.system_template is not None:
            messages.append(Message("system", _render(shape.system_template, row), source))
        elif shape.system_prompt is not None:
            messages.append(Message("system", shape.system_prompt, source))
        messages.append(Message("user", _render(shape.user_template, row), source))
        messages.append(Message("assistant", _render(shape.assistant_template, row), source))
        conversations.append(Conversation(messages, source))
    return conversations


def _long_conversations(rows, shape):
    cols = shape.columns
    messages = []
    for index, row in enumerate(rows, start=1):
        role = _text(row.get(cols["role"]))
        messages.append((row, Message(role.strip().lower() if role else role,
                                      _text(row.get(cols["content"])),
                                      _long_source(row, shape, index))))
    if "chat_id" in cols:
        groups: dict = {}
        for row, msg in messages:
            groups.setdefault(row.get(cols["chat_id"]), []).append((row, msg))
        conversations = []
        for group in groups.values():
            if "message_id" in cols:
                group = sorted(group, key=lambda rm: _sort_key(rm[0].get(cols["message_id"])))
            msgs = [m for _, m in group]
            conversations.append(Conversation(msgs, msgs[0].source))
        return conversations
    # No chat_id: the query's order; each system row opens a new conversation.
    conversations: list[Conversation] = []
    for _, msg in messages:
        if msg.role == "system" or not conversations:
            conversations.append(Conversation([msg], msg.source))
        else:
            conversations[-1].messages.append(msg)
    return conversations
