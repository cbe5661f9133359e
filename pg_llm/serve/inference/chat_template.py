"""Renders a conversation with the model's own Jinja chat template (read from its GGUF).

The same renderer is used for inference, /v1/tokenize and training, so the tokens a
fine-tune learns from are exactly the tokens the engine later feeds the model.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache


class TemplateError(ValueError):
    pass


@lru_cache(maxsize=16)
def _compile(template: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def render_chat(template: str, messages: list[dict], *, add_generation_prompt: bool,
                bos_token: str = "", eos_token: str = "") -> str:
    try:
        return _compile(template).render(messages=messages,
                                         add_generation_prompt=add_generation_prompt,
                                         bos_token=bos_token, eos_token=eos_token)
    except TemplateError:
        raise
    except Exception as exc:  # jinja errors: surface as a bad request, not a crash
        raise TemplateError(f"chat template failed: {exc}") from exc
