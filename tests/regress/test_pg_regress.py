"""The C bridge's pg_regress suite (ext/sql/*.sql against ext/expected/*.out), run by
`make -C ext installcheck` on this session's cluster, whose plpython finds the test-only
EchoTable wrapper (tests/backend_python). A failure shows pg_regress's diff."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_CONFIG = os.environ.get("PG_CONFIG") or next(
    (p for p in ("/usr/lib/postgresql/15/bin/pg_config",) if Path(p).exists()), "pg_config")


def test_pg_regress_suite_of_the_bridge(pg_cluster, tmp_path):
    env = {**os.environ, "PGHOST": pg_cluster["host"], "PGPORT": str(pg_cluster["port"]),
           "PGUSER": pg_cluster["user"]}
    run = subprocess.run(["make", "-s", "-C", str(ROOT / "ext"), f"PG_CONFIG={PG_CONFIG}",
                          "installcheck", f"EXTRA_REGRESS_OPTS=--outputdir={tmp_path}"],
                         env=env, capture_output=True, text=True, timeout=300)
    diffs = tmp_path / "regression.diffs"
    assert run.returncode == 0, (diffs.read_text() if diffs.exists() else "") + run.stdout \
        + run.stderr
    assert "tests passed" in run.stdout, run.stdout
