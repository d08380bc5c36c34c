"""What a cluster admin chooses when compiling rules, and what every compiled pod gets.

:class:`CompileOptions` holds the cluster's choices (image, namespace, Secret and ConfigMap names,
limits); the functions below turn a rule and those options into the pieces both targets share:
bounded resource names, labels and annotations, the environment (the rule travels base64-encoded
in ``AI_OPERATOR_RULE``, the namespace's limits as JSON in ``AI_OPERATOR_LIMITS``; tokens only as
``secretKeyRef``), security contexts, resources and the ``/tmp`` volume, image pull secrets and
placement (node selector, tolerations, affinity). Everything is returned as Kubernetes-shaped
dictionaries so that the Argo and the CronJob builders cannot drift apart.

Errors: :class:`CompileError` (options that cannot work, or a manifest that fails its own checks);
it is for the operator running ``compile``, never retryable.

This module is pure: it reads no file, no environment variable and talks to no cluster. It never
sees a token's value, only the names of the Secret keys that hold them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ai_operator.jobs.rules.encoding import (
    LIMITS_ENV,
    RULE_DIGEST_ENV,
    RULE_FILE_ENV,
    encode_limits,
    rule_digest,
    rule_text,
)
from ai_operator.jobs.rules.limits import BUILT_IN, LimitsSpec
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.rules.names import bounded_name, outcome_index_prefix

Target = Literal["argo", "cronjob"]


# Names of variables and Secret keys, never values:
GITHUB_TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105
AI_TOKEN_ENV = "AI_TOKEN"  # noqa: S105
ARGOCD_TOKEN_ENV = "ARGOCD_TOKEN"  # noqa: S105
GITHUB_APP_KEY_ENV = "GITHUB_APP_PRIVATE_KEY"
TOKEN_SECRET_KEYS = {
    GITHUB_TOKEN_ENV: "github-token",
    AI_TOKEN_ENV: "ai-token",
    ARGOCD_TOKEN_ENV: "argocd-token",
    GITHUB_APP_KEY_ENV: "github-app-private-key",
}
OPTIONAL_TOKENS = frozenset({ARGOCD_TOKEN_ENV})
"""Read only when their Secret holds them: Argo CD may be reached without a token."""

APP_NAME = "ai-operator"
RULE_LABEL = "aioperator.io/rule"
RULE_ANNOTATION = "aioperator.io/rule"
SPEC_HASH_ANNOTATION = "aioperator.io/spec-hash"
SCHEDULE_NOTE_ANNOTATION = "aioperator.io/schedule-note"

RULE_DIGEST_ANNOTATION = "aioperator.io/rule-sha256"
RULE_VOLUME = "rule"
RULE_DIR = "/etc/ai-operator/rule"
RULE_FILE_KEY = "rule.yaml"
RULE_FILE = f"{RULE_DIR}/{RULE_FILE_KEY}"

TMP_VOLUME = "tmp"
TMP_PATH = "/tmp"  # noqa: S108 - an emptyDir of the pod's own, not the node's /tmp

MAX_CRON_NAME = 52  # Argo's CronWorkflow and Kubernetes' CronJob name limit
MAX_LABEL_VALUE = 63
MAX_CONFIG_MAP_NAME = 63

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# Go's time.ParseDuration, which Argo uses for memoize.maxAge and podGC.deleteDelayDuration.
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|\u00b5s|ms|s|m|h))+$")
_NOT_NAME_CHAR = re.compile(r"[^a-z0-9-]+")
_HASH_CHARS = 8


class CompileError(Exception):
    """Options that cannot work, or a compiled manifest that failed its checks; says which.

    ``problems`` lists ``(option, what is wrong)`` pairs when options are the cause.
    """

    def __init__(self, message: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class SecretKeyRef:
    """Where a pod reads one token: a key of a Secret in the pod's namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class CompileOptions:
    """The cluster's choices; every default matches the Helm chart's names."""

    image: str = "ghcr.io/ai-operator/ai-operator:0.1.0"
    image_pull_policy: str | None = None
    namespace: str | None = None
    """Namespace of the compiled objects; default: the rule's namespace."""
    service_account: str = "ai-operator-workflow"
    image_pull_secrets: tuple[str, ...] = ()
    """Secrets the pods pull the image with."""
    secret_name: str = "ai-operator-secrets"  # noqa: S105 - a Secret's name
    """Secret with keys ``github-token`` and ``ai-token``."""
    secret_keys: Mapping[str, SecretKeyRef] = field(default_factory=dict, hash=False)
    """Per token variable (``GITHUB_TOKEN``, ``AI_TOKEN``, ``ARGOCD_TOKEN``,
    ``GITHUB_APP_PRIVATE_KEY``), another Secret or key to read it from; a token not named here
    is read from ``secret_name`` under its usual key."""
    github_app: bool = False
    """GitHub App authentication: pods read ``GITHUB_APP_PRIVATE_KEY`` from the Secret instead
    of ``GITHUB_TOKEN`` (the App's id and installation come from the settings ConfigMap)."""
    config_map: str | None = "ai-operator-config"
    """Optional ConfigMap loaded with ``envFrom`` (GITHUB_GRAPHQL_URL, AI_ENDPOINT, ...)."""
    parallelism: int = 5
    """Decide pods running at once for one rule's run."""
    token_semaphore: str | None = "ai-operator-sync/github-token"  # noqa: S105 - a key name
    """``configmap/key`` of an Argo semaphore shared by rules acting with the same GitHub token."""
    memo_max_age: str = "24h"
    """How long a pull request's recorded decision stands while its facts stay the same."""
    max_decisions_per_run: int = 200
    """Argo: pull requests one run decides, at most (the rule's ``maxPullRequests`` if lower); the
    rest wait for the next runs, least recently decided first. A run's Workflow object, which Argo
    caps at 1 MiB (compressed), must hold every decision it makes (docs/benchmarks.md)."""
    pod_gc_delete_delay: str | None = "10m"
    """Argo: how long a succeeded pod is kept, so that ``argo logs`` still shows a finished run;
    None deletes it at once."""
    timezone: str | None = None
    """Timezone of rules that name none (default: the controller's, usually UTC)."""
    starting_deadline_seconds: int = 60
    successful_history_limit: int = 3
    failed_history_limit: int = 3
    active_deadline_seconds: int = 1800
    ttl_seconds_after_success: int = 3600
    ttl_seconds_after_failure: int = 86400
    decide_retry_limit: int = 3
    retry_backoff: str = "5s"
    """First wait before a decide step is retried (the earlier design's chart: 5 s), doubled
    each time up to ``retry_backoff_max``."""
    retry_backoff_max: str = "2m"
    job_backoff_limit: int = 2
    """CronJob only: pod retries, spent only on exit code 75 (a transient failure)."""
    cpu_request: str = "50m"
    memory_request: str = "128Mi"
    cpu_limit: str | None = None
    memory_limit: str | None = "512Mi"
    resources: Mapping[str, Mapping[str, str]] | None = field(default=None, hash=False)
    """The containers' whole ``requests``/``limits``; None: from the four fields above."""
    node_selector: Mapping[str, str] = field(default_factory=dict, hash=False)
    tolerations: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    affinity: Mapping[str, Any] = field(default_factory=dict, hash=False)
    tmp_size_limit: str = "64Mi"
    run_as_user: int = 65532
    limits: LimitsSpec = field(default=BUILT_IN, hash=False)
    """What the administrator allows the rule's namespace (its PRReconciliationLimits); every step
    checks its rule against them again before it reads or writes."""
    events: bool = False
    """Argo: compile each rule with ``spec.events`` into a Sensor too (the chart's
    ``events.enabled``); without it such a rule runs on its schedule only."""
    event_source: str = "ai-operator-github"
    """The installation's GitHub EventSource, which the Sensors listen to."""
    event_bus: str = "default"
    """The EventBus the EventSource and the Sensors share."""
    sensor_service_account: str = "ai-operator-sensor"
    """The service account a Sensor creates Workflows as (``create`` on Workflows)."""
    events_namespace: str | None = None
    """Where the EventSource and its EventBus live (the chart: the release namespace). A Sensor
    hears only its own namespace's EventBus, so a rule elsewhere gets no Sensor and runs on its
    schedule; None: every namespace (an EventBus in each, set up by the administrator)."""

    def __post_init__(self) -> None:
        problems = _option_problems(self)
        if problems:
            raise CompileError(
                "invalid compile options: "
                + "; ".join(f"{name} {problem}" for name, problem in problems),
                problems,
            )

    @property
    def semaphore_ref(self) -> tuple[str, str] | None:
        """The token semaphore as (ConfigMap name, key), or None."""
        if self.token_semaphore is None:
            return None
        name, _, key = self.token_semaphore.partition("/")
        return name, key

    def token_ref(self, token: str) -> SecretKeyRef:
        """The Secret and key a pod reads the variable ``token`` from."""
        return self.secret_keys.get(token) or SecretKeyRef(
            self.secret_name, TOKEN_SECRET_KEYS[token]
        )


def _option_problems(options: CompileOptions) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not options.image.strip() or any(char.isspace() for char in options.image):
        problems.append(("image", f"must name a container image, not {options.image!r}"))
    problems += [
        (name, f"must be positive, not {value}")
        for name, value in (
            ("parallelism", options.parallelism),
            ("max_decisions_per_run", options.max_decisions_per_run),
            ("active_deadline_seconds", options.active_deadline_seconds),
            ("starting_deadline_seconds", options.starting_deadline_seconds),
        )
        if value < 1
    ]
    problems += [
        (name, f"must not be negative, not {value}")
        for name, value in (
            ("successful_history_limit", options.successful_history_limit),
            ("failed_history_limit", options.failed_history_limit),
            ("decide_retry_limit", options.decide_retry_limit),
            ("job_backoff_limit", options.job_backoff_limit),
            ("ttl_seconds_after_success", options.ttl_seconds_after_success),
            ("ttl_seconds_after_failure", options.ttl_seconds_after_failure),
        )
        if value < 0
    ]
    if options.token_semaphore is not None:
        name, slash, key = options.token_semaphore.partition("/")
        if not (slash and _DNS_LABEL.match(name) and _SECRET_KEY.match(key)):
            problems.append(
                ("token_semaphore", f"must be 'configmap/key', not {options.token_semaphore!r}")
            )
    problems += _pod_option_problems(options)
    return problems


def _pod_option_problems(options: CompileOptions) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = [
        ("image_pull_secrets", f"must hold Secret names, not {name!r}")
        for name in options.image_pull_secrets
        if not _DNS_SUBDOMAIN.match(name)
    ]
    for token, ref in sorted(options.secret_keys.items()):
        if token not in TOKEN_SECRET_KEYS:
            known = ", ".join(sorted(TOKEN_SECRET_KEYS))
            problems.append(("secret_keys", f"names {token!r}; the tokens are {known}"))
        elif not (_DNS_SUBDOMAIN.match(ref.name) and _SECRET_KEY.match(ref.key)):
            where = f"{ref.name!r}/{ref.key!r}"
            problems.append(("secret_keys", f"{token} must name a Secret and a key, not {where}"))
    problems += [
        (name, f"must be a duration such as 10m or 24h, not {value!r}")
        for name, value in (
            ("memo_max_age", options.memo_max_age),
            ("pod_gc_delete_delay", options.pod_gc_delete_delay),
            ("retry_backoff", options.retry_backoff),
            ("retry_backoff_max", options.retry_backoff_max),
        )
        if value is not None and not _GO_DURATION.match(value)
    ]
    if options.resources is not None and not set(options.resources) <= {"requests", "limits"}:
        unknown = sorted(set(options.resources) - {"requests", "limits"})
        problems.append(("resources", f"may hold requests and limits only, not {unknown}"))
    return problems


@dataclass(frozen=True)
class CompiledManifest:
    """One compiled object: the rule it comes from, what it is, and notes for people."""

    rule: str
    """The rule's ``namespace/name``."""
    kind: str
    name: str
    document: dict[str, Any] = field(hash=False)
    notes: tuple[str, ...] = ()
    config_map: dict[str, Any] | None = field(default=None, hash=False)
    """The rule's ConfigMap (:func:`rule_config_map`), which the object's pods read the rule
    from; it is applied before the object and lives and dies with it."""
    workflow_template: dict[str, Any] | None = field(default=None, hash=False)
    """Argo: the rule's WorkflowTemplate, which the CronWorkflow and the Sensor submit; applied
    after the ConfigMap and before the object."""
    sensor: dict[str, Any] | None = field(default=None, hash=False)
    """Argo, with events: the rule's Sensor (:mod:`pipelines.events`); applied last."""

    @property
    def documents(self) -> list[dict[str, Any]]:
        """Every document of the rule, in the order they are applied."""
        found = [self.config_map, self.workflow_template, self.document, self.sensor]
        return [document for document in found if document is not None]


# --- names -----------------------------------------------------------------------------------


def object_name(rule: PRReconciliationRule) -> str:
    """The CronWorkflow's or CronJob's name."""
    return bounded_name(rule.metadata.name, MAX_CRON_NAME)


def memo_config_map(rule: PRReconciliationRule) -> str:
    """The prefix of the rule's outcome index, one ConfigMap per shard (``-0``..``-f``).

    A ConfigMap holds at most 1 MiB; sharding by a digest of the PR's name keeps each of the
    sixteen far below that (:mod:`jobs.clients.outcome_index`, docs/benchmarks.md).
    """
    return outcome_index_prefix(rule.metadata.name)


def rule_config_map_name(rule: PRReconciliationRule) -> str:
    """The name of the ConfigMap that holds the rule (``ai-operator-rule-<rule>``)."""
    return bounded_name(rule.metadata.name, MAX_CONFIG_MAP_NAME, prefix=f"{APP_NAME}-rule-")


def label_value(rule: PRReconciliationRule) -> str:
    """The rule's name as a label value (which allows at most 63 characters)."""
    return rule_label_value(rule.metadata.name)


def rule_label_value(name: str) -> str:
    """The value of :data:`RULE_LABEL` for the rule named ``name``."""
    return name if len(name) <= MAX_LABEL_VALUE else bounded_name(name, MAX_LABEL_VALUE)


def target_namespace(rule: PRReconciliationRule, options: CompileOptions) -> str:
    """Where the compiled object lives."""
    return options.namespace or rule.metadata.namespace


# --- metadata --------------------------------------------------------------------------------


def rule_labels(rule: PRReconciliationRule) -> dict[str, str]:
    """Labels of the compiled object, of each run it creates and of each pod."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/component": "reconciliation",
        "app.kubernetes.io/managed-by": APP_NAME,
        "app.kubernetes.io/part-of": APP_NAME,
        RULE_LABEL: label_value(rule),
    }


def rule_annotations(rule: PRReconciliationRule, note: str | None) -> dict[str, str]:
    """The rule's full name and spec hash, and the schedule note when there is one."""
    result = {RULE_ANNOTATION: rule.qualified_name, SPEC_HASH_ANNOTATION: rule.spec_hash()}
    if note:
        result[SCHEDULE_NOTE_ANNOTATION] = note
    return result


# --- the rule, once --------------------------------------------------------------------------


def rule_config_map(rule: PRReconciliationRule, options: CompileOptions) -> dict[str, Any]:
    """The ConfigMap that holds the rule as readable YAML (:func:`jobs.rules.encoding.rule_text`).

    Every pod mounts it read-only at :data:`RULE_DIR` and checks the file against the SHA-256
    in its own annotation :data:`RULE_DIGEST_ANNOTATION`. A ConfigMap's data is no part of the
    workflow, so Argo never substitutes a rule's ``{{pr.number}}``; the text stays as written.
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": rule_config_map_name(rule),
            "namespace": target_namespace(rule, options),
            "labels": rule_labels(rule),
            "annotations": {RULE_ANNOTATION: rule.qualified_name},
        },
        "data": {RULE_FILE_KEY: rule_text(rule)},
    }


def pod_annotations(rule: PRReconciliationRule) -> dict[str, str]:
    """Every pod's annotations: the SHA-256 of the rule file the pod must read."""
    return {RULE_DIGEST_ANNOTATION: rule_digest(rule_text(rule))}


def rule_volume(rule: PRReconciliationRule) -> dict[str, Any]:
    """The rule's ConfigMap as a volume.

    Optional, so that a missing ConfigMap is the step's clear one-line error: a required one
    would keep the pod waiting to start until the run's deadline.
    """
    source = {"name": rule_config_map_name(rule), "optional": True}
    return {"name": RULE_VOLUME, "configMap": source}


def rule_mount() -> dict[str, Any]:
    """Where :func:`rule_volume` is mounted, read-only."""
    return {"name": RULE_VOLUME, "mountPath": RULE_DIR, "readOnly": True}


# --- pod conventions -------------------------------------------------------------------------


def environment(
    rule: PRReconciliationRule, options: CompileOptions, tokens: Sequence[str]
) -> list[dict[str, Any]]:
    """The container's ``env``: the rule file and its digest, the limits, JSON logs, the tokens.

    Neither rule variable changes with the rule: the digest comes from the pod's annotation.
    """
    digest_path = f"metadata.annotations['{RULE_DIGEST_ANNOTATION}']"
    env: list[dict[str, Any]] = [
        {"name": RULE_FILE_ENV, "value": RULE_FILE},
        {"name": RULE_DIGEST_ENV, "valueFrom": {"fieldRef": {"fieldPath": digest_path}}},
        {"name": LIMITS_ENV, "value": encode_limits(options.limits)},
        {"name": "LOG_FORMAT", "value": "json"},
    ]
    wanted = [
        GITHUB_APP_KEY_ENV if token == GITHUB_TOKEN_ENV and options.github_app else token
        for token in tokens
        if token != ARGOCD_TOKEN_ENV or rule.spec.argocdEnabled
    ]
    env += [_secret_env(token, options.token_ref(token)) for token in wanted]
    return env


def _secret_env(token: str, ref: SecretKeyRef) -> dict[str, Any]:
    """A variable read from a Secret's key (``optional`` for a token that may be absent)."""
    source: dict[str, Any] = {"name": ref.name, "key": ref.key}
    if token in OPTIONAL_TOKENS:
        source["optional"] = True
    return {"name": token, "valueFrom": {"secretKeyRef": source}}


def environment_from(options: CompileOptions) -> list[dict[str, Any]]:
    """The container's ``envFrom``: the optional shared ConfigMap."""
    if options.config_map is None:
        return []
    return [{"configMapRef": {"name": options.config_map, "optional": True}}]


def pod_security_context(options: CompileOptions) -> dict[str, Any]:
    """Non-root, fixed ids, the runtime's default seccomp profile."""
    uid = options.run_as_user
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """A read-only root, no privilege escalation, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def resources(options: CompileOptions) -> dict[str, dict[str, str]]:
    """The container's requests and limits."""
    if options.resources is not None:
        return {kind: dict(values) for kind, values in options.resources.items() if values}
    limits = {
        key: value
        for key, value in (("cpu", options.cpu_limit), ("memory", options.memory_limit))
        if value is not None
    }
    result = {"requests": {"cpu": options.cpu_request, "memory": options.memory_request}}
    return result | ({"limits": limits} if limits else {})


def tmp_volume(options: CompileOptions) -> dict[str, Any]:
    """The writable ``/tmp`` the read-only root needs (outputs are written there)."""
    return {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": options.tmp_size_limit}}


def tmp_mount() -> dict[str, str]:
    """Where :func:`tmp_volume` is mounted."""
    return {"name": TMP_VOLUME, "mountPath": TMP_PATH}


def pod_placement(options: CompileOptions) -> dict[str, Any]:
    """Image pull secrets, node selector, tolerations and affinity of every pod, when set.

    Keys are the pod spec's (``imagePullSecrets``, ``nodeSelector``, ``tolerations``,
    ``affinity``); unset ones are left out, so the default adds nothing.
    """
    placement: dict[str, Any] = {
        "imagePullSecrets": [{"name": name} for name in options.image_pull_secrets],
        "nodeSelector": dict(options.node_selector),
        "tolerations": [dict(toleration) for toleration in options.tolerations],
        "affinity": dict(options.affinity),
    }
    return {key: value for key, value in placement.items() if value}
