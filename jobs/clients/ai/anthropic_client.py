"""The decision client for Anthropic's Messages API (and Anthropic-compatible endpoints).

The answer is forced through one tool, ``record_decision``, whose ``input_schema`` is the verdict
schema: a forced tool works on every Anthropic-compatible endpoint and model, while
``output_config`` structured output needs a recent model on Anthropic's own API. The tool is not
marked ``strict`` for the same reason; the answer is validated by ``jobs.policy.verdict`` anyway.

The system block, the rule's rendered instruction (the same for every pull request of the rule's
pass) is marked ``cache_control: ephemeral``: with the tool before it, it is the prompt prefix
Anthropic may cache, so later pull requests read it at a tenth of the input price (Anthropic caches
a prefix of at least 1,024 tokens; OpenAI-compatible providers cache long prefixes by themselves).

``messages.create`` in this SDK has no ``temperature`` parameter, so the configured temperature is
not sent. The SDK retries 408/409/429/5xx itself, honouring
``retry-after``. This module does not validate the answer's content nor choose a fallback.
"""

from __future__ import annotations

from typing import Any

import anthropic
from anthropic.types import Message, TextBlockParam

from ai_operator.jobs.clients.ai.base import (
    TOOL_NAME,
    SDKDecisionClient,
    SDKErrors,
    decode_json_object,
    require_object,
)
from ai_operator.jobs.clients.ai.errors import AIResponseInvalid
from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.config import AIConfig
from ai_operator.jobs.rules.model import AIProvider

_TOOL_DESCRIPTION = "Record the decision about the pull request."
_CUT_OFF = {"max_tokens", "model_context_window_exceeded"}


class AnthropicDecisionClient(SDKDecisionClient):
    """Asks a Claude model for a decision through a forced tool call."""

    provider = AIProvider.ANTHROPIC

    errors = SDKErrors.of(anthropic, "Anthropic", "Messages API")

    def __init__(self, config: AIConfig, *, max_retries: int = 2) -> None:
        super().__init__(config)
        self._sdk = anthropic.Anthropic(**self.sdk_options(max_retries))

    def ask(self, system: str, user: str, schema: dict[str, Any]) -> dict[str, Any]:
        """Return the forced tool call's input; raise only :class:`AIError` subclasses."""
        self._count_call()
        try:
            message = self._sdk.messages.create(
                model=self.model,
                max_tokens=self._config.max_tokens,
                system=[_cached_block(system)],
                messages=[{"role": "user", "content": user}],
                tools=[
                    {"name": TOOL_NAME, "description": _TOOL_DESCRIPTION, "input_schema": schema}
                ],
                tool_choice={"type": "tool", "name": TOOL_NAME},
            )
        except anthropic.AnthropicError as exc:
            raise self.failure(exc) from exc
        self._record(_usage(message))
        return _answer(message)


def _cached_block(text: str) -> TextBlockParam:
    """A system block Anthropic may cache (ephemeral: about five minutes, renewed by each hit)."""
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}


def _usage(message: Message) -> ModelUsage:
    """The tokens a message spent; ``input`` includes the cached and cache-writing ones."""
    usage = message.usage
    cached = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return ModelUsage(
        input_tokens=usage.input_tokens + cached + written,
        output_tokens=usage.output_tokens,
        cached_tokens=cached,
    )


def _answer(message: Message) -> dict[str, Any]:
    """Return the forced tool call's input, else the text as JSON (an endpoint ignoring tools)."""
    if message.stop_reason in _CUT_OFF:
        raise AIResponseInvalid(f"the answer was cut off ({message.stop_reason})")
    if message.stop_reason == "refusal":
        raise AIResponseInvalid("the model refused to answer")
    for block in message.content:
        if block.type == "tool_use" and block.name == TOOL_NAME:
            return require_object(block.input)
    text = "".join(block.text for block in message.content if block.type == "text")
    return decode_json_object(text)
