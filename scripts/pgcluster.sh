#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for tests and the demo, run as the `postgres` OS user
# (PostgreSQL refuses to run as root). Listens on 127.0.0.1:PORT and a socket in DIR.
#   pgcluster.sh start DIR PORT     create if needed, start, wait until ready
#   pgcluster.sh stop DIR           fast shutdown (no-op when not running)
# PG_LLM_BACKEND_PYTHONPATH (optional): PYTHONPATH of the server, so its plpython finds extra
# modules; tests set it to tests/backend_python for their test-only wrappers (never installed).
set -euo pipefail
BINDIR=$(${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config} --bindir)
cmd=$1; dir=$2; port=${3:-54329}
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
case "$cmd" in
start)
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    mkdir -p "$dir"; chown postgres: "$dir" 2>/dev/null || sudo chown postgres: "$dir"
    as_pg "$BINDIR/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
CONF
  fi
  if ! as_pg "$BINDIR/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_pg env PYTHONPATH="${PG_LLM_BACKEND_PYTHONPATH:-}" \
      "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  fi
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || true
  fi
  ;;
*) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
