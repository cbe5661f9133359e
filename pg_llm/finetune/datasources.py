"""External data sources for training data: any SQLAlchemy URL, password kept like API keys.

A datasource is a FOREIGN SERVER of the handler-less wrapper ``pg_llm_datasource`` whose
option ``url`` holds the URL *without* its password; the password lives in a USER MAPPING
(option ``password``), readable only by the mapped user, the server owner and superusers,
exactly like an engine's api_key. Queries run read-only, in a worker thread, so a cancel or
statement_timeout still ends the call.
"""

from __future__ import annotations

from pg_llm.errors import (EngineUnavailable, InsufficientPrivilege, InvalidData,
                           InvalidParameter, UndefinedObject)
from pg_llm.templates import check_identifier

WRAPPER = "pg_llm_datasource"
CONNECT_TIMEOUT_S = 10
# SQLAlchemy's default PostgreSQL driver is psycopg2, which the backend does not ship.
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def split_url(url: str) -> tuple[str, str | None]:
    """(URL without password, password) for storing the two apart."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not isinstance(url, str) or not url.strip():
        raise InvalidParameter("url must not be empty",
                               hint="give an SQLAlchemy URL, e.g. 'postgresql://user:pass@host:5432/db'")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise InvalidParameter("url is not a valid SQLAlchemy URL",
                               detail=scrub(str(exc), url),
                               hint="e.g. 'postgresql://user:pass@host:5432/db' or "
                                    "'sqlite:////path/to/file.db'") from None
    password = parsed.password
    # URL.set(password=None) means "unchanged"; the namedtuple's _replace really clears it.
    return parsed._replace(password=None).render_as_string(hide_password=False), password


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def engine_url(stored_url: str, password: str | None):
    from sqlalchemy.engine import make_url

    url = make_url(stored_url)
    url = url.set(drivername=DEFAULT_DRIVERS.get(url.drivername, url.drivername))
    return url.set(password=password) if password is not None else url


# ---- catalog side (DDL on the server / user mapping)

def create(plpy, name: str, url: str, *, replace: bool = False) -> None:
    check_identifier(name, "datasource name")
    stored, password = split_url(url)
    exists = plpy.execute(plpy.prepare(
        "SELECT w.fdwname FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w "
        "ON w.oid = s.srvfdw WHERE s.srvname = $1", ["text"]), [name])
    if exists:
        if exists[0]["fdwname"] != WRAPPER:
            raise InvalidParameter(f'server "{name}" exists and is not a datasource',
                                   hint="choose another name for the datasource")
        if not replace:
            from pg_llm.errors import DuplicateObject
            raise DuplicateObject(f'datasource "{name}" already exists',
                                  hint=f"use replace => true, or llm_drop_datasource('{name}')")
        drop(plpy, name)
    q = plpy.quote_ident(name)
    plpy.execute(f"CREATE SERVER {q} FOREIGN DATA WRAPPER {WRAPPER} "
                 f"OPTIONS (url {plpy.quote_literal(stored)})")
    if password is not None:
        plpy.execute(f"CREATE USER MAPPING FOR PUBLIC SERVER {q} "
                     f"OPTIONS (password {plpy.quote_literal(password)})")


def drop(plpy, name: str) -> None:
    _server(plpy, name)
    plpy.execute(f"DROP SERVER {plpy.quote_ident(name)} CASCADE")


def _server(plpy, name: str) -> dict:
    rows = plpy.execute(plpy.prepare(
        "SELECT s.srvname, s.srvoptions, has_server_privilege(s.oid, 'USAGE') AS usable "
        "FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw "
        "WHERE s.srvname = $1 AND w.fdwname = $2", ["text", "text"]), [name, WRAPPER])
    if not rows:
        raise UndefinedObject(f'datasource "{name}" does not exist',
                              hint="create it with SELECT llm_create_datasource('name', url => "
                                   "'postgresql://user:pass@host:port/db'); see llm.datasources")
    return rows[0]


def _options(array) -> dict:
    return dict(item.split("=", 1) for item in (array or []))


def connection_url(plpy, name: str):
    """The full URL (with password) for the current user; checks USAGE on the server."""
    server = _server(plpy, name)
    if not server["usable"]:
        raise InsufficientPrivilege(f'permission denied for datasource "{name}"',
                                    hint=f"GRANT USAGE ON FOREIGN SERVER {name} TO <role>")
    url = _options(server["srvoptions"]).get("url")
    # The current user's own mapping wins over PUBLIC's, as for postgres_fdw.
    mappings = plpy.execute(plpy.prepare(
        "SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = $1 "
        "AND (usename = current_user OR usename = 'public') "
        "ORDER BY usename = 'public'", ["text"]), [name])
    password = None
    for m in mappings:
        if m["umoptions"] is None:
            continue   # a mapping exists but its options are hidden from this user
        password = _options(m["umoptions"]).get("password")
        break
    return engine_url(url, password), password


def fetch_rows(plpy, name: str, query: str, check_interrupts=None) -> tuple[list[str], list[dict]]:
    """Run ``query`` read-only on the datasource; (column names, rows as dicts)."""
    from pg_llm.engines.client import run_in_workers

    url, password = connection_url(plpy, name)

    def run():
        import sqlalchemy
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if url.get_backend_name() in (
            "postgresql",) else {}
        engine = sqlalchemy.create_engine(url, connect_args=connect_args,
                                          poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                # text(): the dialect escapes '%' for the driver; ':name' would be a bind.
                result = conn.execute(sqlalchemy.text(query))
                columns = list(result.keys())
                rows = [dict(zip(columns, r)) for r in result]
                conn.rollback()
                return columns, rows
        except DBAPIError as exc:
            orig = scrub(str(exc.orig).strip(), password)
            if exc.connection_invalidated or isinstance(exc, sqlalchemy.exc.OperationalError) \
                    and "connect" in orig.lower():
                return EngineUnavailable(f'cannot connect to datasource "{name}"',
                                         detail=orig, hint=f"check the url of datasource "
                                         f"\"{name}\" in llm.datasources and its password")
            return InvalidData(f'the query on datasource "{name}" failed', detail=orig,
                               hint="the query runs on the datasource's database, not this one")
        except SQLAlchemyError as exc:
            return InvalidData(f'the query on datasource "{name}" failed',
                               detail=scrub(str(exc), password),
                               hint="check the query and the datasource's url")
        finally:
            engine.dispose()

    result = run_in_workers([run], 1, check_interrupts)[0]
    if isinstance(result, Exception):
        raise result
    return result
