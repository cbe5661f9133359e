"""Writes a Hugging Face Llama-architecture checkpoint as a GGUF file llama.cpp can serve.

Used when `--model NAME=DIR` registers an HF directory: training reads the directory with
transformers, inference serves the GGUF written here (cached under <data-dir>/cache).
Only the Llama architecture with a byte-level BPE tokenizer (SmolLM2's family) is supported.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .lora_gguf import permute_rows

LAYER_TENSORS = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


class UnsupportedCheckpoint(ValueError):
    pass


def _gguf_name(hf_name: str) -> str | None:
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_name == "model.norm.weight":
        return "output_norm.weight"
    if hf_name == "lm_head.weight":
        return "output.weight"
    parts = hf_name.split(".")
    if parts[:2] == ["model", "layers"] and parts[-1] == "weight":
        module = ".".join(parts[3:-1])
        if module in LAYER_TENSORS:
            return f"blk.{parts[2]}.{LAYER_TENSORS[module]}.weight"
    return None


def _pre_tokenizer_name(tokenizer_json: dict) -> str:
    """llama.cpp picks its pre-tokenizer regexes by name; SmolLM2 splits digits one by one."""
    text = json.dumps(tokenizer_json.get("pre_tokenizer"))
    return "smollm" if '"Digits"' in text and '"individual_digits": true' in text else "default"


def hf_to_gguf(hf_dir: Path, out_path: Path) -> Path:
    import gguf
    import numpy as np
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(hf_dir)
    if config.model_type != "llama":
        raise UnsupportedCheckpoint(f"{hf_dir}: model_type {config.model_type!r} is not "
                                    "supported (only 'llama'); give a GGUF file instead")
    tokenizer_file = hf_dir / "tokenizer.json"
    if not tokenizer_file.exists():
        raise UnsupportedCheckpoint(f"{hf_dir}: no tokenizer.json (a fast BPE tokenizer)")
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    tokenizer_json = json.loads(tokenizer_file.read_text())
    # Special tokens must be CONTROL, or llama.cpp would split "<|im_start|>" into characters.
    added = {t["id"]: (gguf.TokenType.CONTROL if t.get("special") else
                       gguf.TokenType.USER_DEFINED) for t in tokenizer_json.get("added_tokens", [])}
    tokens, types = [], []
    for i, (text, _score, toktype) in enumerate(gguf.vocab.BpeVocab(hf_dir).all_tokens()):
        tokens.append(text if isinstance(text, bytes) else text.encode("utf-8"))
        types.append(added.get(i, toktype))
    for i in range(len(tokens), config.vocab_size):  # embedding rows with no token
        tokens.append(f"[PAD{i}]".encode())
        types.append(gguf.TokenType.UNUSED)

    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = (getattr(config, "rope_parameters", None) or {}).get("rope_theta") or \
        getattr(config, "rope_theta", 10000.0)
    tmp = out_path.with_name(out_path.name + f".tmp{os.getpid()}")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(hf_dir.name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(float(rope))
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer_name(tokenizer_json))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer)

    for name, tensor in model.state_dict().items():
        gguf_name = _gguf_name(name)
        if gguf_name is None:
            continue
        if gguf_name == "output.weight" and config.tie_word_embeddings:
            continue
        w = tensor.float().numpy()
        if gguf_name.endswith("attn_q.weight"):
            w = permute_rows(w, config.num_attention_heads)
        elif gguf_name.endswith("attn_k.weight"):
            w = permute_rows(w, config.num_key_value_heads)
        writer.add_tensor(gguf_name, np.ascontiguousarray(w, dtype=np.float16 if w.ndim == 2
                                                          else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out_path)
    return out_path


def cached_gguf(hf_dir: Path, cache_dir: Path) -> Path:
    """The GGUF for an HF directory, converted once per version of its files."""
    stamp = "".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns};"
                    for p in sorted(hf_dir.iterdir()) if p.is_file())
    key = hashlib.sha1(f"{hf_dir.resolve()}|{stamp}".encode()).hexdigest()[:16]
    out = cache_dir / f"{hf_dir.name}-{key}.gguf"
    return out if out.exists() else hf_to_gguf(hf_dir, out)
