"""Models, chat completions (plain and streaming) and tokenize, through the official client."""

from __future__ import annotations

import httpx
import openai
import pytest

MESSAGES = [{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Name three colours."}]


def test_health_lists_models(server):
    body = httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=5).json()
    assert body["status"] == "ok"
    assert body["models"] == ["tiny"]


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found"


def test_chat_completion_returns_text_and_usage(client):
    r = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=7,
                                       temperature=0)
    choice = r.choices[0]
    assert r.object == "chat.completion" and r.model == "tiny"
    assert choice.message.role == "assistant" and choice.message.content
    # A random tiny model never emits <|im_end|> early, so max_tokens is what stops it.
    assert choice.finish_reason == "length"
    assert r.usage.completion_tokens == 7
    assert r.usage.total_tokens == r.usage.prompt_tokens + 7


def test_prompt_tokens_match_tokenize_endpoint(client):
    r = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=1)
    tok = client.post("/tokenize", cast_to=object, body={"model": "tiny", "messages": MESSAGES})
    assert tok["count"] == r.usage.prompt_tokens == len(tok["tokens"])
    assert tok["model"] == "tiny"


def test_tokenize_text_uses_the_model_tokenizer(client):
    tok = client.post("/tokenize", cast_to=object, body={"model": "tiny", "text": "hello world"})
    # SmolLM2's BPE: "hello" and " world" are single tokens.
    assert tok["count"] == 2 and len(tok["tokens"]) == 2
    special = client.post("/tokenize", cast_to=object,
                          body={"model": "tiny", "text": "<|im_start|>"})
    assert special["count"] == 1  # special tokens are parsed, not spelled out


def test_tokenize_errors(client):
    with pytest.raises(openai.BadRequestError):
        client.post("/tokenize", cast_to=object, body={"model": "tiny"})
    with pytest.raises(openai.NotFoundError):
        client.post("/tokenize", cast_to=object, body={"model": "nope", "text": "x"})


def test_greedy_is_deterministic_and_seed_controls_sampling(client):
    def run(**kw):
        return client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=12,
                                              **kw).choices[0].message.content

    assert run(temperature=0) == run(temperature=0)
    assert run(temperature=1.0, seed=7) == run(temperature=1.0, seed=7)
    samples = {run(temperature=1.0, seed=s) for s in range(4)}
    assert len(samples) > 1  # different seeds sample different text


def test_top_p_near_zero_is_greedy(client):
    greedy = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=10,
                                            temperature=0).choices[0].message.content
    narrow = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=10,
                                            temperature=1.5, top_p=1e-6,
                                            seed=3).choices[0].message.content
    assert narrow == greedy


def test_stop_sequence_truncates_and_reports_stop(client):
    sampled = {"temperature": 1.0, "seed": 11}  # greedy on a random model repeats "\n"
    full = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=20,
                                          **sampled).choices[0].message.content
    stop = full[len(full) // 2:len(full) // 2 + 3]
    assert stop.strip(), f"need a visible stop string from {full!r}"
    r = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=20,
                                       stop=[stop], **sampled)
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == full[:full.index(stop)]


def test_streaming_matches_non_streaming(client):
    plain = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=15,
                                           temperature=0)
    chunks = list(client.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=15, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 15
    assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens


# Prompts of different lengths, each with its own max_tokens: an answer that reached the
# wrong request shows in its text and usage.
CONCURRENT = [([{"role": "user", "content": "Question" + " number" * i}], 4 + i) for i in range(6)]


@pytest.fixture(scope="module")
def decisive_prompts(tiny_dir):
    """Greedy answers are compared exactly, so no greedy step may be a near tie that batching's
    rounding could flip: checked here on the model the server serves."""
    from .tiny_checkpoint import MIN_GREEDY_MARGIN, greedy_margins

    margins = greedy_margins(tiny_dir, [messages for messages, _ in CONCURRENT],
                             max(n for _, n in CONCURRENT))
    assert min(margins) >= MIN_GREEDY_MARGIN, margins
    return CONCURRENT


def test_concurrent_requests_are_answered_like_sequential_ones(client, decisive_prompts):
    from concurrent.futures import ThreadPoolExecutor

    def ask(prompt):
        messages, max_tokens = prompt
        r = client.chat.completions.create(model="tiny", messages=messages,
                                           max_tokens=max_tokens, temperature=0)
        return r.choices[0].message.content, r.usage.prompt_tokens, r.usage.completion_tokens

    sequential = [ask(p) for p in decisive_prompts]
    assert len(set(sequential)) == len(decisive_prompts)
    with ThreadPoolExecutor(len(decisive_prompts)) as pool:
        together = list(pool.map(ask, decisive_prompts))
    assert together == sequential  # batching must not mix sequences up


@pytest.mark.parametrize("bad", [
    {"temperature": 3}, {"top_p": 1.5}, {"max_tokens": 0}, {"stop": ["a", "b", "c", "d", "e"]},
    {"n": 2}, {"messages": []}, {"messages": [{"role": "robot", "content": "x"}]},
])
def test_invalid_parameters_are_400(client, bad):
    kwargs = {"model": "tiny", "messages": MESSAGES, "max_tokens": 3, **bad}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**kwargs)
    assert err.value.body["message"] and err.value.body["type"] == "invalid_request_error"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-nope", messages=MESSAGES)
    assert "gpt-nope" in err.value.body["message"]


def test_prompt_longer_than_context_is_400(client):
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=long, max_tokens=3)
    assert err.value.code == "context_length_exceeded"
