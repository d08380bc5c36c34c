"""Configuration from the environment, by the earlier design's variable names.

| variable            | meaning                                                        |
| ------------------- | -------------------------------------------------------------- |
| GITHUB_TOKEN        | personal access token (required to read GitHub)                 |
| GITHUB_ORGANIZATION | owner of GITHUB_REPOSITORIES                                    |
| GITHUB_REPOSITORIES | comma-separated repository names (or owner/name)               |
| GITHUB_GRAPHQL_URL  | GraphQL endpoint (GitHub Enterprise: https://HOST/api/graphql)  |
| GITHUB_MUTATION_INTERVAL_SECONDS | pause between two mutations (default 1; GitHub's limits) |
| GITHUB_MAX_RETRIES  | retries of a failed GitHub request (5xx, connection) (default 4) |
| GITHUB_RETRY_BACKOFF_SECONDS | first backoff between retries, doubled each time (default 1) |
| AI_PROVIDER         | anthropic or openai; inferred from AI_ENDPOINT when unset       |
| AI_ENDPOINT         | base URL or full Messages / Chat Completions URL                |
| AI_MODEL            | model name                                                      |
| AI_TOKEN            | the model endpoint's API key                                    |
| AI_TEMPERATURE      | sampling temperature (OpenAI-compatible providers)              |
| AI_MAX_TOKENS       | answer token cap                                                |
| AI_TIMEOUT_SECONDS  | timeout of one AI request                                       |
| PUSHGATEWAY_URL     | Pushgateway to push each pass's metrics to                      |
| LOG_LEVEL           | DEBUG, INFO, WARNING, ERROR                                     |
| LOG_FORMAT          | json or console (default: console on a terminal, else json)     |
| DECISION_CACHE_MAX_AGE_SECONDS | how long a decision is reused while its facts stay (86400) |
| XDG_CACHE_HOME      | where ``run`` keeps its decisions (default ~/.cache)             |
| AI_OPERATOR_LIMITS  | the namespace's limits (JSON; the compiler sets it)             |

Limits (:mod:`jobs.rules.limits`): with ``AI_OPERATOR_LIMITS`` unset, the built-in ones apply
(every repository and action, and only the installation's own model endpoint, ``AI_ENDPOINT``).
:func:`check_limits` refuses a rule that exceeds them and :func:`resolve_ai` refuses to hand the
AI token to an endpoint they do not allow, before any client exists.

Tokens are kept as :class:`pydantic.SecretStr` so that no repr, log line or dump shows them.
Reading the environment happens once, in :meth:`Settings.from_env`; everything else is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from jobs.rules.encoding import StepInputError, limits_from_env
from jobs.rules.limits import (
    BUILT_IN,
    LimitsSpec,
    effective_endpoint,
    endpoint_problem,
    limit_problems,
)
from jobs.rules.model import AIProvider, AISettings, RuleSpec

_N = TypeVar("_N", int, float)

DEFAULT_GITHUB_GRAPHQL_URL = "https://api.github.com/graphql"
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"})
DEFAULT_MODELS = {AIProvider.ANTHROPIC: "claude-sonnet-5", AIProvider.OPENAI: "gpt-4.1-mini"}
DEFAULT_MAX_TOKENS = 1024
DEFAULT_AI_TIMEOUT_SECONDS = 60.0
DEFAULT_DECISION_MAX_AGE_SECONDS = 86400.0


class ConfigError(Exception):
    """The configuration is missing or wrong; the message names the variable or field."""


@dataclass(frozen=True)
class AIConfig:
    """Everything a decision client needs, resolved from the rule and the environment."""

    provider: AIProvider
    base_url: str | None
    model: str
    token: SecretStr
    temperature: float | None
    max_tokens: int
    timeout_seconds: float


@dataclass(frozen=True)
class Settings:
    """The process environment, read once."""

    github_token: SecretStr | None = None
    github_url: str = DEFAULT_GITHUB_GRAPHQL_URL
    github_mutation_interval: float = 1.0
    github_max_retries: int = 4
    github_retry_backoff: float = 1.0
    organization: str | None = None
    repositories: tuple[str, ...] = ()
    ai_provider: AIProvider | None = None
    ai_endpoint: str | None = None
    ai_model: str | None = None
    ai_token: SecretStr | None = None
    ai_temperature: float | None = None
    ai_max_tokens: int | None = None
    ai_timeout_seconds: float | None = None
    pushgateway_url: str | None = None
    log_level: str = "INFO"
    log_format: str | None = None
    decision_max_age_seconds: float = DEFAULT_DECISION_MAX_AGE_SECONDS
    cache_home: str | None = None
    """``XDG_CACHE_HOME``."""
    run_lock_wait_seconds: float = 60.0
    """``RUN_LOCK_WAIT_SECONDS``: how long ``run`` waits for another pass of the same rule."""
    home: str | None = None
    """``HOME``."""
    limits: LimitsSpec = BUILT_IN
    """``AI_OPERATOR_LIMITS``: what the rules run here may reach."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the variables above; a malformed value raises :class:`ConfigError`."""

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def secret(name: str) -> SecretStr | None:
            value = text(name)
            return SecretStr(value) if value else None

        provider = text("AI_PROVIDER")
        try:
            ai_provider = AIProvider(provider.lower()) if provider else None
        except ValueError as exc:
            raise ConfigError(f"AI_PROVIDER must be anthropic or openai, not {provider!r}") from exc
        repos = tuple(
            r.strip() for r in (text("GITHUB_REPOSITORIES") or "").split(",") if r.strip()
        )
        log_format = (text("LOG_FORMAT") or "").lower() or None
        if log_format not in {None, "json", "console", "text"}:
            raise ConfigError(f"LOG_FORMAT must be json or console, not {log_format!r}")
        log_level = (text("LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(
                f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {text('LOG_LEVEL')!r}"
            )
        try:
            limits = limits_from_env(env)
        except StepInputError as exc:
            raise ConfigError(str(exc)) from exc
        return cls(
            github_token=secret("GITHUB_TOKEN"),
            github_url=text("GITHUB_GRAPHQL_URL") or DEFAULT_GITHUB_GRAPHQL_URL,
            github_mutation_interval=_default(
                _number(
                    text("GITHUB_MUTATION_INTERVAL_SECONDS"),
                    "GITHUB_MUTATION_INTERVAL_SECONDS",
                    float,
                ),
                1.0,
            ),
            github_max_retries=int(
                _default(_number(text("GITHUB_MAX_RETRIES"), "GITHUB_MAX_RETRIES", int), 4)
            ),
            github_retry_backoff=_default(
                _number(
                    text("GITHUB_RETRY_BACKOFF_SECONDS"), "GITHUB_RETRY_BACKOFF_SECONDS", float
                ),
                1.0,
            ),
            organization=text("GITHUB_ORGANIZATION"),
            repositories=repos,
            ai_provider=ai_provider,
            ai_endpoint=text("AI_ENDPOINT"),
            ai_model=text("AI_MODEL"),
            ai_token=secret("AI_TOKEN"),
            ai_temperature=_number(text("AI_TEMPERATURE"), "AI_TEMPERATURE", float),
            ai_max_tokens=_number(text("AI_MAX_TOKENS"), "AI_MAX_TOKENS", int),
            ai_timeout_seconds=_number(text("AI_TIMEOUT_SECONDS"), "AI_TIMEOUT_SECONDS", float),
            pushgateway_url=text("PUSHGATEWAY_URL"),
            log_level=log_level,
            log_format="console" if log_format == "text" else log_format,
            decision_max_age_seconds=_max_age(text("DECISION_CACHE_MAX_AGE_SECONDS")),
            cache_home=text("XDG_CACHE_HOME"),
            run_lock_wait_seconds=_lock_wait(text("RUN_LOCK_WAIT_SECONDS")),
            home=text("HOME"),
            limits=limits,
        )

    def secrets(self) -> tuple[str, ...]:
        """The secret values, for the log redactor."""
        return tuple(s.get_secret_value() for s in (self.github_token, self.ai_token) if s)

    def require_github_token(self) -> SecretStr:
        """The GitHub token, or a one-line :class:`ConfigError`."""
        if self.github_token is None:
            raise ConfigError(
                "GITHUB_TOKEN is not set: export a GitHub token to read pull requests"
            )
        return self.github_token


def rule_repositories(spec: RuleSpec, settings: Settings) -> tuple[str, ...]:
    """The repositories a rule covers: its own list, else the environment's."""
    if spec.repositories:
        return tuple(dict.fromkeys(spec.repositories))
    repos = []
    for name in settings.repositories:
        if "/" in name:
            repos.append(name)
        elif settings.organization:
            repos.append(f"{settings.organization}/{name}")
        else:
            raise ConfigError(
                f"GITHUB_REPOSITORIES names {name!r} without an owner and "
                "GITHUB_ORGANIZATION is not set"
            )
    if not repos:
        raise ConfigError(
            "no repositories: set spec.repositories in the rule, or GITHUB_ORGANIZATION and "
            "GITHUB_REPOSITORIES"
        )
    return tuple(dict.fromkeys(repos))


def check_limits(spec: RuleSpec, settings: Settings) -> None:
    """Refuse a rule that exceeds ``settings.limits``: a one-line ConfigError naming each field.

    Every step runs it before it reads or writes, so that a rule changed under a running
    workflow cannot widen what that workflow reaches.
    """
    problems = limit_problems(
        spec,
        settings.limits,
        repositories=rule_repositories(spec, settings),
        installation_endpoint=settings.ai_endpoint,
        installation_provider=installation_provider(settings),
    )
    if problems:
        raise ConfigError(
            "the rule exceeds its namespace's limits: " + "; ".join(map(str, problems))
        )


def model_identity(rule_ai: AISettings, settings: Settings) -> str:
    """``provider/model`` of a rule, as :func:`resolve_ai` would choose them (no token needed).

    Part of the key a decision is remembered under: another model decides anew.
    """
    endpoint = rule_ai.endpoint or settings.ai_endpoint
    provider = rule_ai.provider or settings.ai_provider or infer_provider(endpoint)
    return f"{provider.value}/{rule_ai.model or settings.ai_model or DEFAULT_MODELS[provider]}"


def resolve_ai(rule_ai: AISettings, settings: Settings) -> AIConfig:
    """Merge a rule's model settings over the environment's into one :class:`AIConfig`.

    Where a rule's own endpoint or provider sends the token (:func:`effective_endpoint`) must be
    a place ``settings.limits`` allows (:func:`endpoint_problem`): else a ConfigError, and no
    client is ever built to send the AI token there.
    """
    if rule_ai.endpoint is not None or rule_ai.provider is not None:
        target = effective_endpoint(rule_ai.endpoint, rule_ai.provider, settings.ai_endpoint)
        refused = endpoint_problem(
            target, settings.limits.ai, settings.ai_endpoint, installation_provider(settings)
        )
        if refused is not None:
            field = "spec.ai.endpoint" if rule_ai.endpoint is not None else "spec.ai.provider"
            raise ConfigError(f"{field}: {refused}")
    endpoint = rule_ai.endpoint or settings.ai_endpoint
    provider = rule_ai.provider or settings.ai_provider or infer_provider(endpoint)
    token = settings.ai_token
    if token is None:
        raise ConfigError("AI_TOKEN is not set: export the model endpoint's API key")
    return AIConfig(
        provider=provider,
        base_url=base_url(provider, endpoint) if endpoint else None,
        model=rule_ai.model or settings.ai_model or DEFAULT_MODELS[provider],
        token=token,
        temperature=rule_ai.temperature
        if rule_ai.temperature is not None
        else settings.ai_temperature,
        max_tokens=rule_ai.maxTokens or settings.ai_max_tokens or DEFAULT_MAX_TOKENS,
        timeout_seconds=rule_ai.timeoutSeconds
        or settings.ai_timeout_seconds
        or DEFAULT_AI_TIMEOUT_SECONDS,
    )


def installation_provider(settings: Settings) -> AIProvider:
    """The provider the installation's own settings choose (``AI_PROVIDER``, else inferred)."""
    return settings.ai_provider or infer_provider(settings.ai_endpoint)


def infer_provider(endpoint: str | None) -> AIProvider:
    """Anthropic unless the endpoint looks like an OpenAI-compatible one."""
    if endpoint is None:
        return AIProvider.ANTHROPIC
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if "anthropic" in parts.netloc or path.endswith("/messages"):
        return AIProvider.ANTHROPIC
    return AIProvider.OPENAI


def base_url(provider: AIProvider, endpoint: str) -> str:
    """The SDK base URL for an endpoint given as a base URL or as the full request URL.

    Anthropic's SDK appends ``/v1/messages``; OpenAI's appends ``/chat/completions`` to a base
    that includes ``/v1``.
    """
    parts = urlsplit(endpoint)
    if not parts.scheme or not parts.netloc:
        raise ConfigError(f"AI endpoint {endpoint!r} is not an absolute http(s) URL")
    path = parts.path.rstrip("/")
    if provider is AIProvider.ANTHROPIC:
        for suffix in ("/v1/messages", "/messages", "/v1"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
    elif path.endswith("/chat/completions"):
        path = path[: -len("/chat/completions")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _max_age(value: str | None) -> float:
    seconds = _number(value, "DECISION_CACHE_MAX_AGE_SECONDS", float)
    if seconds is None:
        return DEFAULT_DECISION_MAX_AGE_SECONDS
    if seconds < 0:
        raise ConfigError(f"DECISION_CACHE_MAX_AGE_SECONDS must not be negative, not {value!r}")
    return seconds


def _lock_wait(value: str | None) -> float:
    seconds = _number(value, "RUN_LOCK_WAIT_SECONDS", float)
    if seconds is None:
        return 60.0
    if seconds < 0:
        raise ConfigError(f"RUN_LOCK_WAIT_SECONDS must not be negative, not {value!r}")
    return seconds


def _default(value: float | None, default: float) -> float:
    return default if value is None else value


def _number(value: str | None, name: str, kind: type[_N]) -> _N | None:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {value!r}") from exc
