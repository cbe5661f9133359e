"""Validation of a /v1/chat/completions body into generation parameters (OpenAI semantics)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import bad_request
from ..numbers import valid_number

# A grammar is parsed for each new text (then cached): bound what one request may ask for.
MAX_GRAMMAR_CHARS = 256 * 1024

ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user",
                "assistant": "assistant"}


@dataclass
class ChatParams:
    model: str
    messages: list[dict]
    max_tokens: int | None
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    response_format: dict | None = None  # validated; chat.py sizes its grammar to max_tokens
    grammar: str | None = None  # GBNF (llama.cpp server's field), e.g. pg_llm.sql_grammar


def _content_text(content, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}] parts
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return "".join(texts)
        raise bad_request(f"messages[{index}].content: only text parts are supported.",
                          f"messages.[{index}].content")
    if content is None:
        return ""
    raise bad_request(f"messages[{index}].content must be a string.",
                      f"messages.[{index}].content")


def parse_messages(raw) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("'messages' must be a non-empty array.", "messages")
    messages = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict) or msg.get("role") not in ROLE_ALIASES:
            raise bad_request(f"messages[{i}].role must be one of system, developer, user, "
                              "assistant.", f"messages.[{i}].role")
        messages.append({"role": ROLE_ALIASES[msg["role"]],
                         "content": _content_text(msg.get("content"), i)})
    return messages


def _number(body, name, low, high, default, kind=float):
    value = body.get(name)
    if value is None:
        return default
    if not valid_number(value, low, high, kind):
        raise bad_request(f"'{name}' must be a {kind.__name__} between {low} and {high}, "
                          f"got {value!r}.", name)
    return kind(value)


def parse_chat_body(body: dict) -> ChatParams:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("Missing required parameter: 'model'.", "model")
    if body.get("n") not in (None, 1):
        raise bad_request("Only n=1 is supported by the local engine.", "n")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is None:
        stop = []
    if not isinstance(stop, list) or len(stop) > 4 or \
            not all(isinstance(s, str) and s for s in stop):
        raise bad_request("'stop' must be a non-empty string or up to 4 of them.", "stop")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        max_tokens = _number({"max_tokens": max_tokens}, "max_tokens", 1, 1 << 20, None, int)
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean.", "stream")
    options = body.get("stream_options") or {}
    from ..inference.json_grammar import InvalidResponseFormat, grammar_for
    try:
        grammar_for(body.get("response_format"), max_tokens)  # a 400 here, not at submit
    except InvalidResponseFormat as exc:
        raise bad_request(str(exc), "response_format") from None
    grammar = body.get("grammar")
    if grammar is not None:
        if not isinstance(grammar, str) or not grammar.strip():
            raise bad_request("'grammar' must be a non-empty string (GBNF).", "grammar")
        if len(grammar) > MAX_GRAMMAR_CHARS:
            raise bad_request(f"'grammar' has {len(grammar)} characters; at most "
                              f"{MAX_GRAMMAR_CHARS} are accepted.", "grammar")
        if (body.get("response_format") or {}).get("type") not in (None, "text"):
            raise bad_request("Give either 'grammar' or a JSON 'response_format', not both.",
                              "grammar")
    return ChatParams(model=model, messages=parse_messages(body.get("messages")),
                      max_tokens=max_tokens,
                      temperature=_number(body, "temperature", 0.0, 2.0, 1.0),
                      top_p=_number(body, "top_p", 0.0, 1.0, 1.0),
                      seed=_number(body, "seed", -(1 << 63), (1 << 63) - 1, None, int),
                      stop=stop, stream=stream,
                      include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
                      response_format=body.get("response_format"), grammar=grammar)
