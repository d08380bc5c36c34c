"""Pass metrics, pushed to Debian's real Pushgateway (and, once, scraped by real Prometheus)."""

from __future__ import annotations

import dataclasses
import socket
import time
import urllib.request
from collections.abc import Iterator, Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobs.clients.metrics import METRICS, PassSummary, PushOutcome, push_pass_metrics
from tests import services

pytestmark = pytest.mark.services

RULE = "payments/dependabot-minor"


def make_summary(**overrides: object) -> PassSummary:
    """A successful pass of RULE that merged two PRs and let one wait."""
    values: dict[str, object] = {
        "rule": RULE,
        "prs_processed": 3,
        "actions": {"merge": 2, "wait": 1},
        "errors": {"ai": 1},
        "guardrail_blocks": {"checks-not-green": 1},
        "fallbacks": 1,
        "ai_calls": 3,
        "github_requests": 7,
        "duration_seconds": 4.25,
        "succeeded": True,
        "finished_at": 1_800_000_000.0,
    }
    values.update(overrides)
    return PassSummary(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with services.pushgateway() as url:
        yield url


Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


def gateway_samples(url: str) -> Samples:
    """Every sample the gateway exposes, keyed by (name, labels)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def series(samples: Samples, name: str, rule: str = RULE, **labels: str) -> float | None:
    """One series of a rule under job ai-operator (with the instance="" the gateway adds)."""
    key = {"job": "ai-operator", "rule": rule, "instance": "", **labels}
    return samples.get((name, frozenset(key.items())))


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        pytest.param("ai_operator_rules_total", {}, 1, id="rules-one-per-pass"),
        pytest.param("ai_operator_prs_processed_total", {}, 3, id="prs-processed"),
        pytest.param("ai_operator_actions_total", {"action": "merge"}, 2, id="merges"),
        pytest.param("ai_operator_actions_total", {"action": "wait"}, 1, id="waits"),
        pytest.param("ai_operator_actions_total", {"action": "close"}, 0, id="unused-action-is-0"),
        pytest.param("ai_operator_errors_total", {"type": "ai"}, 1, id="ai-errors"),
        pytest.param(
            "ai_operator_errors_total", {"type": "kubernetes"}, 0, id="no-k8s-errors-is-0"
        ),
        pytest.param(
            "ai_operator_guardrail_blocks_total",
            {"guardrail": "checks-not-green"},
            1,
            id="guardrail-block",
        ),
        pytest.param("ai_operator_fallbacks_total", {}, 1, id="fallbacks"),
        pytest.param("ai_operator_ai_calls_total", {}, 3, id="ai-calls"),
        pytest.param("ai_operator_github_requests_total", {}, 7, id="github-requests"),
        pytest.param("ai_operator_run_duration_seconds", {}, 4.25, id="duration"),
        pytest.param("ai_operator_run_success", {}, 1, id="success-flag"),
        pytest.param("ai_operator_last_run_timestamp_seconds", {}, 1.8e9, id="last-run"),
        pytest.param(
            "ai_operator_last_success_timestamp_seconds",
            {"outcome": "succeeded"},
            1.8e9,
            id="last-success-in-own-group",
        ),
    ],
)
def test_pushed_series_carry_job_and_rule_labels(
    gateway: str, name: str, labels: dict[str, str], expected: float
) -> None:
    """A pushed pass appears on the gateway under {job, rule="namespace/name"} with its values."""
    assert push_pass_metrics(gateway, make_summary()) == PushOutcome(pushed=True)
    assert series(gateway_samples(gateway), name, **labels) == expected


def test_second_push_replaces_the_first(gateway: str) -> None:
    """The gateway shows the last pass only: changed values, and vanished series are gone."""
    rule = "ns/replaced"
    push_pass_metrics(gateway, make_summary(rule=rule))
    second = make_summary(
        rule=rule, actions={"close": 4}, guardrail_blocks={}, prs_processed=4, finished_at=1.9e9
    )
    assert push_pass_metrics(gateway, second).pushed
    samples = gateway_samples(gateway)
    assert series(samples, "ai_operator_prs_processed_total", rule) == 4
    assert series(samples, "ai_operator_actions_total", rule, action="close") == 4
    assert series(samples, "ai_operator_actions_total", rule, action="merge") == 0
    blocks = series(
        samples, "ai_operator_guardrail_blocks_total", rule, guardrail="checks-not-green"
    )
    assert blocks is None
    assert series(samples, "ai_operator_last_run_timestamp_seconds", rule) == 1.9e9


def test_last_success_survives_a_failed_pass(gateway: str) -> None:
    """A failed pass updates the last run and the success flag, not the last success."""
    rule = "ns/flaky"
    push_pass_metrics(gateway, make_summary(rule=rule, finished_at=1_000.0))
    failed = make_summary(rule=rule, succeeded=False, finished_at=2_000.0)
    assert push_pass_metrics(gateway, failed).pushed
    samples = gateway_samples(gateway)
    last_success = "ai_operator_last_success_timestamp_seconds"
    assert series(samples, last_success, rule, outcome="succeeded") == 1_000.0
    assert series(samples, "ai_operator_last_run_timestamp_seconds", rule) == 2_000.0
    assert series(samples, "ai_operator_run_success", rule) == 0


def test_gateway_down_is_an_outcome_not_an_exception() -> None:
    """Nobody listening: pushed=False with a reason, at once."""
    started = time.monotonic()
    outcome = push_pass_metrics(f"http://127.0.0.1:{services.free_port()}", make_summary())
    assert not outcome.pushed
    assert outcome.error
    assert "refused" in outcome.error.lower()
    assert time.monotonic() - started < 1.0


def test_silent_gateway_times_out_within_the_bound() -> None:
    """A gateway that accepts the connection but never answers costs at most the timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        outcome = push_pass_metrics(f"http://127.0.0.1:{port}", make_summary(), timeout=0.3)
    assert not outcome.pushed
    assert outcome.error
    assert "timed out" in outcome.error.lower()
    assert time.monotonic() - started < 1.5


def test_gateway_error_answer_is_an_outcome(gateway: str) -> None:
    """The real gateway refuses an empty job name (400): pushed=False, the status in the reason."""
    outcome = push_pass_metrics(gateway, make_summary(), job="")
    assert not outcome.pushed
    assert outcome.error
    assert "400" in outcome.error


@pytest.mark.parametrize(
    ("field", "counts"),
    [
        pytest.param("actions", {"approve": 1}, id="unknown-action"),
        pytest.param("errors", {"network": 1}, id="unknown-error-type"),
    ],
)
def test_label_values_outside_the_fixed_sets_are_rejected(
    field: str, counts: dict[str, int]
) -> None:
    """Actions and error types are fixed label sets: other keys are a programming error."""
    with pytest.raises(ValueError, match="unknown keys"):
        make_summary(**{field: counts})


def test_summary_is_frozen() -> None:
    """A summary is a value: it cannot change after it is built."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_summary().rule = "other/rule"  # type: ignore[misc]


def test_earlier_metric_names_are_still_declared() -> None:
    """Dashboards of the earlier design keep working; every metric carries the prefix."""
    names = {spec.name for spec in METRICS}
    assert {
        "ai_operator_rules_total",
        "ai_operator_prs_processed_total",
        "ai_operator_actions_total",
        "ai_operator_errors_total",
    } <= names
    assert all(name.startswith("ai_operator_") for name in names)


def test_prometheus_scrapes_the_pushed_pass() -> None:
    """End to end: real Prometheus scraping the gateway (honor_labels) sees the rule's actions."""
    with services.pushgateway() as gateway, services.prometheus(f"{gateway}/metrics") as prom:
        assert push_pass_metrics(gateway, make_summary()).pushed
        result = services.wait_for_series(
            prom, f'ai_operator_actions_total{{rule="{RULE}",action="merge"}}', deadline_seconds=20
        )
    assert result[0]["metric"]["job"] == "ai-operator"
    assert float(result[0]["value"][1]) == 2
