#!/usr/bin/env bash
# Runs pytest from the project virtualenv. tests/conftest.py starts (and always stops) a
# private PostgreSQL cluster as the `postgres` OS user.
set -euo pipefail
cd "$(dirname "$0")/.."
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1000000000
exec .venv/bin/pytest "$@"
