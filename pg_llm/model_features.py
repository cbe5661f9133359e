"""Opt-in features of a model, set as model options (or engine options, as a default):

    on_error        'error' (default: a failed request fails the statement) | 'null'
    cache           'off' (default) | 'on' (deterministic requests only) | 'always'
    cache_ttl       seconds a cached answer is served (default 604800 = 7 days; 0 = no expiry)
    cache_max_rows  answers kept per model (default 100000; oldest go first)
    audit           'off' (default) | 'on': one llm.requests row per request
    output_columns  typed output columns (pg_llm.structured_output; models only, set when the
                    model is created)
    sql_grammar_from  the template variable holding a schema's DDL: answers are decoded under
                    that schema's SQL grammar (pg_llm.sql_grammar; models only)
    sql_infer_joins_from  the template variable holding a schema's DDL: an answer that reads
                    a column its FROM table lacks gets the joins the schema's foreign keys
                    give (pg_llm.sql_joins; models only, any provider)

They live in the table (and server) options the scan already reads, so a scan with every
feature off runs no catalog query. Values are stored as the normalized text returned here.
"""

from __future__ import annotations

import json

from pg_llm.errors import InvalidParameter

ON_ERROR_VALUES = ("error", "null")
CACHE_VALUES = ("off", "on", "always")
DEFAULT_CACHE_TTL_S = 7 * 24 * 3600
DEFAULT_CACHE_MAX_ROWS = 100000

_TRUE = ("on", "true", "t", "yes", "1")
_FALSE = ("off", "false", "f", "no", "0")


def _choice(name: str, value, choices: tuple, aliases: dict | None = None) -> str:
    text = str(value).strip().lower() if not isinstance(value, bool) else ("on" if value else "off")
    text = (aliases or {}).get(text, text)
    if text not in choices:
        raise InvalidParameter(f"option {name} must be one of {', '.join(choices)}, got {value!r}",
                               hint=f"""e.g. options => '{{"{name}": "{choices[1]}"}}'""")
    return text


def _count(name: str, value) -> str:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value).strip())
    except ValueError:
        raise InvalidParameter(f"option {name} must be a whole number, got {value!r}",
                               hint=f"""e.g. options => '{{"{name}": 3600}}'""") from None
    if number < 0:
        raise InvalidParameter(f"option {name} must not be negative, got {number}",
                               hint=f"{name} = 0 means no limit")
    return str(number)


def parse_feature_option(name: str, value) -> str:
    """Validate one feature option; return its normalized text (what the table option holds)."""
    if name == "on_error":
        return _choice(name, value, ON_ERROR_VALUES)
    if name == "cache":
        return _choice(name, value, CACHE_VALUES,
                       {**{t: "on" for t in _TRUE}, **{f: "off" for f in _FALSE}})
    if name == "audit":
        return _choice(name, value, ("off", "on"),
                       {**{t: "on" for t in _TRUE}, **{f: "off" for f in _FALSE}})
    if name in ("cache_ttl", "cache_max_rows"):
        return _count(name, value)
    if name == "output_columns":
        from pg_llm import structured_output
        # pairs, so that the order survives llm.models.options (jsonb sorts object keys)
        return json.dumps(list(structured_output.parse_output_columns(value).items()))
    if name in ("sql_grammar_from", "sql_infer_joins_from"):
        from pg_llm import sql_grammar
        return sql_grammar.parse_option(value, name)
    raise InvalidParameter(f"unknown feature option {name!r}",
                           hint="feature options are " + ", ".join(FEATURE_OPTIONS))


FEATURE_OPTIONS = ("on_error", "cache", "cache_ttl", "cache_max_rows", "audit", "output_columns",
                   "sql_grammar_from", "sql_infer_joins_from")
# Feature options an engine may hold as its models' default (output_columns shapes one table,
# sql_grammar_from and sql_infer_joins_from name one template's variable).
ENGINE_FEATURE_OPTIONS = tuple(o for o in FEATURE_OPTIONS
                               if o not in ("output_columns", "sql_grammar_from",
                                            "sql_infer_joins_from"))


class Features:
    """The feature settings of one model table, parsed once per wrapper instance."""

    __slots__ = ("on_error", "cache", "cache_ttl", "cache_max_rows", "audit")

    def __init__(self, options: dict):
        def get(name, default):
            raw = options.get(name)
            return default if raw in (None, "") else parse_feature_option(name, raw)

        self.on_error = get("on_error", "error")
        self.cache = get("cache", "off")
        self.cache_ttl = int(get("cache_ttl", DEFAULT_CACHE_TTL_S))
        self.cache_max_rows = int(get("cache_max_rows", DEFAULT_CACHE_MAX_ROWS))
        self.audit = get("audit", "off") == "on"
