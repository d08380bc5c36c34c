"""Run metrics: counters that hold across runs, pushed to Debian's real Pushgateway."""

from __future__ import annotations

import dataclasses
import http.server
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping

import pytest
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from prometheus_client.parser import text_string_to_metric_families

from ai_operator.jobs.clients.metrics import (
    COUNTERS,
    METRICS,
    DeleteOutcome,
    PassSummary,
    PushOutcome,
    delete_rule_groups,
    pass_metric_families,
    push_pass_metrics,
)
from tests import services

NAMESPACE, RULE = "payments", "dependabot-minor"


def make_summary(**overrides: object) -> PassSummary:
    """A successful run of RULE that merged two PRs and let one wait."""
    values: dict[str, object] = {
        "namespace": NAMESPACE,
        "rule": RULE,
        "prs_processed": 3,
        "actions": {"merge": 2, "wait": 1},
        "errors": {"ai": 1},
        "guardrail_blocks": {"checks-not-green": 1},
        "fallbacks": 1,
        "ai_calls": 3,
        "ai_tokens": {"input": 900, "output": 120, "cached": 600},
        "github_requests": 7,
        "github_rate_limit_remaining": 4990,
        "decisions_reused": 1,
        "failed_prs": 0,
        "duration_seconds": 4.25,
        "succeeded": True,
        "finished_at": 1_800_000_000.0,
        "interval_seconds": 300.0,
    }
    values.update(overrides)
    return PassSummary(**values)  # type: ignore[arg-type]


Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


def family_samples(summary: PassSummary, previous: Mapping | None = None) -> Samples:
    """The samples the families of ``summary`` hold, keyed by (name, own labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in pass_metric_families(summary, previous)
        for s in family.samples
    }


def own(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


# --- what one run's families hold -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        pytest.param("ai_operator_runs_total", {"outcome": "succeeded"}, 1, id="one-run"),
        pytest.param("ai_operator_runs_total", {"outcome": "failed"}, 0, id="no-failed-run"),
        pytest.param("ai_operator_prs_processed_total", {}, 3, id="prs-processed"),
        pytest.param("ai_operator_actions_total", {"action": "merge"}, 2, id="merges"),
        pytest.param("ai_operator_actions_total", {"action": "close"}, 0, id="unused-action-0"),
        pytest.param("ai_operator_dry_run_actions_total", {"action": "merge"}, 0, id="no-dry"),
        pytest.param("ai_operator_errors_total", {"type": "ai"}, 1, id="ai-errors"),
        pytest.param("ai_operator_errors_total", {"type": "guardrail"}, 0, id="declared-type-0"),
        pytest.param(
            "ai_operator_guardrail_blocks_total", {"guardrail": "checks-not-green"}, 1, id="block"
        ),
        pytest.param("ai_operator_ai_calls_total", {}, 3, id="ai-calls"),
        pytest.param("ai_operator_ai_tokens_total", {"kind": "cached"}, 600, id="cached-tokens"),
        pytest.param("ai_operator_decisions_reused_total", {}, 1, id="reused"),
        pytest.param("ai_operator_github_requests_total", {}, 7, id="github-requests"),
        pytest.param("ai_operator_rules_total", {}, 1, id="earlier-rules-gauge"),
        pytest.param("ai_operator_run_duration_seconds", {}, 4.25, id="duration"),
        pytest.param("ai_operator_run_success", {}, 1, id="success-flag"),
        pytest.param("ai_operator_run_dry_run", {}, 0, id="not-a-dry-run"),
        pytest.param("ai_operator_last_run_timestamp_seconds", {}, 1.8e9, id="last-run"),
        pytest.param("ai_operator_last_success_timestamp_seconds", {}, 1.8e9, id="last-success"),
        pytest.param("ai_operator_rule_interval_seconds", {}, 300, id="interval"),
        pytest.param(
            "ai_operator_last_run_pull_requests", {"outcome": "merge"}, 2, id="by-outcome"
        ),
        pytest.param("ai_operator_last_run_ai_tokens", {"kind": "input"}, 900, id="run-tokens"),
        pytest.param("ai_operator_github_rate_limit_remaining", {}, 4990, id="rate-limit"),
    ],
)
def test_a_first_run_holds_its_own_counts(name: str, labels: dict[str, str], expected: float):
    """With nothing pushed before, every counter holds this run's count and gauges its values."""
    assert own(family_samples(make_summary()), name, **labels) == expected


def test_counters_add_this_run_to_the_values_read_back():
    """Counters continue from the group read back, over both runs' label values."""
    previous = {
        ("ai_operator_actions_total", (("action", "merge"),)): 5.0,
        ("ai_operator_guardrail_blocks_total", (("guardrail", "draft"),)): 2.0,
        ("ai_operator_ai_tokens_total", (("kind", "input"),)): 100.0,
        ("ai_operator_run_duration_seconds", ()): 99.0,  # a gauge: never added to
    }
    samples = family_samples(make_summary(), previous)
    assert own(samples, "ai_operator_actions_total", action="merge") == 7
    assert own(samples, "ai_operator_guardrail_blocks_total", guardrail="draft") == 2
    assert own(samples, "ai_operator_guardrail_blocks_total", guardrail="checks-not-green") == 1
    assert own(samples, "ai_operator_ai_tokens_total", kind="input") == 1000
    assert own(samples, "ai_operator_run_duration_seconds") == 4.25


def test_a_shadow_run_counts_decisions_settled_by_outcome_and_agreed():
    """Shadow counters carry decided and outcome; they add to what was read back."""
    shadow = make_summary(
        dry_run=True,
        shadow_decided={"merge": 2, "wait": 1},
        shadow_settled={"merge:merged": 1, "merge:closed": 1},
        shadow_agreed={"merge": 1},
    )
    previous = {
        ("ai_operator_shadow_settled_total", (("decided", "merge"), ("outcome", "merged"))): 3.0,
    }
    samples = family_samples(shadow, previous)
    settled = "ai_operator_shadow_settled_total"
    assert own(samples, "ai_operator_shadow_decisions_total", decided="merge") == 2
    assert own(samples, "ai_operator_shadow_decisions_total", decided="close") == 0
    assert own(samples, settled, decided="merge", outcome="merged") == 4
    assert own(samples, settled, decided="merge", outcome="closed") == 1
    assert own(samples, settled, decided="wait", outcome="changed") == 0
    assert own(samples, "ai_operator_shadow_agreed_total", decided="merge") == 1
    assert own(samples, "ai_operator_actions_total", action="merge") == 0


def test_an_enforcing_run_has_no_shadow_series():
    """No shadow counters appear for a rule that never shadowed."""
    names = {name for name, _ in family_samples(make_summary())}
    assert not {n for n in names if n.startswith("ai_operator_shadow_")}


def test_a_dry_run_counts_apart_from_actions():
    """What a dry run would have done never counts as done, and the outcome says dry run."""
    samples = family_samples(make_summary(dry_run=True))
    assert own(samples, "ai_operator_actions_total", action="merge") == 0
    assert own(samples, "ai_operator_dry_run_actions_total", action="merge") == 2
    assert own(samples, "ai_operator_last_run_pull_requests", outcome="dry_run") == 3
    assert own(samples, "ai_operator_last_run_pull_requests", outcome="merge") == 0
    assert own(samples, "ai_operator_run_dry_run") == 1


def test_a_failed_run_keeps_the_last_success_it_read_back():
    """The last-success timestamp outlives failed runs; a rule that never succeeded has none."""
    failed = make_summary(succeeded=False, finished_at=2_000.0)
    previous = {("ai_operator_last_success_timestamp_seconds", ()): 1_000.0}
    assert own(family_samples(failed, previous), "ai_operator_last_success_timestamp_seconds") == (
        1_000.0
    )
    assert own(family_samples(failed), "ai_operator_last_success_timestamp_seconds") is None
    assert own(family_samples(failed), "ai_operator_runs_total", outcome="failed") == 1


@pytest.mark.parametrize(
    ("field", "counts"),
    [
        pytest.param("actions", {"approve": 1}, id="unknown-action"),
        pytest.param("errors", {"network": 1}, id="unknown-error-type"),
        pytest.param("ai_tokens", {"reasoning": 1}, id="unknown-token-kind"),
        pytest.param("shadow_decided", {"approve": 1}, id="unknown-shadow-action"),
        pytest.param("shadow_settled", {"merge:reverted": 1}, id="unknown-shadow-outcome"),
    ],
)
def test_label_values_outside_the_fixed_sets_are_rejected(field: str, counts: dict[str, int]):
    """Actions, error types and token kinds are fixed label sets: other keys are a bug."""
    with pytest.raises(ValueError, match="unknown keys"):
        make_summary(**{field: counts})


def test_summary_is_frozen():
    """A summary is a value: it cannot change after it is built."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_summary().rule = "other"  # type: ignore[misc]


def test_metric_names_follow_prometheus_conventions():
    """Prefixed; ``_total`` only on counters (one gauge kept by name); units in base units."""
    names = {spec.name for spec in METRICS}
    assert {
        "ai_operator_rules_total",
        "ai_operator_prs_processed_total",
        "ai_operator_actions_total",
        "ai_operator_errors_total",
    } <= names, "the earlier design's names keep working"
    assert all(name.startswith("ai_operator_") for name in names)
    assert all(spec.name.endswith("_total") for spec in COUNTERS)
    gauges_named_total = {
        s.name for s in METRICS if s.kind == "gauge" and s.name.endswith("_total")
    }
    assert gauges_named_total == {"ai_operator_rules_total"}
    assert not any(word in name for name in names for word in ("_ms", "milliseconds", "minutes"))
    assert all("number" not in spec.labels and "pr" not in spec.labels for spec in METRICS)


# --- the real Pushgateway ---------------------------------------------------------------------

pushgateway_tests = pytest.mark.services


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with services.pushgateway() as url:
        yield url


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
    """One series of a rule: job, namespace and rule from the group (and the gateway's instance)."""
    key = {"job": "ai-operator", "namespace": NAMESPACE, "rule": rule, "instance": "", **labels}
    return samples.get((name, frozenset(key.items())))


@pushgateway_tests
def test_pushed_series_carry_job_namespace_and_rule(gateway: str):
    """The group's key is {job, namespace, rule}: namespace and rule are labels of their own."""
    rule = "labels"
    assert push_pass_metrics(gateway, make_summary(rule=rule)) == PushOutcome(pushed=True)
    samples = gateway_samples(gateway)
    assert series(samples, "ai_operator_actions_total", rule, action="merge") == 2
    assert series(samples, "ai_operator_last_success_timestamp_seconds", rule) == 1.8e9


@pushgateway_tests
def test_two_runs_add_up_and_a_dry_run_adds_no_action(gateway: str):
    """Counters hold across runs of a rule; a dry run moves only the dry-run counter."""
    rule = "two-runs"
    push_pass_metrics(gateway, make_summary(rule=rule))
    second = make_summary(rule=rule, actions={"close": 4}, guardrail_blocks={}, prs_processed=4)
    assert push_pass_metrics(gateway, second).pushed
    assert push_pass_metrics(gateway, make_summary(rule=rule, dry_run=True)).pushed
    samples = gateway_samples(gateway)
    assert series(samples, "ai_operator_prs_processed_total", rule) == 3 + 4 + 3
    assert series(samples, "ai_operator_actions_total", rule, action="merge") == 2
    assert series(samples, "ai_operator_actions_total", rule, action="close") == 4
    assert series(samples, "ai_operator_dry_run_actions_total", rule, action="merge") == 2
    assert series(samples, "ai_operator_runs_total", rule, outcome="succeeded") == 3
    blocks = series(
        samples, "ai_operator_guardrail_blocks_total", rule, guardrail="checks-not-green"
    )
    assert blocks == 2, "a label value missing from a later run keeps its count"


@pushgateway_tests
def test_rules_count_apart(gateway: str):
    """Two rules of one namespace are two groups; neither adds to the other."""
    push_pass_metrics(gateway, make_summary(rule="apart-a"))
    push_pass_metrics(gateway, make_summary(rule="apart-b", actions={"merge": 5}))
    samples = gateway_samples(gateway)
    assert series(samples, "ai_operator_actions_total", "apart-a", action="merge") == 2
    assert series(samples, "ai_operator_actions_total", "apart-b", action="merge") == 5


@pushgateway_tests
def test_last_success_survives_a_failed_run(gateway: str):
    """A failed run updates the last run and the success flag, not the last success."""
    rule = "flaky"
    push_pass_metrics(gateway, make_summary(rule=rule, finished_at=1_000.0))
    failed = make_summary(rule=rule, succeeded=False, finished_at=2_000.0)
    assert push_pass_metrics(gateway, failed).pushed
    samples = gateway_samples(gateway)
    assert series(samples, "ai_operator_last_success_timestamp_seconds", rule) == 1_000.0
    assert series(samples, "ai_operator_last_run_timestamp_seconds", rule) == 2_000.0
    assert series(samples, "ai_operator_run_success", rule) == 0


@pushgateway_tests
def test_a_lost_group_starts_again_from_the_run(gateway: str):
    """After the gateway lost a group (a restart without persistence), counters start again.

    Prometheus reads the drop as a counter reset, which rate() and increase() handle.
    """
    rule = "restarted"
    push_pass_metrics(gateway, make_summary(rule=rule))
    assert delete_rule_groups(gateway, NAMESPACE, rule) == DeleteOutcome(deleted=True)
    push_pass_metrics(gateway, make_summary(rule=rule, actions={"merge": 1}))
    assert series(gateway_samples(gateway), "ai_operator_actions_total", rule, action="merge") == 1


@pushgateway_tests
def test_a_deleted_rules_groups_are_gone_the_earlier_designs_too(gateway: str):
    """delete_rule_groups removes the rule's group and the two groups the earlier design kept."""
    rule = "deleted"
    push_pass_metrics(gateway, make_summary(rule=rule))
    for key in (
        {"rule": f"{NAMESPACE}/{rule}"},
        {"rule": f"{NAMESPACE}/{rule}", "outcome": "succeeded"},
    ):
        registry = CollectorRegistry()
        Gauge("ai_operator_run_success", "earlier", registry=registry).set(1)
        push_to_gateway(gateway, job="ai-operator", registry=registry, grouping_key=key)
    push_pass_metrics(gateway, make_summary(rule="kept"))

    assert delete_rule_groups(gateway, NAMESPACE, rule).deleted
    samples = gateway_samples(gateway)
    remaining = {dict(labels).get("rule") for _, labels in samples}
    assert rule not in remaining and f"{NAMESPACE}/{rule}" not in remaining
    assert "kept" in remaining


def test_gateway_down_is_an_outcome_not_an_exception():
    """Nobody listening: pushed=False with a reason, at once."""
    started = time.monotonic()
    outcome = push_pass_metrics(f"http://127.0.0.1:{services.free_port()}", make_summary())
    assert not outcome.pushed
    assert outcome.error and "refused" in outcome.error.lower()
    assert time.monotonic() - started < 1.0
    assert not delete_rule_groups(f"http://127.0.0.1:{services.free_port()}", "a", "b").deleted


def test_silent_gateway_times_out_within_the_bound():
    """A gateway that accepts the connection but never answers costs at most the timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        outcome = push_pass_metrics(f"http://127.0.0.1:{port}", make_summary(), timeout=0.3)
    assert not outcome.pushed
    assert outcome.error and "timed out" in outcome.error.lower()
    assert time.monotonic() - started < 1.5


class _NotAGateway(http.server.BaseHTTPRequestHandler):
    """Answers every request 200 with a body that is no group list, and records PUTs."""

    puts: list[str] = []

    def do_GET(self) -> None:
        self._answer(b"<html>a proxy's login page</html>")

    def do_PUT(self) -> None:
        self.puts.append(self.path)
        self._answer(b"")

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_no_push_when_the_previous_values_cannot_be_read():
    """Pushing one run's counts alone would fake a counter reset: nothing is pushed instead."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        outcome = push_pass_metrics(f"http://127.0.0.1:{server.server_address[1]}", make_summary())
    finally:
        server.shutdown()
        server.server_close()
    assert not outcome.pushed
    assert outcome.error and outcome.error.startswith("reading the previous values failed")
    assert _NotAGateway.puts == []


@pushgateway_tests
def test_gateway_error_answer_is_an_outcome(gateway: str):
    """The real gateway refuses an empty job name (400): pushed=False, the status in the reason."""
    outcome = push_pass_metrics(gateway, make_summary(), job="")
    assert not outcome.pushed
    assert outcome.error and "400" in outcome.error
