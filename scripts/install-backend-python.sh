#!/usr/bin/env bash
# Installs what the PostgreSQL backend's Python (plpython3u = the system python3) imports:
# the light client dependencies and the pg_llm package itself, into a directory the
# `postgres` OS user can read. The C library puts it on sys.path (GUC pg_llm.python_path).
set -euo pipefail
TARGET=${PG_LLM_PYTHON_PATH:-/usr/local/lib/pg_llm/python}
PY=${SYSTEM_PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STAMP="$TARGET/.deps-stamp"
DEPS="openai>=1.40 httpx>=0.27 sqlalchemy>=2.0 psycopg[binary]>=3.1 sqlglot>=25"
SUDO=""; [ "$(id -u)" -ne 0 ] && [ ! -w "$(dirname "$TARGET")" ] && SUDO="sudo"
$SUDO mkdir -p "$TARGET"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$DEPS" ]; then
  echo "pg_llm: installing backend Python dependencies into $TARGET"
  $SUDO "$PY" -m pip install -q --disable-pip-version-check --upgrade --target "$TARGET" $DEPS
  echo "$DEPS" | $SUDO tee "$STAMP" >/dev/null
fi
# The package itself changes with every build: replace it wholesale (no stale modules),
# built aside and swapped in by rename, so that a backend starting meanwhile never finds it
# half copied.
NEW="$TARGET/.pg_llm.new.$$"; OLD="$TARGET/.pg_llm.old.$$"
$SUDO rm -rf "$NEW"
$SUDO cp -r "$ROOT/pg_llm" "$NEW"
$SUDO find "$NEW" -name __pycache__ -prune -exec rm -rf {} +
# Only what the backend runs: the local engine and the client's commands stay out.
grep -v '^#' "$ROOT/scripts/backend-python-leaves-out.txt" | while read -r path; do
  case "$path" in ""|/*|*..*) continue ;; esac
  $SUDO rm -rf "${NEW:?}/$path"
done
# Backends (the postgres OS user) cannot write __pycache__ here: without these, every new
# connection compiled pg_llm's modules again before its first query.
$SUDO "$PY" -m compileall -q "$NEW" >/dev/null
$SUDO chmod -R a+rX "$NEW"
if [ -e "$TARGET/pg_llm" ]; then $SUDO mv "$TARGET/pg_llm" "$OLD"; fi
$SUDO mv "$NEW" "$TARGET/pg_llm"
$SUDO rm -rf "$OLD"
$SUDO chmod -R a+rX "$TARGET"
