"""The compiled pipeline at scale: 200 PRs in one run, every decision applied, nothing oversized.

Run by :mod:`tests.argo_interpreter` with the end-to-end tests' forked pods (the same
``ai-operator step`` commands and environments, a fraction of a subprocess's start-up), so that
hundreds of pods fit in a test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.compile import CompileOptions, compile_rule
from tests.argo_interpreter import (
    CONFIG_MAP_DATA_LIMIT,
    MAX_ARG_STRLEN,
    MemoCache,
    WorkflowRun,
    run_cron_workflow,
)
from tests.conftest import AI_TOKEN, GITHUB_TOKEN
from tests.e2e.test_pipeline import (
    SECRETS,
    STAGING,
    assert_clean,
    example,
    gateway_series,
    pod_env,
)
from tests.sandbox import FakeCheck, FakeGitHub, FakeLLM, GitHubWorld
from tests.services import pushgateway

pytestmark = pytest.mark.e2e

PRS = 200
REPOSITORIES = ("acme/web", "acme/api", "acme/db", "acme/ops")
SITUATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("merge", {}),
    ("wait", {"rollup_state": "PENDING", "checks": [FakeCheck("ci", None, "IN_PROGRESS")]}),
    ("escalate", {"rollup_state": "FAILURE", "checks": [FakeCheck("ci", conclusion="FAILURE")]}),
    ("escalate", {"mergeable": "CONFLICTING", "merge_state_status": "DIRTY"}),
    ("close", {"title": "[close] Obsolete experiment"}),
)


def expected_action(index: int) -> str:
    return SITUATIONS[index % len(SITUATIONS)][0]


def populate(world: GitHubWorld) -> None:
    """PRS covered PRs over four repositories, each situation in turn."""
    for repository in REPOSITORIES:
        world.add_repository(repository, labels=[*STAGING, "needs-human-approval"])
    for index in range(PRS):
        facts = {"title": f"Change {index}"} | SITUATIONS[index % len(SITUATIONS)][1]
        world.add_pull_request(
            REPOSITORIES[index % len(REPOSITORIES)], number=index // 4 + 1, labels=STAGING, **facts
        )


def largest_input(run: WorkflowRun, *, tally: bool) -> int:
    """The longest input (hence argument) a node was handed, in bytes: the tally's or the others'."""
    return max(
        len(value.encode())
        for node in run.nodes
        if (node.template == "tally") is tally
        for value in node.inputs.values()
    )


def test_two_hundred_prs_are_settled_in_one_run_and_none_twice() -> None:
    """Each PR's branch decides and acts; the run's Argo objects and the outcome index stay
    small; a second run asks the model nothing and starts no pod but the no-op item's."""
    document = example("staging-automerge").to_document()
    document["spec"] |= {"maxPullRequests": PRS, "repositories": list(REPOSITORIES)}
    rule = PRReconciliationRule.model_validate(document)
    options = CompileOptions(max_decisions_per_run=PRS, parallelism=8)
    manifest = compile_rule(rule, "argo", options)
    compiled = manifest.document
    world, memo = GitHubWorld(), MemoCache()
    populate(world)
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        env = pod_env(github, llm)
        run = run_cron_workflow(
            compiled,
            env=env,
            secrets=SECRETS,
            memo=memo,
            workers=8,
            config_maps=[manifest.config_map],
            workflow_templates=[manifest.workflow_template],
        )
        asked = len(llm.requests)
        again = run_cron_workflow(
            compiled,
            env=env,
            secrets=SECRETS,
            memo=memo,
            workers=8,
            config_maps=[manifest.config_map],
            workflow_templates=[manifest.workflow_template],
        )

    assert_clean(run)
    assert_clean(again)
    summary = json.loads(run.global_outputs["summary"])
    assert (summary["matched"], summary["decided"], summary["deferred"]) == (PRS, PRS, 0)
    assert asked == PRS and len(llm.requests) == PRS
    for index in range(PRS):
        pr = world.pull_request(REPOSITORIES[index % len(REPOSITORIES)], index // 4 + 1)
        state = {"merge": "MERGED", "close": "CLOSED"}.get(expected_action(index), "OPEN")
        escalated = "needs-human-approval" in pr.labels
        assert (pr.state, escalated) == (state, expected_action(index) == "escalate"), index
    assert again.pods_of("decide") == again.pods_of("act") == 1  # the no-op item's
    assert memo.config_maps == {}  # Argo memoizes nothing: the index is the steps' own
    assert json.loads(again.global_outputs["summary"])["reused"] == PRS * 3 // 5  # still open
    assert largest_input(run, tally=False) < 8 * 1024  # a PR's branch gets its own data only
    assert largest_input(run, tally=True) < MAX_ARG_STRLEN // 2  # counts, no PR text
    index = [m for name, m in memo.objects.items() if name.startswith("ai-operator-memo-")]
    assert len(index) == 16  # 200 PRs' records over every shard
    assert all(len(json.dumps(m["data"])) < CONFIG_MAP_DATA_LIMIT // 8 for m in index)


FAILING = 300


@pytest.mark.services
def test_at_three_hundred_failing_prs_the_report_starts_and_pushes() -> None:
    """A model outage fails every decide pod: the exit handler still starts, with arguments of a
    few hundred bytes, reads the failed nodes from its Workflow and pushes the run's metrics.

    ``{{workflow.failures}}``, which the report step was once handed, would be over Linux's
    128 KiB limit for one argument here, and the report could not have started.
    """
    document = example("staging-automerge").to_document()
    document["spec"] |= {"maxPullRequests": FAILING, "repositories": list(REPOSITORIES)}
    rule = PRReconciliationRule.model_validate(document)
    options = CompileOptions(max_decisions_per_run=FAILING, parallelism=8)
    manifest = compile_rule(rule, "argo", options)
    compiled = manifest.document
    world = GitHubWorld()
    for repository in REPOSITORIES:
        world.add_repository(repository, labels=[*STAGING, "needs-human-approval"])
    for index in range(FAILING):
        repository = REPOSITORIES[index % len(REPOSITORIES)]
        world.add_pull_request(repository, number=index // 4 + 1, labels=STAGING)
    with (
        FakeGitHub(world, token=GITHUB_TOKEN) as github,
        FakeLLM(token=AI_TOKEN) as llm,
        pushgateway() as gateway,
    ):
        llm.fail_next(FAILING, status=400)  # the endpoint refuses every request: not retried
        env = pod_env(github, llm, PUSHGATEWAY_URL=gateway)
        run = run_cron_workflow(
            compiled,
            env=env,
            secrets=SECRETS,
            workers=8,
            config_maps=[manifest.config_map],
            workflow_templates=[manifest.workflow_template],
        )
        series = gateway_series(gateway)

    failed = [n for n in run.nodes if n.phase in {"Failed", "Error"}]
    assert [n.template for n in failed].count("decide") == FAILING
    assert len(argo_failures(failed).encode()) > MAX_ARG_STRLEN  # what the report once got
    report = run.node(f"{run.name}.onExit")
    assert (report.phase, report.exit_code) == ("Succeeded", 0)
    assert max(len(arg.encode()) for arg in report.inputs.values() or [""]) < 1024
    assert "metrics pushed" in report.stderr
    assert report.stderr.count('"failed node"') == 10  # the first failures, for people
    assert series['ai_operator_last_run_errors{type="ai"}'] == FAILING
    assert series["ai_operator_run_success"] == 0
    assert github.mutations == []


def argo_failures(nodes: list[Any]) -> str:
    """``{{workflow.failures}}`` for ``nodes``, as Argo writes it (JSON, then quoted)."""
    listed = [
        {"displayName": n.name, "message": n.message, "templateName": n.template,
         "phase": n.phase, "podName": n.name, "finishedAt": "2026-12-06T20:00:00Z"}
        for n in nodes
    ]  # fmt: skip
    return json.dumps(json.dumps(listed, separators=(",", ":")))
