"""The one HTTP client against a real loopback server: concurrency, retries, cancellation,
error mapping and key scrubbing."""

import pytest

from pg_llm.engines.client import ChatRequest, EngineSettings, chat_many, list_models, scrub
from pg_llm.errors import EngineAuthFailed, EngineRequestFailed, EngineUnavailable, UndefinedObject
from fake_openai import FakeOpenAI

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def fake():
    with FakeOpenAI(models=["m1"], api_key=KEY) as server:
        yield server


def settings(fake, **kw):
    return EngineSettings(name="eng", base_url=fake.url, api_key=kw.pop("api_key", KEY), **kw)


def ask(text, model="m1", **options):
    return ChatRequest(model, (("user", text),), tuple(sorted(options.items())))


def test_round_trip_with_usage_and_the_key_sent_as_bearer(fake):
    [result] = chat_many(settings(fake), [ask("hello there", max_tokens=10)])
    assert result.text == "echo:hello there"
    assert (result.prompt_tokens, result.completion_tokens) == (2, 2)
    assert result.model_id == "m1" and result.finish_reason == "stop"
    [request] = fake.chat_requests()
    assert request.authorization == f"Bearer {KEY}"
    assert request.body["max_tokens"] == 10


def test_results_come_back_in_request_order_with_bounded_concurrency(fake):
    fake.delay = 0.1
    prompts = [f"p{i}" for i in range(24)]
    results = chat_many(settings(fake, concurrency=4), [ask(p) for p in prompts])
    assert [r.text for r in results] == [f"echo:{p}" for p in prompts]
    assert fake.max_in_flight == 4  # concurrent, and never more than 4 at once


def test_5xx_is_retried_with_backoff_then_succeeds(fake):
    fake.fail(503, times=2, retry_after_ms=20)
    [result] = chat_many(settings(fake, max_retries=2), [ask("again")])
    assert result.text == "echo:again"
    assert len(fake.chat_requests()) == 3


def test_429_after_all_retries_is_engine_unavailable(fake):
    fake.fail(429, retry_after_ms=10)
    with pytest.raises(EngineUnavailable, match="rate limiting") as err:
        chat_many(settings(fake, max_retries=1), [ask("x")])
    assert len(fake.chat_requests()) == 2
    assert "concurrency" in err.value.hint


def test_wrong_key_is_auth_failed_and_never_echoed(fake):
    wrong = "sk-wrong-key-abcdef123456"
    with pytest.raises(EngineAuthFailed) as err:
        list_models(settings(fake, api_key=wrong))
    exc = err.value
    assert exc.sqlstate == "28000" and "llm_set_api_key" in exc.hint
    for text in (exc.message, exc.detail, exc.hint):
        assert wrong not in (text or "")
    assert "Incorrect API key provided" in exc.detail  # the server's message survives, scrubbed


def test_unknown_model_is_undefined_object(fake):
    with pytest.raises(UndefinedObject, match='model "nope"'):
        chat_many(settings(fake), [ask("x", model="nope")])


def test_bad_request_is_request_failed(fake):
    with pytest.raises(EngineRequestFailed, match="HTTP 400"):
        chat_many(settings(fake), [ask("x", max_tokens=0)])


def test_connection_refused_is_engine_unavailable_with_serve_hint(refused_url):
    dead = EngineSettings(name="eng", base_url=refused_url, max_retries=0)
    with pytest.raises(EngineUnavailable) as err:
        list_models(dead)
    assert err.value.sqlstate == "08001" and "pg-llm serve" in err.value.hint


def test_timeout_is_engine_unavailable(fake):
    fake.hang()
    with pytest.raises(EngineUnavailable, match="did not answer within 0.3 s"):
        chat_many(settings(fake, timeout=0.3, max_retries=0), [ask("x")])


def test_a_cancel_from_the_polling_thread_ends_the_wait_promptly(fake):
    """The cancel arrives once the engine holds the request; the engine never answers, and the
    request timeout (60 s) is far beyond the test's: only the cancel can end the wait."""
    fake.hang()

    def check_interrupts():
        if fake.in_flight:
            raise KeyboardInterrupt("canceling statement due to user request")

    with pytest.raises(KeyboardInterrupt):
        chat_many(settings(fake, timeout=60, max_retries=0), [ask("x")], check_interrupts)
    assert len(fake.chat_requests()) == 1


def test_scrub_removes_the_key_and_key_like_tokens():
    assert scrub("bad key sk-abcdef123 and Bearer xyz12345", "sk-abcdef123") == \
        "bad key *** and Bearer ***"
    assert scrub("nothing secret", None) == "nothing secret"
