"""The controller's configuration file, as the Helm chart writes it (``controller.yaml``).

::

    namespaces: [team-a, team-b]     # served namespaces; [] means every namespace
    target: argo                     # argo | cronjob
    resyncSeconds: 300               # every rule is compiled and checked again this often
    healthPort: 8080                 # /healthz, /ready and /metrics
    metricsPort: 9090                # /metrics on a port of its own as well; null: none
    pushgatewayUrl: ""               # a deleted rule's groups are deleted there; "": none
    ruleDefaults: {reconciliationInterval: 30, maxPullRequests: 100}
    installation:                    # what rules without their own use; checked against limits
      organization: acme             # GITHUB_ORGANIZATION
      repositories: [web, api]       # GITHUB_REPOSITORIES
      aiEndpoint: ""                 # AI_ENDPOINT; "": the provider's public API
    checkSeconds: 10                 # the time limit of checking one rule
    leaderElection:                  # a coordination.k8s.io Lease; off: one replica only
      enabled: true
      namespace: ai-operator-system  # where the Lease lives (the release namespace)
      leaseName: ai-operator-controller
      leaseSeconds: 15               # client-go's defaults
      renewSeconds: 10
      retrySeconds: 2
    compile: {image: ..., secretKeys: {GITHUB_TOKEN: {name: S, key: K}}, ...}

``compile`` holds :class:`pipelines.options.CompileOptions` fields in camelCase
(``imagePullSecrets``, ``podGCDeleteDelay`` ...), except ``namespace``: compiled objects always
live in their rule's namespace, since their rule owns them. Every key is optional; a missing one
keeps its default. The file's model below is the one place of the defaults, bounds and meanings:
:class:`ControllerConfig` takes its defaults from it, and the table of keys in docs/cluster.md is
generated from it (``scripts/generate-settings-docs``).

Errors: :class:`ControllerConfigError`, one line naming the file and the field
(``controller.yaml: compile.parallelism: must be positive, not 0``); never retryable.
Reads the one file it is given; talks to no cluster.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from ai_operator.jobs.config import SHOWN_DEFAULT
from ai_operator.jobs.rules.model import RuleSpec
from ai_operator.jobs.rules.schedule import DEFAULT_INTERVAL_SECONDS
from ai_operator.pipelines.options import CompileError, CompileOptions, Target

# Options a configuration may not set, and why.
_FIXED_OPTIONS = {
    "namespace": "compiled objects live in their rule's namespace (it owns them)",
    "limits": "the PRReconciliationLimits objects in the cluster set them, per namespace",
}
# camelCase spellings that the plain conversion would get wrong.
_CAMEL_EXCEPTIONS = {"pod_gc_delete_delay": "podGCDeleteDelay"}
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_RULE_MAX_PULL_REQUESTS = RuleSpec.model_fields["maxPullRequests"].default


class ControllerConfigError(Exception):
    """The configuration file cannot be used; the message names the file and the field."""


class _RuleDefaultsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reconciliationInterval: int | None = Field(
        default=None,
        ge=10,
        le=86400,
        description="seconds between passes of a rule with neither `reconciliationInterval` nor "
        "`schedule`",
        json_schema_extra={SHOWN_DEFAULT: f"none: the rule's own (`{DEFAULT_INTERVAL_SECONDS}`)"},
    )
    maxPullRequests: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="for rules without `maxPullRequests`",
        json_schema_extra={SHOWN_DEFAULT: f"none: the rule's own (`{_RULE_MAX_PULL_REQUESTS}`)"},
    )


class _InstallationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization: str = Field(
        default="",
        max_length=100,
        description="`GITHUB_ORGANIZATION` of the pods: owner of the repositories below",
    )
    repositories: list[Annotated[str, Field(max_length=140)]] = Field(
        default_factory=list,
        description="`GITHUB_REPOSITORIES`: what rules without their own cover, checked against "
        "the limits like a rule's own",
    )
    aiEndpoint: str = Field(
        default="",
        max_length=2048,
        description="`AI_ENDPOINT` of the pods; empty: the provider's public API",
    )


class _LeaderElectionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False, description="elect one serving replica on a Lease; off: one replica only"
    )
    namespace: str = Field(
        default="default",
        pattern=_DNS_LABEL,
        max_length=63,
        description="where the Lease lives (the chart: the release namespace)",
    )
    leaseName: str = Field(
        default="ai-operator-controller",
        pattern=_DNS_LABEL,
        max_length=63,
        description="the Lease's name",
    )
    leaseSeconds: float = Field(
        default=15.0, gt=0, le=3600, description="how long a Lease is held without renewal"
    )
    renewSeconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="the leader stops serving when it could not renew for this long",
    )
    retrySeconds: float = Field(
        default=2.0, gt=0, le=3600, description="how often candidates try and the leader renews"
    )


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespaces: list[Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)]] = Field(
        default_factory=list, description="served namespaces; `[]`: every namespace"
    )
    target: Literal["argo", "cronjob"] = Field(
        default="argo", description="`argo` (CronWorkflows) or `cronjob` (batch/v1 CronJobs)"
    )
    resyncSeconds: int = Field(
        default=300,
        ge=10,
        le=86400,
        description="every rule is compiled and checked again this often",
    )
    healthPort: int = Field(
        default=8080, ge=1, le=65535, description="`/healthz`, `/ready` and `/metrics`"
    )
    metricsPort: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`/metrics` on a port of its own as well; null: none",
        json_schema_extra={SHOWN_DEFAULT: "`null`"},
    )
    pushgatewayUrl: str = Field(
        default="", description="a deleted rule's groups are deleted there; empty: none"
    )
    ruleDefaults: _RuleDefaultsFile = Field(default_factory=_RuleDefaultsFile)
    installation: _InstallationFile = Field(default_factory=_InstallationFile)
    checkSeconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="the time limit of checking one rule; longer makes it `Invalid`",
    )
    leaderElection: _LeaderElectionFile = Field(default_factory=_LeaderElectionFile)
    paused: bool = Field(
        default=False,
        description="the chart's `paused`: every rule's writes are stopped (its pods get "
        "`AI_OPERATOR_PAUSED`); each rule's status then has the condition `Paused`",
    )
    # Checked by compile_options against CompileOptions, whose messages name compile.<field>.
    compile: dict[str, Any] = Field(
        default_factory=dict,
        description="`CompileOptions` fields in camelCase (`pipelines/options.py`), except "
        "`namespace` and `limits`; each missing one keeps its default",
    )


CONFIG_FILE_MODEL: type[BaseModel] = _ConfigFile
"""The model of ``controller.yaml``: every key, its default, its bounds and its meaning (the
table in docs/cluster.md is generated from it)."""


# The file's defaults are the only ones: the dataclasses below take theirs from here, and the
# chart's values are checked against them (tests/chart/test_defaults.py).
_DEFAULTS = _ConfigFile()
_ELECTION = _DEFAULTS.leaderElection


@dataclass(frozen=True)
class RuleDefaults:
    """Values for rules that leave them out."""

    reconciliation_interval: int | None = None
    """Used when a rule sets neither ``reconciliationInterval`` nor ``schedule``."""
    max_pull_requests: int | None = None

    def apply(self, spec: JsonValue) -> JsonValue:
        """A rule's spec (as stored, not yet validated) with these defaults filled in."""
        if not isinstance(spec, dict):
            return spec
        filled = dict(spec)
        if (
            self.reconciliation_interval is not None
            and filled.get("reconciliationInterval") is None
            and filled.get("schedule") is None
        ):
            filled["reconciliationInterval"] = self.reconciliation_interval
        if self.max_pull_requests is not None and filled.get("maxPullRequests") is None:
            filled["maxPullRequests"] = self.max_pull_requests
        return filled


@dataclass(frozen=True)
class Installation:
    """The installation's own settings that rules fall back on, as the pods get them."""

    organization: str = ""
    repositories: tuple[str, ...] = ()
    ai_endpoint: str | None = None

    def rule_repositories(self, own: Sequence[str]) -> list[str]:
        """A rule's repositories: its own, else the installation's (``owner/name`` only)."""
        if own:
            return list(dict.fromkeys(own))
        names = [
            name if "/" in name else f"{self.organization}/{name}"
            for name in self.repositories
            if "/" in name or self.organization
        ]
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class LeaderElection:
    """Whether and how replicas elect the one that serves (client-go's defaults)."""

    enabled: bool = _ELECTION.enabled
    namespace: str = _ELECTION.namespace
    lease_name: str = _ELECTION.leaseName
    lease_seconds: float = _ELECTION.leaseSeconds
    renew_seconds: float = _ELECTION.renewSeconds
    retry_seconds: float = _ELECTION.retrySeconds
    release_on_stop: bool = True
    """Give the Lease up on a graceful stop, so that another replica takes over at once."""


@dataclass(frozen=True)
class ControllerConfig:
    """What the controller serves and how it compiles."""

    namespaces: tuple[str, ...] = ()
    """Served namespaces; empty: every namespace."""
    target: Target = _DEFAULTS.target
    resync_seconds: int = _DEFAULTS.resyncSeconds
    health_port: int = _DEFAULTS.healthPort
    metrics_port: int | None = _DEFAULTS.metricsPort
    pushgateway_url: str = _DEFAULTS.pushgatewayUrl
    rule_defaults: RuleDefaults = field(default_factory=RuleDefaults)
    compile: CompileOptions = field(default_factory=CompileOptions)
    installation: Installation = field(default_factory=Installation)
    check_seconds: float = _DEFAULTS.checkSeconds
    """How long checking one rule may take; longer makes it Invalid."""
    leader_election: LeaderElection = field(default_factory=LeaderElection)
    paused: bool = False
    """Writes are paused for the whole installation (reported in each rule's status)."""


def load_config(path: str | Path) -> ControllerConfig:
    """Read and check the configuration file at ``path``."""
    where = Path(path).name
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ControllerConfigError(f"{path}: cannot read the file: {reason}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ControllerConfigError(f"{where}: not valid YAML{at}") from exc
    return parse_config(document, where)


def parse_config(document: object, where: str = "controller.yaml") -> ControllerConfig:
    """Check a parsed configuration document; ``where`` names it in errors."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        found = type(document).__name__
        raise ControllerConfigError(f"{where}: expected a mapping of settings, found a {found}")
    try:
        parsed = _ConfigFile.model_validate(document)
    except ValidationError as exc:
        raise ControllerConfigError(f"{where}: {_first_error(exc)}") from exc
    try:
        options = compile_options(parsed.compile)
    except ControllerConfigError as exc:
        raise ControllerConfigError(f"{where}: {exc}") from exc
    election = parsed.leaderElection
    if not election.retrySeconds < election.renewSeconds < election.leaseSeconds:
        raise ControllerConfigError(
            f"{where}: leaderElection: retrySeconds < renewSeconds < leaseSeconds is needed "
            f"(found {election.retrySeconds}, {election.renewSeconds}, {election.leaseSeconds})"
        )
    return ControllerConfig(
        namespaces=tuple(dict.fromkeys(parsed.namespaces)),
        target=parsed.target,
        resync_seconds=parsed.resyncSeconds,
        health_port=parsed.healthPort,
        metrics_port=parsed.metricsPort,
        pushgateway_url=parsed.pushgatewayUrl.strip(),
        rule_defaults=RuleDefaults(
            parsed.ruleDefaults.reconciliationInterval, parsed.ruleDefaults.maxPullRequests
        ),
        compile=options,
        installation=Installation(
            parsed.installation.organization.strip(),
            tuple(name.strip() for name in parsed.installation.repositories if name.strip()),
            parsed.installation.aiEndpoint.strip() or None,
        ),
        check_seconds=parsed.checkSeconds,
        leader_election=LeaderElection(
            election.enabled,
            election.namespace,
            election.leaseName,
            election.leaseSeconds,
            election.renewSeconds,
            election.retrySeconds,
        ),
        paused=parsed.paused,
    )


def camel_name(option: str) -> str:
    """The configuration file's name of a :class:`CompileOptions` field."""
    if option in _CAMEL_EXCEPTIONS:
        return _CAMEL_EXCEPTIONS[option]
    head, *rest = option.split("_")
    return head + "".join(part.capitalize() for part in rest)


def compile_options(section: Mapping[str, Any]) -> CompileOptions:
    """The ``compile`` section as :class:`CompileOptions`; errors name ``compile.<field>``."""
    names = {
        camel_name(f.name): f.name
        for f in dataclasses.fields(CompileOptions)
        if f.name not in _FIXED_OPTIONS
    }
    for key in section:
        option = re.sub(r"(?<!^)(?=[A-Z])", "_", str(key)).lower()
        if option in _FIXED_OPTIONS:
            raise ControllerConfigError(f"compile.{key}: not allowed: {_FIXED_OPTIONS[option]}")
        if key not in names:
            raise ControllerConfigError(f"compile.{key}: unknown field")
    values = {names[key]: value for key, value in section.items()}
    try:
        return TypeAdapter(CompileOptions).validate_python(values)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        first, *rest = error["loc"]
        path = ".".join([f"compile.{camel_name(str(first))}", *map(str, rest)])
        raise ControllerConfigError(f"{path}: {_message(error)}") from exc
    except CompileError as exc:
        if not exc.problems:
            raise ControllerConfigError(f"compile: {exc}") from exc
        option, problem = exc.problems[0]
        raise ControllerConfigError(f"compile.{camel_name(option)}: {problem}") from exc


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    path = ".".join(str(part) for part in error["loc"])
    return f"{path}: {_message(error)}" if path else _message(error)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    found = error.get("input")
    message = str(error["msg"])
    if isinstance(found, str | int | float | bool) and error["type"] != "missing":
        message += f" (found {found!r})"
    return message
