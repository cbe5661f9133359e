"""The local engine as a Ray Serve application: N replicas of the same FastAPI app behind
Ray Serve's HTTP proxy, sharing one data dir (files, jobs, adapters), plus the job scheduler.

    pg-llm serve --ray auto --replicas 2 --data-dir /shared/pg_llm   # an existing cluster
    pg-llm serve --ray local --replicas 2                           # a private one-node cluster

Every replica loads the base models itself and serves any version: fine-tuned adapters are
read from the data dir (shared.SharedRegistry), so the data dir must be a directory every node
sees (NFS or the like) on a multi-node cluster.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import ray
from ray import serve

from ..inference.engine import InferenceEngine
from ..options import add_arguments
from ..store import Store
from .scheduler import NAMESPACE, SCHEDULER_NAME, start_scheduler
from .shared import ReplicaJobs, SharedRegistry

APP_NAME = "pg_llm"


def _config(args) -> dict:
    """The options every replica and the scheduler rebuild the engine from (plain data)."""
    from ..server import default_data_dir

    data_dir = os.path.abspath(os.path.expanduser(str(args.data_dir or default_data_dir())))
    return {"data_dir": data_dir,
            "model": list(args.model), "no_default_model": bool(args.no_default_model),
            "threads": args.threads, "parallel": args.parallel, "ctx_per_seq": args.ctx_per_seq,
            "weights": args.weights, "max_queue": args.max_queue,
            "max_queued_jobs": args.max_queued_jobs,
            "api_key": args.api_key or os.environ.get("PG_LLM_SERVE_API_KEY") or None}


@serve.deployment(name="LocalEngine")
class LocalEngine:
    """One replica: the plain engine's FastAPI app over the shared data dir."""

    def __init__(self, config: dict):
        from ..api.app import ServeState, create_app
        from ..server import base_models

        store = Store(config["data_dir"])
        registry = SharedRegistry(base_models(config["model"], not config["no_default_model"],
                                              store.cache_dir), store)
        inference = InferenceEngine(registry, n_parallel=config["parallel"],
                                    ctx_per_seq=config["ctx_per_seq"],
                                    n_threads=config["threads"], max_queue=config["max_queue"],
                                    cache_dir=store.cache_dir,
                                    serve_format=None if config["weights"] == "as-is"
                                    else config["weights"])

        def wake_scheduler():
            try:
                ray.get_actor(SCHEDULER_NAME, namespace=NAMESPACE).wake.remote()
            except ValueError:
                pass  # restarting: it polls the data dir every second anyway

        jobs = ReplicaJobs(store, registry, wake=wake_scheduler, n_threads=config["threads"],
                           max_queued_jobs=config["max_queued_jobs"])
        self.state = ServeState(store, registry, inference, jobs, config["api_key"])
        self.app = create_app(self.state)
        self.replica = serve.get_replica_context().replica_tag

    async def __call__(self, request):
        """Hands the request to the FastAPI app as it is (ASGI), and its answer back."""
        from starlette.responses import Response

        start, body = {}, []

        async def send(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(dict(request.scope), request.receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])
                   if k.lower() != b"content-length"}
        headers["x-pg-llm-replica"] = self.replica  # which replica answered (tests, debugging)
        return Response(b"".join(body), status_code=start.get("status", 500), headers=headers)

    def __del__(self):
        state = getattr(self, "state", None)
        if state is not None:
            state.inference.close()


def deploy(args) -> str:
    """Starts the scheduler and the replicas on the connected cluster; returns the base URL."""
    config = _config(args)
    Store(config["data_dir"])  # create the layout once, before replicas race to
    ray.get(start_scheduler(config).ping.remote())
    serve.start(http_options={"host": args.host, "port": args.port})
    replica_cpus = float(os.environ.get("PG_LLM_RAY_REPLICA_CPUS", "0.5"))
    serve.run(LocalEngine.options(num_replicas=args.replicas,
                                  ray_actor_options={"num_cpus": replica_cpus}).bind(config),
              name=APP_NAME, route_prefix="/")
    return f"http://{args.host}:{args.port}/v1"


def run(args) -> int:
    """`pg-llm serve --ray ADDRESS`: deploy, then stay in the foreground until stopped."""
    if args.ray == "local":
        ray.init(num_cpus=int(os.environ.get("PG_LLM_RAY_CPUS", os.cpu_count() or 2)),
                 include_dashboard=False, namespace=NAMESPACE)
    else:
        ray.init(address=args.ray, namespace=NAMESPACE)
    url = deploy(args)
    print(f"pg_llm on Ray: {url} ({args.replicas} replicas; data dir "
          f"{_config(args)['data_dir']}; cluster {ray.get_runtime_context().gcs_address})",
          flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    serve.delete(APP_NAME)
    try:
        ray.kill(ray.get_actor(SCHEDULER_NAME, namespace=NAMESPACE), no_restart=True)
    except ValueError:
        pass
    if args.ray == "local":
        serve.shutdown()
        ray.shutdown()
    return 0


def main(argv=None) -> int:
    """`python -m pg_llm.serve.cluster.app --ray ... [pg-llm serve options]`."""
    parser = argparse.ArgumentParser(description="Run the local engine on a Ray cluster.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
