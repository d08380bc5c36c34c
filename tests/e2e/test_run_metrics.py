"""`ai-operator run` pushes each pass's metrics to a real Pushgateway, and survives one that is down."""

from __future__ import annotations

import urllib.request

import pytest

from tests.conftest import cli_env, run_cli
from tests.fakes.github import FakeCheck
from tests.services import free_port, pushgateway

pytestmark = [pytest.mark.e2e, pytest.mark.services]

RULE = """\
apiVersion: aioperator.io/v1alpha1
kind: PRReconciliationRule
metadata: {name: staging-automerge, namespace: ai-operator-system}
spec:
  repositories: [acme/web]
  selector: {labels: {include: [auto-merge]}}
  instruction: "PR #{{pr.number}} with CI {{pr.ciStatus}}: merge when green."
"""


def metric_lines(gateway: str) -> list[str]:
    with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return [line for line in text.splitlines() if line.startswith("ai_operator_")]


def test_a_pass_pushes_the_seed_metric_names(world, github, llm, tmp_path):
    """Actions, PRs processed and errors arrive grouped by rule, under the earlier design's names."""
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE)
    world.add_pull_request("acme/web", number=1, labels=["auto-merge"])
    world.add_pull_request(
        "acme/web",
        number=2,
        labels=["auto-merge"],
        rollup_state="PENDING",
        checks=[FakeCheck("ci", conclusion=None, status="IN_PROGRESS")],
    )
    with pushgateway() as gateway:
        result = run_cli(["run", str(rule)], cli_env(github, llm, PUSHGATEWAY_URL=gateway))
        lines = metric_lines(gateway)

    assert result.code == 0, result.stderr
    group = 'instance="",job="ai-operator",rule="ai-operator-system/staging-automerge"'
    assert f'ai_operator_actions_total{{action="merge",{group}}} 1' in lines
    assert f'ai_operator_actions_total{{action="wait",{group}}} 1' in lines
    assert f"ai_operator_prs_processed_total{{{group}}} 2" in lines
    assert f"ai_operator_rules_total{{{group}}} 1" in lines
    assert any(line.startswith("ai_operator_errors_total{") for line in lines)


def test_a_pushgateway_that_is_down_does_not_fail_the_pass(world, github, llm, tmp_path):
    """The pass succeeds and a warning is logged when nothing listens at PUSHGATEWAY_URL."""
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE)
    world.add_pull_request("acme/web", number=1, labels=["auto-merge"])
    down = f"http://127.0.0.1:{free_port()}"

    result = run_cli(["run", str(rule)], cli_env(github, llm, PUSHGATEWAY_URL=down))

    assert result.code == 0, result.stderr
    assert "metrics push failed" in result.stderr
    assert world.pull_request("acme/web", 1).state == "MERGED"
