"""llm_create_engine, llm_set_api_key, llm_drop_engine.

The API key is a secret: it goes only into a user mapping, never into an error, a NOTICE,
the server options (world-readable) or the catalog. A failing statement is written to the
server log with its text (log_min_error_statement = error), and that text holds the key when
it was passed as a literal, so these functions first lower log_min_error_statement for the
rest of the transaction where the caller may (superusers, or GRANT SET ON PARAMETER); the
setting is restored when the function succeeds. Other roles should pass the key as a bind
parameter (psql: \\bind, drivers: $1), which the log never shows.
"""

from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal, InvalidOperation

from pg_llm.api.arguments import json_object
from pg_llm.api.undeploy import engine_dropped
from pg_llm.catalog import models as catalog
from pg_llm.engines import (CALL_OPTIONS, PROVIDERS, check_base_url, check_provider,
                            parse_call_option)
from pg_llm.engines.client import EngineSettings, backend_interrupt_checker, list_models
from pg_llm.model_features import ENGINE_FEATURE_OPTIONS as FEATURE_OPTIONS, parse_feature_option
from pg_llm.errors import (DuplicateObject, InsufficientPrivilege, InvalidParameter, LlmError,
                           UndefinedObject)
from pg_llm.templates import check_identifier

VERIFY_TIMEOUT_S = 10.0
MAX_KEY_LENGTH = 4096


@contextmanager
def statement_hidden_from_log(plpy, secret: str | None):
    """While a secret argument is in play, keep the failing statement out of the server log."""
    if not secret:
        yield
        return
    row = plpy.execute("""
        SELECT current_setting('log_min_error_statement') AS previous,
               current_setting('is_superuser') = 'on'
               OR has_parameter_privilege('log_min_error_statement', 'SET') AS allowed""")[0]
    if row["allowed"]:
        plpy.execute("SELECT set_config('log_min_error_statement', 'panic', true)")
    yield
    # Only on success: after an error the transaction aborts, and the setting goes with it.
    if row["allowed"]:
        plpy.execute(plpy.prepare("SELECT set_config('log_min_error_statement', $1, true)",
                                  ["text"]), [row["previous"]])


def _admin_hint(plpy) -> str:
    user = plpy.execute("SELECT quote_ident(current_user) AS u")[0]["u"]
    return f"an administrator can run: GRANT llm_admin TO {user};"


def require_catalog_write(plpy, *tables: str) -> None:
    """A clear 42501 naming the missing grant before any work."""
    rows = plpy.execute(plpy.prepare(
        "SELECT t FROM unnest($1::text[]) t WHERE NOT has_table_privilege(t, 'INSERT, DELETE')",
        ["text[]"]), [list(tables)])
    if rows:
        raise InsufficientPrivilege(f"permission denied to change {rows[0]['t']}",
                                    hint=_admin_hint(plpy))


def require_engine_creation(plpy, bridge: str) -> None:
    """Creating an engine = CREATE SERVER ... FOREIGN DATA WRAPPER <bridge>: USAGE on it."""
    if not plpy.execute(plpy.prepare("SELECT has_foreign_data_wrapper_privilege($1, 'USAGE') "
                                     "AS ok", ["text"]), [bridge])[0]["ok"]:
        raise InsufficientPrivilege("permission denied to create engines",
                                    detail=f"an engine is a server of the foreign-data wrapper "
                                           f"{bridge}, and decides where requests go",
                                    hint=_admin_hint(plpy))


def require_engine_owner(plpy, engine: dict) -> None:
    if not plpy.execute(plpy.prepare("SELECT pg_has_role($1, 'USAGE') AS ok", ["name"]),
                        [engine["owner"]])[0]["ok"]:
        raise InsufficientPrivilege(f'must be owner of engine "{engine["name"]}"',
                                    detail=f'its foreign server is owned by {engine["owner"]}',
                                    hint="only the engine's owner (or a superuser) changes "
                                         "where its requests go and which key they carry")


def check_api_key(api_key) -> str | None:
    if api_key is None:
        return None
    # Never quote the key in these messages.
    if not isinstance(api_key, str) or api_key.strip() == "":
        raise InvalidParameter("api_key must not be empty",
                               hint="pass NULL for an engine without a key")
    if len(api_key) > MAX_KEY_LENGTH or any(ord(c) < 32 for c in api_key):
        raise InvalidParameter("api_key contains control characters or is too long",
                               hint="paste the key exactly as the provider shows it")
    return api_key


def _check_price(name: str, value):
    if value is None:
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise InvalidParameter(f"{name} must be a number", hint="prices are USD per million tokens") from None
    if price < 0 or not price.is_finite():
        raise InvalidParameter(f"{name} must be zero or more, got {value}",
                               hint="prices are USD per million tokens")
    return price


def _parse_options(options) -> dict:
    parsed = json_object(options, """e.g. options => '{"concurrency": 4, "timeout": 30}'""")
    unknown = sorted(set(parsed) - set(CALL_OPTIONS) - set(FEATURE_OPTIONS))
    if unknown:
        raise InvalidParameter(f"unknown engine option {unknown[0]!r}",
                               hint="engine options are " + ", ".join((*CALL_OPTIONS, *FEATURE_OPTIONS)))
    # feature options (cache, audit, on_error) on an engine are defaults for its models
    return {k: parse_feature_option(k, v) if k in FEATURE_OPTIONS else parse_call_option(k, v)
            for k, v in parsed.items()}


def check_role(plpy, role) -> str | None:
    if role is None:
        return None
    rows = plpy.execute(plpy.prepare("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
                                     ["text"]), [role])
    if not rows:
        raise UndefinedObject(f'role "{role}" does not exist',
                              hint="omit role to store the key for PUBLIC (every role with USAGE)")
    return role


def require_named(plpy, kind: str, name, get, names) -> dict:
    """The catalog row of engine/model `name`, or 42704 listing the known ones."""
    row = get(plpy, name) if isinstance(name, str) else None
    if row is None:
        known = ", ".join(names(plpy)) or "none yet"
        raise UndefinedObject(f'{kind} "{name}" does not exist',
                              hint=f"known {kind}s: {known}; create one with llm_create_{kind}")
    return row


def require_engine(plpy, name) -> dict:
    """A server of the pg_llm FDW, by name (llm.engines lists only those)."""
    return require_named(plpy, "engine", name, catalog.get_engine, catalog.engine_names)


def create_engine(plpy, name, provider="openai", base_url=None, api_key=None, verify=True,
                  price_input=None, price_output=None, price_training=None, options=None,
                  role=None, bridge="pg_llm"):
    with statement_hidden_from_log(plpy, api_key):
        check_identifier(name, "engine name")
        bridge = check_bridge(plpy, bridge)
        require_engine_creation(plpy, bridge)
        provider = check_provider(provider if provider is not None else "openai")
        base_url = check_base_url(base_url or PROVIDERS[provider]["base_url"])
        api_key = check_api_key(api_key)
        zero = Decimal(0) if not PROVIDERS[provider]["prices"] else None
        prices = {"price_input": _check_price("price_input", price_input) if price_input is not None else zero,
                  "price_output": _check_price("price_output", price_output) if price_output is not None else zero,
                  "price_training": _check_price("price_training", price_training) if price_training is not None else zero}
        server_options = _parse_options(options)
        role = check_role(plpy, role)
        if catalog.get_engine(plpy, name) is not None or catalog.server_exists(plpy, name):
            raise DuplicateObject(f'engine "{name}" already exists',
                                  hint=f"drop it with SELECT llm_drop_engine('{name}') or pick another name")
        if verify:
            _verify_endpoint(name, base_url, api_key, server_options)
        catalog.create_engine(plpy, name=name, provider=provider, base_url=base_url,
                              prices=prices, server_options=server_options, bridge=bridge)
        if api_key is not None:
            catalog.set_api_key(plpy, name, api_key, role)
    return name


def check_bridge(plpy, bridge) -> str:
    """pg_llm (the C bridge) or multicorn (Multicorn2, installed: docs/multicorn.md)."""
    bridge = "pg_llm" if bridge is None else bridge
    if bridge not in catalog.BRIDGES:
        raise InvalidParameter(f"unknown bridge {bridge!r}",
                               hint="use bridge => 'pg_llm' (the default) or 'multicorn'")
    if bridge == "multicorn":
        rows = plpy.execute("""
            SELECT pg_catalog.has_foreign_data_wrapper_privilege(oid, 'USAGE') AS usable
            FROM pg_catalog.pg_foreign_data_wrapper WHERE fdwname = 'multicorn'""")
        if not rows:
            raise UndefinedObject("foreign-data wrapper \"multicorn\" does not exist",
                                  hint="install Multicorn2 (make multicorn2, docs/multicorn.md), "
                                       "then CREATE EXTENSION multicorn")
        if not rows[0]["usable"]:
            raise InsufficientPrivilege(
                "permission denied for foreign-data wrapper multicorn",
                hint="a superuser grants it: GRANT USAGE ON FOREIGN DATA WRAPPER multicorn "
                     "TO llm_admin")
    return bridge


def _verify_endpoint(name, base_url, api_key, server_options) -> None:
    """GET /models through the openai client: fail early on a wrong URL or key."""
    settings = EngineSettings(name=name, base_url=base_url, api_key=api_key,
                              timeout=min(VERIFY_TIMEOUT_S, server_options.get("timeout", VERIFY_TIMEOUT_S)),
                              max_retries=1, concurrency=1)
    try:
        list_models(settings, backend_interrupt_checker())
    except LlmError as exc:
        exc.hint = (exc.hint + "; " if exc.hint else "") + \
            "or create the engine without checking it: verify => false"
        raise


def set_api_key(plpy, engine, api_key, role=None):
    with statement_hidden_from_log(plpy, api_key):
        api_key = check_api_key(api_key)
        found = require_engine(plpy, engine)
        role = check_role(plpy, role)
        # a role's own mapping needs only USAGE (PostgreSQL checks it); others the owner
        if role is None or role != plpy.execute("SELECT current_user::text AS u")[0]["u"]:
            require_engine_owner(plpy, found)
        catalog.set_api_key(plpy, engine, api_key, role)


def drop_engine(plpy, name, cascade=False):
    require_engine_owner(plpy, require_engine(plpy, name))
    require_catalog_write(plpy, "llm.models", "llm.model_versions")
    dependents = catalog.models_of_engine(plpy, name)
    if dependents and not cascade:
        raise LlmError(f'engine "{name}" is used by models: {", ".join(dependents)}',
                       sqlstate="2BP01",  # dependent_objects_still_exist
                       hint=f"drop them with llm_drop_model, or SELECT llm_drop_engine('{name}', cascade => true)")
    for model in dependents:
        catalog.drop_model(plpy, model)
    engine_dropped(plpy, name, cascade)  # versions deployed on it (docs/scale-out.md)
    catalog.drop_engine(plpy, name)
