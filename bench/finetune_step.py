"""One LoRA training step, side by side: a full forward/backward through the peft model vs the
split decoder of the local engine (frozen bottom layers computed once, then read from its
cache). Same batches, same model, same run.

    .venv/bin/python bench/finetune_step.py [--steps 6] [--threads 2]

Data: the tutorial's own generated conversations (what `make demo` fine-tunes on).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_common import load_average  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-dir", default="/tmp/pg_llm-bench-finetune/cache",
                    help="the base model's HF conversion is cached there")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from pg_llm_tutorial.generator import generate
    from pg_llm.serve.inference.llama_backend import LlamaVocab
    from pg_llm.serve.registry import smollm2_gguf_path
    from pg_llm.serve.training.examples import IGNORE, collate, encode_conversation, length_grouped_batches
    from pg_llm.serve.training.frozen_prefix import SplitDecoder
    from pg_llm.serve.training.hf_loading import load_model
    from pg_llm.serve.training.worker import DEFAULT_LORA, lora_model

    torch.set_num_threads(args.threads)
    gguf = smollm2_gguf_path()
    vocab = LlamaVocab(gguf)
    special = vocab.special_tokens()
    train, _ = generate(n_train=300, n_eval=0)
    examples = [encode_conversation(e.messages(), vocab.chat_template(), vocab.tokenize, 1024,
                                    special) for e in train]
    batches = length_grouped_batches(examples, 8, random.Random(0))[:args.steps + 1]

    Path(args.cache_dir).mkdir(parents=True, exist_ok=True)
    model = load_model(gguf, Path(args.cache_dir), torch.float32)
    peft_model, n_frozen = lora_model(model, DEFAULT_LORA)
    n_layers = model.config.num_hidden_layers
    base = peft_model.get_base_model()

    def full_step(batch):
        ids, labels, mask = collate(batch, 0)
        hidden = base.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
        targets = labels[:, 1:]
        scored = targets != IGNORE  # LM head on scored tokens only, as the split decoder does
        F.cross_entropy(base.lm_head(hidden[scored]), targets[scored]).backward()
        peft_model.zero_grad()

    decoder = SplitDecoder(base, n_frozen=n_frozen, pad_id=0)

    def split_step(batch):
        decoder.loss(batch)[0].backward()
        peft_model.zero_grad()

    def timed(step) -> float:
        step(batches[0])  # warm-up
        started = time.perf_counter()
        for batch in batches[1:]:
            step(batch)
        return (time.perf_counter() - started) / (len(batches) - 1)

    load_before = load_average()
    full = timed(full_step)
    first_epoch = timed(split_step)  # every batch new to the cache: bottom layers computed
    cached = timed(split_step)       # later epochs: bottom layers read from the cache
    epochs = 3
    print(f"one LoRA step (batch 8 of the tutorial's conversations, top {n_layers - n_frozen} "
          f"of {n_layers} layers adapted, {args.threads} threads), load average before: {load_before}")
    print(f"  full forward/backward, LM head on scored tokens: {full * 1000:7.0f} ms")
    print(f"  split decoder, bottom layers new:                {first_epoch * 1000:7.0f} ms  "
          f"({full / first_epoch:.2f}x)")
    print(f"  split decoder, bottom layers cached:             {cached * 1000:7.0f} ms  "
          f"({full / cached:.2f}x)")
    print(f"  {epochs} epochs: {full / ((first_epoch + (epochs - 1) * cached) / epochs):.2f}x faster; "
          f"cache {decoder.used / 1e6:.0f} MB for {len(decoder.cache)} examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
