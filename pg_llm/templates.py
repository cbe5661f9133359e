"""{{column}} prompt templates: parse, validate, render.

A template's variables become the text input columns of the model's foreign table, so a
variable name must be a plain lower-case SQL identifier and must not collide with the
columns every model table already has (options such as ``max_tokens``, usage such as
``model_id``, and the predict column).
"""

from __future__ import annotations

import re

from pg_llm.errors import InvalidParameter

# Columns every model table has besides its template variables and its predict column.
OPTION_COLUMNS = {
    "max_tokens": "integer",
    "temperature": "double precision",
    "top_p": "double precision",
    "seed": "integer",
    "stop": "text",
    "version": "integer",
    "on_error": "text",  # 'null': a failed request gives a row with error (pg_llm.row_errors)
}
USAGE_COLUMNS = {
    "model_id": "text",
    "prompt_tokens": "integer",
    "completion_tokens": "integer",
    "latency_ms": "double precision",
    "finish_reason": "text",
    "error": "text",          # why the answer is NULL (on_error = 'null')
    "cached": "boolean",      # answered from llm.cache (pg_llm.answer_cache)
    "request_id": "bigint",   # its llm.requests row (model option audit)
}
RESERVED_COLUMNS = frozenset(OPTION_COLUMNS) | frozenset(USAGE_COLUMNS)

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)


def check_identifier(name, what: str) -> str:
    """A name used as an SQL identifier (table, server, column) without quoting surprises."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise InvalidParameter(
            f"invalid {what} {name!r}",
            hint="use 1 to 63 lower-case letters, digits and underscores, starting with a letter "
                 "or underscore")
    return name


def parse_template(template, *, what: str = "prompt_template", predict: str | None = None) -> list[str]:
    """Return the template's variable names in order of first use; raise 22023 when invalid."""
    if not isinstance(template, str) or not template.strip():
        raise InvalidParameter(f"{what} must not be empty",
                               hint="write the prompt with {{column}} placeholders, e.g. '{{content}}'")
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1).strip()
        if not name:
            raise InvalidParameter(f"{what} has an empty placeholder {{{{}}}} at offset {match.start()}",
                                   hint="name the column inside the braces, e.g. {{content}}")
        if "{{" in name or "}" in name or "{" in name:
            raise InvalidParameter(f"{what} has unbalanced braces near offset {match.start()}",
                                   hint="each placeholder is written {{name}}")
        if not IDENTIFIER.match(name):
            raise InvalidParameter(
                f"{what} placeholder {{{{{name}}}}} is not a valid column name",
                hint="use lower-case letters, digits and underscores, e.g. {{content}}")
        if name in RESERVED_COLUMNS or name == predict:
            raise InvalidParameter(
                f"{what} placeholder {{{{{name}}}}} collides with the reserved column \"{name}\"",
                hint="rename the placeholder; reserved columns are "
                     + ", ".join(sorted(RESERVED_COLUMNS | ({predict} if predict else set()))))
        if name not in names:
            names.append(name)
    leftover = _PLACEHOLDER.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        offset = min(i for i in (leftover.find("{{"), leftover.find("}}")) if i >= 0)
        raise InvalidParameter(f"{what} has unbalanced braces {{{{ }}}} near offset {offset}",
                               hint="each placeholder is written {{name}}; remove stray braces")
    return names


def render(template: str, values: dict) -> str:
    """Replace every {{name}} by its value (names were validated by parse_template)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1).strip()]), template)
