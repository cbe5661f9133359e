"""Token pieces are read by the engine thread (every generated token) while request threads
render chat prompts (bos/eos as text) on the same vocabulary: neither may see the other's text.
A shared output buffer once let a generated `count` come out as `<|im_` (the first 5 bytes of
`<|im_end|>`), in an answer decoded while another request arrived."""

from __future__ import annotations

import threading

from pg_llm.serve.inference.llama_backend import LlamaVocab
from pg_llm.serve.registry import smollm2_gguf_path

ROUNDS = 200_000


def test_pieces_do_not_mix_across_threads():
    vocab = LlamaVocab(smollm2_gguf_path(), vocab_only=True)
    word = vocab.tokenize("count")
    assert len(word) == 1
    expected = vocab.piece(word[0])
    eos_id = vocab.lc.llama_vocab_eos(vocab.vocab)
    eos = vocab.token_text(eos_id)
    assert eos == "<|im_end|>"
    stop = threading.Event()
    wrong: list[bytes] = []  # either thread's misreads

    def render_prompts():  # what chat_prompt does for every request (special_tokens)
        while not stop.is_set():
            text = vocab.token_text(eos_id)
            if text != eos:
                wrong.append(text.encode())

    renderer = threading.Thread(target=render_prompts)
    renderer.start()
    try:
        for _ in range(ROUNDS):  # what the engine thread does for every token
            got = vocab.piece(word[0])
            if got != expected:
                wrong.append(got)
    finally:
        stop.set()
        renderer.join()
    assert not wrong, f"{len(wrong)} of {ROUNDS} pieces were another thread's text: {wrong[:3]}"
