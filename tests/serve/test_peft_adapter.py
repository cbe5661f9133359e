"""Every fine-tuned version is also a standard PEFT adapter directory naming its HF base
(docs/scale-out.md): peft loads it onto that base and it changes the model's logits, and the
engine says where it is in GET /v1/models/{id} (llm_deploy_version reads it there)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx

from .helpers import jsonl, sql_rows, wait_for_job


def test_fine_tuned_model_is_kept_as_a_peft_adapter(server, client, tiny_dir):
    train_id = client.files.create(file=("t.jsonl", io.BytesIO(jsonl(sql_rows(8)))),
                                   purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=train_id, suffix="peft",
        hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 10})
    job = wait_for_job(client, job.id, ("succeeded", "failed", "cancelled"))
    assert job.status == "succeeded", job.error

    card = httpx.get(f"{server.base_url}/models/{job.fine_tuned_model}", timeout=10).json()
    adapter = card["adapter"]
    assert adapter["format"] == "peft" and adapter["base_model"] == "tiny"
    assert adapter["base_model_path"] == str(tiny_dir)
    path = Path(adapter["path"])
    assert path == server.data_dir / "jobs" / job.id / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in path.iterdir()}
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_dir)
    assert config["peft_type"] == "LORA" and config["r"] == 16

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"],
                                                dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(path))
        after = tuned(ids).logits
    assert not torch.allclose(before, after, atol=1e-4)  # the trained weights are really there


def test_a_job_chooses_its_lora_rank_and_layers(server, client, tiny_dir):
    train_id = client.files.create(file=("t.jsonl", io.BytesIO(jsonl(sql_rows(8)))),
                                   purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=train_id, suffix="knobs",
        hyperparameters={"n_epochs": 1, "batch_size": 4, "lora_rank": 4, "lora_layers": 1})
    job = wait_for_job(client, job.id, ("succeeded", "failed", "cancelled"))
    assert job.status == "succeeded", job.error
    path = server.data_dir / "jobs" / job.id / "adapter"
    config = json.loads((path / "adapter_config.json").read_text())
    n_layers = json.loads((tiny_dir / "config.json").read_text())["num_hidden_layers"]
    assert config["r"] == 4 and config["lora_alpha"] == 8
    assert config["layers_to_transform"] == [n_layers - 1]  # only the top layer

    from safetensors import safe_open

    with safe_open(str(path / "adapter_model.safetensors"), "pt") as tensors:
        layers = {name.split(".layers.")[1].split(".")[0] for name in tensors.keys()}
        ranks = {tensors.get_tensor(n).shape[0] for n in tensors.keys() if "lora_A" in n}
    assert layers == {str(n_layers - 1)} and ranks == {4}
