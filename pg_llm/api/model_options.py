"""llm_alter_model(name, options): change a model's options after it was created, e.g.
turn the answer cache or the audit trail on. Options merge into llm.models.options (a JSON
null removes one) and reach the foreign table through pg_llm.catalog.models."""

from __future__ import annotations

import json

from pg_llm.api.arguments import json_object
from pg_llm import sql_grammar, templates
from pg_llm.api.engines import require_catalog_write, require_engine
from pg_llm.api.models import OPTIONS_HINT, _parse_model_options, require_model
from pg_llm.catalog import models as catalog
from pg_llm.errors import InvalidParameter


def alter_model(plpy, name, options):
    model = require_model(plpy, name)
    require_catalog_write(plpy, "llm.models")
    changes = json_object(options, OPTIONS_HINT)
    if "output_columns" in changes:  # the table's columns were made from them
        raise InvalidParameter("output_columns cannot change after the model is created",
                               hint="create another model with llm_create_model(..., options "
                                    """=> '{"output_columns": {...}}')""")
    stored = model["options"]
    merged = dict(json.loads(stored) if isinstance(stored, str) else (stored or {}))
    for key in [k for k, v in changes.items() if v is None]:
        merged.pop(key, None)
    merged.update(_parse_model_options({k: v for k, v in changes.items() if v is not None}))
    if merged.get("sql_grammar_from"):
        sql_grammar.check_model_option(merged["sql_grammar_from"], _prompt_columns(model),
                                       require_engine(plpy, model["engine"])["provider"], merged)
    if merged.get("sql_infer_joins_from"):
        sql_grammar.check_schema_variable("sql_infer_joins_from", merged["sql_infer_joins_from"],
                                          _prompt_columns(model), merged)
    catalog.set_model_options(plpy, name, merged)
    return json.dumps(merged)


def _prompt_columns(model: dict) -> list[str]:
    columns = templates.parse_template(model["prompt_template"], predict=model["predict"])
    if model["system_prompt"]:
        columns += [c for c in templates.parse_template(model["system_prompt"], what="system_prompt",
                                                        predict=model["predict"])
                    if c not in columns]
    return columns
