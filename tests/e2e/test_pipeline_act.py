"""The pipeline's act step under real-world faults, run pod by pod by the Argo DAG interpreter.

A person edits the pull request between the decide and act pods; GitHub applies a merge and loses
its answer; GitHub refuses a comment twice. Each is the same rule as ``ai-operator run`` follows
(:mod:`tests.e2e.test_hardening`), here through the compiled workflow and Argo's retries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from ai_operator.jobs.rules.files import load_rules
from ai_operator.pipelines.compile import CompileOptions, compile_rule
from tests import argo_interpreter
from tests.argo_interpreter import (
    NodeRun,
    PodRunner,
    SubprocessPods,
    WorkflowRun,
    run_cron_workflow,
)
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, ROOT, cli_env
from tests.sandbox import FakeCheck, FakeGitHub, FakeLLM, GitHubWorld

pytestmark = pytest.mark.e2e

SECRETS = {
    ("ai-operator-secrets", "github-token"): GITHUB_TOKEN,
    ("ai-operator-secrets", "ai-token"): AI_TOKEN,
}
STAGING = ("auto-merge", "staging")


class UsualPods:
    """The pods a run given none gets (forked from the end-to-end tests' server, else
    subprocesses); subclasses change the world around some of them."""

    def __init__(self) -> None:
        self.pods: PodRunner = argo_interpreter.DEFAULT_PODS or SubprocessPods()
        self.runs_ai_operator = self.pods.runs_ai_operator

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, str]:
        return self.pods(argv, env, cwd, timeout)


class PersonBeforeAct(UsualPods):
    """The usual pods; ``change`` happens just before acme/web#1's act pod starts."""

    def __init__(self, change: Callable[[], None]) -> None:
        super().__init__()
        self.change = change

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, str]:
        is_act = "step" in argv and argv[list(argv).index("step") + 1] == "act"
        if is_act and any("acme/web" in arg for arg in argv):  # not the no-op item's act
            self.change()
        return super().__call__(argv, env, cwd, timeout)


@contextmanager
def staging(**facts: Any) -> Iterator[tuple[GitHubWorld, FakeGitHub, FakeLLM]]:
    """One pull request covered by the staging example, behind a fake GitHub and model."""
    world = GitHubWorld()
    world.add_repository("acme/web", labels=[*STAGING, "do-not-merge"])
    world.add_repository("acme/api", labels=[*STAGING])
    world.add_pull_request("acme/web", number=1, labels=[*STAGING], **facts)
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        yield world, github, llm
    assert github.invalid_documents == [] and github.unexpected_errors == []


def run_staging(github: FakeGitHub, llm: FakeLLM, pods: PodRunner | None = None) -> WorkflowRun:
    rule = load_rules([ROOT / "examples" / "staging-automerge.yaml"])[0].rule
    manifest = compile_rule(rule, "argo", CompileOptions())
    document = manifest.document
    env = cli_env(github, llm)
    del env["GITHUB_TOKEN"], env["AI_TOKEN"]  # the pods get them from the Secret
    return run_cron_workflow(
        document,
        env=env,
        secrets=SECRETS,
        pods=pods,
        config_maps=[manifest.config_map],
        workflow_templates=[manifest.workflow_template],
    )


def pr_act(run: WorkflowRun) -> NodeRun:
    """The act node of acme/web#1 (whatever the DAG around it)."""
    [node] = [n for n in run.nodes if n.template == "act" and "acme/web#1" in n.name]
    return node


def act_row(run: WorkflowRun) -> dict[str, Any]:
    [row] = json.loads(pr_act(run).outputs["results"])
    assert isinstance(row, dict)
    return row


def test_a_pr_taken_out_of_the_rule_before_act_is_left_alone() -> None:
    """Decided "merge", then a person adds do-not-merge: the act pod merges nothing."""
    with staging() as (world, github, llm):
        person = PersonBeforeAct(lambda: world.add_label("acme/web", 1, "do-not-merge", "alice"))
        run = run_staging(github, llm, person)

    row = act_row(run)
    assert run.phase == "Succeeded"
    assert (row["proposedAction"], row["action"], row["guardrail"]) == (
        "merge",
        "wait",
        "not-covered",
    )
    assert world.pull_request("acme/web", 1).state == "OPEN" and github.mutations == []


def test_a_merge_github_applied_but_did_not_confirm_is_done() -> None:
    """GitHub merges, then answers 502: the act pod reports the merge done and exits 0."""
    with staging() as (world, github, llm):
        github.lose_answer_of("mergePullRequest", status=502)
        run = run_staging(github, llm)

    row = act_row(run)
    assert run.phase == "Succeeded" and pr_act(run).attempts == 1
    assert (row["action"], row["applied"], row["error"]) == ("merge", True, None)
    assert world.pull_request("acme/web", 1).state == "MERGED"


def test_a_transient_failure_in_act_is_retried_by_argo() -> None:
    """A comment GitHub refuses twice: act exits 75, Argo retries it, the retry completes."""
    failed_ci = {"rollup_state": "FAILURE", "checks": [FakeCheck("ci", conclusion="FAILURE")]}
    with staging(**failed_ci) as (world, github, llm):
        github.fail_mutation("addComment", count=2)
        run = run_staging(github, llm)

    pr = world.pull_request("acme/web", 1)
    assert run.phase == "Succeeded" and pr_act(run).attempts == 2
    assert "needs-human-approval" in pr.labels and len(pr.comments) == 1
    assert act_row(run)["error"] is None


def test_a_pr_a_person_reopened_is_not_closed_again() -> None:
    """The pipeline closed it, a person reopened it: the next run escalates, saying why."""
    with staging(title="[close] Old experiment") as (world, github, llm):
        first = run_staging(github, llm)
        assert world.pull_request("acme/web", 1).state == "CLOSED"
        world.reopen("acme/web", 1, actor="alice")
        second = run_staging(github, llm)

    pr = world.pull_request("acme/web", 1)
    assert (first.phase, second.phase) == ("Succeeded", "Succeeded")
    assert (act_row(second)["action"], act_row(second)["guardrail"]) == (
        "escalate",
        "reopened-by-person",
    )
    assert pr.state == "OPEN" and "needs-human-approval" in pr.labels
    assert "alice reopened" in pr.comments[-1].body


def test_fetch_decide_and_act_are_retried_on_a_transient_failure() -> None:
    """Exit 75 (EX_TEMPFAIL) from fetch, decide or act makes Argo retry that step."""
    rule = load_rules([ROOT / "examples" / "staging-automerge.yaml"])[0].rule
    manifest = compile_rule(rule, "argo", CompileOptions())
    assert manifest.workflow_template is not None
    templates = {t["name"]: t for t in manifest.workflow_template["spec"]["templates"]}
    for step in ("fetch", "decide", "act"):
        retry = templates[step]["retryStrategy"]
        assert retry["expression"] == "asInt(lastRetry.exitCode) == 75", step
        assert int(retry["limit"]) >= 1, step
