"""The attacker's listener: a real loopback HTTP server run by a hostile role.

Built on tests/fake_openai.py, it answers like an OpenAI-compatible API (so a request that
reached it would look like success to the backend) and records every connection, request
and header it receives. A probe passes when ``attacker.received() == []`` and no connection
was even opened.
"""

from __future__ import annotations

from fake_openai import FakeOpenAI


class Attacker(FakeOpenAI):
    def __init__(self):
        super().__init__(models=("m1", "victim-model"), api_key=None)  # takes any key, to steal it

    def received(self) -> list:
        """Every request that reached the listener: (method, path, headers)."""
        with self._lock:
            return [(r.method, r.path, r.headers) for r in self.requests]

    def assert_untouched(self) -> None:
        assert self.received() == [], self.received()
        assert self.connections_opened == 0, "a connection reached the attacker's listener"
