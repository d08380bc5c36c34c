"""Metrics of a rule's runs, pushed to a Prometheus Pushgateway.

This is the only module that imports ``prometheus_client``. Every metric is declared once, in
:data:`METRICS`, with a fixed label set; :func:`pass_metric_families` maps a :class:`PassSummary`
(data built by the caller) onto them, :func:`push_pass_metrics` pushes them and
:func:`delete_rule_groups` removes a deleted rule's groups.

One group per rule, grouping key ``{job="ai-operator", namespace, rule}``, replaced once per run
(HTTP PUT). Two kinds of metric live in it:

- Counters (``*_total``) count across runs. A batch run keeps no counter in memory, so
  :func:`push_pass_metrics` first reads the rule's group back (``GET /api/v1/metrics``), adds this
  run's counts to the values found there, and pushes the sums: ``rate()`` and ``increase()`` over
  them are right. Runs of one rule never overlap (the CronWorkflow's ``concurrencyPolicy`` is
  ``Forbid``), so nothing else writes the group between the read and the write. When the
  Pushgateway loses its groups (a restart without ``--persistence.file``), the next run starts
  the counters again from its own counts: Prometheus sees a counter reset, which ``rate()`` and
  ``increase()`` handle. When the read fails, nothing is pushed (pushing this run's counts alone
  would look like a reset that is not one).
- Gauges describe the last run: duration, outcome, timestamps, pull requests by outcome, model
  calls and tokens, decisions reused, GitHub's remaining rate limit. The last-success timestamp
  is carried over a failed run from the group read back.

Dry runs never count as actions: what they would have done goes to
``ai_operator_dry_run_actions_total``, never to ``ai_operator_actions_total``.

No label holds an unbounded value (no PR number, no repository): actions, error types, token
kinds and outcomes are fixed sets; guardrails are the few the policy names.

Pushing never raises because of the gateway (down, slow, answering an error): the result is a
:class:`PushOutcome` for the caller to log. The gateway URL must carry no credentials.
It must not read the wall clock (``finished_at`` is passed in), the environment, or the
process-wide ``prometheus_client`` registry: each push builds a fresh ``CollectorRegistry``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any, Literal
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, delete_from_gateway, push_to_gateway
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ai_operator.jobs.clients.argocd.errors import ERROR_KINDS
from ai_operator.jobs.policy.pacing import DEFERRALS
from ai_operator.jobs.policy.plan import MergeRoute
from ai_operator.jobs.rules.model import Action

JOB = "ai-operator"
ERROR_TYPES: tuple[str, ...] = ("github", "ai", "kubernetes", "guardrail", "template", "step")
ACTIONS: tuple[str, ...] = tuple(
    dict.fromkeys([*(action.value for action in Action), *(route.value for route in MergeRoute)])
)
"""The actions results and metrics name: a merge handed to the merge queue is ``queue``, one
armed as GitHub's auto-merge is ``auto-merge``; only ``merge`` counts merges done."""
TOKEN_KINDS: tuple[str, ...] = ("input", "output", "cached")
ARGOCD_ERROR_KINDS: tuple[str, ...] = ERROR_KINDS
RUN_OUTCOMES: tuple[str, ...] = ("succeeded", "failed")
PR_OUTCOMES: tuple[str, ...] = (*ACTIONS, "failed", "dry_run")
HAPPENED: tuple[str, ...] = ("merged", "closed", "stepped_in", "changed")
"""What settles a shadow decision (:class:`jobs.policy.shadow.Happened`)."""
SHADOW_OUTCOMES: tuple[str, ...] = tuple(f"{a}:{h}" for a in ACTIONS for h in HAPPENED)
"""Settled shadow decisions' keys: ``decided:happened``."""
GROUP_LABELS = ("job", "instance", "namespace", "rule")
"""Labels of every series that come from the group, not from the metric."""

MetricKind = Literal["counter", "gauge"]
SampleKey = tuple[str, tuple[tuple[str, str], ...]]
"""A series within a group: its sample name and its own labels, sorted."""


@dataclass(frozen=True)
class MetricSpec:
    """One declared metric: its exposition name, type, help text and label names."""

    name: str
    kind: MetricKind
    documentation: str
    labels: tuple[str, ...] = ()


def _counter(name: str, documentation: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "counter", documentation, labels)


def _gauge(name: str, documentation: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "gauge", documentation, labels)


# Counters: totals across runs, per rule.
RUNS = _counter("ai_operator_runs_total", "Runs of the rule, by outcome.", "outcome")
PRS_PROCESSED = _counter(
    "ai_operator_prs_processed_total", "Pull requests decided (dry runs included)."
)
ACTIONS_TAKEN = _counter(
    "ai_operator_actions_total",
    "Pull requests by the action a run settled on; a reused decision that changed nothing is "
    "not counted again, and dry runs never count here.",
    "action",
)
DRY_RUN_ACTIONS = _counter(
    "ai_operator_dry_run_actions_total",
    "Pull requests a dry run would have settled by each action (nothing was changed).",
    "action",
)
ERRORS = _counter(
    "ai_operator_errors_total",
    "Errors, per boundary (github, ai, kubernetes, guardrail, template, step).",
    "type",
)
GUARDRAIL_BLOCKS = _counter(
    "ai_operator_guardrail_blocks_total",
    "Verdicts a guardrail turned into a safer action, per guardrail.",
    "guardrail",
)
FALLBACKS = _counter(
    "ai_operator_fallbacks_total",
    "Pull requests given the rule's fallback action (no usable model answer).",
)
AI_CALLS = _counter("ai_operator_ai_calls_total", "Requests to the model.")
AI_TOKENS = _counter(
    "ai_operator_ai_tokens_total",
    "Model tokens, per kind: input (cached included), output, cached (read from the cache).",
    "kind",
)
DECISIONS_REUSED = _counter(
    "ai_operator_decisions_reused_total",
    "Decisions taken from an earlier run's memo instead of asking the model again.",
)
GITHUB_REQUESTS = _counter("ai_operator_github_requests_total", "GitHub API requests.")
WRITES_DEFERRED = _counter(
    "ai_operator_writes_deferred_total",
    "Pull requests whose writes waited for a later pass, per reason (budget, merges, closes, "
    "rate-limit, paused).",
    "reason",
)
SHADOW_DECISIONS = _counter(
    "ai_operator_shadow_decisions_total",
    "Decisions a rule in shadow mode recorded (nothing was written), by decided action.",
    "decided",
)
SHADOW_SETTLED = _counter(
    "ai_operator_shadow_settled_total",
    "Shadow decisions settled by what people did next, by decided action and outcome "
    "(merged, closed, stepped_in, changed).",
    "decided",
    "outcome",
)
SHADOW_AGREED = _counter(
    "ai_operator_shadow_agreed_total",
    "Settled shadow decisions that agreed with what people did, by decided action.",
    "decided",
)
ARGOCD_ERRORS = _counter(
    "ai_operator_argocd_errors_total",
    "Argo CD applications a run could not read (their health was Unknown), by kind "
    "(unreachable, auth, missing, unavailable, name).",
    "kind",
)

# Gauges: the last run.
RULES = _gauge(
    "ai_operator_rules_total",
    "1 for each rule's group (kept for earlier dashboards; a gauge despite its name).",
)
RUN_DURATION = _gauge("ai_operator_run_duration_seconds", "Wall-clock duration of the last run.")
RUN_SUCCESS = _gauge("ai_operator_run_success", "1 when the last run succeeded, 0 when it failed.")
RUN_DRY = _gauge("ai_operator_run_dry_run", "1 when the last run was a dry run, else 0.")
LAST_RUN = _gauge(
    "ai_operator_last_run_timestamp_seconds",
    "Unix time the last run finished, whatever its outcome.",
)
LAST_SUCCESS = _gauge(
    "ai_operator_last_success_timestamp_seconds",
    "Unix time the last successful run finished (kept across failed runs).",
)
RULE_INTERVAL = _gauge(
    "ai_operator_rule_interval_seconds", "Seconds between two scheduled runs of the rule."
)
LAST_RUN_PRS = _gauge(
    "ai_operator_last_run_pull_requests",
    "Pull requests of the last run by outcome: the action taken, failed, or dry_run.",
    "outcome",
)
LAST_RUN_ERRORS = _gauge(
    "ai_operator_last_run_errors", "Errors of the last run, per boundary.", "type"
)
LAST_RUN_AI_CALLS = _gauge("ai_operator_last_run_ai_calls", "Model requests of the last run.")
LAST_RUN_AI_TOKENS = _gauge(
    "ai_operator_last_run_ai_tokens", "Model tokens of the last run, per kind.", "kind"
)
LAST_RUN_REUSED = _gauge(
    "ai_operator_last_run_decisions_reused", "Decisions the last run took from the memo."
)
LAST_RUN_DEFERRED = _gauge(
    "ai_operator_last_run_writes_deferred",
    "Pull requests of the last run whose writes wait for a later pass, per reason.",
    "reason",
)
GITHUB_RATE_LIMIT = _gauge(
    "ai_operator_github_rate_limit_remaining",
    "GitHub rate-limit points left, as GitHub last reported them to the run.",
)

COUNTERS: tuple[MetricSpec, ...] = (
    RUNS,
    PRS_PROCESSED,
    ACTIONS_TAKEN,
    DRY_RUN_ACTIONS,
    ERRORS,
    GUARDRAIL_BLOCKS,
    FALLBACKS,
    AI_CALLS,
    AI_TOKENS,
    DECISIONS_REUSED,
    GITHUB_REQUESTS,
    WRITES_DEFERRED,
    SHADOW_DECISIONS,
    SHADOW_SETTLED,
    SHADOW_AGREED,
    ARGOCD_ERRORS,
)
GAUGES: tuple[MetricSpec, ...] = (
    RULES,
    RUN_DURATION,
    RUN_SUCCESS,
    RUN_DRY,
    LAST_RUN,
    LAST_SUCCESS,
    RULE_INTERVAL,
    LAST_RUN_PRS,
    LAST_RUN_ERRORS,
    LAST_RUN_AI_CALLS,
    LAST_RUN_AI_TOKENS,
    LAST_RUN_REUSED,
    LAST_RUN_DEFERRED,
    GITHUB_RATE_LIMIT,
)
METRICS: tuple[MetricSpec, ...] = COUNTERS + GAUGES


@dataclass(frozen=True)
class PassSummary:
    """What one run of one rule did, built by the caller from its results.

    ``actions`` are the final actions of the pull requests handled without error (in a dry run,
    what would have been done); their keys are :class:`~jobs.rules.model.Action` values.
    ``errors`` keys are :data:`ERROR_TYPES` and ``ai_tokens`` keys :data:`TOKEN_KINDS`; anything
    else is a programming error (``ValueError``).
    """

    namespace: str
    rule: str
    prs_processed: int
    actions: Mapping[str, int]
    errors: Mapping[str, int]
    guardrail_blocks: Mapping[str, int]
    fallbacks: int
    ai_calls: int
    github_requests: int
    duration_seconds: float
    succeeded: bool
    finished_at: float
    dry_run: bool = False
    failed_prs: int = 0
    ai_tokens: Mapping[str, int] = field(default_factory=dict)
    decisions_reused: int = 0
    github_rate_limit_remaining: int | None = None
    interval_seconds: float | None = None
    writes_deferred: Mapping[str, int] = field(default_factory=dict)
    """Pull requests whose writes wait for a later pass, by :data:`DEFERRALS` reason."""
    shadow_decided: Mapping[str, int] = field(default_factory=dict)
    """A shadow pass's recorded decisions, by action."""
    shadow_settled: Mapping[str, int] = field(default_factory=dict)
    """Shadow decisions settled by this run, by ``decided:happened`` (:data:`SHADOW_OUTCOMES`)."""
    shadow_agreed: Mapping[str, int] = field(default_factory=dict)
    """Of those, the ones that agreed, by decided action."""
    argocd_errors: Mapping[str, int] = field(default_factory=dict)
    """Argo CD applications not read, by kind (:data:`ARGOCD_ERROR_KINDS`)."""

    def __post_init__(self) -> None:
        _check_keys("argocd_errors", self.argocd_errors, ARGOCD_ERROR_KINDS)
        _check_keys("actions", self.actions, ACTIONS)
        _check_keys("writes_deferred", self.writes_deferred, DEFERRALS)
        _check_keys("shadow_decided", self.shadow_decided, ACTIONS)
        _check_keys("shadow_settled", self.shadow_settled, SHADOW_OUTCOMES)
        _check_keys("shadow_agreed", self.shadow_agreed, ACTIONS)
        _check_keys("errors", self.errors, ERROR_TYPES)
        _check_keys("ai_tokens", self.ai_tokens, TOKEN_KINDS)
        if not self.namespace or not self.rule:
            raise ValueError("a summary needs the rule's namespace and name")

    @property
    def qualified_name(self) -> str:
        """``namespace/name``, as logs name the rule."""
        return f"{self.namespace}/{self.rule}"


@dataclass(frozen=True)
class PushOutcome:
    """Whether the run's metrics reached the gateway; ``error`` says why not."""

    pushed: bool
    error: str | None = None


@dataclass(frozen=True)
class DeleteOutcome:
    """Whether a rule's groups were deleted from the gateway; ``error`` says why not."""

    deleted: bool
    error: str | None = None


def grouping_key(namespace: str, rule: str) -> dict[str, str]:
    """The grouping key of a rule's group, besides ``job``."""
    return {"namespace": namespace, "rule": rule}


def pass_metric_families(
    summary: PassSummary, previous: Mapping[SampleKey, float] | None = None
) -> list[Metric]:
    """The group's metric families: ``previous`` counter values plus this run's, then gauges.

    ``previous`` holds the group as read back from the gateway (see :func:`read_group`).
    """
    before = previous or {}
    current = _counter_samples(summary)
    counters = [_family(spec, _added(spec, current[spec.name], before)) for spec in COUNTERS]
    return counters + _gauge_families(summary, before)


def push_pass_metrics(
    gateway_url: str, summary: PassSummary, *, job: str = JOB, timeout: float = 5.0
) -> PushOutcome:
    """Read the rule's group back, add this run's counts, and replace the group (PUT).

    Never raises for gateway trouble; both requests share ``timeout``.
    """
    deadline = time.monotonic() + timeout
    key = grouping_key(summary.namespace, summary.rule)
    try:
        previous = read_group(gateway_url, job, key, timeout)
    except GatewayError as exc:
        return PushOutcome(pushed=False, error=f"reading the previous values failed: {exc}")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return PushOutcome(pushed=False, error=f"timed out after {timeout} s")
    families = pass_metric_families(summary, previous)
    error = _push(gateway_url, job, key, families, remaining)
    return PushOutcome(pushed=error is None, error=error)


def delete_rule_groups(
    gateway_url: str, namespace: str, rule: str, *, job: str = JOB, timeout: float = 5.0
) -> DeleteOutcome:
    """Delete a deleted rule's groups: this design's and the earlier design's two.

    The earlier design grouped by ``{job, rule="namespace/name"}`` and kept the last success in
    ``{job, rule="namespace/name", outcome="succeeded"}``. Deleting a group that does not exist
    succeeds. Never raises for gateway trouble; the requests share ``timeout``.
    """
    deadline = time.monotonic() + timeout
    earlier = f"{namespace}/{rule}"
    keys = [
        grouping_key(namespace, rule),
        {"rule": earlier},
        {"rule": earlier, "outcome": "succeeded"},
    ]
    for key in keys:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return DeleteOutcome(deleted=False, error=f"timed out after {timeout} s")
        try:
            delete_from_gateway(gateway_url, job=job, grouping_key=key, timeout=remaining)
        except (OSError, ValueError, HTTPException) as exc:
            return DeleteOutcome(deleted=False, error=_describe(exc, gateway_url))
    return DeleteOutcome(deleted=True)


class GatewayError(Exception):
    """The gateway could not be read (down, slow, an error answer, a body that is no group list)."""


def read_group(
    gateway_url: str, job: str, key: Mapping[str, str], timeout: float
) -> dict[SampleKey, float]:
    """Every series of the group ``{job, **key}``, by sample name and own labels (empty if none).

    Raises :class:`GatewayError`.
    """
    wanted = {"job": job, **key}
    for group in _gateway_groups(gateway_url, timeout):
        if isinstance(group, dict) and group.get("labels") == wanted:
            return _group_samples(group)
    return {}


def _group_samples(group: Mapping[str, Any]) -> dict[SampleKey, float]:
    """The samples of one group of ``/api/v1/metrics``, without the group's own labels."""
    samples: dict[SampleKey, float] = {}
    for name, family in group.items():
        if not isinstance(family, dict) or not isinstance(family.get("metrics"), list):
            continue
        for metric in family["metrics"]:
            labels = metric.get("labels") or {}
            own = tuple(sorted((k, str(v)) for k, v in labels.items() if k not in GROUP_LABELS))
            try:
                samples[(name, own)] = float(metric["value"])
            except (KeyError, TypeError, ValueError):
                continue  # a histogram or summary: none of ours
    return samples


def _counter_samples(summary: PassSummary) -> dict[str, dict[tuple[str, ...], float]]:
    """The run's own counts for every counter, by label values."""
    live = {} if summary.dry_run else summary.actions
    dry = summary.actions if summary.dry_run else {}
    outcome = "succeeded" if summary.succeeded else "failed"
    return {
        RUNS.name: _all(RUN_OUTCOMES, {outcome: 1}),
        PRS_PROCESSED.name: {(): summary.prs_processed},
        ACTIONS_TAKEN.name: _all(ACTIONS, live),
        DRY_RUN_ACTIONS.name: _all(ACTIONS, dry),
        ERRORS.name: _all(ERROR_TYPES, summary.errors),
        GUARDRAIL_BLOCKS.name: {(k,): v for k, v in summary.guardrail_blocks.items()},
        FALLBACKS.name: {(): summary.fallbacks},
        AI_CALLS.name: {(): summary.ai_calls},
        AI_TOKENS.name: _all(TOKEN_KINDS, summary.ai_tokens),
        DECISIONS_REUSED.name: {(): summary.decisions_reused},
        GITHUB_REQUESTS.name: {(): summary.github_requests},
        WRITES_DEFERRED.name: _all(DEFERRALS, summary.writes_deferred),
        ARGOCD_ERRORS.name: _all(ARGOCD_ERROR_KINDS, summary.argocd_errors),
        **_shadow_samples(summary),
    }


def _shadow_samples(summary: PassSummary) -> dict[str, dict[tuple[str, ...], float]]:
    """A shadow run's counters; none for an enforcing rule's run (no empty shadow series)."""
    shadow = summary.shadow_decided or summary.shadow_settled or summary.shadow_agreed
    if not shadow:
        return {SHADOW_DECISIONS.name: {}, SHADOW_SETTLED.name: {}, SHADOW_AGREED.name: {}}
    settled = {
        tuple(key.split(":", 1)): float(summary.shadow_settled.get(key, 0))
        for key in SHADOW_OUTCOMES
    }
    return {
        SHADOW_DECISIONS.name: _all(ACTIONS, summary.shadow_decided),
        SHADOW_SETTLED.name: settled,
        SHADOW_AGREED.name: _all(ACTIONS, summary.shadow_agreed),
    }


def _added(
    spec: MetricSpec,
    current: Mapping[tuple[str, ...], float],
    previous: Mapping[SampleKey, float],
) -> list[tuple[tuple[str, ...], float]]:
    """The run's counts plus the previous values, over the union of both label sets."""
    totals = dict(current)
    for (name, labels), value in previous.items():
        if name != spec.name or tuple(k for k, _ in labels) != tuple(sorted(spec.labels)):
            continue
        by_name = dict(labels)
        label_values = tuple(by_name[label] for label in spec.labels)
        totals[label_values] = totals.get(label_values, 0) + value
    return sorted(totals.items())


def _gauge_families(summary: PassSummary, previous: Mapping[SampleKey, float]) -> list[Metric]:
    last_success = (
        summary.finished_at if summary.succeeded else previous.get((LAST_SUCCESS.name, ()))
    )
    outcomes = (
        {"dry_run": sum(summary.actions.values())} if summary.dry_run else dict(summary.actions)
    )
    outcomes["failed"] = summary.failed_prs
    families = [
        _family(RULES, [((), 1)]),
        _family(RUN_DURATION, [((), summary.duration_seconds)]),
        _family(RUN_SUCCESS, [((), 1 if summary.succeeded else 0)]),
        _family(RUN_DRY, [((), 1 if summary.dry_run else 0)]),
        _family(LAST_RUN, [((), summary.finished_at)]),
        _family(LAST_RUN_PRS, sorted(_all(PR_OUTCOMES, outcomes).items())),
        _family(LAST_RUN_ERRORS, sorted(_all(ERROR_TYPES, summary.errors).items())),
        _family(LAST_RUN_AI_CALLS, [((), summary.ai_calls)]),
        _family(LAST_RUN_AI_TOKENS, sorted(_all(TOKEN_KINDS, summary.ai_tokens).items())),
        _family(LAST_RUN_REUSED, [((), summary.decisions_reused)]),
        _family(LAST_RUN_DEFERRED, sorted(_all(DEFERRALS, summary.writes_deferred).items())),
    ]
    optional = [
        (LAST_SUCCESS, last_success),
        (RULE_INTERVAL, summary.interval_seconds),
        (GITHUB_RATE_LIMIT, summary.github_rate_limit_remaining),
    ]
    families += [_family(spec, [((), value)]) for spec, value in optional if value is not None]
    return families


class _FixedCollector(Collector):
    """A collector that yields metric families computed beforehand."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        """Yield the families given at construction."""
        return iter(self._families)


def _push(
    gateway_url: str,
    job: str,
    key: dict[str, str],
    families: list[Metric],
    timeout: float,
) -> str | None:
    """PUT one group into a fresh registry's worth of families; the error text, or None."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FixedCollector(families))
    try:
        push_to_gateway(gateway_url, job=job, registry=registry, grouping_key=key, timeout=timeout)
    except (OSError, ValueError, HTTPException) as exc:
        return _describe(exc, gateway_url)
    return None


def _family(spec: MetricSpec, samples: Iterable[tuple[tuple[str, ...], float]]) -> Metric:
    """Build a metric family of ``spec`` holding ``samples`` (label values, value)."""
    family: CounterMetricFamily | GaugeMetricFamily
    if spec.kind == "counter":
        family = CounterMetricFamily(spec.name, spec.documentation, labels=spec.labels)
    else:
        family = GaugeMetricFamily(spec.name, spec.documentation, labels=spec.labels)
    for label_values, value in samples:
        family.add_metric(list(label_values), value)
    return family


def _all(names: tuple[str, ...], counts: Mapping[str, float]) -> dict[tuple[str, ...], float]:
    """One sample per declared label value, 0 where ``counts`` has none.

    A counter's series then exists before its first increment, so ``increase()`` sees that one.
    """
    return {(name,): counts.get(name, 0) for name in names}


def _check_keys(what: str, counts: Mapping[str, int], allowed: tuple[str, ...]) -> None:
    """Reject label values outside a fixed label set."""
    unknown = sorted(set(counts) - set(allowed))
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown} (allowed: {list(allowed)})")


def _base_url(gateway_url: str) -> str:
    """The gateway's base URL with a scheme, as ``prometheus_client`` completes it."""
    url = gateway_url if "://" in gateway_url else f"http://{gateway_url}"
    return url.rstrip("/")


def _describe(exc: Exception, gateway_url: str) -> str:
    """Describe a gateway error for operators, with any password of the URL masked."""
    text = f"{type(exc).__name__}: {exc}"
    try:
        password = urlsplit(_base_url(gateway_url)).password
    except ValueError:
        password = None
    return text.replace(password, "[REDACTED]") if password else text


def list_groups(gateway_url: str, timeout: float = 5.0) -> list[dict[str, str]]:
    """The grouping labels (``job`` included) of every group the gateway holds.

    Raises :class:`GatewayError`.
    """
    return [
        {str(k): str(v) for k, v in group["labels"].items()}
        for group in _gateway_groups(gateway_url, timeout)
        if isinstance(group, dict) and isinstance(group.get("labels"), dict)
    ]


def _gateway_groups(gateway_url: str, timeout: float) -> list[Any]:
    """The ``data`` list of the gateway's ``/api/v1/metrics`` (raises :class:`GatewayError`)."""
    url = f"{_base_url(gateway_url)}/api/v1/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - configured
            body = json.load(answer)
    except (OSError, ValueError, HTTPException) as exc:
        raise GatewayError(_describe(exc, gateway_url)) from exc
    groups = body.get("data") if isinstance(body, dict) else None
    if not isinstance(groups, list):
        raise GatewayError("the gateway's answer holds no list of groups")
    return groups
