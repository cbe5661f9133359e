"""Loads a base model's weights for training with transformers, straight from its GGUF file.

Dequantising the GGUF takes a while, so the result is kept as an ordinary Hugging Face
checkpoint under <data-dir>/cache and reused by later jobs. (Tokenization does not come from
here: training tokenizes with llama.cpp, exactly as inference does.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def _cache_key(gguf_path: Path) -> str:
    st = gguf_path.stat()
    return hashlib.sha1(f"{gguf_path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def checkpoint_dir(gguf_path: Path, cache_dir: Path) -> Path:
    """Where the Hugging Face copy of a GGUF base lives (the base its PEFT adapters name)."""
    return cache_dir / f"hf-fp32-{_cache_key(gguf_path)}"


def load_model(gguf_path: Path, cache_dir: Path, dtype):
    import torch
    from transformers import AutoModelForCausalLM

    # Cached in fp32: the dequantised values are exact there, whatever dtype a job trains in.
    cached = checkpoint_dir(gguf_path, cache_dir)
    if (cached / ".complete").exists():
        return AutoModelForCausalLM.from_pretrained(str(cached), dtype=dtype)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent),
                                                  gguf_file=gguf_path.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained (it counts as "quantized" even though its
    # weights are now plain tensors), so copy them into an ordinary model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    del loaded
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    (tmp / ".complete").touch()
    shutil.rmtree(cached, ignore_errors=True)
    os.replace(tmp, cached)
    return model.to(dtype)
