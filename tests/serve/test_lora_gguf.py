"""A peft LoRA converted to a GGUF adapter changes llama.cpp's logits exactly as peft does."""

from __future__ import annotations

import numpy as np
import torch


def test_converted_adapter_matches_peft(tiny_dir, tiny_gguf, tmp_path):
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    from pg_llm.serve.inference.llama_backend import LlamaModel
    from pg_llm.serve.training.lora_gguf import write_gguf_adapter

    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                            "gate_proj", "up_proj", "down_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():  # lora_B starts at zero; give it weight so the adapter matters
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    adapter = write_gguf_adapter(get_peft_model_state_dict(peft_model), alpha=16,
                                 n_head=model.config.num_attention_heads,
                                 n_head_kv=model.config.num_key_value_heads,
                                 path=tmp_path / "adapter.gguf")

    llama = LlamaModel(tiny_gguf, n_parallel=1, ctx_per_seq=256, n_threads=2)
    ids = llama.tokenize("<|im_start|>user\nSELECT 1 FROM t WHERE x = 42<|im_end|>\n")

    def llama_logits(adapter_path):
        llama.forget_sequence(0)
        llama.use_adapter(adapter_path)
        llama.decode([(t, i, 0, i == len(ids) - 1) for i, t in enumerate(ids)])
        return np.array(llama.logits(len(ids) - 1, llama.n_vocab()))

    with torch.no_grad():
        tuned_ref = peft_model(torch.tensor([ids])).logits[0, -1].numpy()
        with peft_model.disable_adapter():
            base_ref = peft_model(torch.tensor([ids])).logits[0, -1].numpy()
    base, tuned = llama_logits(None), llama_logits(adapter)
    assert np.corrcoef(base, base_ref)[0, 1] > 0.999
    # The adapter's own effect (tuned - base) must agree, not just the totals.
    effect, effect_ref = tuned - base, tuned_ref - base_ref
    assert np.abs(effect_ref).mean() > 0.05  # the adapter changes the logits noticeably
    assert np.corrcoef(effect, effect_ref)[0, 1] > 0.99
