"""The sandbox GitHub's merge queue, auto-merge and branch updates, on GitHub's real schema.

Each mutation pins the head and refuses what GitHub refuses; the reads say who armed what
(``autoMergeRequest.enabledBy``, ``mergeQueueEntry.enqueuer``) and the timeline says when.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.sandbox import FakeCheck, FakeGitHub, GitHubWorld
from tests.unit.test_fake_github import TOKEN, data, errors


@pytest.fixture
def github(world: GitHubWorld) -> Iterator[FakeGitHub]:
    with FakeGitHub(world, token=TOKEN) as server:
        yield server
    assert server.invalid_documents == [] and server.unexpected_errors == []


HANDOVER = """
query Handover($owner: String!, $name: String!, $number: Int!, $branch: String!) {
  repository(owner: $owner, name: $name) {
    autoMergeAllowed
    mergeQueue(branch: $branch) { id }
    pullRequest(number: $number) {
      headRefOid isInMergeQueue isMergeQueueEnabled
      mergeQueueEntry { enqueuer { login } headCommit { oid } }
      autoMergeRequest { enabledBy { login } mergeMethod }
      timelineItems(last: 10, itemTypes: [AUTO_MERGE_ENABLED_EVENT, AUTO_MERGE_DISABLED_EVENT,
                                          ADDED_TO_MERGE_QUEUE_EVENT, REMOVED_FROM_MERGE_QUEUE_EVENT,
                                          PULL_REQUEST_COMMIT]) {
        nodes { __typename
          ... on AutoMergeEnabledEvent { actor { login } }
          ... on AutoMergeDisabledEvent { actor { login } }
          ... on AddedToMergeQueueEvent { actor { login } }
          ... on RemovedFromMergeQueueEvent { actor { login } }
          ... on PullRequestCommit { commit { oid } } }
      }
    }
  }
}
"""
ENQUEUE = """
mutation Enqueue($id: ID!, $oid: GitObjectID) {
  enqueuePullRequest(input: {pullRequestId: $id, expectedHeadOid: $oid}) {
    mergeQueueEntry { position enqueuer { login } }
  }
}
"""
DEQUEUE = """
mutation Dequeue($id: ID!) { dequeuePullRequest(input: {id: $id}) { clientMutationId } }
"""
ARM = """
mutation Arm($id: ID!, $oid: GitObjectID) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, expectedHeadOid: $oid,
                                     mergeMethod: SQUASH}) {
    pullRequest { autoMergeRequest { enabledBy { login } mergeMethod } }
  }
}
"""
DISARM = """
mutation Disarm($id: ID!) {
  disablePullRequestAutoMerge(input: {pullRequestId: $id}) { pullRequest { id } }
}
"""
UPDATE = """
mutation Update($id: ID!, $oid: GitObjectID) {
  updatePullRequestBranch(input: {pullRequestId: $id, expectedHeadOid: $oid}) {
    pullRequest { headRefOid }
  }
}
"""
PENDING: dict[str, Any] = {
    "rollup_state": "PENDING",
    "checks": [FakeCheck("ci", None, "IN_PROGRESS", required=True)],
    "merge_state_status": "BLOCKED",
}


def handover(github: FakeGitHub, number: int = 1) -> dict[str, Any]:
    repo = data(github, HANDOVER, owner="acme", name="web", number=number, branch="main")
    return dict(repo["repository"])


def test_an_enqueued_pr_says_who_queued_it(world: GitHubWorld, github: FakeGitHub):
    """enqueuePullRequest at the head: isInMergeQueue, the enqueuer, the timeline event."""
    world.require_merge_queue("acme/web", "main")
    pr = world.add_pull_request("acme/web", number=1)

    entry = data(github, ENQUEUE, id=pr.id, oid=pr.head_oid)["enqueuePullRequest"]

    read = handover(github)
    assert entry["mergeQueueEntry"]["enqueuer"]["login"] == world.viewer_login
    assert read["mergeQueue"] is not None
    facts = read["pullRequest"]
    assert (facts["isInMergeQueue"], facts["isMergeQueueEnabled"]) == (True, True)
    assert facts["mergeQueueEntry"]["headCommit"]["oid"] == pr.head_oid
    assert facts["timelineItems"]["nodes"] == [
        {"__typename": "AddedToMergeQueueEvent", "actor": {"login": world.viewer_login}}
    ]
    data(github, DEQUEUE, id=pr.id)
    assert handover(github)["pullRequest"]["isInMergeQueue"] is False


def test_an_armed_pr_says_who_armed_it_and_github_merges_it_when_checks_pass(
    world: GitHubWorld, github: FakeGitHub
):
    """enablePullRequestAutoMerge: enabledBy is the token; passing checks merge it."""
    pr = world.add_pull_request("acme/web", number=1, **PENDING)

    armed = data(github, ARM, id=pr.id, oid=pr.head_oid)["enablePullRequestAutoMerge"]

    assert armed["pullRequest"]["autoMergeRequest"] == {
        "enabledBy": {"login": world.viewer_login},
        "mergeMethod": "SQUASH",
    }
    world.finish_checks("acme/web", 1)
    assert (pr.state, pr.merge_method, pr.auto_merge) == ("MERGED", "SQUASH", None)


@pytest.mark.parametrize(
    ("query", "facts", "queue", "moved", "message"),
    [
        pytest.param(ENQUEUE, {}, False, False, "not enabled", id="enqueue-without-queue"),
        pytest.param(ENQUEUE, {}, True, True, "Head branch was modified", id="enqueue-moved"),
        pytest.param(ARM, PENDING, False, True, "Head branch was modified", id="arm-moved"),
        pytest.param(ARM, {}, False, False, "clean status", id="arm-a-clean-pr"),
        pytest.param(UPDATE, {}, False, False, "no new commits", id="update-not-behind"),
        pytest.param(
            UPDATE, {"merge_state_status": "BEHIND"}, False, True, "didn't match", id="update-moved"
        ),
    ],
)
def test_github_refuses_a_moved_head_and_what_it_cannot_do(
    world: GitHubWorld, github: FakeGitHub, query, facts, queue, moved, message
):
    """Each mutation is refused, as GitHub refuses it; nothing changes."""
    if queue:
        world.require_merge_queue("acme/web", "main")
    pr = world.add_pull_request("acme/web", number=1, **facts)
    head = pr.head_oid

    found = errors(github, query, id=pr.id, oid="0" * 40 if moved else head)

    assert any(message in text for text in found), found
    assert (pr.queue_entry, pr.auto_merge, pr.state, pr.head_oid) == (None, None, "OPEN", head)


def test_a_branch_that_requires_the_queue_refuses_a_direct_merge(
    world: GitHubWorld, github: FakeGitHub
):
    """mergePullRequest on a queue-protected base is refused: changes go through the queue."""
    world.require_merge_queue("acme/web", "main")
    pr = world.add_pull_request("acme/web", number=1)
    merge = """
    mutation M($id: ID!, $oid: GitObjectID) {
      mergePullRequest(input: {pullRequestId: $id, expectedHeadOid: $oid}) { pullRequest { id } }
    }
    """
    assert any("merge queue" in m for m in errors(github, merge, id=pr.id, oid=pr.head_oid))
    assert pr.state == "OPEN"


def test_an_update_brings_a_new_head_whose_checks_run(world: GitHubWorld, github: FakeGitHub):
    """updatePullRequestBranch at the head: a new head, a commit event, checks queued."""
    pr = world.add_pull_request("acme/web", number=1, merge_state_status="BEHIND")
    before = pr.head_oid

    new = data(github, UPDATE, id=pr.id, oid=before)["updatePullRequestBranch"]

    assert new["pullRequest"]["headRefOid"] == pr.head_oid != before
    assert pr.rollup_state == "PENDING" and pr.checks[0].status == "QUEUED"
    events = handover(github)["pullRequest"]["timelineItems"]["nodes"]
    assert events[-1] == {"__typename": "PullRequestCommit", "commit": {"oid": pr.head_oid}}
