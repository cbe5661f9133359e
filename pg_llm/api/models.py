"""llm_create_model, llm_drop_model: validate at the boundary, then pg_llm.catalog.models."""

from __future__ import annotations

from pg_llm import sql_grammar, templates
from pg_llm.api.arguments import json_object
from pg_llm.api.engines import require_catalog_write, require_engine, require_named
from pg_llm.catalog import models as catalog
from pg_llm.engines import CALL_OPTIONS, parse_call_option
from pg_llm.errors import DuplicateObject, InvalidParameter, UndefinedObject
from pg_llm.engines.options import REQUEST_OPTIONS, check_request_option
from pg_llm.model_features import FEATURE_OPTIONS, parse_feature_option

OPTIONS_HINT = ("model options are " + ", ".join((*REQUEST_OPTIONS, *CALL_OPTIONS, *FEATURE_OPTIONS))
                + """, e.g. options => '{"max_tokens": 256, "temperature": 0}'""")


def _parse_model_options(options) -> dict:
    parsed = json_object(options, OPTIONS_HINT)
    checked = {}
    for key, value in parsed.items():
        if key in REQUEST_OPTIONS:
            checked[key] = check_request_option(key, value)
        elif key in CALL_OPTIONS:
            checked[key] = parse_call_option(key, value)
        elif key in FEATURE_OPTIONS:
            checked[key] = parse_feature_option(key, value)
        else:
            raise InvalidParameter(f"unknown model option {key!r}", hint=OPTIONS_HINT)
    return checked


def require_model(plpy, name) -> dict:
    return require_named(plpy, "model", name, catalog.get_model, catalog.model_names)


def create_model(plpy, name, engine, model_name, prompt_template, predict="answer",
                 system_prompt=None, options=None, schema=None, output_columns=None):
    """schema: where the table goes; the SQL default is the caller's current_schema().
    output_columns: typed output columns, the same as options' "output_columns"."""
    if output_columns is not None:
        options = {**_parse_model_options(options), "output_columns": output_columns}
    templates.check_identifier(name, "model name")
    require_catalog_write(plpy, "llm.models", "llm.model_versions")
    engine_row = require_engine(plpy, engine)
    if not isinstance(model_name, str) or not model_name.strip():
        raise InvalidParameter("model_name must not be empty",
                               hint="give the provider's model id, e.g. 'smollm2-135m-instruct'")
    predict = templates.check_identifier(predict if predict is not None else "answer", "predict column")
    if predict in templates.RESERVED_COLUMNS:
        raise InvalidParameter(f'predict column "{predict}" collides with a reserved column',
                               hint="use e.g. predict => 'answer'")
    prompt_columns = templates.parse_template(prompt_template, predict=predict)
    if not prompt_columns:
        raise InvalidParameter("prompt_template has no {{column}} placeholder",
                               hint="the placeholders become the columns you filter on, "
                                    "e.g. prompt_template => 'Translate: {{content}}'")
    if system_prompt is not None:
        for column in templates.parse_template(system_prompt, what="system_prompt", predict=predict):
            if column not in prompt_columns:
                prompt_columns.append(column)
    parsed_options = _parse_model_options(options)
    if "sql_grammar_from" in parsed_options:
        sql_grammar.check_model_option(parsed_options["sql_grammar_from"], prompt_columns,
                                       engine_row["provider"], parsed_options)
    if "sql_infer_joins_from" in parsed_options:
        sql_grammar.check_schema_variable("sql_infer_joins_from",
                                          parsed_options["sql_infer_joins_from"],
                                          prompt_columns, parsed_options)
    if catalog.get_model(plpy, name) is not None:
        raise DuplicateObject(f'model "{name}" already exists',
                              hint=f"drop it with SELECT llm_drop_model('{name}') or pick another name")
    if schema is None or not catalog.schema_exists(plpy, schema):
        raise UndefinedObject(f'schema "{schema}" does not exist' if schema else
                              "no schema to create the model's table in",
                              hint="pass schema => 'name', or SET search_path to an existing schema")
    if catalog.relation_in_schema(plpy, schema, name):
        # never adopt: the model's table is one this call creates, or none
        raise DuplicateObject(f'relation "{name}" already exists in schema {schema}',
                              hint="the model's foreign table takes the model's name: pick another name")
    return catalog.create_model(plpy, name=name, engine=engine, model_name=model_name.strip(),
                                prompt_template=prompt_template, system_prompt=system_prompt,
                                predict=predict, prompt_columns=prompt_columns,
                                options=parsed_options, schema=schema)


def drop_model(plpy, name):
    require_model(plpy, name)
    require_catalog_write(plpy, "llm.models", "llm.model_versions")
    catalog.drop_model(plpy, name)
