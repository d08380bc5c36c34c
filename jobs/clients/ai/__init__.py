"""Decision clients: ask an LLM (Anthropic or OpenAI-compatible) for one JSON answer.

``make_decision_client(config)`` returns a :class:`DecisionClient` for ``config.provider``. Its
``ask(system, user, schema)`` returns the decoded JSON object and raises only the errors of
:mod:`jobs.clients.ai.errors`. The SDKs are imported only in this package's client modules; their
types never leave it. Whether the answer is an acceptable verdict is decided elsewhere.
"""

from __future__ import annotations

from ai_operator.jobs.clients.ai.base import DecisionClient
from ai_operator.jobs.config import AIConfig
from ai_operator.jobs.rules.model import AIProvider

__all__ = ["DecisionClient", "make_decision_client"]


def make_decision_client(config: AIConfig, *, max_retries: int = 2) -> DecisionClient:
    """Build the client for the configured provider; ``max_retries`` bounds the SDK's retries.

    Each SDK is imported only here, when its client is built: the pipeline's pods that never ask
    a model (fetch, act, report) start without loading either.
    """
    if config.provider is AIProvider.ANTHROPIC:
        from ai_operator.jobs.clients.ai.anthropic_client import AnthropicDecisionClient  # noqa: PLC0415

        return AnthropicDecisionClient(config, max_retries=max_retries)
    from ai_operator.jobs.clients.ai.openai_client import OpenAIDecisionClient  # noqa: PLC0415

    return OpenAIDecisionClient(config, max_retries=max_retries)
