"""Configuration from the environment, by the earlier design's variable names.

:class:`Settings` is the one settings model of every process that reconciles pull requests
(``run``, the pipeline's steps, ``demo``, ``test``; the controller reads its logging variables
from it too): each field names its environment variable, its default and what it means, and the
README's table of variables is generated from it (``scripts/generate-settings-docs``). The
controller's own file has its model in :mod:`pipelines.controller.config`, the compiler's options
theirs in :mod:`pipelines.options`.

Limits (:mod:`jobs.rules.limits`): with ``AI_OPERATOR_LIMITS`` unset, the built-in ones apply
(every repository and action, and only the installation's own model endpoint, ``AI_ENDPOINT``).
:func:`check_limits` refuses a rule that exceeds them and :func:`resolve_ai` refuses to hand the
AI token to an endpoint they do not allow, before any client exists.

Tokens are kept as :class:`pydantic.SecretStr` so that no repr, log line, dump or error shows them.
Reading the environment happens once, in :meth:`Settings.from_env`; everything else is pure.

Errors: :class:`ConfigError`, one line naming the variable (``GITHUB_MAX_RETRIES must be a whole
number, not 'many'``); never retryable. A token's value is never part of a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ai_operator.jobs.rules.encoding import LIMITS_ENV, StepInputError, decode_limits
from ai_operator.jobs.rules.limits import (
    BUILT_IN,
    LimitsSpec,
    effective_endpoint,
    endpoint_problem,
    limit_problems,
)
from ai_operator.jobs.rules.model import AIProvider, AISettings, RuleSpec

DEFAULT_MODELS = {AIProvider.ANTHROPIC: "claude-sonnet-5", AIProvider.OPENAI: "gpt-4.1-mini"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL")
LOG_FORMATS = {"json": "json", "console": "console", "text": "console"}
SHOWN_DEFAULT = "shown_default"
"""Key of a field's ``json_schema_extra``: its default as the README says it, when the value
alone would not tell (``required``, ``inferred from ...``)."""


class ConfigError(Exception):
    """The configuration is missing or wrong; the message names the variable or field."""


@dataclass(frozen=True)
class GitHubAppConfig:
    """A GitHub App's credentials: its id, private key, installation (None: found) and REST URL."""

    app_id: str
    private_key: SecretStr
    installation_id: int | None
    api_url: str


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


def _shown(text: str) -> dict[str, Any]:
    return {SHOWN_DEFAULT: text}


class Settings(BaseSettings):
    """The environment of a process that reconciles pull requests, read once.

    Each field's ``validation_alias`` is its variable. Values are stripped; an empty one counts
    as unset. Building ``Settings(...)`` by field names reads no environment (tests do that);
    :meth:`from_env` reads the mapping it is given.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        env_ignore_empty=True,
        populate_by_name=True,
        extra="ignore",
        str_strip_whitespace=True,
    )

    github_token: SecretStr | None = Field(
        default=None,
        validation_alias="GITHUB_TOKEN",
        description="GitHub token (PAT): `repo` scope, or fine-grained pull requests + issues "
        "read/write",
        json_schema_extra=_shown("required"),
    )
    organization: str | None = Field(
        default=None,
        validation_alias="GITHUB_ORGANIZATION",
        description="owner of `GITHUB_REPOSITORIES`",
    )
    repositories: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias="GITHUB_REPOSITORIES",
        description="comma-separated repositories (`name` or `owner/name`), used by rules without "
        "`repositories`",
    )
    github_url: str = Field(
        default="https://api.github.com/graphql",
        validation_alias="GITHUB_GRAPHQL_URL",
        description="GraphQL endpoint; GitHub Enterprise: `https://HOST/api/graphql`",
    )
    github_mutation_interval: float = Field(
        default=1.0,
        ge=0,
        validation_alias="GITHUB_MUTATION_INTERVAL_SECONDS",
        description="pause between two mutations (GitHub's secondary limits)",
    )
    github_writes_per_pass: int = Field(
        default=60,
        ge=2,
        le=10000,
        validation_alias="GITHUB_WRITES_PER_PASS",
        description="most GitHub writes (mutations) one pass of a rule makes; the pull requests "
        "past it are deferred to the next pass, first (GitHub allows about 80 a minute)",
    )
    github_writes_per_hour: int = Field(
        default=400,
        ge=2,
        le=100000,
        validation_alias="GITHUB_WRITES_PER_HOUR",
        description="GitHub writes a rule makes in an hour, spread over its scheduled passes "
        "(GitHub allows about 500 an hour per token)",
    )
    paused: bool = Field(
        default=False,
        validation_alias="AI_OPERATOR_PAUSED",
        description="`true`: every pass decides nothing and writes nothing to GitHub (the "
        "pull requests are deferred); in a cluster also the namespace annotation "
        '`aioperator.io/paused: "true"`',
    )
    github_max_retries: int = Field(
        default=4,
        ge=0,
        validation_alias="GITHUB_MAX_RETRIES",
        description="retries of a GitHub request that failed with 5xx or a connection error",
    )
    github_retry_backoff: float = Field(
        default=1.0,
        ge=0,
        validation_alias="GITHUB_RETRY_BACKOFF_SECONDS",
        description="first wait between retries, doubled each time",
    )
    ai_provider: AIProvider | None = Field(
        default=None,
        validation_alias="AI_PROVIDER",
        description="`anthropic` or `openai` (any OpenAI-compatible server: vLLM, Ollama, LiteLLM)",
        json_schema_extra=_shown("inferred from `AI_ENDPOINT`, else `anthropic`"),
    )
    ai_endpoint: str | None = Field(
        default=None,
        validation_alias="AI_ENDPOINT",
        description="base URL, or the full URL (`https://api.anthropic.com/v1/messages`, "
        "`http://vllm:8000/v1/chat/completions`)",
        json_schema_extra=_shown("the SDK's"),
    )
    ai_model: str | None = Field(
        default=None,
        validation_alias="AI_MODEL",
        description="model name",
        json_schema_extra=_shown(" / ".join(f"`{model}`" for model in DEFAULT_MODELS.values())),
    )
    ai_token: SecretStr | None = Field(
        default=None,
        validation_alias="AI_TOKEN",
        description="the model endpoint's API key",
        json_schema_extra=_shown("required"),
    )
    ai_temperature: float | None = Field(
        default=None,
        ge=0,
        validation_alias="AI_TEMPERATURE",
        description="sampling temperature (OpenAI-compatible providers; see below)",
        json_schema_extra=_shown("the server's"),
    )
    ai_max_tokens: int = Field(
        default=1024, ge=1, validation_alias="AI_MAX_TOKENS", description="answer token cap"
    )
    ai_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias="AI_TIMEOUT_SECONDS",
        description="timeout of one model request",
    )
    pushgateway_url: str | None = Field(
        default=None,
        validation_alias="PUSHGATEWAY_URL",
        description="Pushgateway that receives each pass's metrics",
        json_schema_extra=_shown("none: no push"),
    )
    log_level: str = Field(
        default="INFO",
        validation_alias="LOG_LEVEL",
        description="`DEBUG`, `INFO`, `WARNING`, `ERROR`",
    )
    log_format: str | None = Field(
        default=None,
        validation_alias="LOG_FORMAT",
        description="`json` or `console` (the earlier `text` means `console`)",
        json_schema_extra=_shown("`console` on a terminal, else `json`"),
    )
    decision_max_age_seconds: float = Field(
        default=86400.0,
        ge=0,
        validation_alias="DECISION_CACHE_MAX_AGE_SECONDS",
        description="how long `run` reuses a decision whose facts did not change (`0`: never)",
    )
    limits: Annotated[LimitsSpec, NoDecode] = Field(
        default=BUILT_IN,
        validation_alias=LIMITS_ENV,
        description="the limits the rules must stay within, as JSON (`PRReconciliationLimits`' "
        "spec; the compiler sets it in every pod): repositories, actions, model endpoints and "
        "providers",
        json_schema_extra=_shown(
            "built in: every repository and action, only `AI_ENDPOINT` as model endpoint"
        ),
    )
    cache_home: str | None = Field(
        default=None,
        validation_alias="XDG_CACHE_HOME",
        description="where `run` keeps its outcome records (`ai-operator/decisions` below it) "
        "and its per-rule locks (`ai-operator/locks`)",
        json_schema_extra=_shown("`~/.cache`"),
    )
    run_lock_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        validation_alias="RUN_LOCK_WAIT_SECONDS",
        description="how long `run` waits while another pass of the same rule is running, "
        "before it stops that rule's pass",
    )
    home: str | None = Field(
        default=None,
        validation_alias="HOME",
        description="the user's home directory, below which `~/.cache` is",
        json_schema_extra={"documented": False},
    )
    argocd_enabled: bool = Field(
        default=False,
        validation_alias="ARGOCD_ENABLED",
        description="`true`: rules with `argocdEnabled` read their application's health and sync "
        "from Argo CD (`argocd.health`, `argocd.sync`); otherwise both are `Unknown`",
        json_schema_extra=_shown("`false`"),
    )
    argocd_url: str | None = Field(
        default=None,
        validation_alias="ARGOCD_URL",
        description="Argo CD's base URL (`https://argocd.example.com`); the token is sent only "
        "there",
        json_schema_extra=_shown("required when `ARGOCD_ENABLED` is true"),
    )
    argocd_token: SecretStr | None = Field(
        default=None,
        validation_alias="ARGOCD_TOKEN",
        description="Argo CD API token (a read-only account's), sent as `Authorization: Bearer`",
        json_schema_extra=_shown("none: anonymous"),
    )
    github_api_url: str | None = Field(
        default=None,
        validation_alias="GITHUB_API_URL",
        description="REST endpoint (GitHub App tokens); GitHub Enterprise: `https://HOST/api/v3`",
        json_schema_extra=_shown(
            "`https://api.github.com`, or `https://HOST/api/v3` beside "
            "`GITHUB_GRAPHQL_URL`'s `https://HOST/api/graphql`"
        ),
    )
    github_app_id: str | None = Field(
        default=None,
        validation_alias="GITHUB_APP_ID",
        description="GitHub App authentication instead of `GITHUB_TOKEN`: the App's id",
    )
    github_app_private_key: SecretStr | None = Field(
        default=None,
        validation_alias="GITHUB_APP_PRIVATE_KEY",
        description="the App's private key (PEM text); or `GITHUB_APP_PRIVATE_KEY_FILE`",
    )
    github_app_private_key_file: str | None = Field(
        default=None,
        validation_alias="GITHUB_APP_PRIVATE_KEY_FILE",
        description="a file holding the App's private key (PEM), e.g. a mounted Secret",
    )
    github_app_installation_id: int | None = Field(
        default=None,
        gt=0,
        validation_alias="GITHUB_APP_INSTALLATION_ID",
        description="the App's installation to act as",
        json_schema_extra=_shown(
            "found from `GITHUB_ORGANIZATION`, else the rule's first repository"
        ),
    )

    SECRET_VARIABLES: ClassVar[frozenset[str]] = frozenset(
        {"GITHUB_TOKEN", "AI_TOKEN", "ARGOCD_TOKEN", "GITHUB_APP_PRIVATE_KEY"}
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what the caller passes: :meth:`from_env` hands over the environment it read."""
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the variables; a malformed value raises a one-line :class:`ConfigError`."""
        values = _MappingSource(cls, env)()
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(
                "; ".join(_problem(error) for error in exc.errors(include_url=False))
            ) from exc

    @field_validator("repositories", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("github_url", "ai_endpoint", "pushgateway_url", "github_api_url", "argocd_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise ValueError("must be an absolute http(s) URL")
        return value

    @field_validator("github_url", "github_api_url", "argocd_url")
    @classmethod
    def _no_credentials(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A token goes to these URLs in a header; one in the URL itself would be logged.
        if value is not None and (urlsplit(value).username or urlsplit(value).query):
            name = cls.model_fields[str(info.field_name)].validation_alias
            raise ValueError(f"{name} must not carry credentials or a query (value not shown)")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.argocd_enabled and self.argocd_url is None:
            raise ValueError("ARGOCD_ENABLED is true but ARGOCD_URL is not set")
        if self.github_app_private_key and self.github_app_private_key_file:
            raise ValueError(
                "GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_FILE are both set: choose one"
            )
        if _origin(self.github_rest_url) != _origin(self.github_url):
            raise ValueError(
                f"GITHUB_API_URL ({self.github_rest_url}) and GITHUB_GRAPHQL_URL "
                f"({self.github_url}) name different servers: a token of one would reach the other"
            )
        return self

    @property
    def github_rest_url(self) -> str:
        """``GITHUB_API_URL``, else the REST API beside ``GITHUB_GRAPHQL_URL``.

        GitHub.com: ``https://api.github.com/graphql`` -> ``https://api.github.com``; GitHub
        Enterprise Server: ``https://HOST/api/graphql`` -> ``https://HOST/api/v3``.
        """
        if self.github_api_url is not None:
            return self.github_api_url.rstrip("/")
        base = self.github_url.rstrip("/")
        if base.endswith("/api/graphql"):
            return base.removesuffix("/graphql") + "/v3"
        return base.removesuffix("/graphql")

    @field_validator("ai_provider", mode="before")
    @classmethod
    def _provider(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return AIProvider(value.strip().lower())
            except ValueError:
                raise ValueError("must be anthropic or openai") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().upper() not in LOG_LEVELS:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().lower() not in LOG_FORMATS:
                raise ValueError("must be json or console")
            return LOG_FORMATS[value.strip().lower()]
        return value

    @field_validator("limits", mode="before")
    @classmethod
    def _limits(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return decode_limits(value)
            except StepInputError as exc:
                raise ValueError(str(exc)) from None
        return value

    def secrets(self) -> tuple[str, ...]:
        """The secret values, for the log redactor."""
        held = (self.github_token, self.ai_token, self.argocd_token, self.github_app_private_key)
        values = [s.get_secret_value() for s in held if s]
        if self.github_app_private_key is not None:  # a line of the key quoted alone, too
            values += self.github_app_private_key.get_secret_value().splitlines()
        return tuple(values)

    def require_github_token(self) -> SecretStr:
        """The GitHub token, or a one-line :class:`ConfigError`."""
        if self.github_token is None:
            raise ConfigError(
                "GITHUB_TOKEN is not set: export a GitHub token to read pull requests"
            )
        return self.github_token

    def github_auth(self) -> SecretStr | GitHubAppConfig:
        """How to authenticate to GitHub: ``GITHUB_TOKEN`` (it wins), else the GitHub App.

        A one-line :class:`ConfigError` when neither is set, or the App's settings are
        incomplete or its key cannot be read.
        """
        if self.github_token is not None:
            return self.github_token
        if self.github_app_id is None:
            if self.github_app_private_key or self.github_app_private_key_file:
                raise ConfigError("GITHUB_APP_ID is not set: the App's private key needs its id")
            raise ConfigError(
                "neither GITHUB_TOKEN nor GITHUB_APP_ID is set: export a GitHub token, or a "
                "GitHub App's id and private key (GITHUB_APP_PRIVATE_KEY or "
                "GITHUB_APP_PRIVATE_KEY_FILE)"
            )
        return GitHubAppConfig(
            app_id=self.github_app_id,
            private_key=self._app_private_key(),
            installation_id=self.github_app_installation_id,
            api_url=self.github_rest_url,
        )

    def _app_private_key(self) -> SecretStr:
        if self.github_app_private_key is not None:
            return self.github_app_private_key
        path = self.github_app_private_key_file
        if path is None:
            raise ConfigError(
                "GITHUB_APP_ID is set without a key: set GITHUB_APP_PRIVATE_KEY (PEM text) or "
                "GITHUB_APP_PRIVATE_KEY_FILE"
            )
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
            raise ConfigError(f"GITHUB_APP_PRIVATE_KEY_FILE {path}: {reason.lower()}") from None
        if not text.strip():
            raise ConfigError(f"GITHUB_APP_PRIVATE_KEY_FILE {path} is empty")
        return SecretStr(text)

    def argocd(self) -> tuple[str, SecretStr | None] | None:
        """Argo CD's base URL and token when ``ARGOCD_ENABLED`` is true; None when it is off."""
        if not self.argocd_enabled or self.argocd_url is None:
            return None
        return self.argocd_url, self.argocd_token


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source, over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(settings_cls, case_sensitive=True, env_ignore_empty=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Case-sensitive names; an empty value counts as unset.
        return {name: value.strip() for name, value in self._given.items() if value.strip()}


def _problem(error: ErrorDetails) -> str:
    """One error as ``VARIABLE must be ..., not 'value'`` (a secret's value never shown)."""
    name = str(error["loc"][0]) if error["loc"] else "the environment"
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        text = str(ctx.get("error", error["msg"]))
        if text.startswith(name) or not error["loc"]:  # a message that names its variables
            return text
    elif kind in {"int_parsing", "int_from_float"}:
        text = "must be a whole number"
    elif kind == "float_parsing":
        text = "must be a number"
    elif kind == "bool_parsing":
        text = "must be true or false"
    elif kind in {"greater_than_equal", "greater_than"}:
        bound = ctx.get("ge", ctx.get("gt"))
        if kind == "greater_than":
            text = f"must be more than {bound:g}"
        else:
            text = "must not be negative" if bound == 0 else f"must be at least {bound:g}"
    else:
        text = str(error["msg"])
    found = error.get("input")
    if name in Settings.SECRET_VARIABLES or not isinstance(found, str):
        return f"{name} {text}"
    return f"{name} {text}, not {found!r}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


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
        max_tokens=rule_ai.maxTokens or settings.ai_max_tokens,
        timeout_seconds=rule_ai.timeoutSeconds or settings.ai_timeout_seconds,
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
