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


def grammar_for(response_format) -> str | None:
    """The GBNF for an OpenAI ``response_format`` body value; None for plain text."""
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
        return json_schema_to_gbnf(json.dumps(_bounded(schema)))
    except Exception as exc:  # the converter raises plain exceptions on schemas it cannot do
        raise InvalidResponseFormat(f"unsupported JSON schema: {exc}") from None
