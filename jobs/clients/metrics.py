"""Metrics of a rule's pass, pushed to a Prometheus Pushgateway.

This is the only module that imports ``prometheus_client``. Every metric is declared once, in
:data:`METRICS`, with a fixed label set; :func:`pass_metric_families` maps a :class:`PassSummary`
(data built by the caller) onto them, and :func:`push_pass_metrics` pushes them.

A batch run pushes once per pass, so the Pushgateway shows the *last* pass of each rule:

- Counters (``*_total``) hold that pass's own counts, not a running total; ``increase()`` over
  them means nothing. Compare passes with ``ai_operator_last_run_timestamp_seconds``.
- The pass group, grouping key ``{job, rule}``, is replaced with ``push_to_gateway`` (HTTP PUT):
  series of an earlier pass (an action or guardrail no longer seen) disappear.
- ``ai_operator_last_success_timestamp_seconds`` must outlive a failed pass, which a PUT of the
  pass group would erase. It lives in its own group, ``{job, rule, outcome="succeeded"}``, that
  only a successful pass replaces. Alert on ``time() - ai_operator_last_success_timestamp_seconds``.

The ``rule`` label is ``namespace/name``; ``prometheus_client`` sends grouping-key values that
contain ``/`` base64-encoded, as the Pushgateway expects.

Pushing never raises because of the gateway (down, slow, answering an error): the result is a
:class:`PushOutcome` for the caller to log. The gateway URL must carry no credentials.
It must not read the wall clock (``finished_at`` is passed in), the environment, or the
process-wide ``prometheus_client`` registry: each push builds a fresh ``CollectorRegistry``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from typing import Literal
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobs.rules.model import Action

ERROR_TYPES: tuple[str, ...] = ("github", "ai", "kubernetes")
ACTIONS: tuple[str, ...] = tuple(action.value for action in Action)
SUCCESS_GROUP_LABEL = ("outcome", "succeeded")

MetricKind = Literal["counter", "gauge"]


@dataclass(frozen=True)
class MetricSpec:
    """One declared metric: its exposition name, type, help text and label names."""

    name: str
    kind: MetricKind
    documentation: str
    labels: tuple[str, ...] = ()


RULES = MetricSpec("ai_operator_rules_total", "gauge", "Rules in this push: 1 for one rule's pass.")
PRS_PROCESSED = MetricSpec(
    "ai_operator_prs_processed_total", "counter", "Pull requests the last pass looked at."
)
ACTIONS_TAKEN = MetricSpec(
    "ai_operator_actions_total",
    "counter",
    "Actions of the last pass, per action (every action is present, 0 when unused).",
    ("action",),
)
ERRORS = MetricSpec(
    "ai_operator_errors_total",
    "counter",
    "Errors of the last pass, per boundary (github, ai, kubernetes; 0 when none).",
    ("type",),
)
GUARDRAIL_BLOCKS = MetricSpec(
    "ai_operator_guardrail_blocks_total",
    "counter",
    "Verdicts a guardrail turned into a safer action in the last pass, per guardrail.",
    ("guardrail",),
)
FALLBACKS = MetricSpec(
    "ai_operator_fallbacks_total",
    "counter",
    "Pull requests given the rule's fallback action (no usable AI verdict) in the last pass.",
)
AI_CALLS = MetricSpec("ai_operator_ai_calls_total", "counter", "AI requests of the last pass.")
GITHUB_REQUESTS = MetricSpec(
    "ai_operator_github_requests_total", "counter", "GitHub API requests of the last pass."
)
RUN_DURATION = MetricSpec(
    "ai_operator_run_duration_seconds", "gauge", "Wall-clock duration of the last pass."
)
RUN_SUCCESS = MetricSpec(
    "ai_operator_run_success", "gauge", "1 when the last pass succeeded, 0 when it failed."
)
LAST_RUN = MetricSpec(
    "ai_operator_last_run_timestamp_seconds",
    "gauge",
    "Unix time the last pass finished, whatever its outcome.",
)
LAST_SUCCESS = MetricSpec(
    "ai_operator_last_success_timestamp_seconds",
    "gauge",
    "Unix time the last successful pass finished (kept across failed passes).",
)

METRICS: tuple[MetricSpec, ...] = (
    RULES,
    PRS_PROCESSED,
    ACTIONS_TAKEN,
    ERRORS,
    GUARDRAIL_BLOCKS,
    FALLBACKS,
    AI_CALLS,
    GITHUB_REQUESTS,
    RUN_DURATION,
    RUN_SUCCESS,
    LAST_RUN,
    LAST_SUCCESS,
)


@dataclass(frozen=True)
class PassSummary:
    """What one pass of one rule did, built by the caller from its results.

    ``actions`` keys are :class:`~jobs.rules.model.Action` values and ``errors`` keys are
    :data:`ERROR_TYPES`; anything else is a programming error (``ValueError``).
    """

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

    def __post_init__(self) -> None:
        _check_keys("actions", self.actions, ACTIONS)
        _check_keys("errors", self.errors, ERROR_TYPES)
        if not self.rule:
            raise ValueError("rule must be 'namespace/name', not empty")


@dataclass(frozen=True)
class PushOutcome:
    """Whether the pass's metrics reached the gateway; ``error`` says why not."""

    pushed: bool
    error: str | None = None


def pass_metric_families(summary: PassSummary) -> list[Metric]:
    """Return the pass group's metric families (all but the last-success timestamp)."""
    return [
        _family(RULES, [((), 1)]),
        _family(PRS_PROCESSED, [((), summary.prs_processed)]),
        _family(ACTIONS_TAKEN, _with_all(ACTIONS, summary.actions)),
        _family(ERRORS, _with_all(ERROR_TYPES, summary.errors)),
        _family(GUARDRAIL_BLOCKS, [((k,), v) for k, v in sorted(summary.guardrail_blocks.items())]),
        _family(FALLBACKS, [((), summary.fallbacks)]),
        _family(AI_CALLS, [((), summary.ai_calls)]),
        _family(GITHUB_REQUESTS, [((), summary.github_requests)]),
        _family(RUN_DURATION, [((), summary.duration_seconds)]),
        _family(RUN_SUCCESS, [((), 1 if summary.succeeded else 0)]),
        _family(LAST_RUN, [((), summary.finished_at)]),
    ]


def success_metric_families(summary: PassSummary) -> list[Metric]:
    """Return the success group's families: the timestamp, or none for a failed pass."""
    if not summary.succeeded:
        return []
    return [_family(LAST_SUCCESS, [((), summary.finished_at)])]


def push_pass_metrics(
    gateway_url: str, summary: PassSummary, *, job: str = "ai-operator", timeout: float = 5.0
) -> PushOutcome:
    """Push one pass's metrics; never raises for gateway trouble; both requests share ``timeout``.

    First the pass group ``{job, rule}`` is replaced (PUT); then, for a successful pass only,
    the success group ``{job, rule, outcome="succeeded"}``. A failure of the first push skips
    the second.
    """
    deadline = time.monotonic() + timeout
    pushes = [
        ({"rule": summary.rule}, pass_metric_families(summary)),
        (_success_grouping_key(summary.rule), success_metric_families(summary)),
    ]
    for grouping_key, families in pushes:
        if not families:
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return PushOutcome(pushed=False, error=f"timed out after {timeout} s")
        error = _push(gateway_url, job, grouping_key, families, remaining)
        if error is not None:
            return PushOutcome(pushed=False, error=error)
    return PushOutcome(pushed=True)


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
    grouping_key: dict[str, str],
    families: list[Metric],
    timeout: float,
) -> str | None:
    """PUT one group into a fresh registry's worth of families; the error text, or None."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FixedCollector(families))
    try:
        push_to_gateway(
            gateway_url, job=job, registry=registry, grouping_key=grouping_key, timeout=timeout
        )
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


def _with_all(names: tuple[str, ...], counts: Mapping[str, int]) -> list[tuple[tuple[str], int]]:
    """One sample per declared label value, 0 where ``counts`` has none."""
    return [((name,), counts.get(name, 0)) for name in names]


def _check_keys(what: str, counts: Mapping[str, int], allowed: tuple[str, ...]) -> None:
    """Reject label values outside a fixed label set."""
    unknown = sorted(set(counts) - set(allowed))
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown} (allowed: {list(allowed)})")


def _success_grouping_key(rule: str) -> dict[str, str]:
    """Return the grouping key (besides ``job``) of a rule's last-success group."""
    label, value = SUCCESS_GROUP_LABEL
    return {"rule": rule, label: value}


def _describe(exc: Exception, gateway_url: str) -> str:
    """Describe a push error for operators, with any password of the URL masked."""
    text = f"{type(exc).__name__}: {exc}"
    try:
        password = urlsplit(
            gateway_url if "://" in gateway_url else f"http://{gateway_url}"
        ).password
    except ValueError:
        password = None
    return text.replace(password, "[REDACTED]") if password else text
