#!/usr/bin/env python3
"""Builds the extension's versioned scripts from sql/ (see sql/README.md).

    build.py OUT/pg_llm--0.2.0.sql          fresh install of 0.2.0
    build.py OUT/pg_llm--0.1.0--0.2.0.sql   upgrade from the released 0.1.0
    build.py OUT/pg_llm--0.1.0.sql          the released 0.1.0 install script, as frozen

The first two are head.sql, then every incremental file wrapped so it runs once per
database (its name is recorded in llm.migration), then every idempotent file as it is. Only
the first line and, for releases older than llm.migration, the record of what they already
hold differ. A released version's install script is not built: it is decompressed from
released/pg_llm--X.sql.gz and must have the SHA-256 that released/SHA256SUMS records.
Standard library only: ext/Makefile runs it with any python3.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import sys
from pathlib import Path

SQL = Path(__file__).resolve().parent
NAME = re.compile(r"^(\d{3})-[a-z0-9][a-z0-9-]*\.sql$")
TARGET = re.compile(r"^pg_llm--(\d+\.\d+\.\d+)(?:--(\d+\.\d+\.\d+))?\.sql$")

# Releases made before llm.migration existed, and the incremental files whose objects their
# install script already created. An upgrade from them records these as applied instead of
# running them.
PRE_MIGRATION_RELEASES = {
    "0.1.0": ("001-bridge.sql", "002-catalog.sql", "003-finetune.sql", "004-evaluate.sql"),
}

ONCE = """\
-- incremental/{name}
DO $migrate$
DECLARE
    _name text := '{name}';
    _body text := $migration_body${body}$migration_body$;
    _ran text;
BEGIN
    SELECT m.body INTO _ran FROM llm.migration m WHERE m.name = _name;
    IF FOUND THEN
        IF _ran IS DISTINCT FROM _body THEN
            RAISE WARNING 'incremental file % changed after it ran in this database', _name
                USING HINT = 'Released incremental files must never be edited; add a new one.';
        END IF;
        RETURN;
    END IF;
    EXECUTE _body;
    INSERT INTO llm.migration (name, applied_at_version, body) VALUES (_name, '{version}', _body);
END
$migrate$;
"""

ALREADY_APPLIED = """\
-- {release} predates llm.migration: its install script already made these.
INSERT INTO llm.migration (name, applied_at_version, body) VALUES
{rows}
ON CONFLICT (name) DO NOTHING;
"""


def fragments(folder: str) -> list[Path]:
    files = sorted((SQL / folder).glob("*.sql"))
    for f in files:
        if not NAME.match(f.name):
            sys.exit(f"sql/{folder}/{f.name}: name must be NNN-topic.sql (lower case, dashes)")
    return files


def incremental_files() -> list[Path]:
    files = fragments("incremental")
    numbers = [NAME.match(f.name).group(1) for f in files]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        sys.exit(f"sql/incremental: two files share the number {', '.join(duplicates)}; "
                 "each incremental file needs its own number (the order they run in)")
    return files


def body(path: Path) -> str:
    text = path.read_text()
    if "$migration_body$" in text:
        sys.exit(f"{path}: must not contain $migration_body$ (the build quotes files with it)")
    return text


def recorded_sha256() -> dict[str, str]:
    """released/SHA256SUMS (`sha256sum` format): script name -> SHA-256 of its bytes."""
    sums = {}
    for line in (SQL / "released" / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        sums[name.strip()] = digest
    return sums


def released_script(version: str) -> bytes:
    """The frozen install script of a released version, checked against its recorded hash."""
    name = f"pg_llm--{version}.sql"
    path = SQL / "released" / f"{name}.gz"
    if not path.exists():
        sys.exit(f"no released version {version} (sql/released/{name}.gz)")
    text = gzip.decompress(path.read_bytes())
    expected = recorded_sha256().get(name)
    if expected is None:
        sys.exit(f"sql/released/SHA256SUMS has no line for {name}")
    if hashlib.sha256(text).hexdigest() != expected:
        sys.exit(f"sql/released/{name}.gz does not hold the released {name}: its SHA-256 "
                 f"differs from sql/released/SHA256SUMS (released scripts are never edited)")
    return text


def build(version: str, from_version: str | None) -> str:
    if from_version is None:
        first = '\\echo Use "CREATE EXTENSION pg_llm" to load this file. \\quit\n'
    else:
        released_script(from_version)
        first = '\\echo Use "ALTER EXTENSION pg_llm UPDATE" to load this file. \\quit\n'
    parts = [first, f"-- pg_llm {version}, built by sql/build.py from sql/; do not edit.\n",
             (SQL / "head.sql").read_text()]
    incremental = incremental_files()
    if from_version in PRE_MIGRATION_RELEASES:
        known = {f.name: f for f in incremental}
        rows = ",\n".join(
            f"    ('{name}', '{from_version}', $migration_body${body(known[name])}$migration_body$)"
            for name in PRE_MIGRATION_RELEASES[from_version])
        parts.append(ALREADY_APPLIED.format(release=from_version, rows=rows))
    for f in incremental:
        parts.append(ONCE.format(name=f.name, body=body(f), version=version))
    for f in fragments("idempotent"):
        parts.append(f"-- idempotent/{f.name}\n{f.read_text()}")
    return "\n".join(parts)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(__doc__)
    out = Path(argv[1])
    match = TARGET.match(out.name)
    if not match:
        sys.exit(f"{out.name}: expected pg_llm--VERSION.sql or pg_llm--FROM--TO.sql")
    if match.group(2):
        from_version, version = match.group(1), match.group(2)
    else:
        from_version, version = None, match.group(1)
    if from_version is None and (SQL / "released" / f"pg_llm--{version}.sql.gz").exists():
        out.write_bytes(released_script(version))
    else:
        out.write_text(build(version, from_version))


if __name__ == "__main__":
    main(sys.argv)
