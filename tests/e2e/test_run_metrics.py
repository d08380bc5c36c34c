"""`ai-operator run` pushes its metrics to a real Pushgateway that a real Prometheus scrapes.

Two real runs of two rules, then a dry run: PromQL over what Prometheus scraped answers with what
each run did, per rule and action. One decision is then followed from its metric to its log line
and to its PR comment.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from tests.conftest import CliResult, cli_env, run_cli
from tests.sandbox import FakeCheck, FakeGitHub, FakeLLM, GitHubWorld
from tests.services import free_port, prometheus, pushgateway, query_prometheus, wait_for_series

pytestmark = [pytest.mark.e2e, pytest.mark.services]

RULES = """\
apiVersion: aioperator.io/v1alpha1
kind: PRReconciliationRule
metadata: {name: staging-automerge, namespace: ai-operator-system}
spec:
  repositories: [acme/web]
  selector: {labels: {include: [auto-merge]}}
  instruction: "PR #{{pr.number}} with CI {{pr.ciStatus}}: merge when green."
---
apiVersion: aioperator.io/v1alpha1
kind: PRReconciliationRule
metadata: {name: api-cleanup, namespace: team-api}
spec:
  repositories: [acme/api]
  selector: {labels: {include: [auto-merge]}}
  instruction: "PR #{{pr.number}} with CI {{pr.ciStatus}}: merge when green, close abandoned."
"""
WEB = {"namespace": "ai-operator-system", "rule": "staging-automerge"}
API = {"namespace": "team-api", "rule": "api-cleanup"}
COVERED = ["auto-merge"]
SCRAPED_WITHIN = 30.0


def pending() -> dict[str, Any]:
    return {"rollup_state": "PENDING", "checks": [FakeCheck("ci", None, "IN_PROGRESS")]}


def failing() -> dict[str, Any]:
    return {"rollup_state": "FAILURE", "checks": [FakeCheck("ci", conclusion="FAILURE")]}


def selector(labels: dict[str, str], **more: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in {**labels, **more}.items()) + "}"


def value(prom: str, promql: str) -> float:
    """The single value of an instant query (0 when it returns nothing)."""
    result = query_prometheus(prom, promql)
    assert len(result) <= 1, f"{promql} returned {len(result)} series"
    return float(result[0]["value"][1]) if result else 0.0


def wait_for_value(prom: str, promql: str, expected: float) -> float:
    """Poll until Prometheus has scraped ``expected``; return the time it was seen."""
    deadline = time.monotonic() + SCRAPED_WITHIN
    while time.monotonic() < deadline:
        if value(prom, promql) == expected:
            return time.time()
        time.sleep(0.25)
    raise AssertionError(f"{promql} did not reach {expected}: {value(prom, promql)}")


def per_rule_and_action(prom: str, template: str) -> dict[tuple[str, str], float]:
    """``template`` with ``{series}`` as each rule's and action's counter, queried."""
    return {
        (rule["rule"], action): value(
            prom,
            template.format(series=f"ai_operator_actions_total{selector(rule, action=action)}"),
        )
        for rule in (WEB, API)
        for action in ("merge", "wait", "close", "escalate")
    }


def run(args: list[str], github: FakeGitHub, llm: FakeLLM, gateway: str, cache: str) -> CliResult:
    env = cli_env(github, llm, PUSHGATEWAY_URL=gateway, XDG_CACHE_HOME=cache)
    result = run_cli(["run", *args], env)
    assert result.code == 0, result.stderr
    assert result.stderr.count("metrics pushed") == 2, result.stderr
    return result


def test_prometheus_counts_two_runs_per_rule_and_action_and_no_dry_run_action(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path
):
    """After two runs the counters equal both runs' sums; their difference equals the second run.

    A third, dry run adds nothing to ai_operator_actions_total: only to the dry-run counter. A PR
    that waits in both runs is counted once: the second run reuses the decision, which changed
    nothing, and the first run counted it.
    """
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    world.add_pull_request("acme/web", number=1, labels=COVERED)  # merge
    world.add_pull_request("acme/web", number=2, labels=COVERED, **pending())  # wait, counted once
    world.add_pull_request("acme/api", number=1, title="[close] Abandoned", labels=COVERED)

    with pushgateway() as gateway, prometheus(f"{gateway}/metrics") as prom:
        actions = "ai_operator_actions_total"
        run([str(rules)], github, llm, gateway, str(tmp_path))
        wait_for_series(prom, f"{actions}{selector(API, action='close')}", SCRAPED_WITHIN)
        after_first = wait_for_value(prom, f"{actions}{selector(WEB, action='merge')}", 1)

        world.add_pull_request("acme/web", number=3, labels=COVERED)  # merge
        world.add_pull_request("acme/api", number=2, labels=COVERED)  # merge
        run([str(rules)], github, llm, gateway, str(tmp_path))
        wait_for_value(prom, f"{actions}{selector(WEB, action='merge')}", 2)
        wait_for_value(prom, f"{actions}{selector(API, action='merge')}", 1)

        totals = per_rule_and_action(prom, "{series}")
        second_run = per_rule_and_action(prom, f"{{series}} - {{series}} @ {after_first:.3f}")
        increase = value(prom, f"round(increase({actions}{selector(API, action='merge')}[10m]))")
        processed = value(prom, f"ai_operator_prs_processed_total{selector(WEB)}")

        world.add_pull_request("acme/web", number=4, labels=COVERED)  # would merge
        run(["--dry-run", str(rules)], github, llm, gateway, str(tmp_path))
        wait_for_value(prom, f"ai_operator_runs_total{selector(WEB, outcome='succeeded')}", 3)
        after_dry = per_rule_and_action(prom, "{series}")
        dry = value(prom, f"ai_operator_dry_run_actions_total{selector(WEB, action='merge')}")
        dry_flag = value(prom, f"ai_operator_run_dry_run{selector(WEB)}")

    assert totals == {
        ("staging-automerge", "merge"): 2,
        ("staging-automerge", "wait"): 1,
        ("staging-automerge", "close"): 0,
        ("staging-automerge", "escalate"): 0,
        ("api-cleanup", "merge"): 1,
        ("api-cleanup", "wait"): 0,
        ("api-cleanup", "close"): 1,
        ("api-cleanup", "escalate"): 0,
    }
    assert second_run == {
        ("staging-automerge", "merge"): 1,
        ("staging-automerge", "wait"): 0,
        ("staging-automerge", "close"): 0,
        ("staging-automerge", "escalate"): 0,
        ("api-cleanup", "merge"): 1,
        ("api-cleanup", "wait"): 0,
        ("api-cleanup", "close"): 0,
        ("api-cleanup", "escalate"): 0,
    }
    assert increase == 1, "increase() sees the second run's merge (every series starts at 0)"
    assert processed == 2 + 2
    assert after_dry == totals, "a dry run adds nothing to the action counters"
    assert dry == 1 and dry_flag == 1
    assert world.pull_request("acme/web", 4).state == "OPEN"


def decision_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "decision"]


def gateway_lines(gateway: str) -> list[str]:
    with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as answer:
        return answer.read().decode().splitlines()


def test_a_decision_is_traced_from_its_metric_to_its_log_line_to_its_pr_comment(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path
):
    """The escalation counted by the metric is the decision line's, whose marker the comment has.

    The decision line is written at LOG_LEVEL=WARNING too, with the model's calls and tokens.
    """
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.split("---", maxsplit=1)[0])
    world.add_pull_request("acme/web", number=7, title="Raise limits", labels=COVERED, **failing())

    with pushgateway() as gateway:
        result = run_cli(
            ["run", str(rules)],
            cli_env(
                github,
                llm,
                PUSHGATEWAY_URL=gateway,
                LOG_LEVEL="WARNING",
                XDG_CACHE_HOME=str(tmp_path),
            ),
        )
        metrics = gateway_lines(gateway)

    assert result.code == 0, result.stderr
    group = 'instance="",job="ai-operator",namespace="ai-operator-system",rule="staging-automerge"'
    assert f'ai_operator_actions_total{{action="escalate",{group}}} 1' in metrics
    [line] = decision_lines(result.stderr)
    assert line["level"] == "info"
    assert (line["rule"], line["repository"], line["number"]) == (
        "ai-operator-system/staging-automerge",
        "acme/web",
        7,
    )
    assert (line["proposed"], line["action"], line["model"]) == ("escalate", "escalate", "asked")
    assert line["model_calls"] == 1 and line["input_tokens"] > 0 and line["output_tokens"] > 0
    assert "label" in " ".join(line["applied"]) and "comment" in line["applied"]
    pr = world.pull_request("acme/web", 7)
    assert line["head"] == pr.head_oid
    assert (
        line["marker"]
        == f"rule=ai-operator-system/staging-automerge action=escalate head={pr.head_oid}"
    )
    [comment] = pr.comments
    assert f"<!-- ai-operator:{line['marker']} -->" in comment.body
    assert "metrics pushed" not in result.stderr, "INFO lines other than decisions stay quiet"
    input_tokens = group.replace('job="ai-operator",', 'job="ai-operator",kind="input",')
    assert f"ai_operator_ai_tokens_total{{{input_tokens}}} {line['input_tokens']}" in metrics


def test_a_pushgateway_that_is_down_does_not_fail_the_pass(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path
):
    """The pass succeeds and a warning is logged when nothing listens at PUSHGATEWAY_URL."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.split("---", maxsplit=1)[0])
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    down = f"http://127.0.0.1:{free_port()}"

    env = cli_env(github, llm, PUSHGATEWAY_URL=down, XDG_CACHE_HOME=str(tmp_path))
    result = run_cli(["run", str(rules)], env)

    assert result.code == 0, result.stderr
    assert "metrics push failed" in result.stderr
    assert world.pull_request("acme/web", 1).state == "MERGED"
