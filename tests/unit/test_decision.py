"""Decisions and plans: invalid answers fall back safely, and a rerun plans nothing new."""

from __future__ import annotations

import pytest

from ai_operator.jobs.policy.decision import decide
from ai_operator.jobs.policy.markers import find_markers, make_marker
from ai_operator.jobs.policy.plan import AddLabels, Close, Comment, Merge, already_done, plan
from ai_operator.jobs.policy.snapshot import CiStatus, PullRequestState
from ai_operator.jobs.policy.verdict import InvalidVerdict, Verdict, parse_verdict
from ai_operator.jobs.rules.model import Action
from tests.factories import HEAD, make_pr, make_rule

RULE = make_rule()


def verdict(action: str, **extra):
    return Verdict(action=Action(action), reason=f"because {action}", **extra)


@pytest.mark.parametrize(
    ("answer", "problem_part"),
    [
        pytest.param("merge", "not a JSON object", id="text-is-not-an-answer"),
        pytest.param({"reason": "x"}, "action", id="action-missing"),
        pytest.param({"action": "deploy", "reason": "x"}, "action", id="unknown-action"),
        pytest.param({"action": "merge", "reason": ""}, "reason", id="empty-reason"),
        pytest.param({"action": "merge"}, "reason", id="reason-missing"),
    ],
)
def test_invalid_answers_are_values_not_guesses(answer, problem_part):
    """Anything outside the schema is an InvalidVerdict naming the problem."""
    result = parse_verdict(answer, RULE.spec.permitted_actions)
    assert isinstance(result, InvalidVerdict)
    assert problem_part in result.problem


def test_an_action_the_rule_forbids_is_invalid():
    """A well-formed answer with a forbidden action is not used."""
    rule = make_rule(allowedActions=["wait", "escalate"])
    result = parse_verdict({"action": "merge", "reason": "ok"}, rule.spec.permitted_actions)
    assert isinstance(result, InvalidVerdict)
    assert "not allowed" in result.problem


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(RULE, Action.ESCALATE, id="fallback-escalate"),
        pytest.param(make_rule(fallbackAction="wait"), Action.WAIT, id="fallback-wait"),
        pytest.param(
            make_rule(allowedActions=["merge"]), Action.WAIT, id="escalate-not-allowed-so-wait"
        ),
    ],
)
def test_invalid_answer_becomes_the_safe_fallback(rule, expected):
    """An invalid answer leads to the rule's fallback, recorded as such."""
    decision = decide(rule, make_pr(), InvalidVerdict(problem="not JSON"), "fp")
    assert decision.action is expected
    assert decision.fallback and decision.proposed is None
    assert "not JSON" in (decision.problem or "")


def test_escalation_labels_are_the_rules_plus_allowed_optional_ones():
    """The model may only add labels the rule lists as optional."""
    rule = make_rule(
        escalation={"labels": ["needs-human-approval"], "optionalLabels": ["ci-failed"]}
    )
    answer = verdict("escalate", labels=("ci-failed", "auto-merge"))
    decision = decide(rule, make_pr(), answer, "fp")
    assert decision.labels == ("needs-human-approval", "ci-failed")


def test_merge_plan_pins_the_head_and_uses_the_rules_method():
    """A merge names the decided head commit as expectedHeadOid."""
    decision = decide(RULE, make_pr(), verdict("merge"), "fp")
    the_plan = plan(RULE, decision, make_pr())
    assert the_plan.operations == (
        Merge("PR_1", HEAD, RULE.spec.mergeMethod, "Roll back the cache change (#7)"),
    )


def test_merge_plan_rechecks_fresh_facts():
    """Checks that failed after the decision turn the merge into an escalation."""
    decision = decide(RULE, make_pr(), verdict("merge"), "fp")
    the_plan = plan(RULE, decision, make_pr(ci_status=CiStatus.FAILURE))
    assert the_plan.action is Action.ESCALATE
    assert not any(isinstance(op, Merge) for op in the_plan.operations)


def test_moved_head_plans_nothing():
    """A push after the decision means the next pass decides anew."""
    decision = decide(RULE, make_pr(), verdict("merge"), "fp")
    the_plan = plan(RULE, decision, make_pr(head_oid="c" * 40))
    assert the_plan.action is Action.WAIT and the_plan.operations == ()


def test_close_comments_then_closes_with_a_marker():
    """A close posts its explanation first; the comment carries the hidden marker."""
    decision = decide(RULE, make_pr(), verdict("close", comment="Health restored."), "fp")
    the_plan = plan(RULE, decision, make_pr())
    comment, close = the_plan.operations
    assert isinstance(comment, Comment) and isinstance(close, Close)
    assert comment.body.startswith("Health restored.")
    assert find_markers(comment.body) == {comment.marker}


def test_escalate_labels_then_comments():
    """An escalation adds the escalation labels and explains why."""
    decision = decide(RULE, make_pr(), verdict("escalate"), "fp")
    labels, comment = plan(RULE, decision, make_pr()).operations
    assert labels == AddLabels("acme/web", "PR_1", ("needs-human-approval",), True)
    assert isinstance(comment, Comment) and "because escalate" in comment.body


def test_rerun_plans_nothing_once_labels_and_comment_exist():
    """A second pass over an escalated PR changes nothing on GitHub."""
    decision = decide(RULE, make_pr(), verdict("escalate"), "fp")
    first = plan(RULE, decision, make_pr())
    marker = next(op.marker for op in first.operations if isinstance(op, Comment))
    escalated = make_pr(
        labels=("auto-merge", "staging", "needs-human-approval"),
        comment_markers=frozenset({marker}),
    )
    second = plan(RULE, decision, escalated)
    assert second.operations == ()


def test_a_closed_pr_gets_nothing():
    """Nothing is planned for a PR that was closed meanwhile."""
    decision = decide(RULE, make_pr(), verdict("close"), "fp")
    assert plan(RULE, decision, make_pr(state=PullRequestState.CLOSED)).operations == ()


def test_a_guardrails_action_gets_its_own_words_not_the_models():
    """A merge turned into an escalation says why, and never posts the model's merge comment."""
    decision = decide(RULE, make_pr(is_draft=True), verdict("merge", comment="Merging now!"), "fp")
    labels, comment = plan(RULE, decision, make_pr(is_draft=True)).operations
    assert isinstance(labels, AddLabels) and isinstance(comment, Comment)
    assert "Merging now!" not in comment.body
    assert "Safety rule: the pull request is a draft." in comment.body


@pytest.mark.parametrize("action", ["merge", "close", "escalate"])
def test_a_pr_that_left_the_rule_before_acting_gets_nothing(action):
    """An exclude label added (or the opt-in label removed) while deciding: no operation at all."""
    decision = decide(RULE, make_pr(), verdict(action), "fp")
    for fresh in (make_pr(labels=("auto-merge", "staging", "wip")), make_pr(labels=("staging",))):
        the_plan = plan(RULE, decision, fresh)
        assert (the_plan.action, the_plan.operations) == (Action.WAIT, ())
        assert the_plan.guardrail == "not-covered"
        assert "no longer covered by the rule" in (the_plan.guardrail_reason or "")


def marker_of(action: str, head: str = HEAD) -> str:
    return make_marker(RULE.qualified_name, action, head)


@pytest.mark.parametrize(
    ("fresh", "expected"),
    [
        pytest.param(
            make_pr(reopened_by="alice", comment_markers=frozenset({marker_of("close")})),
            Action.ESCALATE,
            id="reopened-by-a-person-at-the-same-head-is-not-closed-again",
        ),
        pytest.param(
            make_pr(reopened_by="alice"),
            Action.ESCALATE,
            id="reopened-with-no-comment-of-this-rule-is-not-closed-again",
        ),
        pytest.param(
            make_pr(comment_markers=frozenset({marker_of("close")})),
            Action.CLOSE,
            id="close-that-failed-after-its-comment-is-retried",
        ),
    ],
)
def test_a_person_who_reopened_wins(fresh, expected):
    """A PR the operator closed at this head and a person reopened is escalated, not closed again.

    The timeline says so (``reopened_by``), with or without a comment marker of this rule.
    """
    decision = decide(RULE, make_pr(), verdict("close"), "fp")
    the_plan = plan(RULE, decision, fresh)
    assert the_plan.action is expected
    assert any(isinstance(op, Close) for op in the_plan.operations) is (expected is Action.CLOSE)
    if expected is Action.ESCALATE:
        assert the_plan.guardrail == "reopened-by-person"
        assert "alice reopened" in (the_plan.guardrail_reason or "")


@pytest.mark.parametrize(
    ("markers", "removed", "re_added"),
    [
        pytest.param({marker_of("escalate")}, {"needs-human-approval"}, False, id="with-marker"),
        pytest.param(set(), {"needs-human-approval"}, False, id="no-comment-of-this-rule"),
        pytest.param(set(), {"Needs-Human-Approval".casefold()}, False, id="other-case"),
        pytest.param(set(), set(), True, id="nobody-removed-it"),
    ],
)
def test_a_person_who_removed_the_label_wins(markers, removed, re_added):
    """A label the operator added and a person removed at this head is not added back."""
    decision = decide(RULE, make_pr(), verdict("escalate"), "fp")
    fresh = make_pr(comment_markers=frozenset(markers), labels_removed_by_people=frozenset(removed))
    the_plan = plan(RULE, decision, fresh)
    added = [op for op in the_plan.operations if isinstance(op, AddLabels)]
    assert bool(added) is re_added
    if not re_added:
        assert the_plan.guardrail == "label-removed-by-person"


def test_a_comment_a_person_deleted_is_not_posted_again():
    """The operator's comment, deleted by a person at this head, stays deleted."""
    decision = decide(RULE, make_pr(), verdict("escalate"), "fp")
    the_plan = plan(RULE, decision, make_pr(comment_deleted_by="alice"))
    assert not [op for op in the_plan.operations if isinstance(op, Comment)]
    assert [op for op in the_plan.operations if isinstance(op, AddLabels)]


@pytest.mark.parametrize(
    ("operation", "fresh", "done"),
    [
        pytest.param(
            Merge("PR_1", HEAD, RULE.spec.mergeMethod, "x"),
            make_pr(state=PullRequestState.MERGED),
            True,
            id="merged",
        ),
        pytest.param(Merge("PR_1", HEAD, RULE.spec.mergeMethod, "x"), make_pr(), False, id="open"),
        pytest.param(Close("PR_1"), make_pr(state=PullRequestState.CLOSED), True, id="closed"),
        pytest.param(
            Comment("PR_1", "hi", "m"), make_pr(comment_markers=frozenset({"m"})), True, id="posted"
        ),
        pytest.param(Comment("PR_1", "hi", "m"), make_pr(), False, id="not-posted"),
        pytest.param(
            AddLabels("acme/web", "PR_1", ("Staging",), True), make_pr(), True, id="labelled"
        ),
        pytest.param(
            AddLabels("acme/web", "PR_1", ("ci-failed",), True), make_pr(), False, id="unlabelled"
        ),
    ],
)
def test_fresh_facts_tell_whether_a_write_took_effect(operation, fresh, done):
    """After an ambiguous failure, the re-read PR shows whether the write was applied."""
    assert already_done(operation, fresh) is done
