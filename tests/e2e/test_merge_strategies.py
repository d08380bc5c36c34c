"""spec.merge.strategy and the update action, end to end: `ai-operator run` and the compiled
pipeline against the sandbox GitHub, which executes GitHub's real schema.

Each strategy sends its own mutation with the head pinned; queued or armed is reported as
`queue` or `auto-merge`, never as a merge; a second pass and a rerun send nothing more and post no
second comment; the operator disarms only what its own token armed; AutoMerge is armed while
checks run but never on a failed check; `update` brings a branch up to date and merges nothing in
the same pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.jobs.rules.model import PRReconciliationRule
from tests.argo_interpreter import MemoCache
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, CliResult, cli_env, run_cli
from tests.e2e.test_pipeline import assert_clean, compiled, pod_env, run_pipeline
from tests.sandbox import FakeCheck, FakeGitHub, FakeLLM, GitHubWorld, LLMRequest

pytestmark = pytest.mark.e2e

COVERED = ["auto-merge", "staging"]
OPERATOR = "ai-operator-bot"


def rule_text(strategy: str, actions: str = "[merge, close, escalate, wait]") -> str:
    return f"""\
apiVersion: aioperator.io/v1alpha1
kind: PRReconciliationRule
metadata: {{name: staging-automerge, namespace: ai-operator-system}}
spec:
  repositories: [acme/web]
  selector:
    labels: {{include: [auto-merge, staging], exclude: [do-not-merge]}}
    baseBranch: main
  instruction: "PR #{{{{pr.number}}}} (CI {{{{pr.ciStatus}}}}): merge it."
  mergeMethod: SQUASH
  allowedActions: {actions}
  merge: {{strategy: {strategy}}}
"""


def pending() -> dict[str, Any]:
    return {
        "rollup_state": "PENDING",
        "checks": [FakeCheck("ci", None, "IN_PROGRESS", required=True)],
        "merge_state_status": "BLOCKED",
    }


def merging_brain(request: LLMRequest) -> dict[str, Any]:
    """A model that wants every pull request merged (updated, when behind and allowed)."""
    permitted = request.permitted_actions or []
    behind = '"mergeStateStatus": "BEHIND"' in request.user
    action = "update" if behind and "update" in permitted else "merge"
    return {
        "action": action,
        "reason": "Ship it.",
        "comment": "Handing this to GitHub.",
        "labels": [],
    }


@pytest.fixture
def merging_llm() -> Iterator[FakeLLM]:
    with FakeLLM(token=AI_TOKEN, brain=merging_brain) as server:
        yield server


def one_pr(world: GitHubWorld, **facts: Any):
    world.add_repository("acme/web", labels=[*COVERED, "do-not-merge"])
    return world.add_pull_request("acme/web", number=1, labels=COVERED, **facts)


def run(tmp_path: Path, env: dict[str, str], text: str, *more: str) -> CliResult:
    path = tmp_path / "rule.yaml"
    path.write_text(text)
    return run_cli(["run", str(path), "--output", "json", *more], env)


def only_row(result: CliResult) -> dict[str, Any]:
    assert result.code == 0, result.stderr
    [row] = result.json()["results"]
    return row


def mutation_inputs(github: FakeGitHub) -> list[tuple[str, dict[str, Any]]]:
    return [
        (field, request.variables.get("input", {}))
        for request in github.requests
        if request.is_mutation and request.status == 200 and not request.errors
        for field in request.mutation_fields
    ]


def decision_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "decision"]


# --- each strategy sends its own mutation, head pinned -----------------------------------------


@pytest.mark.parametrize(
    ("strategy", "queue", "facts", "mutation", "action", "state"),
    [
        pytest.param("Direct", False, {}, "mergePullRequest", "merge", "MERGED", id="direct"),
        pytest.param("Auto", False, {}, "mergePullRequest", "merge", "MERGED", id="auto-no-queue"),
        pytest.param("Auto", True, {}, "enqueuePullRequest", "queue", "OPEN", id="auto-queue"),
        pytest.param(
            "MergeQueue", True, {}, "enqueuePullRequest", "queue", "OPEN", id="merge-queue"
        ),
        pytest.param(
            "AutoMerge",
            False,
            pending(),
            "enablePullRequestAutoMerge",
            "auto-merge",
            "OPEN",
            id="auto-merge-while-checks-run",
        ),
    ],
)
def test_each_strategy_sends_its_mutation_with_the_head_pinned(
    world, github, merging_llm, tmp_path, strategy, queue, facts, mutation, action, state
):
    """One mutation, carrying expectedHeadOid = the decided head; the row names what happened."""
    pr = one_pr(world, **facts)
    if queue:
        world.require_merge_queue("acme/web", "main")
    env = cli_env(github, merging_llm)

    row = only_row(run(tmp_path, env, rule_text(strategy)))

    [(sent, given)] = [m for m in mutation_inputs(github) if m[0] != "addComment"]
    assert sent == mutation and given["expectedHeadOid"] == pr.head_oid == row["headOid"]
    assert (row["action"], row["proposedAction"], row["error"]) == (action, "merge", None)
    assert world.pull_request("acme/web", 1).state == state
    assert (pr.queue_entry is not None) is (action == "queue")
    assert (pr.auto_merge is not None and pr.auto_merge.enabled_by == OPERATOR) is (
        action == "auto-merge"
    )


def test_direct_on_a_branch_that_requires_the_queue_is_refused_by_github(
    world, github, merging_llm, tmp_path
):
    """Direct means merge now: GitHub's own refusal is the row's error, nothing else is done."""
    one_pr(world)
    world.require_merge_queue("acme/web", "main")
    result = run(tmp_path, cli_env(github, merging_llm), rule_text("Direct"))
    [row] = result.json()["results"]
    assert result.code == 2 and "merge queue" in (row["error"] or "")
    assert world.pull_request("acme/web", 1).state == "OPEN"


# --- queued or armed is never counted as merged ------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "queue", "facts", "action"),
    [
        pytest.param("MergeQueue", True, {}, "queue", id="queued"),
        pytest.param("AutoMerge", False, pending(), "auto-merge", id="armed"),
    ],
)
def test_queued_or_armed_is_its_own_action_in_results_logs_and_comments(
    world, github, merging_llm, tmp_path, strategy, queue, facts, action
):
    """The JSON row, the decision log line, the comment's marker and the table say it."""
    one_pr(world, **facts)
    if queue:
        world.require_merge_queue("acme/web", "main")
    env = cli_env(github, merging_llm)

    result = run(tmp_path, env, rule_text(strategy))
    table = run_cli(["run", str(tmp_path / "rule.yaml"), "--dry-run"], env)

    row = only_row(result)
    assert row["action"] == action and row["applied"] is True
    assert [line["action"] for line in decision_lines(result.stderr)] == [action]
    [comment] = world.pull_request("acme/web", 1).comments
    assert f"action={action} " in comment.body and f"· {action} ·" in comment.body
    assert f"1 {action}" in table.stdout and "1 merge" not in table.stdout


# --- idempotent: a second pass and a rerun send nothing, comment nothing -----------------------


@pytest.mark.parametrize(
    ("strategy", "queue", "facts"),
    [
        pytest.param("MergeQueue", True, {}, id="queued"),
        pytest.param("AutoMerge", False, pending(), id="armed"),
    ],
)
def test_a_second_pass_and_a_rerun_change_nothing(
    world, github, merging_llm, tmp_path, strategy, queue, facts
):
    """Reused, then asked again (--no-cache): no second enqueue or arming, no second comment."""
    one_pr(world, **facts)
    if queue:
        world.require_merge_queue("acme/web", "main")
    env = cli_env(github, merging_llm)
    first = only_row(run(tmp_path, env, rule_text(strategy)))
    sent = list(github.mutations)

    second = only_row(run(tmp_path, env, rule_text(strategy)))
    rerun = only_row(run(tmp_path, env, rule_text(strategy), "--no-cache"))

    assert github.mutations == sent and len(world.pull_request("acme/web", 1).comments) == 1
    assert (second["reused"], second["operations"]) == (True, [])
    assert (rerun["reused"], rerun["operations"], rerun["action"]) == (
        False,
        [],
        first["action"],
    )


def test_github_merges_an_armed_pr_once_its_checks_pass(world, github, merging_llm, tmp_path):
    """Armed while checks ran; they pass; GitHub merges; the next pass has nothing to see."""
    one_pr(world, **pending())
    env = cli_env(github, merging_llm)
    run(tmp_path, env, rule_text("AutoMerge"))

    world.finish_checks("acme/web", 1)
    after = run(tmp_path, env, rule_text("AutoMerge"))

    pr = world.pull_request("acme/web", 1)
    assert (pr.state, pr.merge_method) == ("MERGED", "SQUASH")
    assert after.code == 0 and after.json()["results"] == []


# --- AutoMerge: pending checks allowed, a failed check refused ---------------------------------


def test_auto_merge_is_never_armed_on_a_failed_check(world, github, merging_llm, tmp_path):
    """One check failed while another runs: escalated, nothing armed."""
    one_pr(
        world,
        rollup_state="FAILURE",
        checks=[FakeCheck("lint", "FAILURE"), FakeCheck("test", None, "IN_PROGRESS")],
        merge_state_status="BLOCKED",
    )
    row = only_row(run(tmp_path, cli_env(github, merging_llm), rule_text("AutoMerge")))
    assert (row["action"], row["guardrail"]) == ("escalate", "checks-not-passed")
    assert world.pull_request("acme/web", 1).auto_merge is None
    assert "enablePullRequestAutoMerge" not in github.mutations


# --- people win: disarm only what the operator armed --------------------------------------------


def test_the_operator_disarms_its_auto_merge_when_checks_fail(world, github, merging_llm, tmp_path):
    """Armed; the check then fails: escalated, disarmed, and the comment says so."""
    one_pr(world, **pending())
    env = cli_env(github, merging_llm)
    run(tmp_path, env, rule_text("AutoMerge"))
    world.finish_checks("acme/web", 1, "FAILURE")

    row = only_row(run(tmp_path, env, rule_text("AutoMerge")))

    pr = world.pull_request("acme/web", 1)
    assert row["action"] == "escalate" and "disable auto-merge" in row["operations"]
    assert pr.auto_merge is None and pr.state == "OPEN"
    assert "disabled the auto-merge it had enabled" in pr.comments[-1].body
    again = only_row(run(tmp_path, env, rule_text("AutoMerge"), "--no-cache"))
    assert again["operations"] == [] and len(pr.comments) == 2


@pytest.mark.parametrize(
    ("change", "strategy", "queue", "facts", "undone"),
    [
        pytest.param(
            "exclude", "AutoMerge", False, pending(), "disable auto-merge", id="armed-exclude-label"
        ),
        pytest.param(
            "unlabel", "AutoMerge", False, pending(), "disable auto-merge", id="armed-selector"
        ),
        pytest.param("exclude", "MergeQueue", True, {}, "dequeue", id="queued-exclude-label"),
    ],
)
def test_a_pr_that_left_the_rule_is_disarmed_in_the_next_pass(
    world, github, merging_llm, tmp_path, change, strategy, queue, facts, undone
):
    """Armed or queued; a person adds do-not-merge (or removes an opt-in label): the next pass,
    whose search no longer finds it, disarms what the operator armed, once, and says so."""
    one_pr(world, **facts)
    if queue:
        world.require_merge_queue("acme/web", "main")
    env = cli_env(github, merging_llm)
    run(tmp_path, env, rule_text(strategy))
    if change == "exclude":
        world.add_label("acme/web", 1, "do-not-merge", actor="alice")
    else:
        world.remove_label("acme/web", 1, "staging", actor="alice")

    result = run(tmp_path, env, rule_text(strategy))
    again = run(tmp_path, env, rule_text(strategy))

    assert result.code == 0, result.stderr
    [row] = result.json()["results"]
    pr = world.pull_request("acme/web", 1)
    assert (row["action"], row["guardrail"]) == ("wait", "not-covered")
    assert row["operations"] == [undone, "comment"]
    assert pr.auto_merge is None and pr.queue_entry is None and pr.state == "OPEN"
    assert "The operator" in pr.comments[-1].body and len(pr.comments) == 2
    assert again.json()["results"] == [] and github.mutations.count("addComment") == 2


def test_a_persons_auto_merge_is_never_disarmed(world, github, merging_llm, tmp_path):
    """A person armed it; the check fails: escalated, their auto-merge stays armed."""
    one_pr(world, **pending())
    world.enable_auto_merge("acme/web", 1, actor="alice", method="SQUASH")
    world.finish_checks("acme/web", 1, "FAILURE")
    # GitHub itself keeps a person's auto-merge armed on a failed check.
    row = only_row(run(tmp_path, cli_env(github, merging_llm), rule_text("AutoMerge")))
    pr = world.pull_request("acme/web", 1)
    assert row["action"] == "escalate" and "disable auto-merge" not in row["operations"]
    assert pr.auto_merge is not None and pr.auto_merge.enabled_by == "alice"


def test_a_pr_armed_by_a_person_is_not_armed_again(world, github, merging_llm, tmp_path):
    """Already armed (by anyone): no second arming, no comment."""
    one_pr(world, **pending())
    world.enable_auto_merge("acme/web", 1, actor="alice", method="SQUASH")
    row = only_row(run(tmp_path, cli_env(github, merging_llm), rule_text("AutoMerge")))
    assert (row["action"], row["operations"]) == ("auto-merge", [])
    assert github.mutations == [] and world.pull_request("acme/web", 1).comments == []


def test_a_person_who_disabled_the_operators_auto_merge_wins(world, github, merging_llm, tmp_path):
    """The operator armed; a person disabled it: not armed again at this head."""
    one_pr(world, **pending())
    env = cli_env(github, merging_llm)
    run(tmp_path, env, rule_text("AutoMerge"))
    world.disable_auto_merge("acme/web", 1, actor="alice")

    row = only_row(run(tmp_path, env, rule_text("AutoMerge"), "--no-cache"))

    assert (row["action"], row["guardrail"]) == ("escalate", "auto-merge-disabled-by-person")
    assert world.pull_request("acme/web", 1).auto_merge is None


def test_the_operator_dequeues_what_it_queued_when_changes_are_requested(
    world, github, merging_llm, tmp_path
):
    """Queued by the operator; a reviewer requests changes: escalated and dequeued."""
    one_pr(world)
    world.require_merge_queue("acme/web", "main")
    env = cli_env(github, merging_llm)
    run(tmp_path, env, rule_text("MergeQueue"))
    pr = world.pull_request("acme/web", 1)
    pr.reviews.append(("alice", "CHANGES_REQUESTED"))
    pr.review_decision = "CHANGES_REQUESTED"

    row = only_row(run(tmp_path, env, rule_text("MergeQueue")))

    assert row["action"] == "escalate" and "dequeue" in row["operations"]
    assert pr.queue_entry is None and "removed this pull request from the merge queue" in (
        pr.comments[-1].body
    )


# --- update: behind its base, updated, never merged in the same pass ---------------------------


def test_update_brings_a_behind_branch_up_to_date_and_merges_nothing(
    world, github, merging_llm, tmp_path
):
    """BEHIND: the branch is updated (head pinned); the new head's checks run; no merge."""
    pr = one_pr(world, merge_state_status="BEHIND")
    decided = pr.head_oid
    env = cli_env(github, merging_llm)
    text = rule_text("Auto", "[merge, escalate, update]")

    row = only_row(run(tmp_path, env, text))

    [(sent, given)] = [m for m in mutation_inputs(github) if m[0] != "addComment"]
    assert (sent, given["expectedHeadOid"]) == ("updatePullRequestBranch", decided)
    assert (row["action"], row["operations"][0]) == ("update", "update branch")
    assert pr.state == "OPEN" and pr.head_oid != decided
    # The next pass sees the new head, its checks still running: it waits, merges nothing.
    later = only_row(run(tmp_path, env, text))
    assert later["action"] in {"wait", "merge"} and pr.state == "OPEN"
    assert "mergePullRequest" not in github.mutations


def test_update_is_not_done_unless_the_rule_allows_it(world, github, merging_llm, tmp_path):
    """The default actions have no update: the model is not offered it, nothing is updated."""
    one_pr(world, merge_state_status="BEHIND")
    row = only_row(run(tmp_path, cli_env(github, merging_llm), rule_text("Auto")))
    assert row["action"] == "wait" and row["guardrail"] == "branch-behind"
    assert "updatePullRequestBranch" not in github.mutations
    assert all("update" not in r.system.split("Allowed actions:")[1] for r in merging_llm.requests)


# --- the compiled workflow: the same mutations, pod by pod --------------------------------------


@pytest.mark.parametrize(
    ("strategy", "queue", "facts", "mutation", "action"),
    [
        pytest.param("Direct", False, {}, "mergePullRequest", "merge", id="direct"),
        pytest.param("Auto", True, {}, "enqueuePullRequest", "queue", id="auto-queue"),
        pytest.param(
            "AutoMerge", False, pending(), "enablePullRequestAutoMerge", "auto-merge", id="armed"
        ),
    ],
)
def test_the_compiled_workflow_sends_the_same_mutation(
    strategy, queue, facts, mutation, action
) -> None:
    """The CronWorkflow's act pod pins the head as `run` does; the tally never counts a merge."""
    world = GitHubWorld()
    pr = one_pr(world, **facts)
    if queue:
        world.require_merge_queue("acme/web", "main")
    rule = PRReconciliationRule.model_validate(yaml.safe_load(rule_text(strategy)))
    with (
        FakeGitHub(world, token=GITHUB_TOKEN) as github,
        FakeLLM(token=AI_TOKEN, brain=merging_brain) as llm,
    ):
        run = run_pipeline(compiled(rule), pod_env(github, llm))
        again = run_pipeline(compiled(rule), pod_env(github, llm))
    assert_clean(run)
    assert_clean(again)
    writes = [m for m in mutation_inputs(github) if m[0] != "addComment"]
    assert writes == [(mutation, writes[0][1])] and writes[0][1]["expectedHeadOid"] == pr.head_oid
    [act] = [n for n in run.nodes if n.template == "act" and "acme/web#1" in n.name]
    [row] = json.loads(act.outputs["results"])
    assert row["action"] == action
    [tally] = [n for n in run.nodes if n.template == "tally"]
    actions = json.loads(tally.outputs["summary"])["actions"]
    assert actions == {action: 1}
    assert len(world.pull_request("acme/web", 1).comments) == 1  # the rerun added none


@pytest.mark.parametrize(
    ("strategy", "queue", "facts", "undone"),
    [
        pytest.param("AutoMerge", False, pending(), "disable auto-merge", id="armed"),
        pytest.param("MergeQueue", True, {}, "dequeue", id="queued"),
    ],
)
def test_the_compiled_workflow_disarms_a_pr_that_left_the_rule(strategy, queue, facts, undone):
    """A person adds do-not-merge: the next run's search no longer finds the PR, so fetch lists
    it from the outcome index and its act pod disarms what the operator armed, once."""
    world = GitHubWorld()
    one_pr(world, **facts)
    if queue:
        world.require_merge_queue("acme/web", "main")
    rule = PRReconciliationRule.model_validate(yaml.safe_load(rule_text(strategy)))
    cluster = MemoCache()  # the namespace's ConfigMaps, where act keeps the outcome index
    with (
        FakeGitHub(world, token=GITHUB_TOKEN) as github,
        FakeLLM(token=AI_TOKEN, brain=merging_brain) as llm,
    ):
        armed = run_pipeline(compiled(rule), pod_env(github, llm), cluster)
        world.add_label("acme/web", 1, "do-not-merge", actor="alice")
        left = run_pipeline(compiled(rule), pod_env(github, llm), cluster)
        again = run_pipeline(compiled(rule), pod_env(github, llm), cluster)
    for run in (armed, left, again):
        assert_clean(run)
    [act] = [n for n in left.nodes if n.template == "act" and "acme/web#1" in n.name]
    [row] = json.loads(act.outputs["results"])
    assert (row["action"], row["operations"]) == ("wait", [undone, "comment"])
    pr = world.pull_request("acme/web", 1)
    assert pr.auto_merge is None and pr.queue_entry is None and pr.state == "OPEN"
    assert not [n for n in again.nodes if n.template == "act" and "acme/web#1" in n.name]
    assert github.mutations.count("addComment") == 2  # armed, then disarmed: none more
