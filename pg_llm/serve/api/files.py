"""/v1/files: upload (validated fine-tuning JSONL), list, retrieve, delete, content."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..errors import bad_request, not_found
from ..training.datasets import DatasetError, parse_conversations
from .multipart import parse_form
from .pagination import paginate

router = APIRouter()


def _file_or_404(state, file_id: str) -> dict:
    meta = state.store.get_file(file_id)
    if meta is None:
        raise not_found(f"No such File object: {file_id}", "id")
    return meta


@router.post("/v1/files")
async def upload_file(request: Request):
    # The body's size is bounded while it is read (body_limit.py); parsing and validating a
    # large file takes seconds of CPU, so it runs in a thread, never in the event loop.
    body = await request.body()
    return await run_in_threadpool(_store_upload, request.app.state.serve,
                                   request.headers.get("content-type", ""), body)


def _store_upload(state, content_type: str, body: bytes) -> dict:
    try:
        form = parse_form(content_type, body)
    except ValueError as exc:
        raise bad_request(f"Upload the file as multipart/form-data: {exc}.", "file") from None
    purpose = form["purpose"].text() if "purpose" in form else None
    if purpose != "fine-tune":
        raise bad_request(f"purpose must be 'fine-tune' (the only purpose the local engine "
                          f"supports), got {purpose!r}.", "purpose")
    if "file" not in form:
        raise bad_request("Missing required parameter: 'file'.", "file")
    upload = form["file"]
    try:
        parse_conversations(upload.value)
    except DatasetError as exc:
        raise bad_request(str(exc), "file", "invalid_file_format") from None
    return state.store.add_file(upload.filename or "upload.jsonl", purpose, upload.value)


@router.get("/v1/files")
async def list_files(request: Request):
    state = request.app.state.serve
    files = state.store.list_files()
    purpose = request.query_params.get("purpose")
    if purpose:
        files = [f for f in files if f["purpose"] == purpose]
    q = request.query_params
    return paginate(files, q.get("after"), q.get("limit"), default_limit=10000)


@router.get("/v1/files/{file_id}")
async def get_file(file_id: str, request: Request):
    return _file_or_404(request.app.state.serve, file_id)


@router.get("/v1/files/{file_id}/content")
async def file_content(file_id: str, request: Request):
    state = request.app.state.serve
    _file_or_404(state, file_id)
    return Response(state.store.file_path(file_id).read_bytes(),
                    media_type="application/octet-stream")


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, request: Request):
    state = request.app.state.serve
    _file_or_404(state, file_id)
    state.store.delete_file(file_id)
    return {"id": file_id, "object": "file", "deleted": True}
