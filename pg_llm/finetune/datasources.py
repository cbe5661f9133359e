"""External data sources for training data: an SQLAlchemy URL, password kept like API keys.

A datasource is a FOREIGN SERVER of the handler-less wrapper ``pg_llm_datasource`` whose
option ``url`` holds the URL *without* its password; the password lives in a USER MAPPING
(option ``password``), readable only by the mapped user, the server owner and superusers,
exactly like an engine's api_key. Creating one needs USAGE on that wrapper (``llm_admin``).

A datasource query is one statement, run read-only in a worker thread (so a cancel or
statement_timeout still ends the call). The URL rules for datasources that a non-superuser
owns are in ``check_url`` (docs/security.md, point 3): the database server's Python must
not become a way to read the server's own files or to log in as another role.
"""

from __future__ import annotations

from pg_llm.errors import (EngineUnavailable, InsufficientPrivilege, InvalidData,
                           InvalidParameter, LlmError, UndefinedObject)
from pg_llm.templates import check_identifier

WRAPPER = "pg_llm_datasource"
CONNECT_TIMEOUT_S = 10
# SQLAlchemy's default PostgreSQL driver is psycopg2, which the backend does not ship.
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
# Dialects pg_llm can make read-only; any other is refused (no way to promise read-only).
READ_ONLY_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql",
                      "mariadb": "mysql"}
# URL query parameters a datasource of a non-superuser may carry: the others (host, service,
# passfile, sslkey, sslrootcert, unix_socket, ...) name files or sockets of the database server.
SAFE_QUERY_PARAMETERS = {"sslmode", "application_name", "connect_timeout", "charset"}
URL_HINT = "e.g. 'postgresql://user:pass@host:5432/db'"


class ProhibitedConnection(LlmError):
    # As postgres_fdw's "password is required" for non-superusers.
    sqlstate = "2F003"  # prohibited_sql_statement_attempted


def split_url(url: str) -> tuple[str, str | None]:
    """(URL without password, password) for storing the two apart."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not isinstance(url, str) or not url.strip():
        raise InvalidParameter("url must not be empty", hint=f"give an SQLAlchemy URL, {URL_HINT}")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # The text may hold a password: never quote it back.
        raise InvalidParameter("url is not a valid SQLAlchemy URL",
                               hint=f"{URL_HINT} or 'sqlite:////path/to/file.db'") from None
    password = parsed.password
    # URL.set(password=None) means "unchanged"; the namedtuple's _replace really clears it.
    return parsed._replace(password=None).render_as_string(hide_password=False), password


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def dialect_of(url) -> str:
    backend = url.get_backend_name()
    if backend not in READ_ONLY_DIALECTS:
        raise LlmError(f'datasources of kind "{backend}" are not supported',
                       sqlstate="0A000",  # feature_not_supported
                       hint="pg_llm reads only from PostgreSQL, SQLite and MySQL/MariaDB, "
                            "whose sessions it can make read-only")
    return backend


def check_url(url, password: str | None) -> None:
    """The URL rules for a datasource owned by a non-superuser.

    - SQLite is refused: its "database" is a file on the database server.
    - The host must be a network host (PostgreSQL: not a socket directory; MySQL: not
      'localhost', which means its socket), given in the URL, not in a query parameter;
      only SAFE_QUERY_PARAMETERS are allowed, and the database name must be a plain name.
    - A password is required, and (checked on connecting, ``_require_password_used``) the
      server must really ask for it, so trust/peer authentication on loopback cannot log in
      as another role.
    """
    backend = dialect_of(url)
    if backend == "sqlite":
        raise ProhibitedConnection(
            "only a superuser may use an SQLite datasource",
            detail="an SQLite database is a file on the database server",
            hint="ask a superuser to create it, or copy the data into a table")
    host = url.host or ""
    if not host or any(h.strip().startswith(("/", "@")) for h in host.split(",")) or \
            (backend in ("mysql", "mariadb") and host == "localhost"):
        raise ProhibitedConnection(
            "a datasource must name a network host",
            detail="a local socket of the database server is refused for non-superusers",
            hint=f"give the host in the url, {URL_HINT}")
    if url.database and ("=" in url.database or "://" in url.database):
        # libpq may read a database name like that as a whole connection string.
        raise ProhibitedConnection(
            "a datasource's database name may not hold connection parameters",
            hint=f"give only the database's name, {URL_HINT}")
    unsafe = sorted(set(url.query) - SAFE_QUERY_PARAMETERS)
    if unsafe:
        raise ProhibitedConnection(
            f'url parameter "{unsafe[0]}" is not allowed',
            hint="non-superusers may give only " + ", ".join(sorted(SAFE_QUERY_PARAMETERS)))
    if not password:
        raise ProhibitedConnection(
            "a datasource needs a password",
            hint=f"put the password in the url, {URL_HINT}; it is kept in a user mapping")


def engine_url(stored_url: str, password: str | None):
    from sqlalchemy.engine import make_url

    url = make_url(stored_url)
    url = url.set(drivername=DEFAULT_DRIVERS.get(url.drivername, url.drivername))
    return url.set(password=password) if password is not None else url


def single_statement(query: str, backend: str) -> str:
    """The query, refused when it holds more than one statement (a COMMIT in between would
    end the read-only transaction). Strings, quoted names and comments are tokenized."""
    from sqlglot.dialects import Dialect
    from sqlglot.errors import SqlglotError
    from sqlglot.tokens import TokenType

    try:
        tokens = Dialect.get_or_raise(READ_ONLY_DIALECTS[backend]).tokenize(query)
    except SqlglotError:
        raise LlmError("the datasource query cannot be read", sqlstate="42601",
                       hint="check its quotes and comments") from None
    seen_end = False
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            seen_end = True
        elif seen_end:
            raise LlmError("a datasource query must be a single statement", sqlstate="42601",
                           hint="remove the statements after the first ';'")
    if not any(t.token_type != TokenType.SEMICOLON for t in tokens):
        raise LlmError("the datasource query is empty", sqlstate="42601",
                       hint="give the training data as a query, e.g. $$SELECT * FROM chats$$")
    return query


# ---- catalog side (DDL on the server / user mapping)

def _require_wrapper_usage(plpy) -> None:
    row = plpy.execute(plpy.prepare(
        "SELECT pg_catalog.has_foreign_data_wrapper_privilege($1, 'USAGE') AS ok, "
        "current_user AS who", ["text"]), [WRAPPER])[0]
    if not row["ok"]:
        raise InsufficientPrivilege(
            "permission denied to create datasources",
            detail=f"creating one needs USAGE on FOREIGN DATA WRAPPER {WRAPPER}",
            hint=f"an administrator can run: GRANT llm_admin TO {row['who']}")


def _is_superuser(plpy) -> bool:
    return plpy.execute("SELECT pg_catalog.current_setting('is_superuser') = 'on' AS su")[0]["su"]


def create(plpy, name: str, url: str, *, replace: bool = False) -> None:
    # The URL holds the password: keep a failing statement's text out of the server log
    # where the caller may (the same guard as llm_create_engine's api_key).
    from pg_llm.api.engines import statement_hidden_from_log

    with statement_hidden_from_log(plpy, url if isinstance(url, str) else None):
        _create(plpy, name, url, replace=replace)


def _create(plpy, name: str, url: str, *, replace: bool) -> None:
    from sqlalchemy.engine import make_url

    check_identifier(name, "datasource name")
    _require_wrapper_usage(plpy)
    stored, password = split_url(url)
    parsed = make_url(stored)
    if _is_superuser(plpy):
        dialect_of(parsed)
    else:
        check_url(parsed, password)
    exists = plpy.execute(plpy.prepare(
        "SELECT w.fdwname FROM pg_catalog.pg_foreign_server s "
        "JOIN pg_catalog.pg_foreign_data_wrapper w "
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
        _create_password_mapping(plpy, name, password)


def _create_password_mapping(plpy, name: str, password: str) -> None:
    from pg_llm.catalog import user_mappings

    # Never SQL text: see pg_llm.catalog.user_mappings.
    user_mappings.set_option(plpy, name, None, "password", password,
                             what=f'the password of datasource "{name}"',
                             hint="you must own the datasource (its foreign server)")


def drop(plpy, name: str) -> None:
    _server(plpy, name)
    plpy.execute(f"DROP SERVER {plpy.quote_ident(name)} CASCADE")


def _server(plpy, name: str) -> dict:
    rows = plpy.execute(plpy.prepare(
        "SELECT s.srvname, s.srvoptions, has_server_privilege(s.oid, 'USAGE') AS usable, "
        "o.rolsuper AS owner_is_superuser "
        "FROM pg_catalog.pg_foreign_server s "
        "JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw "
        "JOIN pg_catalog.pg_roles o ON o.oid = s.srvowner "
        "WHERE s.srvname = $1 AND w.fdwname = $2", ["text", "text"]), [name, WRAPPER])
    if not rows:
        raise UndefinedObject(f'datasource "{name}" does not exist',
                              hint="create it with SELECT llm_create_datasource('name', url => "
                                   "'postgresql://user:pass@host:port/db'); see llm.datasources")
    return rows[0]


def _options(array) -> dict:
    return dict(item.split("=", 1) for item in (array or []))


def connection_url(plpy, name: str):
    """(full URL with password, password, restricted) for the current user; checks USAGE.

    ``restricted``: the datasource's owner is not a superuser, so the URL rules apply here
    again (ALTER SERVER ... OPTIONS can change the url after llm_create_datasource)."""
    from sqlalchemy.engine import make_url

    server = _server(plpy, name)
    if not server["usable"]:
        raise InsufficientPrivilege(f'permission denied for datasource "{name}"',
                                    hint=f"GRANT USAGE ON FOREIGN SERVER {name} TO <role>")
    url = _options(server["srvoptions"]).get("url")
    if not url:
        raise InvalidParameter(f'datasource "{name}" has no url',
                               hint=f"re-create it with llm_create_datasource('{name}', url => "
                                    "..., replace => true)")
    # The current user's own mapping wins over PUBLIC's, as for postgres_fdw.
    mappings = plpy.execute(plpy.prepare(
        "SELECT usename, umoptions FROM pg_catalog.pg_user_mappings WHERE srvname = $1 "
        "AND (usename = current_user OR usename = 'public') "
        "ORDER BY usename = 'public'", ["text"]), [name])
    password = None
    for m in mappings:
        if m["umoptions"] is None:
            continue   # a mapping exists but its options are hidden from this user
        password = _options(m["umoptions"]).get("password")
        break
    restricted = not server["owner_is_superuser"]
    try:
        parsed = make_url(url)
    except Exception:
        raise InvalidParameter(f'datasource "{name}" has an invalid url',
                               hint=f"re-create it with llm_create_datasource('{name}', url => "
                                    "..., replace => true)") from None
    if restricted:
        check_url(parsed, password)
    else:
        dialect_of(parsed)
    return engine_url(url, password), password, restricted


def _read_only_engine(url):
    """An SQLAlchemy engine whose sessions cannot write, for the dialects that allow it."""
    import sqlalchemy

    backend = url.get_backend_name()
    if backend == "sqlite":
        import sqlite3
        from urllib.parse import quote

        path = url.database or ""
        target = (f"file:{quote(path)}?mode=ro" if path and path != ":memory:"
                  else "file::memory:")
        # mode=ro: never creates or writes the file; query_only refuses writes on top.
        return sqlalchemy.create_engine(
            "sqlite://", poolclass=sqlalchemy.pool.NullPool,
            creator=lambda: sqlite3.connect(target, uri=True, check_same_thread=False))
    if backend == "postgresql":
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S,
                        "options": "-c default_transaction_read_only=on"}
    else:
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S}
    return sqlalchemy.create_engine(url, connect_args=connect_args,
                                    poolclass=sqlalchemy.pool.NullPool)


def _require_password_used(conn, name: str) -> None:
    """A non-superuser's datasource must have authenticated with its password."""
    pgconn = getattr(conn.connection.dbapi_connection, "pgconn", None)
    if pgconn is not None and not pgconn.used_password:
        raise ProhibitedConnection(
            f'datasource "{name}" connected without using its password',
            detail="the server did not ask for a password (trust or peer authentication), so "
                   "a non-superuser could log in as any role there",
            hint="the target server's authentication method must ask for the password "
                 "(pg_hba.conf: scram-sha-256), or a superuser must own the datasource")


def _make_read_only(conn, backend: str) -> None:
    if backend == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif backend == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    else:  # MySQL / MariaDB: every later transaction of this session is read-only
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")


def fetch_rows(plpy, name: str, query: str, check_interrupts=None) -> tuple[list[str], list[dict]]:
    """Run ``query`` read-only on the datasource; (column names, rows as dicts)."""
    from pg_llm.engines.workers import run_in_workers

    url, password, restricted = connection_url(plpy, name)
    backend = url.get_backend_name()
    query = single_statement(query, backend)

    def run():
        import sqlalchemy
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        try:
            engine = _read_only_engine(url)
        except Exception as exc:  # e.g. the dialect's driver is not installed here
            return LlmError(f'cannot open datasource "{name}"', sqlstate="08001",
                            detail=scrub(str(exc).splitlines()[0], password),
                            hint="the backend has drivers for PostgreSQL (psycopg) and SQLite")
        try:
            with engine.connect() as conn:
                if restricted:
                    _require_password_used(conn, name)
                _make_read_only(conn, backend)
                # text(): the dialect escapes '%' for the driver; ':name' would be a bind.
                result = conn.execute(sqlalchemy.text(query))
                columns = list(result.keys())
                rows = [dict(zip(columns, r)) for r in result]
                conn.rollback()
                return columns, rows
        except LlmError as exc:
            return exc
        except DBAPIError as exc:
            orig = scrub(str(exc.orig).strip(), password)
            if exc.connection_invalidated or isinstance(exc, sqlalchemy.exc.OperationalError) \
                    and "connect" in orig.lower():
                return EngineUnavailable(f'cannot connect to datasource "{name}"',
                                         detail=orig, hint=f"check the url of datasource "
                                         f"\"{name}\" in llm.datasources and its password")
            return InvalidData(f'the query on datasource "{name}" failed', detail=orig,
                               hint="the query runs on the datasource's database, not this one; "
                                    "it is read-only and a single statement")
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
