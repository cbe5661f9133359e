"""The fine-tuning worker: a separate process (one job at a time) that trains a LoRA adapter
with peft and reports progress as JSON lines on stdout, so the server keeps answering.

    python -m pg_llm.serve.training.worker <job-dir>/spec.json

Output lines: {"type": "step", ...} per optimizer step, then {"type": "done", ...} or
{"type": "error", "code", "message"}.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import random
import resource
import signal
import sys
import time
from pathlib import Path

from .datasets import parse_conversations
from .examples import encode_conversation, length_grouped_batches

# LoRA on a 135M model with ~100 steps needs a high rate. Execution match on the tutorial's
# 60 held-out questions (300 conversations x 3 epochs, top 10 layers): 2e-4 18%, 1e-3 47%,
# 2e-3 57% (1e-3 with 4 epochs 55%).
BASE_LEARNING_RATE = 2e-3
# Adapting only the top third of the layers lets backward stop there. Measured CPU seconds
# for 300 SQL conversations x 3 epochs (SmolLM2, fp32, 1 thread): all 30 layers 861 s, top 15
# 655 s, top 10 540 s; attention-only on all layers saved nothing (845 s).
DEFAULT_LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "top_layers_fraction": 1 / 3,
                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj",
                                   "gate_proj", "up_proj", "down_proj"]}


class TrainingError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def emit(**event) -> None:
    print(json.dumps(event), flush=True)


def _die_with_parent(parent_pid: int) -> None:
    """A worker must not outlive a killed server (it would keep training an orphaned job)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != parent_pid:
        sys.exit(1)


def _encode_file(path: Path, template: str, encode, max_len: int, special: dict, what: str):
    conversations = parse_conversations(path.read_bytes())
    examples = [encode_conversation(c, template, encode, max_len, special) for c in conversations]
    kept = [e for e in examples if e is not None]
    if not kept:
        raise TrainingError("invalid_training_file",
                            f"{what}: no example keeps an assistant token within "
                            f"{max_len} tokens")
    return kept, len(examples) - len(kept)


def _mean_loss(decoder, batches):
    import torch

    total, weight = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            loss, n_scored, _ = decoder.loss(batch)
            total += float(loss) * n_scored
            weight += n_scored
    return total / max(weight, 1)


def cpu_has_native_bf16() -> bool:
    """bf16 matmuls are fast only with AVX-512 BF16 or AMX; elsewhere torch emulates them
    (measured on an AVX2-only EPYC VM: 2081 ms bf16 vs 59 ms fp32 for one 512x576x1536 matmul)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def job_lora(engine_lora: dict, hyperparameters: dict) -> dict:
    """DEFAULT_LORA, then the engine's settings, then the job's lora_rank / lora_layers."""
    lora = {**DEFAULT_LORA, **engine_lora}
    if "lora_rank" in hyperparameters:
        # alpha follows the rank so the adapter's scale (alpha / r) stays what was measured.
        lora["r"] = hyperparameters["lora_rank"]
        lora["alpha"] = 2 * hyperparameters["lora_rank"]
    if "lora_layers" in hyperparameters:
        lora["top_layers"] = hyperparameters["lora_layers"]
    return lora


def lora_model(model, lora: dict):
    """(the peft model with LoRA on the top layers only, number of frozen bottom layers)."""
    from peft import LoraConfig, get_peft_model

    model.config.use_cache = False
    n_layers = model.config.num_hidden_layers
    n_adapted = max(1, math.ceil(n_layers * lora["top_layers_fraction"]))
    if lora.get("top_layers"):
        n_adapted = min(n_layers, lora["top_layers"])
    peft_model = get_peft_model(model, LoraConfig(
        r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
        target_modules=lora["target_modules"], task_type="CAUSAL_LM",
        layers_to_transform=list(range(n_layers - n_adapted, n_layers))))
    return peft_model, n_layers - n_adapted


def train(spec: dict) -> dict:
    import torch
    from peft import get_peft_model_state_dict

    from ..inference.llama_backend import LlamaVocab
    from .frozen_prefix import DEFAULT_BUDGET_BYTES, SplitDecoder
    from .hf_loading import checkpoint_dir, load_model
    from .lora_gguf import write_gguf_adapter
    from .peft_export import write_peft_adapter

    loaded = time.time()
    torch.set_num_threads(spec.get("n_threads", 2))
    seed = spec.get("seed") or 0
    torch.manual_seed(seed)
    rng = random.Random(seed)
    hp = spec["hyperparameters"]
    lora = job_lora(spec.get("lora", {}), hp)
    out_dir = Path(spec["output_dir"])

    # Same tokenizer and chat template as inference (llama.cpp reading the GGUF's vocabulary
    # and metadata, not its weights), so what the adapter learns is what it will be fed.
    vocab = LlamaVocab(Path(spec["base_model_path"]))
    template, special = vocab.chat_template(), vocab.special_tokens()
    if not template:
        raise TrainingError("model_not_trainable",
                            f"{spec['base_model_path']} has no chat template in its metadata")
    max_len = spec.get("max_seq_len", 1024)
    train_ex, dropped = _encode_file(Path(spec["training_file"]), template, vocab.tokenize,
                                     max_len, special, "training file")
    valid_ex = []
    if spec.get("validation_file"):
        valid_ex, _ = _encode_file(Path(spec["validation_file"]), template, vocab.tokenize,
                                   max_len, special, "validation file")
    dtype = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if spec.get("base_model_dir"):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(spec["base_model_dir"], dtype=dtype)
    else:
        model = load_model(Path(spec["base_model_path"]), Path(spec["cache_dir"]), dtype)
    if dropped:
        emit(type="message", level="warn",
             message=f"{dropped} training examples skipped: no assistant token within "
                     f"{max_len} tokens")

    peft_model, n_frozen = lora_model(model, lora)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    # Padded positions are masked out of attention and loss, so any id pads.
    decoder = SplitDecoder(peft_model.get_base_model(), n_frozen=n_frozen, pad_id=0,
                           budget_bytes=spec.get("prefix_cache_bytes", DEFAULT_BUDGET_BYTES))
    optimizer = torch.optim.AdamW(params, lr=BASE_LEARNING_RATE * hp["learning_rate_multiplier"],
                                  weight_decay=0.0)
    steps_per_epoch = math.ceil(len(train_ex) / hp["batch_size"])
    total_steps = steps_per_epoch * hp["n_epochs"]
    warmup = max(1, total_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup))))
    valid_batches = [valid_ex[i:i + hp["batch_size"]]
                     for i in range(0, len(valid_ex), hp["batch_size"])]
    eval_every = max(1, total_steps // 10)

    emit(type="started", total_steps=total_steps, n_examples=len(train_ex),
         trainable_params=sum(p.numel() for p in params))
    step, trained_tokens, started = 0, 0, time.time()
    peft_model.train()
    for _epoch in range(hp["n_epochs"]):
        for batch in length_grouped_batches(train_ex, hp["batch_size"], rng):
            loss, _, n_tokens = decoder.loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            trained_tokens += n_tokens
            event = {"type": "step", "step": step, "total_steps": total_steps,
                     "train_loss": round(loss.item(), 6), "trained_tokens": trained_tokens,
                     "elapsed_s": round(time.time() - started, 3)}
            if valid_batches and (step % eval_every == 0 or step == total_steps):
                peft_model.eval()
                event["valid_loss"] = round(_mean_loss(decoder, valid_batches), 6)
                peft_model.train()
            emit(**event)

    write_peft_adapter(peft_model, out_dir, base_model=spec.get("base_model") or "?",
                       hf_base_dir=Path(spec["base_model_dir"] or
                                        checkpoint_dir(Path(spec["base_model_path"]),
                                                       Path(spec["cache_dir"]))),
                       base_gguf=Path(spec["base_model_path"]), lora=lora)
    cfg = model.config
    adapter = write_gguf_adapter(get_peft_model_state_dict(peft_model), alpha=lora["alpha"],
                                 n_head=cfg.num_attention_heads,
                                 n_head_kv=cfg.num_key_value_heads,
                                 path=out_dir / "adapter.gguf", name=spec.get("job_id", "lora"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"trained_tokens": trained_tokens, "adapter_path": str(adapter), "steps": step,
            "train_seconds": round(time.time() - loaded, 3),
            "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    _die_with_parent(spec["parent_pid"])
    os.nice(10)  # chat requests keep priority over a background fine-tune
    try:
        emit(type="done", **train(spec))
        return 0
    except TrainingError as exc:
        emit(type="error", code=exc.code, message=str(exc))
    except Exception as exc:  # noqa: BLE001 -- reported to the job; traceback in the worker log
        import traceback

        traceback.print_exc(file=sys.stderr)
        emit(type="error", code="training_failed", message=f"{type(exc).__name__}: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
