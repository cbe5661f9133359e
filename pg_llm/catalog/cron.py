"""pg_cron's job that runs llm_refresh() (the catalog side of llm_schedule_refresh)."""

from __future__ import annotations

CRON_JOB_NAME = "pg_llm_refresh"


def has_pg_cron(plpy) -> bool:
    return bool(plpy.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'cron'"))


def extension_schema(plpy) -> str:
    return plpy.execute("SELECT n.nspname FROM pg_catalog.pg_extension e JOIN "
                        "pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
                        "WHERE e.extname = 'pg_llm'")[0]["nspname"]


def schedule_refresh(plpy, schedule: str) -> int:
    """Schedule SELECT <extschema>.llm_refresh(); returns pg_cron's job id.

    cron.schedule(name, ...) replaces an existing job of the same name.
    """
    command = f"SELECT {plpy.quote_ident(extension_schema(plpy))}.llm_refresh()"
    row = plpy.execute(plpy.prepare("SELECT cron.schedule($1, $2, $3) AS id",
                                    ["text", "text", "text"]),
                       [CRON_JOB_NAME, schedule, command])
    return row[0]["id"]
