"""POST /v1/chat/completions (plain and SSE streaming) and POST /v1/tokenize."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..errors import ApiError, bad_request, model_not_found, overloaded
from ..inference.batching import GenerationRequest, PromptTooLong, QueueFull
from ..inference.chat_template import TemplateError
from ..inference.json_grammar import grammar_for
from .chat_params import parse_chat_body, parse_messages
from .request_body import json_body

router = APIRouter()


def resolve_model(state, model_id):
    if not isinstance(model_id, str) or not model_id:
        raise bad_request("Missing required parameter: 'model'.", "model")
    resolved = state.registry.resolve(model_id)
    if resolved is None:
        raise model_not_found(model_id)
    return resolved


async def _grammar(state, base, params, max_tokens) -> str | None:
    """The request's GBNF, parsed now so that a bad one is a 400 (and cached for decoding)."""
    if params.grammar is None:
        # its strings sized so that the answer closes within max_tokens
        return grammar_for(params.response_format, max_tokens)
    try:
        await run_in_threadpool(state.inference.check_grammar, base, params.grammar)
    except ValueError as exc:
        raise bad_request(str(exc), "grammar") from None
    return params.grammar


async def _prompt_tokens(state, base, messages):
    try:
        return await run_in_threadpool(state.inference.chat_prompt, base, messages)
    except (TemplateError, ValueError) as exc:
        raise bad_request(str(exc), "messages") from None


@router.post("/v1/chat/completions")
async def chat_completions(request: Request):
    state = request.app.state.serve
    params = parse_chat_body(await json_body(request))
    base, ft = resolve_model(state, params.model)
    tokens = await _prompt_tokens(state, base, params.messages)
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    room = state.inference.ctx_per_seq - len(tokens)
    max_tokens = min(params.max_tokens or room, max(room, 1))
    gen = GenerationRequest(
        prompt_tokens=tokens, max_tokens=max_tokens,
        temperature=params.temperature, top_p=params.top_p, seed=params.seed,
        stop=params.stop, adapter=ft.adapter_path if ft else None,
        alone=params.seed is not None,  # OpenAI's seed: the same request, the same answer
        grammar=await _grammar(state, base, params, max_tokens),
        on_event=lambda kind, payload: loop.call_soon_threadsafe(events.put_nowait,
                                                                 (kind, payload)))
    try:
        state.inference.submit(base, gen)
    except QueueFull as exc:
        raise overloaded(str(exc)) from None
    except PromptTooLong as exc:
        raise bad_request(str(exc), "messages", "context_length_exceeded") from None
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    if params.stream:
        return StreamingResponse(_sse(gen, events, completion_id, created, params),
                                 media_type="text/event-stream")
    parts, finish = [], None
    try:
        while True:
            kind, payload = await events.get()
            if kind == "text":
                parts.append(payload)
            elif kind == "error":
                raise ApiError(500, payload, "server_error")
            else:
                finish = payload
                break
    finally:
        gen.cancelled.set()  # a no-op once finished; frees the slot if the client went away
    return JSONResponse({
        "id": completion_id, "object": "chat.completion", "created": created,
        "model": params.model, "system_fingerprint": "pg_llm-local",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(parts),
                                             "refusal": None},
                     "logprobs": None, "finish_reason": finish["finish_reason"]}],
        "usage": _usage(finish)})


def _usage(done: dict) -> dict:
    return {"prompt_tokens": done["prompt_tokens"], "completion_tokens": done["completion_tokens"],
            "total_tokens": done["prompt_tokens"] + done["completion_tokens"]}


async def _sse(gen, events, completion_id, created, params):
    def chunk(delta, finish=None, usage=None, choices=True):
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": params.model, "system_fingerprint": "pg_llm-local",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}] if choices else []}
        if usage is not None:
            body["usage"] = usage
        return f"data: {json.dumps(body)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        while True:
            kind, payload = await events.get()
            if kind == "text":
                yield chunk({"content": payload})
            elif kind == "error":
                yield f"data: {json.dumps(ApiError(500, payload, 'server_error').body())}\n\n"
                break
            else:
                yield chunk({}, finish=payload["finish_reason"])
                if params.include_usage:
                    yield chunk({}, usage=_usage(payload), choices=False)
                break
        yield "data: [DONE]\n\n"
    finally:
        gen.cancelled.set()  # client disconnected mid-stream: stop generating


@router.post("/v1/tokenize")
async def tokenize(request: Request):
    state = request.app.state.serve
    body = await json_body(request)
    base, _ = resolve_model(state, body.get("model"))
    if "messages" in body:
        tokens = await _prompt_tokens(state, base, parse_messages(body["messages"]))
    elif isinstance(body.get("text"), str):
        tokens = await run_in_threadpool(state.inference.text_tokens, base, body["text"])
    else:
        raise bad_request("Give either 'messages' (a chat) or 'text' (a string).", "messages")
    return {"model": body["model"], "count": len(tokens), "tokens": tokens}
