"""The one writer of secrets (API keys, datasource passwords) into user mappings.

``llm._set_user_mapping_option`` (ext/user_mappings.c) builds the CREATE/ALTER USER MAPPING
as a parse node, so the secret never becomes SQL text: pg_stat_statements, event triggers and
debug logging see only ``SELECT llm._set_user_mapping_option($1, $2, $3, $4)``. Its errors
(permission denied, unknown role) are re-raised with the secret scrubbed all the same.
"""

from __future__ import annotations

from pg_llm.errors import LlmError


def set_option(plpy, server: str, role: str | None, option: str, value: str | None, *,
               what: str, hint: str) -> None:
    """Set (value None: drop) ``option`` of the user mapping of ``role`` (None: PUBLIC)."""
    plan = plpy.prepare("SELECT llm._set_user_mapping_option($1, $2, $3, $4)",
                        ["name", "name", "text", "text"])
    try:
        with plpy.subtransaction():
            plpy.execute(plan, [server, role, option, value])
    except plpy.spiexceptions.QueryCanceled:
        raise
    except plpy.SPIError as exc:
        first = str(exc.args[0] if exc.args else exc).splitlines()[0]
        if value:
            first = first.replace(value, "***")
        raise LlmError(f"could not store {what}: {first}",
                       sqlstate=getattr(exc, "sqlstate", None) or "XX000", hint=hint) from None
