"""Loads a base model for training with transformers, straight from its GGUF file.

Dequantising the GGUF and rebuilding its tokenizer takes a while, so the result is kept as an
ordinary Hugging Face checkpoint under <data-dir>/cache and reused by later jobs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def _cache_key(gguf_path: Path) -> str:
    st = gguf_path.stat()
    return hashlib.sha1(f"{gguf_path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def load_model_and_tokenizer(gguf_path: Path, cache_dir: Path, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = cache_dir / f"hf-{_cache_key(gguf_path)}"
    if not (cached / ".complete").exists():
        src = dict(pretrained_model_name_or_path=str(gguf_path.parent), gguf_file=gguf_path.name)
        tokenizer = AutoTokenizer.from_pretrained(**src)
        model = AutoModelForCausalLM.from_pretrained(**src, dtype=dtype)
        tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / ".complete").touch()
        shutil.rmtree(cached, ignore_errors=True)
        os.replace(tmp, cached)
        return model, tokenizer
    tokenizer = AutoTokenizer.from_pretrained(str(cached))
    model = AutoModelForCausalLM.from_pretrained(str(cached), dtype=dtype)
    return model, tokenizer
