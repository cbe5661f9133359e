"""Every fine-tuned version is also kept as a standard PEFT adapter directory, so engines that
load LoRA adapters at run time (vLLM, docs/scale-out.md) can serve it:

    jobs/<job-id>/adapter/adapter_config.json, adapter_model.safetensors, pg_llm.json

``adapter_config.json``'s ``base_model_name_or_path`` names the Hugging Face checkpoint the
adapter applies to (the directory given with --model, or the fp32 copy of a GGUF base under
<data-dir>/cache); ``pg_llm.json`` adds the local engine's model id and the GGUF it serves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ADAPTER_DIR = "adapter"
IDENTITY_FILE = "pg_llm.json"


def write_peft_adapter(peft_model, out_dir: Path, *, base_model: str, hf_base_dir: Path,
                       base_gguf: Path | None, lora: dict) -> Path:
    target = out_dir / ADAPTER_DIR
    peft_model.save_pretrained(str(target), safe_serialization=True)
    config_path = target / "adapter_config.json"
    config = json.loads(config_path.read_text())
    # peft records whatever path the weights came from; name the HF base explicitly
    config["base_model_name_or_path"] = str(hf_base_dir)
    _write(config_path, config)
    _write(target / IDENTITY_FILE, {
        "format": "peft-lora", "base_model": base_model, "base_model_path": str(hf_base_dir),
        "base_gguf": str(base_gguf) if base_gguf else None, "rank": lora["r"],
        "alpha": lora["alpha"], "target_modules": list(lora["target_modules"])})
    return target


def read_identity(adapter_dir: Path) -> dict | None:
    """pg_llm.json of an adapter directory, or None for a job trained before it existed."""
    try:
        return json.loads((adapter_dir / IDENTITY_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)
