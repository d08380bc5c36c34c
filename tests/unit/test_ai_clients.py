"""The decision clients against the fake LLM server, for both wire formats."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from ai_operator.jobs.clients.ai import DecisionClient, make_decision_client
from ai_operator.jobs.clients.ai.anthropic_client import AnthropicDecisionClient
from ai_operator.jobs.clients.ai.errors import (
    AIAuthError,
    AIError,
    AIRequestRejected,
    AIResponseInvalid,
    AIUnavailable,
)
from ai_operator.jobs.clients.ai.openai_client import OpenAIDecisionClient, answer_cap_field
from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.config import AIConfig, Settings, resolve_ai
from ai_operator.jobs.policy.verdict import verdict_schema
from ai_operator.jobs.rules.model import Action, AIProvider, AISettings
from tests.sandbox import OUTPUT_TOKENS, CutOff, FakeLLM, Refusal, cached_tokens

TOKEN = "sk-test-ai"
MODELS = {AIProvider.ANTHROPIC: "claude-sonnet-4-6", AIProvider.OPENAI: "gpt-4.1-mini"}
SCHEMA = verdict_schema(Action)
ANSWER: dict[str, Any] = {"action": "merge", "reason": "CI passed.", "comment": None, "labels": []}
PROVIDERS = [
    pytest.param(AIProvider.ANTHROPIC, id="anthropic"),
    pytest.param(AIProvider.OPENAI, id="openai"),
]


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(token=TOKEN) as fake:
        yield fake


def url_for(fake: FakeLLM, provider: AIProvider) -> str:
    return fake.anthropic_url if provider is AIProvider.ANTHROPIC else fake.openai_url


def make_client(
    fake: FakeLLM, provider: AIProvider, *, max_retries: int = 0, **overrides: Any
) -> DecisionClient:
    settings: dict[str, Any] = {
        "provider": provider,
        "base_url": url_for(fake, provider),
        "model": MODELS[provider],
        "token": SecretStr(TOKEN),
        "temperature": None,
        "max_tokens": 512,
        "timeout_seconds": 5.0,
    }
    return make_decision_client(AIConfig(**(settings | overrides)), max_retries=max_retries)


def ask(client: DecisionClient) -> object:
    return client.ask("You settle pull requests.", "Decide about PR #7.", SCHEMA)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_returns_the_structured_answer(llm: FakeLLM, provider: AIProvider) -> None:
    """The decoded JSON object comes back as is, and the call is counted."""
    llm.answer_next(ANSWER)
    client = make_client(llm, provider)
    assert ask(client) == ANSWER
    assert client.calls == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_request_carries_model_prompts_and_schema(llm: FakeLLM, provider: AIProvider) -> None:
    """The model, both prompts, the token cap and the schema reach the endpoint."""
    ask(make_client(llm, provider))
    [request] = llm.requests
    assert (request.provider, request.model) == (provider.value, MODELS[provider])
    assert (request.system, request.user) == ("You settle pull requests.", "Decide about PR #7.")
    assert (request.schema, request.max_tokens) == (SCHEMA, 512)
    assert not {"authorization", "x-api-key"} & set(request.headers)


def test_anthropic_forces_the_decision_tool(llm: FakeLLM) -> None:
    """Anthropic: one tool carries the schema and the model must call it."""
    ask(make_client(llm, AIProvider.ANTHROPIC))
    body = llm.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "record_decision"}
    assert [tool["input_schema"] for tool in body["tools"]] == [SCHEMA]
    assert "anthropic-version" in llm.requests[0].headers


def test_anthropic_marks_the_instruction_for_prompt_caching(llm: FakeLLM) -> None:
    """Anthropic: the system block (one rule's instruction, shared by its PRs) may be cached."""
    ask(make_client(llm, AIProvider.ANTHROPIC))
    assert llm.requests[0].body["system"] == [
        {
            "type": "text",
            "text": "You settle pull requests.",
            "cache_control": {"type": "ephemeral"},
        }
    ]


def test_openai_asks_for_strict_json_schema(llm: FakeLLM) -> None:
    """OpenAI: a strict json_schema response format, and max_tokens for a compatible server."""
    ask(make_client(llm, AIProvider.OPENAI))
    body = llm.requests[0].body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "decision", "schema": SCHEMA, "strict": True},
    }
    assert (body["max_tokens"], "max_completion_tokens" in body) == (512, False)


@pytest.mark.parametrize(
    ("host", "field"),
    [
        pytest.param("api.openai.com", "max_completion_tokens", id="openai"),
        pytest.param("team.openai.azure.com", "max_completion_tokens", id="azure-openai"),
        pytest.param("vllm.internal", "max_tokens", id="vllm"),
        pytest.param("127.0.0.1", "max_tokens", id="ollama-on-loopback"),
    ],
)
def test_answer_cap_field(host: str, field: str) -> None:
    """OpenAI's own hosts get max_completion_tokens; compatible servers get max_tokens."""
    assert answer_cap_field(host) == field


@pytest.mark.parametrize(
    ("provider", "temperature", "sent"),
    [
        pytest.param(AIProvider.OPENAI, 0.2, 0.2, id="openai-sends-it"),
        pytest.param(AIProvider.OPENAI, None, None, id="openai-unset"),
        pytest.param(AIProvider.ANTHROPIC, 0.2, None, id="anthropic-ignores-it"),
    ],
)
def test_temperature(
    llm: FakeLLM, provider: AIProvider, temperature: float | None, sent: float | None
) -> None:
    """The temperature is sent only where the SDK has it."""
    client = make_client(llm, provider, temperature=temperature)
    ask(client)
    assert llm.requests[0].temperature == sent


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limit_is_retried_after_retry_after(llm: FakeLLM, provider: AIProvider) -> None:
    """A 429 with retry-after is retried by the SDK; one ask, two requests."""
    llm.fail_next(1, status=429, retry_after=0.01)
    llm.answer_next(ANSWER)
    client = make_client(llm, provider, max_retries=2)
    assert ask(client) == ANSWER
    assert (len(llm.requests), client.calls) == (2, 1)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_persistent_server_errors_are_unavailable(llm: FakeLLM, provider: AIProvider) -> None:
    """5xx on every attempt ends, after the bounded retries, as a retryable AIUnavailable."""
    llm.fail_next(3, retry_after=0.01)
    with pytest.raises(AIUnavailable) as caught:
        ask(make_client(llm, provider, max_retries=2))
    assert len(llm.requests) == 3
    assert caught.value.retryable
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_token_is_an_auth_error_without_the_token(llm: FakeLLM, provider: AIProvider) -> None:
    """A 401 is AIAuthError, not retried, and its message never repeats the key."""
    secret = "sk-wrong-but-secret-123"
    with pytest.raises(AIAuthError) as caught:
        ask(make_client(llm, provider, max_retries=2, token=SecretStr(secret)))
    assert "401" in str(caught.value)
    assert secret not in str(caught.value)
    assert len(llm.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(400, AIRequestRejected, id="400-bad-request"),
        pytest.param(403, AIAuthError, id="403-forbidden"),
        pytest.param(404, AIRequestRejected, id="404-unknown-model"),
        pytest.param(422, AIRequestRejected, id="422-unprocessable"),
    ],
)
def test_client_errors_map_to_the_tree(
    llm: FakeLLM, provider: AIProvider, status: int, error: type[AIError]
) -> None:
    """Each refused request becomes its documented, non-retryable error."""
    llm.fail_next(1, status=status)
    with pytest.raises(error) as caught:
        ask(make_client(llm, provider, max_retries=2))
    assert not caught.value.retryable
    assert len(llm.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("not json", id="plain-text"),
        pytest.param("", id="empty"),
        pytest.param("[1, 2]", id="json-array"),
        pytest.param(Refusal(), id="refusal"),
        pytest.param(CutOff(), id="cut-off-at-max-tokens"),
    ],
)
def test_unusable_answers_are_invalid(llm: FakeLLM, provider: AIProvider, answer: object) -> None:
    """An answer without a usable JSON object is AIResponseInvalid, never a guess."""
    llm.answer_next(answer)
    with pytest.raises(AIResponseInvalid):
        ask(make_client(llm, provider))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fenced_json_text_is_accepted(llm: FakeLLM, provider: AIProvider) -> None:
    """A JSON object inside a Markdown code fence is still the answer."""
    llm.answer_next('```json\n{"action": "wait", "reason": "CI runs."}\n```')
    assert ask(make_client(llm, provider)) == {"action": "wait", "reason": "CI runs."}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_slow_answer_times_out_as_unavailable(llm: FakeLLM, provider: AIProvider) -> None:
    """No answer within the timeout is AIUnavailable."""
    llm.delay_next(0.3)
    with pytest.raises(AIUnavailable, match="no answer within"):
        ask(make_client(llm, provider, timeout_seconds=0.1))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unreachable_endpoint_is_unavailable(provider: AIProvider) -> None:
    """A closed port is AIUnavailable."""
    with FakeLLM(token=TOKEN) as stopped:
        pass
    with pytest.raises(AIUnavailable, match="could not reach"):
        ask(make_client(stopped, provider))


@pytest.mark.parametrize(
    ("path", "provider", "kind"),
    [
        pytest.param("/v1/messages", AIProvider.ANTHROPIC, AnthropicDecisionClient, id="messages"),
        pytest.param(
            "/v1/chat/completions", AIProvider.OPENAI, OpenAIDecisionClient, id="chat-completions"
        ),
    ],
)
def test_full_endpoint_url_resolves(
    llm: FakeLLM, path: str, provider: AIProvider, kind: type[DecisionClient]
) -> None:
    """A full request URL as AI_ENDPOINT picks the provider and the SDK base URL."""
    settings = Settings(
        ai_endpoint=llm.anthropic_url + path, ai_token=SecretStr(TOKEN), ai_model=MODELS[provider]
    )
    config = resolve_ai(AISettings(), settings)
    assert (config.provider, config.base_url) == (provider, url_for(llm, provider))
    llm.answer_next(ANSWER)
    client = make_decision_client(config)
    assert isinstance(client, kind)
    assert (client.provider, client.model, ask(client)) == (provider, MODELS[provider], ANSWER)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tokens_are_counted_from_the_responses_usage(llm: FakeLLM, provider: AIProvider) -> None:
    """Both wire formats' usage becomes the same counts: input (cached included), output, cached."""
    client = make_client(llm, provider)
    ask(client)
    ask(client)
    [request, _] = llm.requests
    cached = cached_tokens(request)
    per_call = ModelUsage(
        calls=1,
        input_tokens=len(request.user) // 4 + cached,
        output_tokens=OUTPUT_TOKENS,
        cached_tokens=cached,
    )
    assert cached > 0
    assert client.usage == per_call + per_call


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failed_call_counts_as_a_call_without_tokens(llm: FakeLLM, provider: AIProvider) -> None:
    """No answer, no usage: the call is counted, the tokens are not."""
    llm.fail_next(status=400)
    client = make_client(llm, provider)
    with pytest.raises(AIRequestRejected):
        ask(client)
    assert client.usage == ModelUsage(calls=1)


def test_each_thread_sees_what_its_own_calls_cost(llm: FakeLLM) -> None:
    """Decisions made in parallel through one client are metered per thread."""
    client = make_client(llm, AIProvider.OPENAI)
    ask(client)
    seen: list[ModelUsage] = []
    worker = threading.Thread(
        target=lambda: (ask(client), ask(client), seen.append(client.thread_usage()))
    )
    worker.start()
    worker.join()
    assert client.thread_usage().calls == 1 and seen[0].calls == 2
    assert client.usage.calls == 3
