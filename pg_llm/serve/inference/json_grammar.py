"""response_format -> a llama.cpp grammar (GBNF), so the local engine's answer always parses.

``json_schema`` uses llama-cpp-python's JSON-schema converter (the one llama.cpp's server
uses); ``json_object`` allows any JSON object. The grammar sampler runs first in the sampler
chain: tokens that would break the grammar get no probability, so greedy and sampled
decoding alike can only produce matching text (unless max_tokens cuts it off).
"""

from __future__ import annotations

import json

# Any JSON object (llama.cpp's grammars/json.gbnf).
JSON_OBJECT_GBNF = r'''
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
'''


# Arrays without maxItems get this bound here: a small model that repeats itself inside an
# array (SmolLM2 wrote "id", "id", ... until max_tokens in a probe) must still close it.
# Only the local grammar gets it: hosted strict schemas may refuse maxItems.
LOCAL_MAX_ITEMS = 16


class InvalidResponseFormat(ValueError):
    pass


def _bounded(schema):
    """A copy of the schema whose arrays all have maxItems."""
    if isinstance(schema, list):
        return [_bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _bounded(v) for k, v in schema.items()}
    if out.get("type") == "array" and "maxItems" not in out:
        out["maxItems"] = LOCAL_MAX_ITEMS
    return out


# Upper bounds, in characters, of what llama-cpp-python's converter lets a value be, its
# trailing optional space included (integral part: at most 16 digits).
_SCALAR_CHARS = {"boolean": 6, "null": 5, "integer": 18, "number": 53}
_MIN_ITEM_CHARS = 16  # an array of strings keeps fewer items rather than shorter ones
# (this counts the quotes and the space: 13 characters of text)
_CLOSING_TOKENS = 2   # the end-of-generation token and a spare


def _free_string(schema) -> bool:
    """A string whose length only maxLength can bound (no enum, const, pattern or format)."""
    return (isinstance(schema, dict) and schema.get("type") == "string"
            and not {"enum", "const", "pattern", "format"} & schema.keys())


def _flexible(schema) -> bool:
    """Whether the schema holds a free string, which _fit sizes to the budget."""
    if _free_string(schema):
        return True
    if not isinstance(schema, dict):
        return False
    if schema.get("type") == "object":
        return any(_flexible(p) for p in (schema.get("properties") or {}).values())
    if schema.get("type") == "array":
        return _flexible(schema.get("items"))
    return False


def _fit(schema, budget: int):
    """(copy of the schema with maxLength on its free strings, upper bound of its size in
    characters) so that the value fits in `budget` characters where that is possible. The
    bound is None where the schema is not bounded (free-form objects, $ref, anyOf...)."""
    if not isinstance(schema, dict):
        return schema, None
    kind = schema.get("type")
    if _free_string(schema):
        length = max(0, budget - 3)  # the two quotes and the optional space
        if isinstance(schema.get("maxLength"), int):
            length = min(length, schema["maxLength"])  # the user's smaller bound wins
        return {**schema, "maxLength": length}, length + 3
    if kind in _SCALAR_CHARS:
        return schema, _SCALAR_CHARS[kind]
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return schema, max(len(json.dumps(v)) for v in values) + 1
    if kind == "object" and schema.get("additionalProperties") is False:
        props = schema.get("properties") or {}
        # '{' + space + '}' + space, then per property: key, ':', space, value, ',', space
        fixed = 4 + sum(len(json.dumps(k)) + 4 for k in props)
        sizes = {k: _fit(v, 0)[1] for k, v in props.items() if not _flexible(v)}
        if None in sizes.values():
            return schema, None
        flexible = [k for k in props if k not in sizes]
        share = (budget - fixed - sum(sizes.values())) // max(1, len(flexible))
        out, total = dict(props), fixed + sum(sizes.values())
        for k in flexible:
            out[k], size = _fit(props[k], share)
            if size is None:
                return schema, None
            total += size
        return {**schema, "properties": out}, total
    if kind == "array" and isinstance(schema.get("items"), dict):
        items, max_items = schema["items"], schema.get("maxItems", LOCAL_MAX_ITEMS)
        if _flexible(items):  # keep fewer items rather than items too short to be useful
            max_items = min(max_items, max(schema.get("minItems", 0),
                                           (budget - 3) // (_MIN_ITEM_CHARS + 2)))
        item, size = _fit(items, (budget - 3) // max(1, max_items) - 2)
        if size is None:
            return schema, None
        return {**schema, "items": item, "maxItems": max_items}, 3 + max_items * (size + 2)
    return schema, None


def grammar_for(response_format, max_tokens: int | None = None) -> str | None:
    """The GBNF for an OpenAI ``response_format`` body value; None for plain text.

    With `max_tokens`, the free strings of a json_schema get a maxLength so that the whole
    answer fits in that many characters, hence in that many tokens: every token the grammar
    admits is at least one byte, so text of single-byte characters (SQL, English) takes at
    most one token per character. A small model that repeats itself inside a string must
    then close it and the object before max_tokens cuts it off. Multi-byte characters and
    escapes (\\n, \\u00e9) can take more tokens than the one character they count as; the
    bound does not cover them."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise InvalidResponseFormat("'response_format' must be an object.")
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return JSON_OBJECT_GBNF
    if kind != "json_schema":
        raise InvalidResponseFormat("'response_format.type' must be text, json_object or "
                                    "json_schema.")
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise InvalidResponseFormat("'response_format.json_schema.schema' must be a JSON "
                                    "schema object.")
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        schema = _bounded(schema)
        if max_tokens is not None:
            schema = _fit(schema, max_tokens - _CLOSING_TOKENS)[0]
        return json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises plain exceptions on schemas it cannot do
        raise InvalidResponseFormat(f"unsupported JSON schema: {exc}") from None
