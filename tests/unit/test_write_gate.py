"""The gate before every write: the pass's budget, GitHub's ``retry-after``, the pause.

Against the sandbox GitHub (GitHub's real schema on loopback), limiting writes as GitHub's
secondary limit does: 403 with ``retry-after``, nothing applied.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.policy.decision import Decision, decide
from ai_operator.jobs.policy.pacing import Deferral, WriteBudget
from ai_operator.jobs.policy.verdict import Verdict
from ai_operator.jobs.reconcile.act import act
from ai_operator.jobs.reconcile.gate import WriteGate
from ai_operator.jobs.rules.model import Action
from tests.conftest import GITHUB_TOKEN
from tests.factories import make_rule
from tests.sandbox import FakeCheck, FakeGitHub, GitHubWorld

RULE = make_rule()
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


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def decided(client: GitHubClient, number: int, action: str) -> Decision:
    pr = client.pull_request("acme/web", number)
    return decide(RULE, pr, Verdict(action=Action(action), reason=f"because {action}"), "fp")


def test_a_plan_past_the_budget_is_deferred_and_sends_nothing(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """Two escalations under a budget of two writes: the second waits, whole."""
    world.add_repository("acme/web", labels=[*COVERED, "needs-human-approval"])
    for number in (1, 2):
        world.add_pull_request("acme/web", number=number, labels=COVERED, **FAILED_CI)
    gate = WriteGate(WriteBudget(2))

    first = act(RULE, decided(client, 1, "escalate"), client, dry_run=False, gate=gate)
    second = act(RULE, decided(client, 2, "escalate"), client, dry_run=False, gate=gate)

    assert (first.deferred, first.applied) == (None, True)
    assert (second.deferred, second.applied, second.error) == ("budget", False, None)
    assert world.pull_request("acme/web", 2).comments == []
    assert sorted(github.mutations) == ["addComment", "addLabelsToLabelable"]


def test_a_rate_limit_longer_than_the_client_waits_defers_the_rest_of_the_pass(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """GitHub's 403 with ``retry-after: 120``: the comment waits, and no later write of the pass
    is sent before then; the next pass posts the comment and does not label again."""
    world.add_repository("acme/web", labels=[*COVERED, "needs-human-approval"])
    for number in (1, 2):
        world.add_pull_request("acme/web", number=number, labels=COVERED, **FAILED_CI)
    github.limit_writes(1, retry_after=120)
    clock = Clock()
    gate = WriteGate(WriteBudget(60), clock=clock)

    first = act(RULE, decided(client, 1, "escalate"), client, dry_run=False, gate=gate)
    sent = len(github.requests)
    second = act(RULE, decided(client, 2, "escalate"), client, dry_run=False, gate=gate)

    assert (first.deferred, first.error, first.operations) == (
        "rate-limit",
        None,
        ("label needs-human-approval",),
    )
    assert second.deferred == Deferral.RATE_LIMIT
    assert not any(r.is_mutation for r in github.requests[sent:])  # read, never written
    assert github.writes_refused == 1  # the comment, once: not sent again at once
    clock.now = 121.0
    github.restore_writes()
    again = act(RULE, decided(client, 1, "escalate"), client, dry_run=False, gate=gate)
    assert (again.deferred, again.operations) == (None, ("comment",))
    pr = world.pull_request("acme/web", 1)
    assert len(pr.comments) == 1 and pr.labels.count("needs-human-approval") == 1


def test_a_paused_gate_writes_nothing(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """Paused: the merge is deferred, and GitHub sees no mutation."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)

    row = act(
        RULE,
        decided(client, 1, "merge"),
        client,
        dry_run=False,
        gate=WriteGate(WriteBudget(), paused=True),
    )

    assert (row.deferred, row.applied, row.action) == ("paused", False, Action.MERGE)
    assert github.mutations == [] and world.pull_request("acme/web", 1).state == "OPEN"


def test_a_merge_past_the_rule_s_cap_waits(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """``maxMergesPerPass: 1``: the second mergeable PR is deferred (merges), not merged."""
    for number in (1, 2):
        world.add_pull_request("acme/web", number=number, labels=COVERED)
    gate = WriteGate(WriteBudget(60, merges=1))

    rows = [
        act(RULE, decided(client, n, "merge"), client, dry_run=False, gate=gate) for n in (1, 2)
    ]

    assert [row.deferred for row in rows] == [None, "merges"]
    assert [world.pull_request("acme/web", n).state for n in (1, 2)] == ["MERGED", "OPEN"]
