"""Chat templates: ChatML, or the Jinja template stored in the GGUF, rendered in a sandbox.

A model file is untrusted input, so its template runs in Jinja's immutable sandbox: no attribute
access to Python internals, no mutation of the messages, bounded `range`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from importlib import resources
from typing import Any

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from model_server.gguf_file import GgufMetadata
from model_server.settings import ChatTemplateChoice

log = logging.getLogger("model_server.chat_template")

# Appended to the message being continued, so the rendered text can be cut right after it
# whatever the template puts around a message (no letters: case filters leave it alone).
_CUT = "\x00\x01\x02\x00"


class ChatTemplateError(ValueError):
    """The template cannot be compiled or rendered for these messages."""


def _raise(message: str) -> None:
    raise ChatTemplateError(message)


def _environment() -> ImmutableSandboxedEnvironment:
    # trim_blocks/lstrip_blocks: how Hugging Face renders the same templates.
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols], autoescape=False
    )
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def chatml_source() -> str:
    """The ChatML template shipped with the server."""
    return (resources.files("model_server") / "templates" / "chatml.jinja").read_text("utf-8")


class ChatTemplate:
    """Renders a list of `{"role", "content"}` messages into the prompt text for one model."""

    def __init__(self, source: str, name: str, bos_token: str = "", eos_token: str = ""):
        self.name = name
        self.source = source
        try:
            self._template = _environment().from_string(source)
        except TemplateError as exc:
            raise ChatTemplateError(f"{name} chat template does not compile: {exc}") from None
        self._bos = bos_token
        self._eos = eos_token

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        """Prompt text for `messages`, ending with the assistant's turn opener."""
        try:
            return self._template.render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                bos_token=self._bos,
                eos_token=self._eos,
            )
        except ChatTemplateError:
            raise
        except Exception as exc:  # a model's template may fail in any way; report, never crash
            raise ChatTemplateError(f"{self.name} chat template failed: {exc}") from None

    def render_continuation(self, messages: list[dict[str, Any]]) -> str:
        """Prompt text that ends inside the last message, right after its content, so the model
        continues that message (assistant prefill) instead of starting a new turn."""
        last = messages[-1]
        marked = [*messages[:-1], {**last, "content": last["content"] + _CUT}]
        text = self.render(marked, add_generation_prompt=False)
        if text.count(_CUT) != 1:
            raise ChatTemplateError(
                f"{self.name} chat template does not keep the last message as written, "
                "so it cannot be continued"
            )
        return text[: text.index(_CUT)]

    def render_request(
        self,
        messages: list[dict[str, Any]],
        continue_final_message: bool | None = None,
        add_generation_prompt: bool | None = None,
    ) -> tuple[str, bool]:
        """Prompt text for a chat request and whether it continues the final message.

        A final assistant message is continued unless the client asks for a new turn
        (`continue_final_message: false` or `add_generation_prompt: true`), as llama.cpp's
        server does; vLLM's explicit `continue_final_message: true` is accepted too."""
        last_is_assistant = bool(messages) and messages[-1]["role"] == "assistant"
        if continue_final_message and add_generation_prompt:
            raise ChatTemplateError(
                "continue_final_message and add_generation_prompt cannot both be true"
            )
        if continue_final_message and not last_is_assistant:
            raise ChatTemplateError(
                "continue_final_message needs the last message to be the assistant's"
            )
        if continue_final_message is None:
            continue_final_message = last_is_assistant and add_generation_prompt is not True
        if continue_final_message:
            return self.render_continuation(messages), True
        return self.render(
            messages, add_generation_prompt=add_generation_prompt is not False
        ), False


def select_template(
    info: GgufMetadata, choice: ChatTemplateChoice, tokens: list[str]
) -> ChatTemplate:
    """The template `choice` names: `gguf` (must exist), `chatml`, or `auto` (GGUF's if usable)."""
    bos = tokens[info.bos_id] if info.bos_id is not None and info.bos_id < len(tokens) else ""
    eos = tokens[info.eos_id] if info.eos_id is not None and info.eos_id < len(tokens) else ""
    if choice == "chatml":
        return ChatTemplate(chatml_source(), "chatml", bos, eos)
    if choice == "gguf":
        if not info.chat_template:
            raise ChatTemplateError(f"{info.path} has no tokenizer.chat_template")
        return _checked(ChatTemplate(info.chat_template, "gguf", bos, eos))
    if info.chat_template:
        try:
            return _checked(ChatTemplate(info.chat_template, "gguf", bos, eos))
        except ChatTemplateError as exc:
            log.warning("%s; using ChatML instead", exc)
    return ChatTemplate(chatml_source(), "chatml", bos, eos)


def _checked(template: ChatTemplate) -> ChatTemplate:
    """Render a sample conversation once so a broken template fails at start, not per request."""
    template.render(
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "u"},
        ]
    )
    return template
