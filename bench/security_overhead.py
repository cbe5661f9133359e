"""What the security checks add to a scan, measured side by side (docs/security.md).

Per scan, pg_llm now looks up the catalog's model for the table's oid
(pg_llm.bridge.catalog_model: one prepared SPI query) and checks SELECT at plan time
(ext/privileges.c: syscache lookups). This prints the time of an EchoTable scan (no model, no
HTTP: the cheapest scan there is) and, measured in the same session, the time of the lookup
alone, as a share of that scan. A real model scan waits on HTTP for milliseconds to seconds,
so the share there is far smaller.

Runs its own private cluster (scripts/pgcluster.sh); needs `make ext backend-python`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from private_cluster import bench_database, create_echo_table  # noqa: E402

N = 2000
LOOKUPS = 20000


def per_query_ms(conn, sql: str, n: int) -> float:
    with conn.cursor() as cur:
        started = time.perf_counter()
        for _ in range(n):
            cur.execute(sql)
            cur.fetchall()
        return (time.perf_counter() - started) * 1000 / n


def main() -> None:
    with bench_database("bench_security") as conn:
        create_echo_table(conn)
        # the lookup exactly as the bridge runs it, in a loop inside one PL/Python call
        conn.execute(f"""CREATE FUNCTION pg_temp.lookups(relid oid) RETURNS float8
            LANGUAGE plpython3u AS $$
import time
plan = plpy.prepare("SELECT name FROM llm.models WHERE relid::oid = $1", ["oid"])
started = time.perf_counter()
for _ in range({LOOKUPS}):
    plpy.execute(plan, [relid])
return (time.perf_counter() - started) * 1000 / {LOOKUPS}
$$""")
        sql = "SELECT content, answer FROM echo_t WHERE content = 'x'"
        per_query_ms(conn, sql, 100)  # warm: imports, plans
        scans, lookups = [], []
        for _ in range(10):  # interleaved rounds, best of each: the machine is shared
            scans.append(per_query_ms(conn, sql, N // 10))
            lookups.append(conn.execute("SELECT pg_temp.lookups('echo_t'::regclass)").fetchone()[0])
        scan, lookup = min(scans), min(lookups)
        print(f"echo scan {scan:.3f} ms/query   catalog lookup {lookup * 1000:.1f} us/scan   "
              f"share {lookup / scan:.1%} of the cheapest scan")


if __name__ == "__main__":
    main()
