"""The inference engine (not to be confused with a pg_llm engine, the SQL foreign server that
points at this process): loads base models on first use, renders chat prompts with each
model's template, tokenizes, and hands generations to the batched generator."""

from __future__ import annotations

import threading
from pathlib import Path

from ..registry import BaseModel, ModelRegistry
from .batching import BatchedGenerator, GenerationRequest
from .chat_template import render_chat
from .llama_backend import LlamaModel
from .requantize import serving_copy


class InferenceEngine:
    def __init__(self, registry: ModelRegistry, *, n_parallel: int = 8, ctx_per_seq: int = 2048,
                 n_threads: int = 2, max_queue: int = 64, cache_dir: Path | None = None,
                 serve_format: str | None = "q8_0"):
        self.registry = registry
        self.cache_dir = cache_dir
        self.serve_format = serve_format if cache_dir else None
        self.n_parallel = n_parallel
        self.ctx_per_seq = ctx_per_seq
        self.n_threads = n_threads
        self.max_queue = max_queue
        self._generators: dict[str, BatchedGenerator] = {}
        self._lock = threading.Lock()
        self._training = False

    def set_training_active(self, active: bool) -> None:
        """While a fine-tune runs, inference uses half the threads. Measured on 2 cores: with
        both sides on 2 threads, llama.cpp's OpenMP barriers collapse to ~2 tokens/s (vs ~25
        on 1 thread), because a descheduled thread stalls every barrier of every layer."""
        self._training = active
        for gen in list(self._generators.values()):
            gen.threads_wanted = self._threads_now()

    def _threads_now(self) -> int:
        return max(1, self.n_threads // 2) if self._training else self.n_threads

    def generator(self, base: BaseModel) -> BatchedGenerator:
        with self._lock:
            gen = self._generators.get(base.id)
            if gen is None:
                path = serving_copy(base.gguf_path, self.cache_dir, self.serve_format)
                model = LlamaModel(path, n_parallel=self.n_parallel,
                                   ctx_per_seq=self.ctx_per_seq, n_threads=self.n_threads)
                gen = self._generators[base.id] = BatchedGenerator(model, self.max_queue)
                gen.threads_wanted = self._threads_now()
            return gen

    def chat_prompt(self, base: BaseModel, messages: list[dict]) -> list[int]:
        model = self.generator(base).model
        template = model.chat_template()
        if not template:
            raise ValueError(f"model {base.id} has no chat template in its GGUF metadata")
        text = render_chat(template, messages, add_generation_prompt=True,
                           **model.special_tokens())
        return model.tokenize(text)

    def text_tokens(self, base: BaseModel, text: str) -> list[int]:
        return self.generator(base).model.tokenize(text)

    def check_grammar(self, base: BaseModel, grammar: str) -> None:
        """ValueError if llama.cpp cannot parse `grammar`; else it is cached for decoding."""
        self.generator(base).model.check_grammar(grammar)

    def submit(self, base: BaseModel, req: GenerationRequest) -> None:
        self.generator(base).submit(req)

    def requests_in_flight(self) -> int:
        return sum(gen.load() for gen in list(self._generators.values()))

    def close(self) -> None:
        for gen in self._generators.values():
            gen.close()
