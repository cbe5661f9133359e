"""Bearer-key check and one log line per request, as pure ASGI middleware (so streaming
responses are timed to their last byte)."""

from __future__ import annotations

import hmac
import logging
import time

from fastapi.responses import JSONResponse

from ..errors import unauthorized

log = logging.getLogger("pg_llm.serve")


class AuthAndAccessLog:
    def __init__(self, app, api_key: str | None):
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_logged(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if self.api_key and scope["path"].startswith("/v1") and not self._authorised(scope):
                err = unauthorized()
                await JSONResponse(err.body(), err.status)(scope, receive, send_logged)
            else:
                await self.app(scope, receive, send_logged)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info("%s %s %s %d %.3fs", client[0], scope["method"], scope["path"],
                     status["code"], time.perf_counter() - started)

    def _authorised(self, scope) -> bool:
        # Bytes, not str: compare_digest refuses non-ASCII text, and a header is any bytes.
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        return hmac.compare_digest(given, b"Bearer " + self.api_key.encode())
