"""Continuous batching on llama.cpp: every active request is one sequence (seq_id) of a shared
context, and each step decodes one new token for all of them in a single llama_decode call.

Requests for different fine-tuned models share the base model's context; a step only mixes
sequences that use the same LoRA adapter (the adapter is a property of the decode call).
A request marked `alone` (the API's seeded requests) is decoded in a batch of its own, in its
turn: reproducible answers cost that request the batching.
"""

from __future__ import annotations

import codecs
import collections
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .llama_backend import LlamaModel

log = logging.getLogger("pg_llm.serve")


class QueueFull(RuntimeError):
    pass


class PromptTooLong(ValueError):
    pass


@dataclass
class GenerationRequest:
    prompt_tokens: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    adapter: Path | None = None
    grammar: str | None = None  # GBNF the answer must match (json_grammar, or the body's grammar)
    # Decode in a batch of its own, so the answer does not depend on what else is served:
    # llama.cpp's kernels round differently with the batch's make-up (measured: 5-7 of 16-24
    # greedy SQL answers changed between two concurrent runs; none when decoded alone).
    alone: bool = False
    # on_event(kind, payload): ("text", str) zero or more times, then ("done", dict) or
    # ("error", str). Called from the engine thread; must not block.
    on_event: Callable[[str, object], None] = lambda kind, payload: None
    cancelled: threading.Event = field(default_factory=threading.Event)


class _Sequence:
    def __init__(self, req: GenerationRequest, seq_id: int, sampler):
        self.req = req
        self.seq_id = seq_id
        self.sampler = sampler
        self.n_prefilled = 0          # prompt tokens already in the KV cache
        self.next_token: int | None = None  # sampled, not yet decoded
        self.n_generated = 0
        self.text = ""
        self.emitted = 0              # characters of self.text already sent
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def position(self) -> int:
        return self.n_prefilled + self.n_generated - (1 if self.next_token is not None else 0)


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters could still grow into a stop string."""
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                hold = max(hold, k)
                break
    return hold


class BatchedGenerator:
    """Owns one LlamaModel and the thread that runs its decode loop."""

    def __init__(self, model: LlamaModel, max_queue: int):
        self.model = model
        self.max_queue = max_queue
        self._pending: collections.deque[GenerationRequest] = collections.deque()
        self._active: dict[int, _Sequence] = {}
        self._cond = threading.Condition()
        self._rotation = itertools.count()
        self._stopping = False
        self.threads_wanted = model.n_threads  # applied by the engine thread between steps
        self._thread = threading.Thread(target=self._run, name=f"llama:{model.path.name}",
                                        daemon=True)
        self._thread.start()

    def submit(self, req: GenerationRequest) -> None:
        limit = self.model.ctx_per_seq
        if len(req.prompt_tokens) >= limit:
            raise PromptTooLong(f"This model's maximum context length is {limit} tokens; "
                                f"the prompt has {len(req.prompt_tokens)} tokens.")
        with self._cond:
            if len(self._pending) >= self.max_queue:
                raise QueueFull(f"The engine is busy: {len(self._active)} requests running and "
                                f"{len(self._pending)} waiting (limit --max-queue "
                                f"{self.max_queue}). Retry later.")
            self._pending.append(req)
            self._cond.notify()

    def load(self) -> int:
        with self._cond:
            return len(self._pending) + len(self._active)

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=5)

    # ---- engine thread
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._pending and not self._active:
                    self._cond.wait()
                if self._stopping:
                    return
                self._admit()
            try:
                self._step()
            except Exception as exc:  # a llama.cpp failure fails the batch, not the server
                log.exception("decode step failed")
                for seq in list(self._active.values()):
                    self._finish(seq, error=f"generation failed: {exc}")

    def _admit(self) -> None:
        if any(s.req.alone for s in self._active.values()):
            return  # a sequence decoding alone admits nobody until it is done
        free = [i for i in range(self.model.n_parallel) if i not in self._active]
        while self._pending and free:
            req = self._pending[0]
            if req.cancelled.is_set():
                self._pending.popleft()
                continue
            if req.alone and self._active:
                break  # waits for the batch to drain; first come, first served: none overtakes
            self._pending.popleft()
            seq_id = free.pop(0)
            try:
                sampler = self.model.new_sampler(req.temperature, req.top_p, req.seed,
                                                 req.grammar)
            except ValueError as exc:  # a grammar llama.cpp refused: this request only
                free.insert(0, seq_id)
                req.on_event("error", str(exc))
                continue
            self._active[seq_id] = _Sequence(req, seq_id, sampler)
            if req.alone:
                break

    def _step(self) -> None:
        for seq in [s for s in self._active.values() if s.req.cancelled.is_set()]:
            self._finish(seq, reason=None)
        if not self._active:
            return
        self.model.set_threads(self.threads_wanted)
        # One adapter per decode call: rotate fairly among the adapters in use.
        adapters = sorted({s.req.adapter for s in self._active.values()}, key=str)
        adapter = adapters[next(self._rotation) % len(adapters)]
        group = [s for s in self._active.values() if s.req.adapter == adapter]
        entries, samplers = [], []
        budget = self.model.n_batch
        for seq in group:  # decoding sequences first: one token each keeps latency low
            if seq.next_token is not None:
                entries.append((seq.next_token, seq.position, seq.seq_id, True))
                samplers.append((seq, len(entries) - 1))
                budget -= 1
        for seq in group:  # then prompt chunks with what is left of the batch
            if seq.next_token is None and budget > 0:
                chunk = seq.req.prompt_tokens[seq.n_prefilled:seq.n_prefilled + budget]
                for j, tok in enumerate(chunk):
                    last = seq.n_prefilled + j == len(seq.req.prompt_tokens) - 1
                    entries.append((tok, seq.n_prefilled + j, seq.seq_id, last))
                    if last:
                        samplers.append((seq, len(entries) - 1))
                seq.n_prefilled += len(chunk)
                budget -= len(chunk)
        self.model.use_adapter(adapter)
        self.model.decode(entries)
        for seq, index in samplers:
            self._accept(seq, self.model.sample(seq.sampler, index))

    def _accept(self, seq: _Sequence, token: int) -> None:
        if self.model.is_end_of_generation(token):
            return self._finish(seq, reason="stop")
        seq.n_generated += 1
        seq.next_token = token
        seq.text += seq.decoder.decode(self.model.piece(token))
        stops = seq.req.stop
        for stop in stops:
            cut = seq.text.find(stop, max(0, seq.emitted - len(stop)))
            if cut >= 0:
                seq.text = seq.text[:cut]
                return self._finish(seq, reason="stop")
        if seq.n_generated >= seq.req.max_tokens or seq.position + 1 >= self.model.ctx_per_seq:
            return self._finish(seq, reason="length")
        safe = len(seq.text) - _held_back(seq.text, stops)
        if safe > seq.emitted:
            seq.req.on_event("text", seq.text[seq.emitted:safe])
            seq.emitted = safe

    def _finish(self, seq: _Sequence, reason: str | None = None, error: str | None = None):
        self._active.pop(seq.seq_id, None)
        self.model.forget_sequence(seq.seq_id)
        self.model.free_sampler(seq.sampler)
        if error:
            seq.req.on_event("error", error)
            return
        if reason is None:
            return  # cancelled: nobody is listening
        seq.text += seq.decoder.decode(b"", final=True) if reason == "length" else ""
        if len(seq.text) > seq.emitted:
            seq.req.on_event("text", seq.text[seq.emitted:])
        seq.req.on_event("done", {"finish_reason": reason,
                                  "prompt_tokens": len(seq.req.prompt_tokens),
                                  "completion_tokens": seq.n_generated})
