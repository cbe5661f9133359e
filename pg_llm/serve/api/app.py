"""The HTTP application: OpenAI-style errors, the access middleware, /health, and one router
per API noun (chat, files, fine_tuning, models)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ApiError, not_found
from ..inference.engine import InferenceEngine
from ..registry import ModelRegistry
from ..store import Store
from ..training.jobs import JobManager
from . import chat, files, fine_tuning, models
from .access import AuthAndAccessLog
from .body_limit import BodyLimit


@dataclass
class ServeState:
    store: Store
    registry: ModelRegistry
    inference: InferenceEngine
    jobs: JobManager
    api_key: str | None = None


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
                "requests_in_flight": state.inference.requests_in_flight(),
                "jobs": {s: sum(1 for j in state.store.list_jobs() if j["status"] == s)
                         for s in ("validating_files", "queued", "running")}}

    for module in (chat, files, fine_tuning, models):
        app.include_router(module.router)
    app.add_middleware(BodyLimit)
    app.add_middleware(AuthAndAccessLog, api_key=state.api_key)  # outermost: runs first
    return app
