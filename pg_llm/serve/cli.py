"""`pg-llm serve`: refuses an open bind without a key, then runs the engine (its options are
in options.py; no heavy imports here)."""

from __future__ import annotations

import ipaddress
import os
import sys

from .options import add_arguments


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
