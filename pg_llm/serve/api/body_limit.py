"""Request bodies are limited while they are read: a declared Content-Length over the limit is
refused before any byte is read, and a chunked body is cut off at the limit (413), so no
request can make the server buffer more than the limit."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from ..errors import ApiError

# A chat request at the largest context is well under 1 MiB; fine-tuning files are uploads.
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
UPLOAD_PATHS = ("/v1/files",)


class BodyTooLarge(Exception):
    pass


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"Request body too large: the limit is {limit} bytes for this "
                    "endpoint.", "invalid_request_error", None, "request_too_large")


class BodyLimit:
    def __init__(self, app, max_json_bytes: int = MAX_JSON_BYTES,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES):
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_upload_bytes if scope["path"] in UPLOAD_PATHS else self.max_json_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._refuse(limit, scope, receive, send)
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(limit, scope, receive, send)

    @staticmethod
    async def _refuse(limit, scope, receive, send):
        err = too_large(limit)
        # Connection: close, so the unread rest of the body is never read.
        await JSONResponse(err.body(), err.status, headers={"connection": "close"})(
            scope, receive, send)
