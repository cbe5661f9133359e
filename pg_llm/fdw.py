"""ModelTable: the foreign-table class of a model. Quals -> prompts -> rows.

A scan reads only the foreign table's options (written by pg_llm.catalog.models), never the
catalog: ``WHERE content = 'x'`` becomes one prompt, ``content = ANY(...)`` many (cartesian
product over every ANY list), identical requests are sent once, and every row echoes the
qualified input columns unchanged because PostgreSQL re-checks the quals locally.
"""

from __future__ import annotations

import itertools
import json

from pg_llm import (answering, deployment_routes, multicorn_scan, row_errors, sql_grammar,
                    sql_joins, structured_output, templates)
from pg_llm.engines import settings_from_options
from pg_llm.engines.client import ChatRequest, EngineSettings
from pg_llm.engines.options import REQUEST_OPTIONS, as_int, check_request_option
from pg_llm.errors import (FeatureNotSupported, InvalidParameter, MissingPromptValue,
                           UndefinedObject)
from pg_llm.model_features import Features
from pg_llm.multicorn import ForeignDataWrapper

# Most prompts one scan may send: a cartesian product of ANY lists grows fast.
MAX_PROMPTS_PER_SCAN = 10000
# Multicorn2's row estimate for a scan lacking a prompt value (see get_rel_size): joins of up
# to ~5000 outer rows take the parameterized path; a generic plan stays under jit_above_cost.
MISSING_PROMPT_ROWS = 10000


def _json_option(options: dict, name: str, default):
    raw = options.get(name)
    if raw in (None, ""):
        return default
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise InvalidParameter(f"table option {name} is not valid JSON",
                               hint="re-create the model with llm_create_model") from None
    if not isinstance(value, type(default)):  # e.g. OPTIONS (defaults '1')
        raise InvalidParameter(f"table option {name} must be a JSON "
                               f"{'object' if isinstance(default, dict) else 'value'}",
                               hint="re-create the model with llm_create_model")
    return value


def _qual_values(qual) -> list | None:
    """Values a qual allows for its column, or None when the qual cannot be used."""
    op = qual.operator
    if op == "=":
        return [qual.value]
    if isinstance(op, (tuple, list)) and len(op) == 2 and op[0] == "=" and op[1]:
        return list(qual.value or [])
    return None


class ModelTable(ForeignDataWrapper):
    """A language model as a table: template variables and options in, answers out."""

    def __init__(self, options: dict, columns):
        super().__init__(options, columns)
        self.options = dict(options)
        self.model = options.get("model") or options.get("table") or "model"
        self.template = options.get("prompt_template") or "{{content}}"
        self.system_prompt = options.get("system_prompt") or None
        self.predict = options.get("predict") or "answer"
        columns_text = options.get("prompt_columns")
        if columns_text:
            self.prompt_columns = [c.strip() for c in columns_text.split(",") if c.strip()]
        else:
            self.prompt_columns = templates.parse_template(self.template, predict=self.predict)
            if self.system_prompt:
                for name in templates.parse_template(self.system_prompt, what="system_prompt"):
                    if name not in self.prompt_columns:
                        self.prompt_columns.append(name)
        self.versions = {str(k): v for k, v in _json_option(options, "versions", {}).items()}
        if not self.versions and options.get("model_name"):
            self.versions = {"1": options["model_name"]}  # a hand-written table: one version
        self.active_version = str(options.get("active_version") or (min(self.versions, key=int)
                                                                     if self.versions else "1"))
        self.defaults = {name: check_request_option(name, value)
                         for name, value in _json_option(options, "defaults", {}).items()}
        # the model's own call options win, even where Multicorn2 let the server's shadow them
        call_options = {k: str(v) for k, v in _json_option(options, "call_options", {}).items()}
        self.settings = settings_from_options({**options, **call_options})
        # versions llm_deploy_version put on other engines: {"2": {"engine", "model"}}
        self.deployments = {str(k): v for k, v in _json_option(options, "deployments", {}).items()}
        self._call_options = call_options
        self._routes: dict[str, object] = {}
        # Multicorn2 tables made by llm_create_model keep SQLSTATEs through this column
        self.relays_errors = multicorn_scan.ERROR_COLUMN in columns
        self.features = Features(options)  # on_error, cache, audit (pg_llm.model_features)
        self.output_columns = structured_output.columns_from_option(options.get("output_columns"))
        self.response_format = (structured_output.response_format(self.model, self.output_columns)
                                if self.output_columns else None)
        # the variable holding the schema's DDL: answers decode under its SQL grammar
        self.sql_grammar_from = options.get("sql_grammar_from") or None
        # the variable holding the schema's DDL: answers get the joins their columns need
        self.sql_infer_joins_from = options.get("sql_infer_joins_from") or None

    def settings_for(self, version) -> "EngineSettings":
        """The engine answering `version`: the table's own, or where it was deployed."""
        deployed = self.deployments.get(str(version))
        if deployed is None:
            return self.settings
        engine = deployed["engine"]
        if engine not in self._routes:  # once per scan
            self._routes[engine] = deployment_routes.engine_settings(engine, self._call_options)
        return self._routes[engine]

    # -- planning hints (Multicorn API; pg_llm's C bridge plans on its own, ext/paths.c) --
    # Multicorn2 costs a path as _startup_cost + rows * width.
    _startup_cost = 1

    def get_rel_size(self, quals, columns):
        """Rows: the prompts the constant quals ask for, width 1 to keep costs small.

        Without a value for every prompt column the plain scan cannot run: the large row
        count makes the planner take the parameterized path of a join instead, yet keeps
        the cost under jit_above_cost, because a generic plan's `content = $1` is not shown
        to this method and still runs (the value arrives at execution).
        """
        allowed = self._allowed_values(quals)
        if any(c not in allowed for c in self.prompt_columns):
            return (MISSING_PROMPT_ROWS, 1)
        total = 1
        for values in allowed.values():
            total *= len(values)
        return (max(1, min(total, MAX_PROMPTS_PER_SCAN)), 1)

    def get_path_keys(self):
        """A join that gives every prompt column a value: one prompt per outer row."""
        return [(tuple(self.prompt_columns), 1)]

    # -- execution ---------------------------------------------------------------------
    def execute(self, quals, columns, sortkeys=None, **kwargs):
        if multicorn_scan.called_by_multicorn():  # no plpy there, and its own error protocol
            return multicorn_scan.rows(self._execute, quals, columns,
                                       relay_errors=self.relays_errors)
        return self._execute(quals, columns)

    def _execute(self, quals, columns):
        self._routes = {}  # instances outlive scans; privileges are checked at every scan
        requests, versions, tolerate, plans = self.plan_requests(quals)
        if not requests:
            return []
        outcomes = answering.answer(self, requests, versions, tolerate)
        rows = []
        for combo, effective, index in plans:
            outcome = outcomes[index]
            result = outcome.result
            row = dict(effective)
            row.update(combo)  # echo qualified inputs exactly as given
            row["cached"] = outcome.cached
            row["request_id"] = outcome.request_id
            if outcome.error is not None:
                row[self.predict] = None
                row["error"] = row_errors.error_text(outcome.error)
            else:
                row.update(outcome.values or {})  # typed output columns
                row[self.predict] = self._answer_text(result.text, combo)
                row["model_id"] = result.model_id
                row["prompt_tokens"] = result.prompt_tokens
                row["completion_tokens"] = result.completion_tokens
                row["latency_ms"] = round(result.latency_ms, 3)
                row["finish_reason"] = result.finish_reason
            rows.append(row)
        return rows

    def _answer_text(self, text, combo: dict):
        """The answer as the model wrote it, or with the joins it needs (sql_infer_joins_from:
        applied on every read, so the answer cache keeps what the engine said)."""
        if not self.sql_infer_joins_from or not text:
            return text
        ddl = combo.get(self.sql_infer_joins_from)
        return sql_joins.infer_joins(text, ddl) if isinstance(ddl, str) else text

    def plan_requests(self, quals):
        """The distinct requests these quals ask (nothing is sent: EXPLAIN estimates from it
        too), their versions, whether each may fail alone (on_error), and per output row
        (qualified values, effective options, index of its request)."""
        allowed = self._allowed_values(quals)
        missing = [c for c in self.prompt_columns if c not in allowed]
        if missing:
            example = " AND ".join(f"{c} = '...'" for c in missing)
            raise MissingPromptValue(
                f'model "{self.model}" needs a value for '
                + ", ".join(f'"{c}"' for c in missing) + " in the WHERE clause",
                detail="each prompt is built from the template " + repr(self.template),
                hint=f"add WHERE {example}")
        combos = self._combinations(allowed)
        requests, versions, tolerate, plans = [], [], [], []
        unique: dict[ChatRequest, int] = {}
        for combo in combos:
            request, effective = self._build_request(combo)
            if request not in unique:
                unique[request] = len(requests)
                requests.append(request)
                versions.append(effective["version"])
                tolerate.append(True)
            # a request fails the statement unless every row asking it tolerates errors
            tolerate[unique[request]] &= effective["on_error"] == "null"
            plans.append((combo, effective, unique[request]))
        return requests, versions, tolerate, plans

    def _sql_grammar(self, version: str, values: dict) -> tuple[str, str]:
        """(body field, GBNF) of the schema in the sql_grammar_from variable; refused (0A000)
        where the answering engine would not apply it."""
        if version in self.deployments:
            engine = self.deployments[version]["engine"]
            raise FeatureNotSupported(
                f'version {version} of model "{self.model}" is served by engine "{engine}", '
                "which does not take a SQL grammar (sql_grammar_from)",
                hint=f"query it without the grammar from another model, or undeploy it: "
                     f"llm_undeploy_version('{self.model}', {version})")
        field = sql_grammar.require_grammar_provider(self.options.get("provider"),
                                                     self.settings.name)
        if self.sql_grammar_from not in values:
            raise InvalidParameter(f'sql_grammar_from names "{self.sql_grammar_from}", which is '
                                   f'not a variable of model "{self.model}"',
                                   hint="re-set it with llm_alter_model")
        return field, sql_grammar.grammar_for_ddl(values[self.sql_grammar_from],
                                                  variable=self.sql_grammar_from)

    def _allowed_values(self, quals) -> dict[str, list]:
        """Column -> the values its '=' / '= ANY' quals allow (intersection when several)."""
        allowed: dict[str, list] = {}
        usable = set(self.prompt_columns) | set(REQUEST_OPTIONS) | {"version", "on_error"}
        for qual in quals:
            if qual.field_name not in usable:
                continue  # quals on outputs (answer = ...) are checked by PostgreSQL
            values = _qual_values(qual)
            if values is None:
                continue
            values = list(dict.fromkeys(v for v in values if v is not None))
            if qual.field_name in allowed:
                values = [v for v in allowed[qual.field_name] if v in values]
            allowed[qual.field_name] = values
        return allowed

    def _combinations(self, allowed: dict[str, list]) -> list[dict]:
        names = list(allowed)
        total = 1
        for name in names:
            total *= len(allowed[name])
        if total > MAX_PROMPTS_PER_SCAN:
            raise InvalidParameter(
                f"this query would send {total} prompts to model \"{self.model}\" in one scan",
                hint=f"send at most {MAX_PROMPTS_PER_SCAN} prompts per query (the product of "
                     "the = ANY lists), or split the query")
        return [dict(zip(names, values)) for values in itertools.product(*(allowed[n] for n in names))]

    def _build_request(self, combo: dict) -> tuple[ChatRequest, dict]:
        options = dict(self.defaults)
        for name in REQUEST_OPTIONS:
            if name in combo:
                options[name] = check_request_option(name, combo[name])
        version = str(as_int("version", combo["version"], minimum=1)) if "version" in combo \
            else self.active_version
        model_id = self.versions.get(version)
        if model_id is None:
            known = ", ".join(sorted(self.versions, key=int)) or "none"
            raise UndefinedObject(f'model "{self.model}" has no version {version}',
                                  hint=f"available versions: {known} (see llm.model_versions)")
        if version in self.deployments:
            model_id = self.deployments[version]["model"]
        values = {name: combo[name] for name in self.prompt_columns}
        messages = []
        if self.system_prompt:
            messages.append(("system", templates.render(self.system_prompt, values)))
        messages.append(("user", templates.render(self.template, values)))
        # stop goes out as a list; tuples keep the request hashable for de-duplication
        request_options = {k: ((v,) if k == "stop" else v) for k, v in options.items()}
        if self.response_format:
            request_options["response_format"] = self.response_format  # JSON text: hashable
        if self.sql_grammar_from:
            field, grammar = self._sql_grammar(version, values)
            request_options[field] = grammar
        request = ChatRequest(model=model_id, messages=tuple(messages),
                              options=tuple(sorted(request_options.items())))
        effective = dict(options)
        effective["version"] = int(version)
        effective["on_error"] = row_errors.check_policy(combo["on_error"]) if "on_error" in combo \
            else self.features.on_error
        return request, effective
