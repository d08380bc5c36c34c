"""Guardrails: whatever the AI answers, only safe, allowed actions happen."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from ai_operator.jobs.policy.guardrails import guard
from ai_operator.jobs.policy.selection import covers
from ai_operator.jobs.policy.snapshot import Check, CiStatus, Mergeable, PullRequestState
from ai_operator.jobs.rules.model import Action, MergeMethod
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


SELECTIVE = make_rule(
    selector={
        "labels": {"include": ["auto-merge"], "exclude": ["do-not-merge"]},
        "baseBranch": "main",
        "author": "dependabot[bot]",
        "titlePattern": "^Bump ",
    }
)
BUMP = {"title": "Bump x", "author": "dependabot[bot]", "labels": ("auto-merge",)}


@pytest.mark.parametrize(
    ("pr", "wanted"),
    [
        pytest.param(
            make_pr(**BUMP | {"labels": ("auto-merge", "do-not-merge")}),
            Action.MERGE,
            id="exclude-label-added",
        ),
        pytest.param(make_pr(**BUMP | {"labels": ()}), Action.MERGE, id="opt-in-label-removed"),
        pytest.param(make_pr(**BUMP | {"base_branch": "release"}), Action.CLOSE, id="base-changed"),
        pytest.param(make_pr(**BUMP | {"author": "mallory"}), Action.MERGE, id="author-changed"),
        pytest.param(make_pr(**BUMP | {"title": "Revert x"}), Action.ESCALATE, id="retitled"),
    ],
)
def test_a_pr_that_left_the_selector_is_left_alone(pr, wanted):
    """Whatever was decided, a PR that no longer meets every selector condition gets nothing."""
    result = guard(pr, SELECTIVE.spec, wanted, HEAD)
    assert result.action is Action.WAIT
    assert result.block is not None and result.block.guardrail == "not-covered"


@pytest.mark.parametrize(
    "author",
    [
        pytest.param("dependabot[bot]", id="ui-form"),
        pytest.param("app/dependabot", id="search-form"),
    ],
)
def test_both_spellings_of_a_bot_select_it(author):
    """`app/dependabot` and `dependabot[bot]` are the same bot to the selector."""
    rule = make_rule(selector={"labels": {"include": ["auto-merge"]}, "author": author})
    assert guard(make_pr(**BUMP), rule.spec, Action.MERGE, HEAD).action is Action.MERGE


T0 = datetime(2026, 11, 1, tzinfo=UTC)
ALLOW_NO_CHECKS = make_rule(merge={"allowWithoutChecks": True})


def run(name, conclusion="SUCCESS", *, minute=0, status="COMPLETED", required=None):
    """One run of a check, started ``minute`` minutes after T0."""
    return Check(
        name=name,
        status=status,
        conclusion=conclusion,
        started_at=T0 + timedelta(minutes=minute),
        required=required,
    )


@pytest.mark.parametrize(
    ("pr", "rule", "expected", "guardrail"),
    [
        pytest.param(
            make_pr(ci_status=CiStatus.FAILURE, checks=(run("ci", "FAILURE"), run("ci", minute=5))),
            RULE,
            Action.MERGE,
            None,
            id="failed-run-superseded-by-a-passing-one",
        ),
        pytest.param(
            make_pr(ci_status=CiStatus.FAILURE, checks=(run("ci", minute=5), run("ci", "FAILURE"))),
            RULE,
            Action.MERGE,
            None,
            id="the-newer-run-counts-wherever-listed",
        ),
        pytest.param(
            make_pr(ci_status=CiStatus.FAILURE, checks=(run("ci"), run("ci", "FAILURE", minute=5))),
            RULE,
            Action.ESCALATE,
            "checks-not-passed",
            id="a-newer-failure-stands",
        ),
        pytest.param(
            make_pr(checks=(run("ci", "SKIPPED"), run("lint", "NEUTRAL"))),
            RULE,
            Action.ESCALATE,
            "checks-not-passed",
            id="nothing-ran-has-not-passed",
        ),
        pytest.param(
            make_pr(checks=(run("ci", "SKIPPED"),)),
            ALLOW_NO_CHECKS,
            Action.MERGE,
            None,
            id="nothing-ran-merges-when-the-rule-opts-in",
        ),
        pytest.param(
            make_pr(ci_status=CiStatus.UNKNOWN, checks=()),
            ALLOW_NO_CHECKS,
            Action.MERGE,
            None,
            id="no-check-at-all-merges-when-the-rule-opts-in",
        ),
        pytest.param(
            make_pr(
                merge_state_status="BLOCKED",
                ci_status=CiStatus.PENDING,
                checks=(run("lint"), run("build", None, status="QUEUED", required=True)),
            ),
            RULE,
            Action.WAIT,
            "checks-pending",
            id="required-check-still-running-waits",
        ),
        pytest.param(
            make_pr(
                merge_state_status="BLOCKED", ci_status=CiStatus.PENDING, checks=(run("lint"),)
            ),
            RULE,
            Action.WAIT,
            "checks-pending",
            id="required-check-not-reported-yet-waits",
        ),
        pytest.param(
            make_pr(merge_state_status="BLOCKED", review_decision="REVIEW_REQUIRED"),
            RULE,
            Action.ESCALATE,
            "review-required",
            id="blocked-for-a-review-escalates",
        ),
        pytest.param(
            make_pr(merge_state_status="BEHIND"),
            RULE,
            Action.WAIT,
            "branch-behind",
            id="behind-waits",
        ),
        pytest.param(
            make_pr(merge_state_status="UNKNOWN"),
            RULE,
            Action.WAIT,
            "merge-state-unknown",
            id="merge-state-being-computed-waits",
        ),
        pytest.param(
            make_pr(merge_methods=frozenset({MergeMethod.MERGE, MergeMethod.REBASE})),
            RULE,
            Action.ESCALATE,
            "merge-method-not-allowed",
            id="merge-method-the-repository-refuses-escalates",
        ),
        pytest.param(
            make_pr(merge_methods=frozenset({MergeMethod.SQUASH})),
            RULE,
            Action.MERGE,
            None,
            id="merge-method-the-repository-allows",
        ),
    ],
)
def test_checks_and_merge_state_are_read_like_githubs_merge_gate(pr, rule, expected, guardrail):
    """Latest run per check; nothing ran is no pass; waiting clears pending, behind and unknown."""
    result = guard(pr, rule.spec, Action.MERGE, HEAD)
    assert result.action is expected
    assert (result.block.guardrail if result.block else None) == guardrail


def test_a_title_pattern_cannot_hang_the_pass():
    """A pattern that backtracks catastrophically in Python runs in linear time (RE2)."""
    rule = make_rule(selector={"titlePattern": "^(a+)+$"})
    started = time.monotonic()
    assert not covers(make_pr(title="a" * 50_000 + "!"), rule.spec.selector)
    assert time.monotonic() - started < 1


READ = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("facts", "spec", "action", "guardrail"),
    [
        pytest.param(
            {"head_committed_at": READ - timedelta(minutes=10)},
            {},
            Action.WAIT,
            "required-checks-not-reported",
            id="within-the-default-hour-waits",
        ),
        pytest.param(
            {"head_committed_at": READ - timedelta(hours=2)},
            {},
            Action.ESCALATE,
            "merge-blocked",
            id="after-the-hour-escalates",
        ),
        pytest.param(
            {"head_committed_at": READ - timedelta(minutes=10)},
            {"merge": {"requiredChecksGraceSeconds": 300}},
            Action.ESCALATE,
            "merge-blocked",
            id="the-rule-sets-a-shorter-grace",
        ),
        pytest.param(
            {
                "head_committed_at": READ - timedelta(minutes=10),
                "review_decision": "REVIEW_REQUIRED",
            },
            {},
            Action.ESCALATE,
            "review-required",
            id="a-missing-review-escalates-at-once",
        ),
        pytest.param(
            {
                "head_committed_at": READ - timedelta(minutes=10),
                "checks": (
                    Check(name="ci", status="COMPLETED", conclusion="FAILURE", required=True),
                ),
                "ci_status": CiStatus.FAILURE,
            },
            {},
            Action.ESCALATE,
            "checks-not-passed",
            id="a-failing-required-check-escalates-at-once",
        ),
        pytest.param(
            {
                "head_committed_at": READ - timedelta(minutes=10),
                "reviews": (review("ana", "CHANGES_REQUESTED"),),
            },
            {},
            Action.ESCALATE,
            "changes-requested",
            id="changes-requested-escalates-at-once",
        ),
    ],
)
def test_a_required_check_not_reported_yet_waits_for_the_grace_period(
    facts, spec, action, guardrail
):
    """BLOCKED while every reported check passed: wait, from the head commit, up to the grace."""
    pr = make_pr(merge_state_status="BLOCKED", read_at=READ, **facts)
    guarded = guard(pr, make_rule(**spec).spec, Action.MERGE, HEAD)
    assert guarded.action is action
    assert guarded.block is not None and guarded.block.guardrail == guardrail
