"""What an administrator allows the rules of a namespace to reach. Pure.

A rule author chooses repositories, actions and a model endpoint in the rule; the administrator
bounds those choices with a cluster-scoped ``PRReconciliationLimits`` object that no namespaced
role can edit (the split of Argo CD's AppProject, which lists the source repositories and
destinations an Application may use, and of cert-manager's Issuer/ClusterIssuer):

- ``spec.namespaces`` names the namespaces an object governs; the object named ``default`` governs
  every namespace that no other object names. Two objects naming one namespace are ambiguous, and
  the rules of that namespace are refused until the administrator removes one.
- ``spec.repositories`` lists ``owner/name`` globs (``acme/*``); a rule may cover only repositories
  one of them matches (case-insensitively, as GitHub compares names).
- ``spec.allowedActions`` is the most a rule of the namespace may allow (``wait`` always is).
- ``spec.ai`` lists the model endpoints and providers a rule may name. With no endpoint listed,
  only the installation's own endpoint (``AI_ENDPOINT``) is allowed. Plain ``http://`` is refused
  unless the host is a loopback address or ``allowInsecureHttp`` is set.
- ``spec.secretName`` names the Secret, in the rule's namespace, that holds that namespace's
  tokens (None: the installation's Secret).

With no limits object at all, :data:`BUILT_IN` applies: every repository and action, and only the
installation's own model endpoint.

:func:`limit_problems` is the one check, used by the controller (a refused rule becomes
``Invalid``) and by every step before it reads or writes, with the limits the controller resolved
for the rule's namespace. Each problem names the rule's field path and the limit that refused it.
This module performs no I/O.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from ai_operator.jobs.rules.model import Action, AIProvider, RuleSpec

KIND = "PRReconciliationLimits"
PLURAL = "prreconciliationlimits"
SINGULAR = "prreconciliationlimits"
SHORT_NAMES = ("prlimits",)
DEFAULT_NAME = "default"
"""The limits object that governs every namespace no other object names."""

PUBLIC_ENDPOINTS = {
    AIProvider.ANTHROPIC: "https://api.anthropic.com",
    AIProvider.OPENAI: "https://api.openai.com/v1",
}
"""Where each SDK sends requests when no endpoint is set (the SDKs' own default base URLs)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class AILimits(_Spec):
    """Which model endpoints and providers the rules of a namespace may name."""

    endpoints: list[str] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Allowed endpoints: a base URL allows itself and every URL below it. Empty: only the "
            "installation's own endpoint (AI_ENDPOINT)."
        ),
        examples=[["https://api.anthropic.com"]],
    )
    providers: list[AIProvider] = Field(
        default_factory=list,
        max_length=2,
        description="Allowed providers (anthropic, openai). Empty: any.",
    )
    allowInsecureHttp: bool = Field(
        default=False,
        description="Allow plain http:// endpoints on hosts other than loopback addresses.",
    )


class LimitsSpec(_Spec):
    """The spec of a PRReconciliationLimits: the most the rules of some namespaces may reach."""

    namespaces: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description=(
            "Namespaces governed by these limits. The object named 'default' also governs every "
            "namespace no other object names."
        ),
        examples=[["team-a"]],
    )
    repositories: list[str] = Field(
        default_factory=lambda: ["*/*"],
        max_length=1000,
        description="Repositories rules may cover, as owner/name globs such as 'acme/*'.",
        examples=[["acme/*"]],
    )
    allowedActions: list[Action] = Field(
        default_factory=lambda: list(Action),
        max_length=len(Action),
        description="The most a rule may allow; 'wait' is always allowed.",
    )
    ai: AILimits = Field(default_factory=AILimits)
    secretName: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description=(
            "Secret in the rule's namespace holding that namespace's tokens (GITHUB_TOKEN, "
            "AI_TOKEN). Unset: the installation's Secret."
        ),
    )

    def permits_repository(self, repository: str) -> bool:
        """Whether ``owner/name`` matches one of :attr:`repositories` (case-insensitive)."""
        wanted = repository.lower()
        return any(fnmatch.fnmatchcase(wanted, glob.lower()) for glob in self.repositories)


BUILT_IN = LimitsSpec()
"""What applies where the administrator wrote no limits: every repository and action, and only
the installation's own model endpoint."""


@dataclass(frozen=True)
class LimitProblem:
    """One way a rule exceeds its namespace's limits: the rule's field path and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def limits_for(namespace: str, objects: Iterable[tuple[str, LimitsSpec]]) -> LimitsSpec:
    """The limits governing ``namespace``, from ``(name, spec)`` pairs of every limits object.

    Raises:
        ValueError: two or more objects name ``namespace`` (the message names them).
    """
    listed = list(objects)
    naming = sorted(name for name, spec in listed if namespace in spec.namespaces)
    if len(naming) > 1:
        raise ValueError(
            f"namespace {namespace!r} is named by more than one {KIND}: {', '.join(naming)}"
        )
    if naming:
        return next(spec for name, spec in listed if name == naming[0])
    default = [spec for name, spec in listed if name == DEFAULT_NAME]
    return default[0] if default else BUILT_IN


def limit_problems(
    spec: RuleSpec,
    limits: LimitsSpec,
    *,
    repositories: Sequence[str],
    installation_endpoint: str | None,
    installation_provider: AIProvider | None = None,
) -> list[LimitProblem]:
    """Every way ``spec`` exceeds ``limits``; empty when the rule stays within them.

    ``repositories`` are the rule's resolved repositories (its own, or the installation's
    defaults); ``installation_endpoint`` is the administrator's ``AI_ENDPOINT`` (None: the
    public API of ``installation_provider``, Anthropic's when that is None too).
    """
    problems = [
        LimitProblem(
            f"spec.repositories[{index}]",
            f"{name} is outside the repositories allowed in this namespace "
            f"({', '.join(limits.repositories) or 'none'})",
        )
        for index, name in enumerate(repositories)
        if not limits.permits_repository(name)
    ]
    ceiling = set(limits.allowedActions) | {Action.WAIT}
    problems += [
        LimitProblem(
            f"spec.allowedActions[{index}]",
            f"{action.value!r} is not allowed in this namespace "
            f"(at most: {', '.join(a.value for a in limits.allowedActions)})",
        )
        for index, action in enumerate(spec.allowedActions)
        if action not in ceiling
    ]
    problems += _ai_problems(spec, limits, installation_endpoint, installation_provider)
    return problems


def _ai_problems(
    spec: RuleSpec,
    limits: LimitsSpec,
    installation_endpoint: str | None,
    installation_provider: AIProvider | None,
) -> list[LimitProblem]:
    problems: list[LimitProblem] = []
    provider = spec.ai.provider
    if provider is not None and limits.ai.providers and provider not in limits.ai.providers:
        problems.append(
            LimitProblem(
                "spec.ai.provider",
                f"{provider.value!r} is not allowed in this namespace "
                f"(allowed: {', '.join(p.value for p in limits.ai.providers)})",
            )
        )
    if spec.ai.endpoint is not None or provider is not None:
        endpoint = effective_endpoint(spec.ai.endpoint, provider, installation_endpoint)
        reason = endpoint_problem(endpoint, limits.ai, installation_endpoint, installation_provider)
        if reason is not None:
            field = "spec.ai.endpoint" if spec.ai.endpoint is not None else "spec.ai.provider"
            problems.append(LimitProblem(field, reason))
    return problems


def effective_endpoint(
    rule_endpoint: str | None, rule_provider: AIProvider | None, installation_endpoint: str | None
) -> str:
    """Where a rule's requests, and so the AI token, go.

    The rule's endpoint; else the installation's; else the public API of the rule's provider
    (a rule that only switches the provider sends the token to that provider's API).
    """
    if rule_endpoint is not None:
        return rule_endpoint
    if installation_endpoint is not None:
        return installation_endpoint
    return PUBLIC_ENDPOINTS[rule_provider or AIProvider.ANTHROPIC]


def endpoint_problem(
    endpoint: str,
    limits: AILimits,
    installation_endpoint: str | None,
    installation_provider: AIProvider | None = None,
) -> str | None:
    """Why the installation's AI token may not be sent to ``endpoint``; None when it may.

    The check every holder of the token runs before a request: the controller when it admits a
    rule, the decide step before it builds a client. With no endpoint listed in ``limits``, only
    the installation's own endpoint is allowed: ``installation_endpoint``, or when that is None the
    public API of ``installation_provider`` (Anthropic's when None).
    """
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return f"{endpoint!r} is not an absolute http(s) URL"
    if parts.username or parts.password:
        return f"{endpoint!r} carries credentials in the URL"
    if parts.scheme == "http" and not limits.allowInsecureHttp and not _loopback(parts.hostname):
        return (
            f"{endpoint!r} is plain http to a host that is not loopback "
            "(the administrator may allow it with ai.allowInsecureHttp)"
        )
    own = installation_endpoint or PUBLIC_ENDPOINTS[installation_provider or AIProvider.ANTHROPIC]
    allowed = list(limits.endpoints) or [own]
    if any(_below(endpoint, base) for base in allowed):
        return None
    shown = ", ".join(allowed)
    return f"{endpoint!r} is not an allowed model endpoint in this namespace (allowed: {shown})"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _below(endpoint: str, base: str) -> bool:
    """Whether ``endpoint`` is ``base`` or a URL under it (same scheme, host, port; path prefix)."""
    got, want = urlsplit(endpoint), urlsplit(base)
    if (got.scheme, got.hostname, got.port) != (want.scheme, want.hostname, want.port):
        return False
    if got.username or got.password:
        return False
    prefix = want.path.rstrip("/")
    path = got.path.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")
