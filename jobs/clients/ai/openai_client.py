"""The decision client for OpenAI's Chat Completions API and compatible servers.

Compatible servers include vLLM, Ollama and LiteLLM.

The answer is forced with ``response_format`` ``json_schema`` (``strict``) and read from the
message's content as JSON (a Markdown code fence around it is tolerated). The answer cap is sent as
``max_completion_tokens`` to OpenAI's own hosts (its reasoning models reject ``max_tokens``) and as
``max_tokens`` elsewhere, the field every compatible server accepts. The temperature is sent only
when configured. The SDK retries 408/409/429/5xx itself, honouring ``retry-after`` (at most
two minutes).
This module does not validate the answer's content nor choose a fallback.
"""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion

from ai_operator.jobs.clients.ai.base import (
    SCHEMA_NAME,
    SDKDecisionClient,
    SDKErrors,
    decode_json_object,
)
from ai_operator.jobs.clients.ai.errors import AIResponseInvalid
from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.config import AIConfig
from ai_operator.jobs.rules.model import AIProvider

_OPENAI_HOSTS = ("api.openai.com", ".openai.azure.com")


class OpenAIDecisionClient(SDKDecisionClient):
    """Asks an OpenAI-compatible model for a decision in JSON-schema mode."""

    provider = AIProvider.OPENAI

    errors = SDKErrors.of(openai, "OpenAI", "Chat Completions")

    def __init__(self, config: AIConfig, *, max_retries: int = 2) -> None:
        super().__init__(config)
        self._sdk = openai.OpenAI(**self.sdk_options(max_retries))
        self._cap_field = answer_cap_field(self._sdk.base_url.host)

    def ask(self, system: str, user: str, schema: dict[str, Any]) -> dict[str, Any]:
        """Return the answer's JSON object; raise only :class:`AIError` subclasses."""
        self._count_call()
        options: dict[str, Any] = {self._cap_field: self._config.max_tokens}
        if self._config.temperature is not None:
            options["temperature"] = self._config.temperature
        try:
            completion = self._sdk.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True},
                },
                **options,
            )
        except openai.OpenAIError as exc:
            raise self.failure(exc) from exc
        self._record(_usage(completion))
        return _answer(completion)


def _usage(completion: ChatCompletion) -> ModelUsage:
    """The tokens a completion spent (none when the server reports no usage)."""
    usage = completion.usage
    if usage is None:
        return ModelUsage()
    details = usage.prompt_tokens_details
    return ModelUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_tokens=(details.cached_tokens or 0) if details else 0,
    )


def answer_cap_field(host: str) -> str:
    """Name the token-cap field for a host: OpenAI's own API wants ``max_completion_tokens``."""
    openai_host = any(
        host == name or (name.startswith(".") and host.endswith(name)) for name in _OPENAI_HOSTS
    )
    return "max_completion_tokens" if openai_host else "max_tokens"


def _answer(completion: ChatCompletion) -> dict[str, Any]:
    """Decode the JSON object in the first choice's content."""
    if not completion.choices:
        raise AIResponseInvalid("the answer has no choices")
    choice = completion.choices[0]
    if choice.message.refusal:
        raise AIResponseInvalid("the model refused to answer")
    if choice.finish_reason == "length":
        raise AIResponseInvalid("the answer was cut off (max tokens)")
    if choice.finish_reason == "content_filter":
        raise AIResponseInvalid("the answer was withheld by a content filter")
    return decode_json_object(choice.message.content)
