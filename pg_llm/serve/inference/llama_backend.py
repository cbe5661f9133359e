"""A thin wrapper over llama.cpp's C API (via llama_cpp's ctypes bindings) for one GGUF model:
weights, vocabulary, one multi-sequence context and the LoRA adapters applied to it.

We use the low-level API rather than llama_cpp.Llama because batching several requests into
one llama_decode call (one seq_id per request) is what makes concurrent requests cheap.
"""

from __future__ import annotations

import collections
import ctypes
import math
import threading
from dataclasses import dataclass
from pathlib import Path

_init_lock = threading.Lock()
_log_callback = None  # must stay referenced: llama.cpp calls it for the process lifetime
# Compiled grammars kept per model, by text: requests of one schema (or one response_format)
# clone the parsed grammar instead of parsing its GBNF again.
GRAMMAR_CACHE_SIZE = 64
# A greedy pick the grammar rejects is redone among the 64, then 1024 highest logits first:
# the best allowed token among them is the best allowed token of all (the rest score lower),
# and the grammar filters those instead of the whole vocabulary (SmolLM2: 49,152 tokens, up
# to seconds per token with a large SQL grammar on a loaded machine).
GREEDY_SHORTLISTS = (64, 1024)


@dataclass
class Sampler:
    """A request's sampler chain, and its grammar kept apart from the chain so that it is
    checked only against the token the chain picked (see LlamaModel.sample)."""
    chain: object
    grammar: object | None = None
    greedy: bool = False


def _llama_cpp():
    global _log_callback
    import llama_cpp

    with _init_lock:
        if _log_callback is None:
            # Silence llama.cpp's load chatter; failures still surface as return codes.
            _log_callback = llama_cpp.llama_log_callback(lambda level, text, data: None)
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
    return llama_cpp


class LlamaVocab:
    """A GGUF's tokenizer and metadata, without the weights: what training needs to tokenize
    exactly as inference does."""

    def __init__(self, gguf_path: Path, *, vocab_only: bool = True):
        lc = _llama_cpp()
        self.lc = lc
        self.path = Path(gguf_path)
        mparams = lc.llama_model_default_params()
        mparams.vocab_only = vocab_only
        self.model = lc.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {self.path} (not a valid GGUF model?)")
        self.vocab = lc.llama_model_get_vocab(self.model)

    # ---- metadata and vocabulary
    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = self.lc.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            self.lc.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    def chat_template(self) -> str | None:
        ptr = self.lc.llama_model_chat_template(self.model, None)
        return ptr.decode("utf-8") if ptr else None

    def special_tokens(self) -> dict:
        """bos/eos as text, the variables chat templates expect."""
        lc = self.lc
        return {"bos_token": self.token_text(lc.llama_vocab_bos(self.vocab)),
                "eos_token": self.token_text(lc.llama_vocab_eos(self.vocab))}

    def token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.piece(token, special=True).decode("utf-8", errors="replace")

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        arr = (self.lc.llama_token * cap)()
        n = self.lc.llama_tokenize(self.vocab, data, len(data), arr, cap, add_special, True)
        if n < 0:
            cap = -n
            arr = (self.lc.llama_token * cap)()
            n = self.lc.llama_tokenize(self.vocab, data, len(data), arr, cap, add_special, True)
        return list(arr[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        # A buffer per call: the engine thread reads every generated token's piece while
        # request threads render bos/eos into chat prompts; with one shared buffer (ctypes
        # lets go of the GIL) a generated `count` came out as `<|im_`, and eos as `countend|>`.
        buf = ctypes.create_string_buffer(256)
        n = self.lc.llama_token_to_piece(self.vocab, token, buf, 256, 0, special)
        return buf.raw[:n] if n > 0 else b""

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self.lc.llama_vocab_is_eog(self.vocab, token))


class LlamaModel(LlamaVocab):
    """Weights plus one context holding n_parallel sequences of ctx_per_seq tokens each."""

    def __init__(self, gguf_path: Path, *, n_parallel: int, ctx_per_seq: int, n_threads: int,
                 n_batch: int = 512):
        super().__init__(gguf_path, vocab_only=False)
        lc = self.lc
        self.n_ctx_train = lc.llama_model_n_ctx_train(self.model)
        self.ctx_per_seq = min(ctx_per_seq, self.n_ctx_train)
        self.n_parallel = n_parallel
        self.n_batch = n_batch
        cparams = lc.llama_context_default_params()
        # One context for all sequences; one batch per decode call (n_ubatch = n_batch).
        for name, value in (("n_ctx", self.ctx_per_seq * n_parallel), ("n_batch", n_batch),
                            ("n_ubatch", n_batch), ("n_seq_max", n_parallel),
                            ("n_threads", n_threads), ("n_threads_batch", n_threads)):
            setattr(cparams, name, value)
        self.n_threads = n_threads
        self.ctx = lc.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not create a context for {self.path}")
        self.memory = lc.llama_get_memory(self.ctx)
        self.batch = lc.llama_batch_init(n_batch, 0, 1)
        self._adapters: dict[Path, object] = {}
        self._active_adapter: Path | None = None
        self._grammars: collections.OrderedDict[str, object] = collections.OrderedDict()
        self._grammar_lock = threading.Lock()

    def set_threads(self, n_threads: int) -> None:
        if n_threads != self.n_threads:
            self.lc.llama_set_n_threads(self.ctx, n_threads, n_threads)
            self.n_threads = n_threads

    # ---- adapters
    def use_adapter(self, adapter_path: Path | None) -> None:
        """Selects the LoRA applied to the next decode (None = base weights)."""
        if adapter_path == self._active_adapter:
            return
        lc = self.lc
        if adapter_path is None:
            lc.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            adapter = self._adapters.get(adapter_path)
            if adapter is None:
                adapter = lc.llama_adapter_lora_init(self.model, str(adapter_path).encode())
                if not adapter:
                    raise RuntimeError(f"llama.cpp could not load the LoRA adapter {adapter_path}")
                self._adapters[adapter_path] = adapter
            arr = (lc.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(1.0)
            lc.llama_set_adapters_lora(self.ctx, arr, 1, scales)
        self._active_adapter = adapter_path

    # ---- decoding
    def decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """entries: (token, position, seq_id, want_logits); at most n_batch of them."""
        b = self.batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(entries)
        rc = self.lc.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")

    def forget_sequence(self, seq_id: int) -> None:
        self.lc.llama_memory_seq_rm(self.memory, seq_id, -1, -1)

    def check_grammar(self, grammar: str) -> None:
        """ValueError if llama.cpp cannot parse `grammar`; else it is parsed and cached."""
        with self._grammar_lock:
            self._grammar_template(grammar)

    def compiled_grammar(self, grammar: str):
        """A fresh sampler of the grammar, cloned from the cached parse."""
        with self._grammar_lock:  # an eviction must not free the template while it is cloned
            return self.lc.llama_sampler_clone(self._grammar_template(grammar))

    def _grammar_template(self, grammar: str):
        lc = self.lc
        template = self._grammars.get(grammar)
        if template is None:
            template = lc.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
            if not template:
                raise ValueError("llama.cpp could not parse the grammar (GBNF with a rule "
                                 "named root)")
            self._grammars[grammar] = template
            while len(self._grammars) > GRAMMAR_CACHE_SIZE:
                lc.llama_sampler_free(self._grammars.popitem(last=False)[1])
        else:
            self._grammars.move_to_end(grammar)
        return template

    def new_sampler(self, temperature: float, top_p: float, seed: int | None,
                    grammar: str | None = None) -> Sampler:
        lc = self.lc
        constraint = self.compiled_grammar(grammar) if grammar else None
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if temperature <= 0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        else:
            if top_p < 1.0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(top_p, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(temperature))
            lc.llama_sampler_chain_add(
                chain, lc.llama_sampler_init_dist(lc.LLAMA_DEFAULT_SEED if seed is None
                                                  else seed & 0xFFFFFFFF))
        return Sampler(chain, constraint, greedy=temperature <= 0)

    def sample(self, sampler: Sampler, batch_index: int) -> int:
        """The chain's token; under a grammar, the chain's pick if the grammar allows it, else
        the chain's pick among the tokens the grammar allows (as llama.cpp's own server
        samples). Checking one token instead of the whole vocabulary keeps a grammar nearly
        free while the model follows it; both ways give the same greedy answer, and sampling
        stays exact (a rejected draw is redrawn from the allowed tokens)."""
        lc = self.lc
        token = lc.llama_sampler_sample(sampler.chain, self.ctx, batch_index)
        if sampler.grammar is None:
            return token
        if not self._grammar_allows(sampler.grammar, token):
            token = None
            for size in GREEDY_SHORTLISTS if sampler.greedy else ():
                token = self._allowed_best(sampler, batch_index, size)
                if token is not None:
                    break
            if token is None:
                candidates, keep = self._all_candidates(batch_index)
                lc.llama_sampler_apply(sampler.grammar, ctypes.byref(candidates))
                lc.llama_sampler_apply(sampler.chain, ctypes.byref(candidates))
                token = candidates.data[candidates.selected].id
                del keep
        lc.llama_sampler_accept(sampler.grammar, token)
        return token

    def _allowed_best(self, sampler: Sampler, batch_index: int, size: int) -> int | None:
        """The highest-logit token the grammar allows among the `size` best; None when it
        allows none of them."""
        candidates, buf = self._all_candidates(batch_index, size)
        self.lc.llama_sampler_apply(sampler.grammar, ctypes.byref(candidates))
        allowed = buf[buf["logit"] > float("-inf")]
        return int(allowed["id"][allowed["logit"].argmax()]) if len(allowed) else None

    def _grammar_allows(self, grammar, token: int) -> bool:
        lc = self.lc
        one = lc.llama_token_data(id=token, logit=1.0, p=0.0)
        single = lc.llama_token_data_array(data=ctypes.pointer(one), size=1, selected=-1,
                                           sorted=False)
        lc.llama_sampler_apply(grammar, ctypes.byref(single))
        return not math.isinf(one.logit)

    def _all_candidates(self, batch_index: int, top: int | None = None):
        """Every token (or the `top` highest) with its logit, as llama.cpp's token data array,
        and the buffer it points into (which must stay alive while the array is used)."""
        import numpy as np

        lc = self.lc
        n = self.n_vocab()
        logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(self.ctx, batch_index), shape=(n,))
        ids = np.arange(n, dtype=np.int32) if top is None or top >= n else \
            np.argpartition(logits, -top)[-top:].astype(np.int32)
        buf = np.zeros(len(ids), dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        buf["id"] = ids
        buf["logit"] = logits[ids]
        data = buf.ctypes.data_as(ctypes.POINTER(lc.llama_token_data))
        return lc.llama_token_data_array(data=data, size=len(ids), selected=-1, sorted=False), buf

    def free_sampler(self, sampler: Sampler) -> None:
        self.lc.llama_sampler_free(sampler.chain)
        if sampler.grammar is not None:
            self.lc.llama_sampler_free(sampler.grammar)

    def logits(self, batch_index: int, n_vocab: int):
        ptr = self.lc.llama_get_logits_ith(self.ctx, batch_index)
        return [ptr[i] for i in range(n_vocab)]

    def n_vocab(self) -> int:
        return self.lc.llama_vocab_n_tokens(self.vocab)
