"""`pg-llm set-key` and `pg-llm create-datasource`: send a secret that no log shows.

A key written into SQL text (`SELECT llm_set_api_key('eng', 'sk-...')`) reaches the server
log whenever that statement is logged: always when it fails (log_min_error_statement = error
is the default, and a misspelt argument fails before any pg_llm code runs), and every time
under log_statement = 'all', log_min_duration_statement >= 0 or auto_explain. A bind
parameter is better but still logged with log_statement = 'all' (log_parameter_max_length).
These commands send the secret as COPY data into a temporary table, which no logging setting
prints, and the function reads it from there; the statement text and its parameters hold
only the engine (or datasource) name and the role. Where the role may (superusers, or
GRANT SET ON PARAMETER) the statement-logging settings are also switched off for the
transaction. docs/security.md ("What is logged") has the whole list.

The secret comes from stdin (a prompt without echo on a terminal) or from an environment
variable (--from-env), never from the command line (ps, shell history).
"""

from __future__ import annotations

import getpass
import os
import secrets as random_names
import sys

# Superuser-only settings (PGC_SUSET) that print statement text or bind parameters.
QUIET_LOGGING = {
    "log_statement": "none",
    "log_min_duration_statement": "-1",
    "log_min_error_statement": "panic",
    "log_parameter_max_length": "0",
    "log_duration": "off",
}


def read_secret(what: str, env_name: str | None) -> str:
    if env_name:
        value = os.environ.get(env_name)
        if value is None:
            raise SystemExit(f"pg-llm: environment variable {env_name} is not set")
    elif sys.stdin.isatty():
        value = getpass.getpass(f"{what}: ")
    else:
        value = sys.stdin.read()
    value = value.rstrip("\r\n")
    if not value:
        raise SystemExit(f"pg-llm: empty {what}")
    return value


def quiet_logging(conn) -> list[str]:
    """Switch off statement logging for this transaction where permitted; the names set."""
    # USERSET: any role may keep failing statements' parameters out of the log.
    conn.execute("SET LOCAL log_parameter_max_length_on_error = 0")
    allowed = [r[0] for r in conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name "
        "WHERE pg_catalog.current_setting('is_superuser') = 'on' "
        "OR pg_catalog.has_parameter_privilege(name, 'SET')", [list(QUIET_LOGGING)])]
    for name in allowed:
        conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", [name, QUIET_LOGGING[name]])
    return allowed


def call_with_secret(conn, sql: str, params: list, secret: str):
    """Run ``sql`` (which reads the secret as ``(SELECT value FROM {table})``) in one
    transaction, the secret sent as COPY data, never as statement text or a parameter."""
    table = f"pg_llm_secret_{random_names.token_hex(6)}"
    with conn.transaction():
        quiet_logging(conn)
        conn.execute(f"CREATE TEMP TABLE {table} (value text) ON COMMIT DROP")
        with conn.cursor().copy(f"COPY {table} (value) FROM STDIN") as copy:
            copy.write_row([secret])
        return conn.execute(sql.format(secret=f"(SELECT value FROM {table})"), params).fetchall()


def _connect(dsn: str | None):
    import psycopg

    return psycopg.connect(dsn or "", autocommit=True)


def _run(args, sql: str, params: list, what: str) -> int:
    import psycopg

    secret = read_secret(what, args.from_env)
    try:
        with _connect(args.dsn) as conn:
            call_with_secret(conn, sql, params, secret)
    except psycopg.Error as exc:
        diag = exc.diag
        message = diag.message_primary or str(exc).splitlines()[0]
        print(f"pg-llm: {message}".replace(secret, "***"), file=sys.stderr)
        if diag.message_hint:
            print(f"hint: {diag.message_hint}".replace(secret, "***"), file=sys.stderr)
        return 1
    return 0


def set_key(args) -> int:
    return _run(args, "SELECT llm_set_api_key(%s, {secret}, %s)", [args.engine, args.role],
                "API key")


def create_datasource(args) -> int:
    return _run(args, "SELECT llm_create_datasource(%s, {secret}, replace => %s)",
                [args.name, args.replace], "datasource URL")


def add_parser(subparsers) -> None:
    key = _secret_parser(
        subparsers, "set-key", set_key, "key",
        help="set an engine's API key without it reaching any server log",
        description="Reads the key from stdin (or --from-env VAR) and stores it in the "
                    "engine's user mapping (llm_set_api_key) as COPY data, which no logging "
                    "setting prints.")
    key.add_argument("engine")
    key.add_argument("--role", help="store it for this role only (default: PUBLIC)")

    source = _secret_parser(
        subparsers, "create-datasource", create_datasource, "URL",
        help="register a datasource without its password reaching any server log",
        description="Reads the SQLAlchemy URL (with its password) from stdin (or --from-env "
                    "VAR) and calls llm_create_datasource with it as COPY data.")
    source.add_argument("name")
    source.add_argument("--replace", action="store_true")


def _secret_parser(subparsers, name: str, func, secret: str, **texts):
    """A sub-command that reads a secret: its --from-env and --dsn options."""
    parser = subparsers.add_parser(name, **texts)
    parser.add_argument("--from-env", metavar="VAR", help=f"read the {secret} from this variable")
    parser.add_argument("--dsn", help="libpq connection string (default: PG* environment)")
    parser.set_defaults(func=func)
    return parser
