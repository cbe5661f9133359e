"""The scan the C bridge is running in this backend, for code below the wrapper that needs
more than the Multicorn API gives it: the scanning role (budgets, audit; Python runs as the
extension owner), the table's oid (deployment routes), the statement's guards.

Set only by pg_llm.bridge.run_scan, for the length of one scan; None otherwise (outside a
scan, and in a scan run by a real Multicorn2). Lower modules read it here rather than from
pg_llm.bridge, so nothing below the bridge imports it back.
"""

from __future__ import annotations

current_request = None  # a pg_llm.bridge.ScanRequest while one runs
