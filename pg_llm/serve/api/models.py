"""/v1/models: list, retrieve, delete (fine-tuned models only)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..errors import ApiError, model_not_found

router = APIRouter()


@router.get("/v1/models")
async def list_models(request: Request):
    return {"object": "list", "data": request.app.state.serve.registry.list()}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request):
    for model in request.app.state.serve.registry.list():
        if model["id"] == model_id:
            return model
    raise model_not_found(model_id)


@router.delete("/v1/models/{model_id:path}")
async def delete_model(model_id: str, request: Request):
    state = request.app.state.serve
    if model_id in state.registry.base:
        raise ApiError(400, f"{model_id} is a base model; only fine-tuned models can be "
                       "deleted.", "invalid_request_error", "model", "model_not_deletable")
    if model_id not in state.registry.fine_tuned:
        raise model_not_found(model_id)
    state.jobs.delete_model(model_id)
    return {"id": model_id, "object": "model", "deleted": True}
