"""Turns chat conversations into training tensors: the model's chat template, labels only on
assistant tokens, and length-grouped batches so little compute is spent on padding."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..inference.chat_template import render_chat

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE outside assistant turns


def encode_conversation(messages: list[dict], template: str, encode, max_len: int,
                        special: dict) -> Example | None:
    """`encode(text) -> ids` must not add special tokens (the template already has them).
    Returns None when truncation to max_len would leave no assistant token to learn."""
    def ids(msgs, gen):
        return encode(render_chat(template, msgs, add_generation_prompt=gen, **special))

    full = ids(messages, False)
    labels = [IGNORE] * len(full)
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant" or i == 0:
            continue
        start = len(ids(messages[:i], True))
        end = len(ids(messages[:i + 1], False))
        labels[start:end] = full[start:end]
    full, labels = full[:max_len], labels[:max_len]
    if all(label == IGNORE for label in labels[1:]):
        return None
    return Example(full, labels)


def length_grouped_batches(examples: list[Example], batch_size: int,
                           rng: random.Random) -> list[list[Example]]:
    """Sorts by length so each batch holds similar lengths (little padding), then shuffles the
    order of the batches so training still sees the data in random order."""
    shuffled = examples[:]
    rng.shuffle(shuffled)  # random tie-breaking among equal lengths
    ordered = sorted(shuffled, key=lambda e: len(e.input_ids))
    batches = [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(batch: list[Example], pad_id: int):
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return ids, labels, mask
