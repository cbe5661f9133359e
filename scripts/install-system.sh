#!/usr/bin/env bash
# Installs the Debian packages pg_llm needs (PostgreSQL 15 server + headers, plpython3u,
# pg_cron, and the compiler and Python headers Multicorn2's build needs). Skips the package
# manager entirely when everything is already there.
set -euo pipefail
PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-plpython3-15 postgresql-15-cron
          python3-pip make gcc python3-dev python3-setuptools build-essential)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "pg_llm: installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
