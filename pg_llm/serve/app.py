"""The HTTP application: OpenAI-style errors, bearer-key auth, one log line per request,
/health and /v1/models. Endpoint groups live in routes_*.py."""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import routes_chat, routes_files, routes_jobs
from .api_errors import ApiError, not_found, unauthorized
from .engine import Engine
from .jobs import JobManager
from .models import ModelRegistry
from .store import Store

log = logging.getLogger("pg_llm.serve")


@dataclass
class ServeState:
    store: Store
    registry: ModelRegistry
    engine: Engine
    jobs: JobManager
    api_key: str | None = None


class AuthAndAccessLog:
    """Pure ASGI middleware (so streaming responses are timed to their last byte)."""

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
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        return hmac.compare_digest(given, f"Bearer {self.api_key}")


def create_app(state: ServeState) -> FastAPI:
    app = FastAPI(title="pg_llm local engine", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serve = state

    @app.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        return JSONResponse(exc.body(), exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        if exc.status_code == 404:
            err = not_found(f"Unknown endpoint: {request.method} {request.url.path}")
        else:
            err = ApiError(exc.status_code, str(exc.detail))
        return JSONResponse(err.body(), err.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc):
        return JSONResponse(ApiError(400, json.dumps(exc.errors(), default=str)).body(), 400)

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": sorted(m["id"] for m in state.registry.list()),
                "requests_in_flight": state.engine.requests_in_flight(),
                "jobs": {s: sum(1 for j in state.store.list_jobs() if j["status"] == s)
                         for s in ("validating_files", "queued", "running")}}

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": state.registry.list()}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str):
        for model in state.registry.list():
            if model["id"] == model_id:
                return model
        raise ApiError(404, f"The model `{model_id}` does not exist or you do not have access "
                       "to it.", "invalid_request_error", "model", "model_not_found")

    @app.delete("/v1/models/{model_id:path}")
    async def delete_model(model_id: str):
        if model_id in state.registry.base:
            raise ApiError(400, f"{model_id} is a base model; only fine-tuned models can be "
                           "deleted.", "invalid_request_error", "model", "model_not_deletable")
        if model_id not in state.registry.fine_tuned:
            raise ApiError(404, f"The model `{model_id}` does not exist or you do not have "
                           "access to it.", "invalid_request_error", "model", "model_not_found")
        state.jobs.delete_model(model_id)
        return {"id": model_id, "object": "model", "deleted": True}

    app.include_router(routes_chat.router)
    app.include_router(routes_files.router)
    app.include_router(routes_jobs.router)
    app.add_middleware(AuthAndAccessLog, api_key=state.api_key)
    return app
