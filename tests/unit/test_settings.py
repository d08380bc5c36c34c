"""The environment's settings: every variable the earlier design promised, read once, one model.

``Settings`` (jobs/config.py) holds each variable's name, default and meaning; the README's table
is generated from it (scripts/generate-settings-docs), and a bad value is one line naming the
variable, never a traceback and never a token.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ai_operator.jobs.config import AIConfig, ConfigError, Settings, resolve_ai
from ai_operator.jobs.rules.encoding import encode_limits
from ai_operator.jobs.rules.limits import BUILT_IN, AILimits, LimitsSpec
from ai_operator.jobs.rules.model import AIProvider, AISettings

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "generate-settings-docs"
SEED_VARIABLES = (  # the earlier design's README names these; they must keep working
    "GITHUB_ORGANIZATION",
    "GITHUB_REPOSITORIES",
    "GITHUB_TOKEN",
    "AI_ENDPOINT",
    "AI_MODEL",
    "AI_TOKEN",
    "ARGOCD_ENABLED",
    "ARGOCD_URL",
    "LOG_LEVEL",
)
TOKEN_VALUE = "tok-0000-not-a-real-token"


def variables() -> set[str]:
    return {str(field.validation_alias) for field in Settings.model_fields.values()}


@pytest.mark.parametrize("name", SEED_VARIABLES)
def test_every_variable_of_the_earlier_design_is_read(name: str) -> None:
    """The earlier design's variable names are fields of the model."""
    assert name in variables()


@pytest.mark.parametrize(
    ("env", "attribute", "expected"),
    [
        pytest.param({}, "github_url", "https://api.github.com/graphql", id="graphql-default"),
        pytest.param({}, "github_max_retries", 4, id="retries-default"),
        pytest.param({}, "github_retry_backoff", 1.0, id="backoff-default"),
        pytest.param({}, "ai_max_tokens", 1024, id="max-tokens-default"),
        pytest.param({}, "ai_timeout_seconds", 60.0, id="ai-timeout-default"),
        pytest.param({}, "decision_max_age_seconds", 86400.0, id="decision-age-default"),
        pytest.param({}, "run_lock_wait_seconds", 60.0, id="lock-wait-default"),
        pytest.param({}, "limits", BUILT_IN, id="limits-built-in"),
        pytest.param({}, "log_level", "INFO", id="log-level-default"),
        pytest.param({}, "log_format", None, id="log-format-chosen-by-the-terminal"),
        pytest.param(
            {"GITHUB_REPOSITORIES": " web, acme/api ,,"},
            "repositories",
            ("web", "acme/api"),
            id="repositories-comma-separated",
        ),
        pytest.param({"GITHUB_MAX_RETRIES": " 2 "}, "github_max_retries", 2, id="stripped"),
        pytest.param({"GITHUB_MAX_RETRIES": ""}, "github_max_retries", 4, id="empty-is-unset"),
        pytest.param(
            {"AI_PROVIDER": "OpenAI"}, "ai_provider", AIProvider.OPENAI, id="provider-any-case"
        ),
        pytest.param({"LOG_LEVEL": "debug"}, "log_level", "DEBUG", id="log-level-any-case"),
        pytest.param({"LOG_FORMAT": "text"}, "log_format", "console", id="earlier-text-format"),
        pytest.param({"AI_TEMPERATURE": "0.2"}, "ai_temperature", 0.2, id="temperature"),
        pytest.param(
            {"ARGOCD_ENABLED": "true", "ARGOCD_URL": "https://argocd.example"},
            "argocd_enabled",
            True,
            id="argocd-enabled",
        ),
        pytest.param({"ARGOCD_ENABLED": "False"}, "argocd_enabled", False, id="argocd-off"),
        pytest.param({}, "github_rest_url", "https://api.github.com", id="rest-url-github-com"),
        pytest.param(
            {"GITHUB_GRAPHQL_URL": "https://ghe.acme.io/api/graphql"},
            "github_rest_url",
            "https://ghe.acme.io/api/v3",
            id="rest-url-beside-enterprise-graphql",
        ),
        pytest.param(
            {
                "GITHUB_GRAPHQL_URL": "https://ghe.acme.io/api/graphql",
                "GITHUB_API_URL": "https://ghe.acme.io/api/v3/",
            },
            "github_rest_url",
            "https://ghe.acme.io/api/v3",
            id="rest-url-given",
        ),
        pytest.param(
            {"AI_OPERATOR_LIMITS": encode_limits(LimitsSpec(ai=AILimits(providers=["openai"])))},
            "limits",
            LimitsSpec(ai=AILimits(providers=["openai"])),
            id="limits-json",
        ),
    ],
)
def test_a_variable_becomes_its_setting(env: dict[str, str], attribute: str, expected: Any) -> None:
    """Each variable is read into its field; an unset or empty one keeps the default."""
    assert getattr(Settings.from_env(env), attribute) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"GITHUB_MAX_RETRIES": "many"},
            "GITHUB_MAX_RETRIES must be a whole number, not 'many'",
            id="retries-not-a-number",
        ),
        pytest.param(
            {"GITHUB_RETRY_BACKOFF_SECONDS": "-1"},
            "GITHUB_RETRY_BACKOFF_SECONDS must not be negative, not '-1'",
            id="negative-backoff",
        ),
        pytest.param(
            {"AI_TIMEOUT_SECONDS": "0"},
            "AI_TIMEOUT_SECONDS must be more than 0, not '0'",
            id="zero-timeout",
        ),
        pytest.param(
            {"AI_MAX_TOKENS": "0"}, "AI_MAX_TOKENS must be at least 1, not '0'", id="no-tokens"
        ),
        pytest.param(
            {"AI_PROVIDER": "gemini"},
            "AI_PROVIDER must be anthropic or openai, not 'gemini'",
            id="unknown-provider",
        ),
        pytest.param(
            {"LOG_LEVEL": "verbose"},
            "LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not 'verbose'",
            id="log-level-typo",
        ),
        pytest.param(
            {"LOG_FORMAT": "xml"}, "LOG_FORMAT must be json or console, not 'xml'", id="format"
        ),
        pytest.param(
            {"DECISION_CACHE_MAX_AGE_SECONDS": "-5"},
            "DECISION_CACHE_MAX_AGE_SECONDS must not be negative, not '-5'",
            id="negative-age",
        ),
        pytest.param(
            {"AI_OPERATOR_LIMITS": "{"}, "AI_OPERATOR_LIMITS is not JSON", id="limits-not-json"
        ),
        pytest.param(
            {"GITHUB_GRAPHQL_URL": "api.github.com/graphql"},
            "GITHUB_GRAPHQL_URL must be an absolute http(s) URL, not 'api.github.com/graphql'",
            id="graphql-url-without-scheme",
        ),
        pytest.param(
            {"AI_ENDPOINT": "ftp://models.example"},
            "AI_ENDPOINT must be an absolute http(s) URL",
            id="endpoint-not-http",
        ),
        pytest.param(
            {"PUSHGATEWAY_URL": "pushgateway:9091"},
            "PUSHGATEWAY_URL must be an absolute http(s) URL",
            id="pushgateway-without-scheme",
        ),
        pytest.param(
            {"ARGOCD_ENABLED": "yes please"},
            "ARGOCD_ENABLED must be true or false, not 'yes please'",
            id="argocd-enabled-not-a-flag",
        ),
        pytest.param(
            {"ARGOCD_ENABLED": "true"},
            "ARGOCD_ENABLED is true but ARGOCD_URL is not set",
            id="argocd-without-url",
        ),
        pytest.param(
            {"ARGOCD_URL": "https://admin:hunter2@argocd.example"},
            "ARGOCD_URL must not carry credentials or a query (value not shown)",
            id="argocd-url-with-credentials",
        ),
        pytest.param(
            {"GITHUB_API_URL": "https://ghe.acme.io/api/v3"},
            "GITHUB_API_URL (https://ghe.acme.io/api/v3) and GITHUB_GRAPHQL_URL "
            "(https://api.github.com/graphql) name different servers",
            id="rest-and-graphql-on-different-servers",
        ),
        pytest.param(
            {"GITHUB_APP_INSTALLATION_ID": "acme"},
            "GITHUB_APP_INSTALLATION_ID must be a whole number, not 'acme'",
            id="installation-id-not-a-number",
        ),
        pytest.param(
            {"RUN_LOCK_WAIT_SECONDS": "soon", "AI_TEMPERATURE": "hot"},
            "AI_TEMPERATURE must be a number, not 'hot'; RUN_LOCK_WAIT_SECONDS must be a number",
            id="every-problem-at-once",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    """A malformed variable is a one-line ConfigError that names it and what it must be."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_tokens_never_show() -> None:
    """Tokens are secrets: no repr, dump or error repeats them."""
    settings = Settings.from_env({"GITHUB_TOKEN": TOKEN_VALUE, "AI_TOKEN": TOKEN_VALUE})
    assert TOKEN_VALUE not in repr(settings)
    assert TOKEN_VALUE not in str(settings.model_dump())
    assert settings.secrets() == (TOKEN_VALUE, TOKEN_VALUE)


def test_credentials_in_a_url_are_never_shown() -> None:
    """A URL that carries a password is refused without repeating it."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"GITHUB_GRAPHQL_URL": "https://x:hunter2@ghe.acme.io/api/graphql"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {},
            "neither GITHUB_TOKEN nor GITHUB_APP_ID is set: export a GitHub token, or a GitHub "
            "App's id and private key",
            id="neither",
        ),
        pytest.param(
            {"GITHUB_APP_ID": "4242"},
            "GITHUB_APP_ID is set without a key: set GITHUB_APP_PRIVATE_KEY (PEM text) or "
            "GITHUB_APP_PRIVATE_KEY_FILE",
            id="app-without-key",
        ),
        pytest.param(
            {"GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----"},
            "GITHUB_APP_ID is not set: the App's private key needs its id",
            id="key-without-app",
        ),
        pytest.param(
            {"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/app.pem"},
            "GITHUB_APP_PRIVATE_KEY_FILE /nonexistent/app.pem: no such file or directory",
            id="key-file-missing",
        ),
    ],
)
def test_github_authentication_problems_are_one_line(env: dict[str, str], message: str) -> None:
    """Neither a token nor a complete App: a clear error naming what to set."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env).github_auth()
    assert message in str(caught.value)


def test_a_personal_token_wins_over_a_github_app() -> None:
    """GITHUB_TOKEN set: it is used, whatever the App's variables say."""
    env = {"GITHUB_TOKEN": TOKEN_VALUE, "GITHUB_APP_ID": "4242"}
    assert Settings.from_env(env).github_auth().get_secret_value() == TOKEN_VALUE  # type: ignore[union-attr]


def test_the_app_key_is_read_from_its_file(tmp_path: Path) -> None:
    """GITHUB_APP_PRIVATE_KEY_FILE: the mounted Secret's file; each of its lines is redacted."""
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretline\n-----END\n")
    settings = Settings.from_env({"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY_FILE": str(key)})
    auth = settings.github_auth()
    assert auth.private_key.get_secret_value() == key.read_text()  # type: ignore[union-attr]
    assert (auth.app_id, auth.installation_id, auth.api_url) == (  # type: ignore[union-attr]
        "4242",
        None,
        "https://api.github.com",
    )


def test_building_settings_reads_no_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Settings(...)`` holds what it is given; only ``from_env`` reads a mapping."""
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("GITHUB_MAX_RETRIES", "9")
    assert (Settings().log_level, Settings().github_max_retries) == ("INFO", 4)


def test_the_model_defaults_reach_the_ai_config() -> None:
    """With neither rule nor environment setting them, the model's defaults apply."""
    config = resolve_ai(AISettings(), Settings(ai_token=SecretStr(TOKEN_VALUE)))
    defaults = Settings.model_fields
    assert config == AIConfig(
        provider=AIProvider.ANTHROPIC,
        base_url=None,
        model="claude-sonnet-5",
        token=SecretStr(TOKEN_VALUE),
        temperature=None,
        max_tokens=defaults["ai_max_tokens"].default,
        timeout_seconds=defaults["ai_timeout_seconds"].default,
    )


def test_the_tables_are_generated_from_the_models() -> None:
    """``scripts/generate-settings-docs --check`` passes on the committed README (environment
    variables) and docs/cluster.md (the controller's file)."""
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_every_documented_variable_is_in_the_readme() -> None:
    """Each field of the model is a row of the README's table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in variables() - {"HOME"}:
        assert f"| `{name}` |" in readme
