"""Whether llama.cpp's own grammar engine admits a text under a GBNF: each token of the text
must keep a logit under the grammar sampler, and (for a complete answer) end-of-generation
must be allowed after it. The tokens are SmolLM2's (the tiny test model shares them)."""

from __future__ import annotations

import ctypes
import functools
import math


@functools.lru_cache(maxsize=1)
def _vocab():
    from pg_llm.serve.inference.llama_backend import LlamaVocab
    from pg_llm.serve.registry import smollm2_gguf_path

    return LlamaVocab(smollm2_gguf_path())


def _allowed(lc, grammar_sampler, token: int) -> bool:
    one = lc.llama_token_data(id=token, logit=1.0, p=0.0)
    array = lc.llama_token_data_array(data=ctypes.pointer(one), size=1, selected=-1, sorted=False)
    lc.llama_sampler_apply(grammar_sampler, ctypes.byref(array))
    return not math.isinf(one.logit)


def admits(grammar: str, text: str, *, complete: bool = True) -> bool:
    """complete=False: `text` may be cut off (finish_reason length) and need only be a prefix."""
    vocab = _vocab()
    lc = vocab.lc
    sampler = lc.llama_sampler_init_grammar(vocab.vocab, grammar.encode(), b"root")
    assert sampler, "llama.cpp could not parse the grammar"
    try:
        for token in vocab.tokenize(text):
            if not _allowed(lc, sampler, token):
                return False
            lc.llama_sampler_accept(sampler, token)
        return not complete or _allowed(lc, sampler, lc.llama_vocab_eos(vocab.vocab))
    finally:
        lc.llama_sampler_free(sampler)
