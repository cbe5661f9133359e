"""Imported once in the postmaster when pg_llm is in shared_preload_libraries (ext/preload.c).

Every backend forks with these modules already imported, so its first model query skips
the imports. Fork safety: importing must start no thread and open no socket; this module
checks that, so that a dependency that starts doing so is caught here rather than in a
backend that inherited half a thread.
"""

from __future__ import annotations

import gc
import threading

# PL/Python's own module (its ~250 exception classes), registered by ext/preload.c: built
# here once instead of at each backend's first PL/Python call.
import plpy  # noqa: F401

# The scan path (C bridge -> bridge -> ModelTable -> client) and the SQL functions' glue.
import pg_llm.boot  # noqa: F401
import pg_llm.bridge  # noqa: F401
import pg_llm.fdw  # noqa: F401
import pg_llm.interrupts  # noqa: F401
from pg_llm.engines import http

# The answer cache's and audit's hashes (imported at their first use otherwise: ~7 ms).
import hashlib  # noqa: F401,E402

# The TLS context (CA bundle, ~20 ms) is plain memory: build it once, for https engines.
http.ssl_context()

if threading.active_count() != 1:
    raise RuntimeError("pg_llm.preload: importing started a thread; the postmaster must not "
                       "fork with threads (set pg_llm.preload_python = off and report this)")
if http.pool.opened:
    raise RuntimeError("pg_llm.preload: importing opened a connection")

PRELOADED = True

# Everything imported so far lives as long as the server: keep it out of the collector, whose
# passes would otherwise write to every object and copy the whole heap into each backend.
gc.collect()
gc.freeze()
