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
# The package itself changes with every build: replace it wholesale (no stale modules).
$SUDO rm -rf "$TARGET/pg_llm"
$SUDO cp -r "$ROOT/pg_llm" "$TARGET/pg_llm"
$SUDO find "$TARGET/pg_llm" -name __pycache__ -prune -exec rm -rf {} +
$SUDO rm -rf "$TARGET/pg_llm/serve"   # the heavy engine never runs inside the backend
# Backends (the postgres OS user) cannot write __pycache__ here: without these, every new
# connection compiled pg_llm's modules again before its first query.
$SUDO "$PY" -m compileall -q "$TARGET/pg_llm" >/dev/null
$SUDO chmod -R a+rX "$TARGET"
