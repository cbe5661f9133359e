#!/usr/bin/env bash
# Builds and installs Multicorn2 (the Python FDW) for the system PostgreSQL 15, and makes the
# pg_llm package importable by the Python it embeds, so that model tables can also run on
# `FOREIGN DATA WRAPPER multicorn` (docs/multicorn.md).
#   build-multicorn2.sh [SRC]          SRC: a multicorn2 tarball or source tree
#   build-multicorn2.sh --if-available  the shared tarball if it is there, else say so and exit 0
# Quick on re-run: a stamp records what was installed from which source.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEFAULT_SRC="$ROOT/../shared/vendor/multicorn2-3.2.tar.gz"
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PY=${SYSTEM_PYTHON:-/usr/bin/python3}
BACKEND_PATH=${PG_LLM_PYTHON_PATH:-/usr/local/lib/pg_llm/python}

SRC=${1:-${MULTICORN2_SRC:-$DEFAULT_SRC}}
if [ "$SRC" = "--if-available" ]; then
  SRC=${MULTICORN2_SRC:-$DEFAULT_SRC}
  if [ ! -e "$SRC" ]; then
    if [ -f "$("${PG_CONFIG}" --sharedir)/extension/multicorn.control" ]; then
      echo "pg_llm: Multicorn2 source not found at $SRC: testing the Multicorn2 already installed"
    else
      echo "pg_llm: Multicorn2 source not found at $SRC: the Multicorn2 tests will be skipped" \
           "(make multicorn2 MULTICORN2_SRC=<tarball or tree>)"
    fi
    exit 0
  fi
fi
[ -e "$SRC" ] || { echo "pg_llm: no Multicorn2 source at $SRC (give MULTICORN2_SRC=<tarball or tree>)" >&2; exit 1; }
SRC=$(cd "$(dirname "$SRC")" && pwd)/$(basename "$SRC")

# The system Python's own site directory: a .pth file there puts the backend package
# directory on sys.path of every embedded interpreter, whichever cluster or service starts it.
SITE=$("$PY" -c 'import site; print(site.getsitepackages()[0])')
PTH="$SITE/pg_llm.pth"
PKGLIB=$("$PG_CONFIG" --pkglibdir)
SHARE=$("$PG_CONFIG" --sharedir)
STAMP="$SHARE/extension/multicorn.pg_llm-stamp"

if [ -f "$SRC" ]; then
  source_id="tarball $(sha256sum "$SRC" | cut -d' ' -f1)"
else
  source_id="tree $(cd "$SRC" && find . -path ./.git -prune -o -type f -print | LC_ALL=C sort \
                    | xargs -d '\n' sha256sum | sha256sum | cut -d' ' -f1)"
fi
# pg_llm's fixes to Multicorn2 (each patch says why); applied when they still apply.
PATCHES=("$ROOT"/scripts/multicorn2-patches/*.patch)
want="$source_id $(cat "${PATCHES[@]}" | sha256sum | cut -d' ' -f1) $("$PG_CONFIG" --version) $BACKEND_PATH"

installed_ok() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -f "$PKGLIB/multicorn.so" ] \
    && [ -f "$PTH" ] && [ "$(cat "$PTH")" = "$BACKEND_PATH" ] \
    && "$PY" -c 'import multicorn' 2>/dev/null
}
if installed_ok; then
  echo "pg_llm: Multicorn2 is installed and up to date ($PKGLIB/multicorn.so)"
  exit 0
fi

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
"$ROOT/scripts/install-system.sh"
BUILD=$(mktemp -d "${TMPDIR:-/tmp}/pg_llm-multicorn2.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
if [ -f "$SRC" ]; then
  tar -xzf "$SRC" -C "$BUILD" --strip-components=1
else
  cp -r "$SRC"/. "$BUILD"/
fi
for p in "${PATCHES[@]}"; do
  if patch -d "$BUILD" -p1 --forward --dry-run -s <"$p" >/dev/null 2>&1; then
    patch -d "$BUILD" -p1 --forward -s <"$p"
  else
    echo "pg_llm: $(basename "$p") does not apply to $SRC (fixed there already?): skipped"
  fi
done
echo "pg_llm: building Multicorn2 from $SRC"
# A plain system PATH: pyenv shims ahead of /usr/bin make Multicorn's Makefile and setup.py
# pick another Python than the libpython3.11 that PostgreSQL's plpython3u embeds.
(
  cd "$BUILD"
  export PATH="$(dirname "$PG_CONFIG"):$(getconf PATH)"
  unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
  make -s PG_CONFIG="$PG_CONFIG" >build.log 2>&1 || { cat build.log >&2; exit 1; }
  # -o python_code: its recipe upgrades pip from the network with whichever pip is first.
  $SUDO env PATH="$PATH" make -s PG_CONFIG="$PG_CONFIG" -o python_code install >>build.log 2>&1 \
    || { cat build.log >&2; exit 1; }
  $SUDO env PATH="$PATH" "$PY" -m pip install -q --disable-pip-version-check --no-index \
    --no-deps --no-build-isolation --break-system-packages . >>build.log 2>&1 \
    || { cat build.log >&2; exit 1; }
)
echo "$BACKEND_PATH" | $SUDO tee "$PTH" >/dev/null
$SUDO chmod a+r "$PTH"
echo "$want" | $SUDO tee "$STAMP" >/dev/null
"$PY" -c 'import multicorn' || { echo "pg_llm: multicorn does not import in $PY" >&2; exit 1; }
echo "pg_llm: Multicorn2 installed ($PKGLIB/multicorn.so); $PTH puts $BACKEND_PATH on its sys.path"
