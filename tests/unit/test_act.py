"""Acting on GitHub: fresh facts decide, people win, and a write GitHub applied counts as done."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.policy.decision import Decision, decide
from ai_operator.jobs.policy.verdict import Verdict
from ai_operator.jobs.reconcile.act import act
from ai_operator.jobs.rules.model import Action, RuleMode
from tests.conftest import GITHUB_TOKEN
from tests.factories import make_rule
from tests.sandbox import FakeCheck, FakeGitHub, GitHubWorld

RULE = make_rule()  # include auto-merge + staging, exclude wip
COVERED = ["auto-merge", "staging"]
FAILED_CI: dict[str, Any] = {
    "rollup_state": "FAILURE",
    "checks": [FakeCheck("ci", conclusion="FAILURE")],
}


@pytest.fixture
def client(github: FakeGitHub) -> GitHubClient:
    return GitHubClient(
        github.url, SecretStr(GITHUB_TOKEN), backoff_seconds=0, sleep=lambda _: None
    )


def decided(client: GitHubClient, number: int, action: str) -> Decision:
    """What the model decided about ``acme/web#number``, on the facts read now."""
    pr = client.pull_request("acme/web", number)
    verdict = Verdict(action=Action(action), reason=f"because {action}")
    return decide(RULE, pr, verdict, "fp")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda w: w.add_label("acme/web", 1, "wip", "alice"), id="exclude-label-added"
        ),
        pytest.param(
            lambda w: w.remove_label("acme/web", 1, "auto-merge", "alice"), id="opt-in-removed"
        ),
    ],
)
def test_a_pr_that_left_the_rule_while_deciding_is_left_alone(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient, change: Any
) -> None:
    """A person takes the PR out of the rule after the decision: it is not merged."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    decision = decided(client, 1, "merge")
    just_read = client.pull_request("acme/web", 1)
    change(world)

    row = act(RULE, decision, client, dry_run=False, just_read=just_read)

    assert (row.action, row.guardrail, row.error) == (Action.WAIT, "not-covered", None)
    assert world.pull_request("acme/web", 1).state == "OPEN" and github.mutations == []


@pytest.mark.parametrize(
    ("action", "mutation", "status", "facts"),
    [
        pytest.param("merge", "mergePullRequest", 502, {}, id="merge-applied-then-5xx"),
        pytest.param("merge", "mergePullRequest", 0, {}, id="merge-applied-then-timeout"),
        pytest.param("close", "closePullRequest", 502, {}, id="close-applied-then-5xx"),
        pytest.param("close", "addComment", 502, {}, id="close-comment-applied-then-5xx"),
        pytest.param("escalate", "addComment", 0, FAILED_CI, id="comment-applied-then-timeout"),
        pytest.param(
            "escalate", "addLabelsToLabelable", 502, FAILED_CI, id="label-applied-then-5xx"
        ),
    ],
)
def test_a_write_github_applied_counts_as_done(
    world: GitHubWorld,
    github: FakeGitHub,
    client: GitHubClient,
    action: str,
    mutation: str,
    status: int,
    facts: dict[str, Any],
) -> None:
    """A 5xx or a timeout after GitHub applied the write is recognised, not reported failed."""
    world.add_pull_request("acme/web", number=1, labels=COVERED, **facts)
    github.lose_answer_of(mutation, status=status)

    row = act(RULE, decided(client, 1, action), client, dry_run=False)

    pr = world.pull_request("acme/web", 1)
    assert (row.error, row.applied, row.action) == (None, True, Action(action))
    assert pr.state == {"merge": "MERGED", "close": "CLOSED", "escalate": "OPEN"}[action]
    assert len(pr.comments) == (0 if action == "merge" else 1)


def test_a_comment_refused_once_is_posted_on_the_second_try(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """A comment GitHub surely did not post (5xx, then not there) is tried once more."""
    world.add_pull_request("acme/web", number=1, labels=COVERED, **FAILED_CI)
    github.fail_mutation("addComment")

    row = act(RULE, decided(client, 1, "escalate"), client, dry_run=False)

    assert row.error is None and len(world.pull_request("acme/web", 1).comments) == 1


def test_a_comment_that_keeps_failing_is_a_retryable_error(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """Still refused on the second try: the row fails, marked retryable (the step exits 75)."""
    world.add_pull_request("acme/web", number=1, labels=COVERED, **FAILED_CI)
    github.fail_mutation("addComment", count=2)

    row = act(RULE, decided(client, 1, "escalate"), client, dry_run=False)

    assert row.error is not None and row.error_retryable
    assert world.pull_request("acme/web", 1).comments == []


def test_a_pr_this_rule_closed_and_a_person_reopened_is_escalated(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """People win: the same decision at the same head does not close the PR again."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    decision = decided(client, 1, "close")
    assert act(RULE, decision, client, dry_run=False).action is Action.CLOSE
    world.reopen("acme/web", 1, actor="alice")

    row = act(RULE, decision, client, dry_run=False)

    pr = world.pull_request("acme/web", 1)
    assert (row.action, row.guardrail) == (Action.ESCALATE, "reopened-by-person")
    assert pr.state == "OPEN" and "needs-human-approval" in pr.labels
    assert "alice reopened" in pr.comments[-1].body


def test_a_label_a_person_removed_is_not_added_back(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """People win: the escalation label a person removed stays removed at the same head."""
    world.add_pull_request("acme/web", number=1, labels=COVERED, **FAILED_CI)
    decision = decided(client, 1, "escalate")
    act(RULE, decision, client, dry_run=False)
    world.remove_label("acme/web", 1, "needs-human-approval", actor="alice")
    github.reset_counters()

    row = act(RULE, decision, client, dry_run=False)

    assert (row.action, row.guardrail, row.error) == (
        Action.ESCALATE,
        "label-removed-by-person",
        None,
    )
    assert github.mutations == []
    assert "needs-human-approval" not in world.pull_request("acme/web", 1).labels


@pytest.mark.parametrize(
    ("facts", "action"),
    [
        pytest.param({}, "merge", id="merge"),
        pytest.param({}, "close", id="close"),
        pytest.param(FAILED_CI, "escalate", id="escalate-label-and-comment"),
    ],
)
def test_a_shadow_rule_plans_and_writes_nothing_whatever_the_caller_says(
    world: GitHubWorld,
    github: FakeGitHub,
    client: GitHubClient,
    facts: dict[str, Any],
    action: str,
) -> None:
    """spec.mode: Shadow is the one gate before apply: no merge, close, label or comment."""
    world.add_pull_request("acme/web", number=1, labels=COVERED, **facts)
    decision = decided(client, 1, action)
    shadow = RULE.model_copy(
        update={"spec": RULE.spec.model_copy(update={"mode": RuleMode.SHADOW})}
    )

    row = act(shadow, decision, client, dry_run=False)

    assert (row.action.value, row.shadow, row.dry_run) == (action, True, True)
    assert row.operations == () and not row.applied and row.error is None
    assert github.mutations == []
    assert row.to_json()["mode"] == "shadow"
