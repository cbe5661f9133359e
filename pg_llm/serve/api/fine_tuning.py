"""/v1/fine_tuning/jobs: create, list, retrieve, events, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..training.jobs import public
from .pagination import paginate
from .request_body import json_body

router = APIRouter()


@router.post("/v1/fine_tuning/jobs")
async def create_job(request: Request):
    jobs = request.app.state.serve.jobs
    body = await json_body(request)
    return public(await run_in_threadpool(jobs.create, body))


@router.get("/v1/fine_tuning/jobs")
async def list_jobs(request: Request):
    state = request.app.state.serve
    q = request.query_params
    return paginate([public(j) for j in state.store.list_jobs()], q.get("after"), q.get("limit"))


@router.get("/v1/fine_tuning/jobs/{job_id}")
async def get_job(job_id: str, request: Request):
    return public(request.app.state.serve.jobs.get(job_id))


@router.get("/v1/fine_tuning/jobs/{job_id}/events")
async def job_events(job_id: str, request: Request):
    state = request.app.state.serve
    state.jobs.get(job_id)  # 404 for an unknown job
    q = request.query_params
    return paginate(state.store.list_events(job_id), q.get("after"), q.get("limit"))


@router.post("/v1/fine_tuning/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, request: Request):
    jobs = request.app.state.serve.jobs
    return public(await run_in_threadpool(jobs.cancel, job_id))
