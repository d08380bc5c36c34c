"""Guardrails: whatever the AI answers, only safe, allowed actions happen."""

from __future__ import annotations

import pytest

from jobs.policy.guardrails import guard
from jobs.policy.snapshot import CiStatus, Mergeable, PullRequestState
from jobs.rules.model import Action
from tests.factories import HEAD, make_pr, make_rule, review

RULE = make_rule()
NO_ESCALATION = make_rule(allowedActions=["merge", "wait"])
NO_MERGE = make_rule(allowedActions=["wait", "escalate", "close"])


@pytest.mark.parametrize(
    ("pr", "rule", "wanted", "expected", "guardrail"),
    [
        pytest.param(make_pr(), RULE, Action.MERGE, Action.MERGE, None, id="green-pr-merges"),
        pytest.param(
            make_pr(is_draft=True),
            RULE,
            Action.MERGE,
            Action.ESCALATE,
            "draft",
            id="draft-never-merged",
        ),
        pytest.param(
            make_pr(ci_status=CiStatus.PENDING),
            RULE,
            Action.MERGE,
            Action.WAIT,
            "checks-pending",
            id="pending-checks-wait",
        ),
        pytest.param(
            make_pr(ci_status=CiStatus.FAILURE),
            RULE,
            Action.MERGE,
            Action.ESCALATE,
            "checks-not-passed",
            id="failed-checks-escalate",
        ),
        pytest.param(
            make_pr(ci_status=CiStatus.UNKNOWN, checks=()),
            RULE,
            Action.MERGE,
            Action.ESCALATE,
            "checks-not-passed",
            id="no-checks-never-merged",
        ),
        pytest.param(
            make_pr(mergeable=Mergeable.CONFLICTING),
            RULE,
            Action.MERGE,
            Action.ESCALATE,
            "not-mergeable",
            id="conflicts-escalate",
        ),
        pytest.param(
            make_pr(mergeable=Mergeable.UNKNOWN),
            RULE,
            Action.MERGE,
            Action.WAIT,
            "mergeability-unknown",
            id="mergeability-being-computed-waits",
        ),
        pytest.param(
            make_pr(merge_state_status="BLOCKED"),
            RULE,
            Action.MERGE,
            Action.ESCALATE,
            "merge-blocked",
            id="branch-protection-blocks",
        ),
        pytest.param(
            make_pr(review_decision="CHANGES_REQUESTED"),
            RULE,
            Action.MERGE,
            Action.ESCALATE,
            "changes-requested",
            id="requested-changes-block-merge",
        ),
        pytest.param(
            make_pr(reviews=(review("alice", "CHANGES_REQUESTED"),)),
            RULE,
            Action.MERGE,
            Action.ESCALATE,
            "changes-requested",
            id="a-change-request-without-decision-blocks",
        ),
        pytest.param(
            make_pr(reviews=(review("alice", "CHANGES_REQUESTED"), review("alice", "APPROVED"))),
            RULE,
            Action.MERGE,
            Action.MERGE,
            None,
            id="a-later-approval-clears-the-request",
        ),
        pytest.param(
            make_pr(head_oid="b" * 40),
            RULE,
            Action.MERGE,
            Action.WAIT,
            "head-moved",
            id="moved-head-never-merged",
        ),
        pytest.param(
            make_pr(state=PullRequestState.CLOSED),
            RULE,
            Action.ESCALATE,
            Action.WAIT,
            "not-open",
            id="closed-pr-left-alone",
        ),
        pytest.param(
            make_pr(state=PullRequestState.MERGED, is_draft=True),
            RULE,
            Action.MERGE,
            Action.WAIT,
            "not-open",
            id="merged-pr-never-escalated",
        ),
        pytest.param(
            make_pr(),
            NO_MERGE,
            Action.MERGE,
            Action.ESCALATE,
            "action-not-allowed",
            id="forbidden-merge-escalates",
        ),
        pytest.param(
            make_pr(ci_status=CiStatus.FAILURE),
            NO_ESCALATION,
            Action.MERGE,
            Action.WAIT,
            "checks-not-passed",
            id="no-escalation-allowed-means-wait",
        ),
        pytest.param(
            make_pr(),
            NO_ESCALATION,
            Action.CLOSE,
            Action.WAIT,
            "action-not-allowed",
            id="forbidden-close-waits-without-escalation",
        ),
        pytest.param(
            make_pr(ci_status=CiStatus.FAILURE, is_draft=True),
            RULE,
            Action.CLOSE,
            Action.CLOSE,
            None,
            id="close-needs-no-green-checks",
        ),
        pytest.param(
            make_pr(is_draft=True),
            RULE,
            Action.WAIT,
            Action.WAIT,
            None,
            id="wait-is-always-possible",
        ),
    ],
)
def test_guard(pr, rule, wanted, expected, guardrail):
    """The guarded action, and the guardrail named when it changed."""
    result = guard(pr, rule.spec, wanted, HEAD)
    assert result.action is expected
    assert (result.block.guardrail if result.block else None) == guardrail


def test_a_permanent_block_outranks_a_pending_one():
    """A draft with running checks escalates rather than waiting for checks that cannot help."""
    result = guard(
        make_pr(is_draft=True, ci_status=CiStatus.PENDING), RULE.spec, Action.MERGE, HEAD
    )
    assert result.action is Action.ESCALATE
    assert result.block is not None and result.block.guardrail == "draft"
