"""A seeded request is decoded in a batch of its own (OpenAI's `seed`: the same request gets the
same answer), because llama.cpp rounds differently with the batch's make-up. Checked on the
batched generator itself, with a real llama.cpp model, by recording what each decode call held."""

from __future__ import annotations

import threading

import pytest

from pg_llm.serve.inference.batching import BatchedGenerator, GenerationRequest
from pg_llm.serve.inference.llama_backend import LlamaModel


class RecordingGenerator(BatchedGenerator):
    """The real generator; each decode step also records which requests it decoded."""

    def __init__(self, *args, **kw):
        self.steps: list[set[int]] = []
        super().__init__(*args, **kw)

    def _step(self):
        if self._active:  # one adapter here, so every active sequence is in the decode call
            self.steps.append({id(s.req) for s in self._active.values()})
        super()._step()


@pytest.fixture
def generator(tiny_gguf):
    model = LlamaModel(tiny_gguf, n_parallel=4, ctx_per_seq=256, n_threads=1)
    gen = RecordingGenerator(model, max_queue=16)
    yield gen
    gen.close()


def _submit_all(gen: BatchedGenerator, requests: list[GenerationRequest]) -> list[dict]:
    """Submits every request before the engine thread admits any; returns each request's
    {'text', 'seqs'} once all are done ('seqs': the decode calls it took part in)."""
    results = [{"text": "", "done": threading.Event()} for _ in requests]
    for req, result in zip(requests, results):
        def on_event(kind, payload, result=result):
            if kind == "text":
                result["text"] += payload
            elif kind in ("done", "error"):
                result["outcome"] = kind
                result["done"].set()
        req.on_event = on_event
    with gen._cond:  # re-entrant: submit() takes it too; the engine thread waits meanwhile
        for req in requests:
            gen.submit(req)
    for result in results:
        assert result["done"].wait(120), "generation did not finish"
    return results


def _request(i: int, alone: bool, max_tokens: int = 12) -> GenerationRequest:
    # Prompts of different lengths: an answer that reached the wrong request would show.
    return GenerationRequest(prompt_tokens=[1] + [100 + i] * (3 + i), max_tokens=max_tokens,
                             temperature=0.0, alone=alone)


def test_seeded_request_is_decoded_alone_and_first_come_first_served(generator):
    requests = [_request(0, False), _request(1, False), _request(2, True),
                _request(3, False), _request(4, False)]
    results = _submit_all(generator, requests)
    assert all(r["outcome"] == "done" for r in results)
    first, second, seeded, fourth, fifth = (id(r) for r in requests)
    steps = generator.steps
    with_seeded = [i for i, step in enumerate(steps) if seeded in step]
    assert with_seeded and all(steps[i] == {seeded} for i in with_seeded)
    before, after = steps[:with_seeded[0]], steps[with_seeded[-1] + 1:]
    assert {first, second} in before  # the two before it were batched together ...
    assert with_seeded == list(range(with_seeded[0], with_seeded[-1] + 1))  # ... it ran alone
    assert all(fourth not in step and fifth not in step for step in before + steps[
        with_seeded[0]:with_seeded[-1] + 1])  # nobody overtook it
    assert {fourth, fifth} in after  # and the later two were batched again


def test_seeded_answer_is_the_alone_answer_in_any_crowd(generator):
    alone = _submit_all(generator, [_request(2, True, 24)])[0]["text"]
    for crowd in ([0, 1, 2, 3], [3, 2], [2, 0, 1]):
        results = _submit_all(generator, [_request(i, i == 2, 24 if i == 2 else 40)
                                          for i in crowd])
        assert results[crowd.index(2)]["text"] == alone
