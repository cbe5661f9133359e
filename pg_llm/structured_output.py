"""Structured output: a model declares typed output columns, e.g.
``options => '{"output_columns": {"sql": "text", "confidence": "float8", "tables": "text[]"}}'``.

Its table gets those columns; every request carries a JSON schema (``response_format`` of
type ``json_schema``, strict), and each answer is parsed into the declared PostgreSQL types
here. An answer that is not a JSON object of that shape is a failed request: the per-row
error policy applies (``on_error``), and it is never cached. The local engine enforces the
schema while decoding (a llama.cpp grammar), so its answers always parse.
"""

from __future__ import annotations

import datetime
import json
import math

from pg_llm import templates
from pg_llm.errors import InvalidParameter, LlmError

# PostgreSQL type (as format_type names it) -> JSON schema of one value.
_SCALARS = {
    "text": {"type": "string"},
    "integer": {"type": "integer"},
    "bigint": {"type": "integer"},
    "double precision": {"type": "number"},
    "real": {"type": "number"},
    "numeric": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "timestamp with time zone": {"type": "string", "format": "date-time"},
    "jsonb": {},
}
_ALIASES = {"int": "integer", "int4": "integer", "int8": "bigint", "float8": "double precision",
            "float": "double precision", "float4": "real", "bool": "boolean",
            "timestamptz": "timestamp with time zone", "varchar": "text", "json": "jsonb"}
MAX_COLUMNS = 50
_HINT = ("""declare e.g. '{"output_columns": {"sql": "text", "confidence": "float8", """
         """"tables": "text[]"}}' (or [["sql", "text"], ...] to keep the column order); types: """ + ", ".join(sorted({*_SCALARS, *_ALIASES}))
         + " and their arrays (text[], ...)")


class StructuredOutputError(LlmError):
    """An answer that is not the declared JSON object."""
    sqlstate = "22032"  # invalid_json_text


def _canonical_type(raw) -> str:
    if not isinstance(raw, str):
        raise InvalidParameter(f"output column type {raw!r} is not a type name", hint=_HINT)
    text = " ".join(raw.strip().lower().split())
    array = text.endswith("[]")
    base = text[:-2].strip() if array else text
    base = _ALIASES.get(base, base)
    if base not in _SCALARS or (array and base == "jsonb"):
        raise InvalidParameter(f"output column type {raw!r} is not supported", hint=_HINT)
    return base + "[]" if array else base


def parse_output_columns(spec, *, taken=()) -> dict[str, str]:
    """Validate a declaration (JSON object or text); return {column: canonical type}."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            raise InvalidParameter("output_columns must be a JSON object", hint=_HINT) from None
    # jsonb reorders an object's keys; a list of [name, type] pairs keeps the user's order
    if isinstance(spec, list) and spec and all(isinstance(p, list) and len(p) == 2 for p in spec):
        if len({p[0] for p in spec if isinstance(p[0], str)}) != len(spec):
            raise InvalidParameter("output_columns names a column twice", hint=_HINT)
        spec = dict((p[0], p[1]) for p in spec)
    if not isinstance(spec, dict) or not spec:
        raise InvalidParameter("output_columns must be a non-empty JSON object", hint=_HINT)
    if len(spec) > MAX_COLUMNS:
        raise InvalidParameter(f"at most {MAX_COLUMNS} output columns", hint=_HINT)
    columns = {}
    for name, raw in spec.items():
        templates.check_identifier(name, "output column name")
        if name in templates.RESERVED_COLUMNS or name in taken:
            raise InvalidParameter(f'output column "{name}" collides with another column of the model',
                                   hint="rename it; reserved: " + ", ".join(sorted(templates.RESERVED_COLUMNS)))
        columns[name] = _canonical_type(raw)
    return columns


def columns_from_option(raw) -> dict[str, str] | None:
    """The table option (JSON text written by pg_llm.catalog.models), or None."""
    return parse_output_columns(raw) if raw not in (None, "") else None


def json_schema(columns: dict[str, str]) -> dict:
    properties = {}
    for name, pg_type in columns.items():
        if pg_type.endswith("[]"):
            properties[name] = {"type": "array", "items": dict(_SCALARS[pg_type[:-2]])}
        else:
            properties[name] = dict(_SCALARS[pg_type])
    return {"type": "object", "properties": properties, "required": list(columns),
            "additionalProperties": False}


def response_format(model: str, columns: dict[str, str]) -> str:
    """The request option, as JSON text (request options must stay hashable)."""
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in model)[:64] or "answer"
    return json.dumps({"type": "json_schema",
                       "json_schema": {"name": name, "strict": True,
                                       "schema": json_schema(columns)}},
                      sort_keys=True)


# -- answers -> PostgreSQL input text -----------------------------------------------------
def _scalar_text(value, pg_type: str, column: str) -> str | None:
    if value is None:
        return None
    wrong = StructuredOutputError(
        f'output column "{column}" should be {pg_type}, the answer has {json.dumps(value)[:80]}',
        hint="the model did not follow the JSON schema; on_error = 'null' keeps the other rows")
    if pg_type == "text":
        if not isinstance(value, str):
            raise wrong
        return value
    if pg_type in ("integer", "bigint"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        limit = 2 ** 31 if pg_type == "integer" else 2 ** 63
        if not -limit <= value < limit:
            raise wrong
        return str(value)
    if pg_type in ("double precision", "real", "numeric"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, float) and not math.isfinite(value)):
            raise wrong
        return repr(value) if isinstance(value, float) else str(value)
    if pg_type == "boolean":
        if not isinstance(value, bool):
            raise wrong
        return "t" if value else "f"
    if pg_type == "date":
        try:
            return datetime.date.fromisoformat(value).isoformat()
        except (TypeError, ValueError):
            raise wrong from None
    if pg_type == "timestamp with time zone":
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
        except (AttributeError, TypeError, ValueError):
            raise wrong from None
    return json.dumps(value)  # jsonb


def _array_element(text: str | None) -> str:
    if text is None:
        return "NULL"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_answer(text: str | None, columns: dict[str, str]) -> dict[str, str | None]:
    """The answer as {column: PostgreSQL input text or None}; StructuredOutputError if it is
    not a JSON object with every declared column (null is allowed: SQL NULL)."""
    try:
        # strict=False: a raw newline inside a string (common in generated SQL, and what
        # llama.cpp's JSON grammar allows) is still the string the model meant
        document = json.loads(text or "", strict=False)
    except ValueError:
        raise StructuredOutputError(
            "the answer is not valid JSON",
            detail=(text or "")[:200],
            hint="a hosted engine may ignore response_format; raise max_tokens if the answer "
                 "was cut off (finish_reason = 'length'); on_error = 'null' keeps the other rows") from None
    if not isinstance(document, dict):
        raise StructuredOutputError("the answer is not a JSON object", detail=(text or "")[:200],
                                    hint="on_error = 'null' keeps the other rows")
    missing = [c for c in columns if c not in document]
    if missing:
        raise StructuredOutputError(
            "the answer lacks " + ", ".join(f'"{c}"' for c in missing),
            detail=(text or "")[:200], hint="on_error = 'null' keeps the other rows")
    values = {}
    for column, pg_type in columns.items():
        value = document[column]
        if pg_type.endswith("[]") and value is not None:
            if not isinstance(value, list):
                raise StructuredOutputError(f'output column "{column}" should be an array',
                                            detail=(text or "")[:200],
                                            hint="on_error = 'null' keeps the other rows")
            values[column] = "{" + ",".join(_array_element(_scalar_text(v, pg_type[:-2], column))
                                            for v in value) + "}"
        else:
            values[column] = _scalar_text(value, pg_type, column)
    return values
