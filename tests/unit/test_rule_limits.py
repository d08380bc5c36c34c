"""The administrator's limits: what a rule may reach, and where the AI token may go.

One pure check (`limit_problems`) serves the controller and every step; `endpoint_problem` is
asked before the token is sent anywhere. A rule that only switches the provider sends the token
to that provider's public API, so that counts as choosing an endpoint.
"""

from __future__ import annotations

from typing import Any

import pytest

from ai_operator.jobs.config import ConfigError, Settings, resolve_ai
from ai_operator.jobs.rules.limits import (
    BUILT_IN,
    PUBLIC_ENDPOINTS,
    AILimits,
    LimitsSpec,
    endpoint_problem,
    limit_problems,
    limits_for,
)
from ai_operator.jobs.rules.model import AIProvider, RuleSpec

INTERNAL = "https://llm.internal.example/v1"


def spec(**overrides: Any) -> RuleSpec:
    data: dict[str, Any] = {"selector": {"baseBranch": "main"}, "instruction": "Decide."}
    data.update(overrides)
    return RuleSpec.model_validate(data)


def problems(rule: RuleSpec, limits: LimitsSpec, **kwargs: Any) -> list[str]:
    kwargs.setdefault("repositories", ["acme/web"])
    kwargs.setdefault("installation_endpoint", INTERNAL)
    return [str(p) for p in limit_problems(rule, limits, **kwargs)]


@pytest.mark.parametrize(
    ("rule", "limits", "kwargs", "expected"),
    [
        pytest.param(spec(), BUILT_IN, {}, [], id="built-in-admits-an-ordinary-rule"),
        pytest.param(
            spec(),
            LimitsSpec(repositories=["acme/*"]),
            {"repositories": ["acme/web", "other/api"]},
            [
                "spec.repositories[1]: other/api is outside the repositories allowed in this "
                "namespace (acme/*)"
            ],
            id="repository-outside-the-globs",
        ),
        pytest.param(
            spec(),
            LimitsSpec(repositories=["ACME/*"]),
            {"repositories": ["acme/Web"]},
            [],
            id="repositories-compare-case-insensitively",
        ),
        pytest.param(
            spec(allowedActions=["merge", "close"]),
            LimitsSpec(allowedActions=["merge", "escalate"]),
            {},
            [
                "spec.allowedActions[1]: 'close' is not allowed in this namespace (at most: merge, "
                "escalate)"
            ],
            id="action-above-the-ceiling",
        ),
        pytest.param(
            spec(allowedActions=["wait"]),
            LimitsSpec(allowedActions=["escalate"]),
            {},
            [],
            id="wait-is-always-allowed",
        ),
        pytest.param(
            spec(ai={"endpoint": "https://attacker.example/v1"}),
            BUILT_IN,
            {},
            [
                f"spec.ai.endpoint: 'https://attacker.example/v1' is not an allowed model endpoint "
                f"in this namespace (allowed: {INTERNAL})"
            ],
            id="endpoint-elsewhere-refused-by-default",
        ),
        pytest.param(
            spec(ai={"endpoint": INTERNAL + "/chat/completions"}),
            BUILT_IN,
            {},
            [],
            id="endpoint-below-the-installations-own",
        ),
        pytest.param(
            spec(ai={"provider": "openai"}),
            BUILT_IN,
            {"installation_endpoint": None},
            [
                "spec.ai.provider: 'https://api.openai.com/v1' is not an allowed model endpoint in "
                "this namespace (allowed: https://api.anthropic.com)"
            ],
            id="switching-provider-would-send-the-token-to-another-api",
        ),
        pytest.param(
            spec(ai={"provider": "openai"}),
            BUILT_IN,
            {},
            [],
            id="switching-wire-format-on-the-installations-endpoint",
        ),
        pytest.param(
            spec(ai={"provider": "openai"}),
            LimitsSpec(ai=AILimits(providers=[AIProvider.ANTHROPIC])),
            {},
            ["spec.ai.provider: 'openai' is not allowed in this namespace (allowed: anthropic)"],
            id="provider-outside-the-list",
        ),
    ],
)
def test_limit_problems(
    rule: RuleSpec, limits: LimitsSpec, kwargs: dict[str, Any], expected: list[str]
) -> None:
    """Each problem names the rule's field and the limit that refused it."""
    assert problems(rule, limits, **kwargs) == expected


@pytest.mark.parametrize(
    ("endpoint", "limits", "allowed"),
    [
        pytest.param(
            "http://127.0.0.1:8080/v1",
            AILimits(endpoints=["http://127.0.0.1:8080"]),
            True,
            id="loopback-http-listed",
        ),
        pytest.param(
            "http://[::1]:8080",
            AILimits(endpoints=["http://[::1]:8080"]),
            True,
            id="ipv6-loopback-http-listed",
        ),
        pytest.param(
            "http://llm.svc:8080/v1",
            AILimits(endpoints=["http://llm.svc:8080"]),
            False,
            id="plain-http-in-cluster-refused",
        ),
        pytest.param(
            "http://llm.svc:8080/v1",
            AILimits(endpoints=["http://llm.svc:8080"], allowInsecureHttp=True),
            True,
            id="plain-http-when-allowed",
        ),
        pytest.param(
            "https://llm.internal.example.attacker.example/v1",
            BUILT_IN.ai,
            False,
            id="host-suffix-is-not-the-host",
        ),
        pytest.param(
            "https://llm.internal.example/v10",
            AILimits(endpoints=["https://llm.internal.example/v1"]),
            False,
            id="path-prefix-is-per-segment",
        ),
        pytest.param(
            "https://user:pw@llm.internal.example/v1",
            BUILT_IN.ai,
            False,
            id="credentials-in-the-url",
        ),
        pytest.param("https://llm.internal.example:8443/v1", BUILT_IN.ai, False, id="another-port"),
        pytest.param("file:///etc/passwd", BUILT_IN.ai, False, id="not-http"),
    ],
)
def test_endpoint_problem(endpoint: str, limits: AILimits, allowed: bool) -> None:
    """The token goes only to a listed base URL or below it, over https or to loopback."""
    assert (endpoint_problem(endpoint, limits, INTERNAL) is None) is allowed


def test_no_endpoint_anywhere_means_the_installation_providers_public_api() -> None:
    """Without AI_ENDPOINT the installation's own endpoint is its provider's public API."""
    openai = PUBLIC_ENDPOINTS[AIProvider.OPENAI]
    assert endpoint_problem(openai, BUILT_IN.ai, None, AIProvider.OPENAI) is None
    assert endpoint_problem(openai, BUILT_IN.ai, None, AIProvider.ANTHROPIC) is not None


def test_limits_for_a_namespace() -> None:
    """Named namespaces first, then `default`, then the built-in limits; two names refuse."""
    team = LimitsSpec(namespaces=["team-a"], repositories=["acme/*"])
    default = LimitsSpec(repositories=["*/*"])
    assert limits_for("team-a", [("team", team), ("default", default)]) is team
    assert limits_for("team-b", [("team", team), ("default", default)]) is default
    assert limits_for("team-b", [("team", team)]) is BUILT_IN
    with pytest.raises(ValueError, match="named by more than one"):
        limits_for("team-a", [("one", team), ("two", team)])


def test_resolve_ai_never_builds_a_client_for_another_providers_api() -> None:
    """A rule switching provider with no endpoint is refused before any client exists."""
    settings = Settings.from_env({"AI_TOKEN": "test-ai-key"})
    with pytest.raises(ConfigError, match=r"^spec\.ai\.provider: .*api\.openai\.com"):
        resolve_ai(spec(ai={"provider": "openai"}).ai, settings)
    assert (
        resolve_ai(spec(ai={"provider": "anthropic"}).ai, settings).provider is AIProvider.ANTHROPIC
    )
