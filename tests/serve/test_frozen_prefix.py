"""The split decoder (frozen bottom layers cached across epochs) must train exactly what a
plain forward through the whole peft model trains: same loss, same LoRA gradients."""

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from pg_llm.serve.training.examples import IGNORE, Example, collate
from pg_llm.serve.training.frozen_prefix import SplitDecoder


def _examples():
    gen = torch.Generator().manual_seed(1)
    out = []
    for n in (9, 14, 5, 12):
        ids = torch.randint(3, 200, (n,), generator=gen).tolist()
        labels = [IGNORE] * (n // 2) + ids[n // 2:]
        out.append(Example(ids, labels))
    return out


def _model(tiny_dir, n_adapted):
    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir), dtype=torch.float32)
    n_layers = model.config.num_hidden_layers
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
        layers_to_transform=list(range(n_layers - n_adapted, n_layers)), init_lora_weights=False))
    return peft_model, n_layers


def _plain_loss(peft_model, batch):
    ids, labels, mask = collate(batch, 0)
    logits = peft_model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    targets = labels[:, 1:]
    return F.cross_entropy(logits[targets != IGNORE], targets[targets != IGNORE])


def _grads(peft_model):
    return {n: p.grad.clone() for n, p in peft_model.named_parameters() if p.requires_grad}


def test_split_decoder_matches_full_forward_before_and_after_caching(tiny_dir):
    peft_model, n_layers = _model(tiny_dir, n_adapted=1)
    assert n_layers >= 2, "the tiny model needs a frozen layer for this test to mean anything"
    batch = _examples()

    expected = _plain_loss(peft_model, batch)
    expected.backward()
    expected_grads = _grads(peft_model)
    peft_model.zero_grad()

    decoder = SplitDecoder(peft_model.get_base_model(), n_frozen=n_layers - 1, pad_id=0)
    for attempt in ("computes the bottom layers", "reads them from the cache"):
        loss, n_scored, n_tokens = decoder.loss(batch)
        loss.backward()
        assert torch.allclose(loss, expected, atol=1e-5), attempt
        for name, grad in _grads(peft_model).items():
            assert torch.allclose(grad, expected_grads[name], atol=1e-5), (attempt, name)
        peft_model.zero_grad()
        assert n_scored == sum(len(e.labels) - len(e.labels) // 2 for e in batch)
        assert n_tokens == sum(len(e.input_ids) for e in batch)
    assert len(decoder.cache) == len(batch)


def test_cache_respects_its_byte_budget(tiny_dir):
    peft_model, n_layers = _model(tiny_dir, n_adapted=1)
    batch = _examples()
    hidden = peft_model.config.hidden_size
    one = len(batch[0].input_ids) * hidden * 4
    decoder = SplitDecoder(peft_model.get_base_model(), n_frozen=n_layers - 1, pad_id=0,
                           budget_bytes=one)
    first, _, _ = decoder.loss(batch)
    again, _, _ = decoder.loss(batch)  # not all cached: recomputed, same result
    assert decoder.used <= one and len(decoder.cache) == 1
    assert torch.allclose(first, again, atol=1e-6)


def test_no_cache_when_the_model_has_dropout(tiny_dir):
    peft_model, n_layers = _model(tiny_dir, n_adapted=1)
    base = peft_model.get_base_model()
    base.config.attention_dropout = 0.1  # each epoch would see other bottom-layer outputs
    decoder = SplitDecoder(base, n_frozen=n_layers - 1, pad_id=0)
    decoder.loss(_examples())
    assert decoder.budget == 0 and decoder.cache == {}
