"""How a merge is carried out (spec.merge.strategy), disarming, and the update action. Pure.

Every strategy pins the decided head; queued or armed is reported as its own action, never as a
merge; a PR already queued or armed gets nothing more; the operator disarms only what its own
token armed, when the PR no longer passes the rule; `update` only brings a branch that is behind
up to date, and never merges in the same pass.
"""

from __future__ import annotations

import pytest

from ai_operator.jobs.clients.metrics import pass_metric_families
from ai_operator.jobs.policy.decision import decide, leave_alone
from ai_operator.jobs.policy.markers import make_marker
from ai_operator.jobs.policy.outcome import armed_elsewhere
from ai_operator.jobs.policy.people import EventKind, TimelineEvent, read_timeline
from ai_operator.jobs.policy.plan import (
    AddLabels,
    Comment,
    Dequeue,
    DisableAutoMerge,
    EnableAutoMerge,
    Enqueue,
    Merge,
    MergeRoute,
    UpdateBranch,
    already_done,
    plan,
)
from ai_operator.jobs.policy.prompt import UPDATE_MEANING, build_prompt
from ai_operator.jobs.policy.reuse import Remembered
from ai_operator.jobs.policy.snapshot import Check, CiStatus, Mergeable, PullRequestState
from ai_operator.jobs.policy.verdict import Verdict, verdict_schema
from ai_operator.jobs.reconcile.report import counts, summary_from_counts
from ai_operator.jobs.reconcile.results import PassReport, PullRequestResult
from ai_operator.jobs.rules.model import Action, MergeMethod
from tests.factories import HEAD, make_pr, make_rule, review

HEADLINE = "Roll back the cache change (#7)"
PENDING = {
    "ci_status": CiStatus.PENDING,
    "checks": (Check(name="ci", status="IN_PROGRESS"),),
    "merge_state_status": "BLOCKED",
}
FAILED_AND_PENDING = {
    "ci_status": CiStatus.PENDING,
    "checks": (
        Check(name="lint", status="COMPLETED", conclusion="FAILURE"),
        Check(name="test", status="IN_PROGRESS"),
    ),
    "merge_state_status": "BLOCKED",
}
ARMED_BY_OPERATOR = {
    "auto_merge_by": "ai-operator-bot",
    "auto_merge_by_operator": True,
    "auto_merge_armed_here": True,
}
QUEUED_BY_OPERATOR = {
    "in_merge_queue": True,
    "queued_by": "ai-operator-bot",
    "queued_by_operator": True,
}


def rule_with(strategy: str = "Auto", **spec):
    return make_rule(merge={"strategy": strategy}, **spec)


def merge_plan(rule, pr, **verdict_extra):
    decision = decide(rule, pr, Verdict(action=Action.MERGE, reason="green", **verdict_extra), "f")
    return plan(rule, decision, pr)


# --- each strategy sends its own mutation, head pinned --------------------------------------


@pytest.mark.parametrize(
    ("strategy", "facts", "operations", "reported"),
    [
        pytest.param(
            "Auto",
            {},
            (Merge("PR_1", HEAD, MergeMethod.SQUASH, HEADLINE),),
            "merge",
            id="auto-without-a-queue-merges-now",
        ),
        pytest.param(
            "Auto",
            {"merge_queue_required": True},
            (Enqueue("PR_1", HEAD),),
            "queue",
            id="auto-with-a-required-queue-enqueues",
        ),
        pytest.param(
            "Direct",
            {"merge_queue_required": True},
            (Merge("PR_1", HEAD, MergeMethod.SQUASH, HEADLINE),),
            "merge",
            id="direct-merges-even-where-a-queue-is-required",
        ),
        pytest.param(
            "MergeQueue", {}, (Enqueue("PR_1", HEAD),), "queue", id="merge-queue-enqueues"
        ),
        pytest.param(
            "AutoMerge",
            PENDING,
            (EnableAutoMerge("PR_1", HEAD, MergeMethod.SQUASH, HEADLINE),),
            "auto-merge",
            id="auto-merge-arms-while-checks-run",
        ),
        pytest.param(
            "AutoMerge",
            {},
            (Merge("PR_1", HEAD, MergeMethod.SQUASH, HEADLINE),),
            "merge",
            id="auto-merge-of-a-clean-pr-merges-now-as-github-refuses-to-arm-it",
        ),
        pytest.param(
            "AutoMerge",
            {"merge_queue_required": True},
            (Enqueue("PR_1", HEAD),),
            "queue",
            id="auto-merge-of-a-clean-pr-whose-base-requires-the-queue-enqueues",
        ),
    ],
)
def test_each_strategy_sends_its_mutation_with_the_head_pinned(
    strategy, facts, operations, reported
):
    """The strategy picks the mutation; every one carries the decided head."""
    the_plan = merge_plan(rule_with(strategy), make_pr(**facts))
    assert the_plan.operations == operations
    assert the_plan.reported_action == reported
    assert the_plan.action is Action.MERGE


def test_queued_or_armed_is_never_reported_as_merge():
    """The reported names are three different actions."""
    assert {route.value for route in MergeRoute} == {"merge", "queue", "auto-merge"}


def test_the_models_comment_on_a_queued_pr_carries_the_queue_marker():
    """The comment names what happened: queued, not merged."""
    the_plan = merge_plan(rule_with("MergeQueue"), make_pr(), comment="Queued: checks are green.")
    enqueue, comment = the_plan.operations
    assert enqueue == Enqueue("PR_1", HEAD)
    assert isinstance(comment, Comment)
    assert comment.marker == make_marker("ai-operator-system/staging-automerge", "queue", HEAD)
    assert "· queue ·" in comment.body


# --- idempotent: already queued or armed gets nothing, not even a comment --------------------


@pytest.mark.parametrize(
    ("strategy", "facts", "operations"),
    [
        pytest.param("MergeQueue", QUEUED_BY_OPERATOR, (), id="already-queued"),
        pytest.param(
            "MergeQueue",
            {"in_merge_queue": True, "queued_by": "alice"},
            (),
            id="queued-by-a-person",
        ),
        pytest.param("AutoMerge", {**PENDING, **ARMED_BY_OPERATOR}, (), id="armed-at-this-head"),
        pytest.param(
            "AutoMerge",
            {**PENDING, "auto_merge_by": "alice"},
            (),
            id="armed-by-a-person-stands",
        ),
        pytest.param(
            "AutoMerge",
            {**PENDING, **ARMED_BY_OPERATOR, "auto_merge_armed_here": False},
            (
                DisableAutoMerge("PR_1"),
                EnableAutoMerge("PR_1", HEAD, MergeMethod.SQUASH, HEADLINE),
            ),
            id="armed-by-the-operator-at-an-earlier-head-is-armed-again-at-this-one",
        ),
    ],
)
def test_a_pr_already_queued_or_armed_gets_nothing_more(strategy, facts, operations):
    """No second enqueue or arming, and no second comment."""
    the_plan = merge_plan(rule_with(strategy), make_pr(**facts), comment="Handing it to GitHub.")
    writes = tuple(op for op in the_plan.operations if not isinstance(op, Comment))
    assert writes == operations
    # A comment only with a new arming (at a new head), never a second one.
    assert any(isinstance(op, Comment) for op in the_plan.operations) is bool(operations)


# --- AutoMerge may be decided while checks run, never on a failed check ----------------------


@pytest.mark.parametrize(
    ("strategy", "facts", "action", "guardrail"),
    [
        pytest.param("AutoMerge", PENDING, Action.MERGE, None, id="auto-merge-pending-allowed"),
        pytest.param("Direct", PENDING, Action.WAIT, "checks-pending", id="direct-waits"),
        pytest.param("MergeQueue", PENDING, Action.WAIT, "checks-pending", id="queue-waits"),
        pytest.param(
            "AutoMerge",
            FAILED_AND_PENDING,
            Action.ESCALATE,
            "checks-not-passed",
            id="auto-merge-refused-when-a-check-failed-while-others-run",
        ),
        pytest.param(
            "AutoMerge",
            {
                "ci_status": CiStatus.FAILURE,
                "checks": (Check(name="ci", status="COMPLETED", conclusion="FAILURE"),),
            },
            Action.ESCALATE,
            "checks-not-passed",
            id="auto-merge-refused-on-a-failed-check",
        ),
        pytest.param(
            "AutoMerge",
            {**PENDING, "review_decision": "CHANGES_REQUESTED"},
            Action.ESCALATE,
            "changes-requested",
            id="auto-merge-refused-on-changes-requested",
        ),
        pytest.param(
            "AutoMerge",
            {**PENDING, "is_draft": True},
            Action.ESCALATE,
            "draft",
            id="auto-merge-refused-for-a-draft",
        ),
        pytest.param(
            "AutoMerge",
            {**PENDING, "mergeable": Mergeable.CONFLICTING},
            Action.ESCALATE,
            "not-mergeable",
            id="auto-merge-refused-on-conflicts",
        ),
        pytest.param(
            "AutoMerge",
            {
                "checks": (Check(name="ci", status="IN_PROGRESS", required=True),),
                "ci_status": CiStatus.PENDING,
                "merge_state_status": "BLOCKED",
            },
            Action.MERGE,
            None,
            id="auto-merge-arms-while-a-required-check-runs",
        ),
    ],
)
def test_auto_merge_waits_for_nothing_but_never_passes_a_failure(
    strategy, facts, action, guardrail
):
    """Pending checks are GitHub's gate's business with AutoMerge; every other rule holds."""
    decision = decide(
        rule_with(strategy), make_pr(**facts), Verdict(action=Action.MERGE, reason="g"), "f"
    )
    assert (decision.action, decision.guardrail) == (action, guardrail)


# --- people win: what the operator armed and people undid is not redone -----------------------


@pytest.mark.parametrize(
    ("strategy", "facts", "guardrail"),
    [
        pytest.param(
            "AutoMerge",
            {**PENDING, "auto_merge_disabled_by": "alice"},
            "auto-merge-disabled-by-person",
            id="auto-merge-a-person-disabled",
        ),
        pytest.param(
            "MergeQueue",
            {"dequeued_by": "alice"},
            "dequeued-by-person",
            id="queue-a-person-left",
        ),
    ],
)
def test_a_person_who_undid_the_arming_wins_at_this_head(strategy, facts, guardrail):
    """Not armed or queued again; escalated so that a person decides."""
    the_plan = merge_plan(rule_with(strategy), make_pr(**facts))
    assert the_plan.action is Action.ESCALATE and the_plan.guardrail == guardrail
    assert "alice" in (the_plan.guardrail_reason or "")
    assert not [op for op in the_plan.operations if isinstance(op, Enqueue | EnableAutoMerge)]


# --- disarming: only what the operator armed, only when the PR no longer passes ---------------


def _plan_for(rule, decided_pr, fresh, action="merge"):
    decision = decide(rule, decided_pr, Verdict(action=Action(action), reason="r"), "f")
    return plan(rule, decision, fresh)


@pytest.mark.parametrize(
    ("fresh", "action", "disarmed"),
    [
        pytest.param(
            {"labels": ("auto-merge", "staging", "wip")},
            Action.WAIT,
            (DisableAutoMerge("PR_1"),),
            id="an-exclude-label-added",
        ),
        pytest.param(
            {"labels": ("staging",)},
            Action.WAIT,
            (DisableAutoMerge("PR_1"),),
            id="the-selector-no-longer-matches",
        ),
        pytest.param(
            {"reviews": (review("alice", "CHANGES_REQUESTED"),)},
            Action.ESCALATE,
            (DisableAutoMerge("PR_1"),),
            id="changes-requested",
        ),
        pytest.param(
            {
                "ci_status": CiStatus.FAILURE,
                "checks": (Check(name="ci", status="COMPLETED", conclusion="FAILURE"),),
            },
            Action.ESCALATE,
            (DisableAutoMerge("PR_1"),),
            id="a-check-failed",
        ),
        pytest.param(
            {"head_oid": "b" * 40},
            Action.WAIT,
            (DisableAutoMerge("PR_1"),),
            id="the-head-moved",
        ),
        pytest.param(
            {
                "auto_merge_by": "alice",
                "auto_merge_by_operator": False,
                "auto_merge_armed_here": False,
                "labels": ("auto-merge", "staging", "wip"),
            },
            Action.WAIT,
            (),
            id="a-persons-auto-merge-is-never-disarmed",
        ),
        pytest.param(
            {**QUEUED_BY_OPERATOR, "auto_merge_by": None, "labels": ("staging",)},
            Action.WAIT,
            (Dequeue("PR_1"),),
            id="the-operators-queue-entry-is-dequeued",
        ),
        pytest.param(
            {
                "in_merge_queue": True,
                "queued_by": "alice",
                "auto_merge_by": None,
                "labels": ("staging",),
            },
            Action.WAIT,
            (),
            id="a-persons-queue-entry-is-never-dequeued",
        ),
    ],
)
def test_the_operator_disarms_only_what_it_armed(fresh, action, disarmed):
    """Disarmed first, and said in a comment; a person's arming is left alone."""
    armed = {**PENDING, **ARMED_BY_OPERATOR}
    rule = rule_with("AutoMerge")
    the_plan = _plan_for(rule, make_pr(**armed), make_pr(**{**armed, **fresh}))
    assert the_plan.action is action
    disarm_ops = [op for op in the_plan.operations if isinstance(op, DisableAutoMerge | Dequeue)]
    assert tuple(disarm_ops) == disarmed
    comments = [op for op in the_plan.operations if isinstance(op, Comment)]
    if disarmed:
        assert the_plan.operations[: len(disarmed)] == disarmed
        assert len(comments) == 1 and "The operator" in comments[0].body
    elif action is Action.WAIT:
        assert the_plan.operations == ()


def test_a_plain_wait_leaves_the_operators_auto_merge_armed():
    """Checks still running is no reason to disarm: the model's own wait changes nothing."""
    armed = make_pr(**PENDING, **ARMED_BY_OPERATOR)
    the_plan = _plan_for(rule_with("AutoMerge"), armed, armed, action="wait")
    assert the_plan.operations == ()


def test_an_escalation_says_it_disarmed():
    """The escalation's comment says the operator disabled the auto-merge it had enabled."""
    armed = {**PENDING, **ARMED_BY_OPERATOR}
    failed = make_pr(
        **{
            **armed,
            "ci_status": CiStatus.FAILURE,
            "checks": (Check(name="ci", status="COMPLETED", conclusion="FAILURE"),),
        }
    )
    the_plan = _plan_for(rule_with("AutoMerge"), make_pr(**armed), failed)
    first, labels, comment = the_plan.operations
    assert first == DisableAutoMerge("PR_1") and isinstance(labels, AddLabels)
    assert isinstance(comment, Comment)
    assert "disabled the auto-merge it had enabled" in comment.body


def test_once_disarmed_a_rerun_plans_nothing():
    """After the disarm and its comment, the same facts plan nothing: no second comment."""
    rule = rule_with("AutoMerge")
    armed = make_pr(**PENDING, **ARMED_BY_OPERATOR)
    left = armed.model_copy(update={"labels": ("auto-merge", "staging", "wip")})
    first = _plan_for(rule, armed, left)
    comment = next(op for op in first.operations if isinstance(op, Comment))
    disarmed = left.model_copy(
        update={
            "auto_merge_by": None,
            "auto_merge_by_operator": False,
            "auto_merge_armed_here": False,
            "comment_markers": frozenset({comment.marker}),
        }
    )
    assert _plan_for(rule, armed, disarmed).operations == ()


# --- update: a branch behind its base, never merged in the same pass -------------------------


UPDATE_RULE = rule_with("Auto", allowedActions=["merge", "escalate", "update"])
BEHIND = {"merge_state_status": "BEHIND"}


@pytest.mark.parametrize(
    ("rule", "facts", "action", "guardrail", "operations"),
    [
        pytest.param(
            UPDATE_RULE,
            BEHIND,
            Action.UPDATE,
            None,
            (UpdateBranch("PR_1", HEAD),),
            id="behind-and-otherwise-mergeable-is-updated",
        ),
        pytest.param(
            UPDATE_RULE, {}, Action.WAIT, "not-behind", (), id="not-behind-nothing-to-update"
        ),
        pytest.param(
            UPDATE_RULE,
            {
                **BEHIND,
                "ci_status": CiStatus.FAILURE,
                "checks": (Check(name="ci", status="COMPLETED", conclusion="FAILURE"),),
            },
            Action.ESCALATE,
            "checks-not-passed",
            (),
            id="behind-with-a-failed-check-is-escalated",
        ),
        pytest.param(
            UPDATE_RULE,
            {**BEHIND, "mergeable": Mergeable.CONFLICTING},
            Action.ESCALATE,
            "not-mergeable",
            (),
            id="behind-with-conflicts-is-escalated",
        ),
        pytest.param(
            rule_with("Auto"),
            BEHIND,
            Action.ESCALATE,
            "action-not-allowed",
            (),
            id="update-is-not-allowed-by-default",
        ),
        pytest.param(
            UPDATE_RULE,
            {**BEHIND, "state": PullRequestState.MERGED},
            Action.WAIT,
            "not-open",
            (),
            id="a-merged-pr-is-not-updated",
        ),
    ],
)
def test_update_only_brings_a_behind_branch_up_to_date(rule, facts, action, guardrail, operations):
    """`update` pins the head; it needs BEHIND and nothing else in the way."""
    pr = make_pr(**facts)
    decision = decide(rule, pr, Verdict(action=Action.UPDATE, reason="behind"), "f")
    the_plan = plan(rule, decision, pr)
    assert (the_plan.action, the_plan.guardrail) == (action, guardrail)
    assert tuple(op for op in the_plan.operations if isinstance(op, UpdateBranch)) == operations


def test_update_never_merges_in_the_same_pass():
    """Whatever the strategy, an update's plan holds no merge, enqueue or arming."""
    for strategy in ("Auto", "Direct", "MergeQueue", "AutoMerge"):
        rule = rule_with(strategy, allowedActions=["merge", "update"])
        pr = make_pr(**BEHIND, **ARMED_BY_OPERATOR)
        the_plan = _plan_for(rule, pr, pr, action="update")
        assert the_plan.action is Action.UPDATE and the_plan.reported_action == "update"
        kinds = {type(op) for op in the_plan.operations}
        assert UpdateBranch in kinds and not kinds & {Merge, Enqueue, EnableAutoMerge}
        # What the operator armed at the old head is disarmed before the head moves.
        assert the_plan.operations[0] == DisableAutoMerge("PR_1")


def test_update_is_offered_to_the_model_only_when_the_rule_allows_it():
    """The answer's schema and the prompt name update only for a rule that lists it."""
    plain, with_update = rule_with(), UPDATE_RULE
    assert (
        "update" not in verdict_schema(plain.spec.permitted_actions)["properties"]["action"]["enum"]
    )
    assert (
        "update"
        in verdict_schema(with_update.spec.permitted_actions)["properties"]["action"]["enum"]
    )
    assert UPDATE_MEANING not in build_prompt(plain.spec, make_pr()).system
    assert UPDATE_MEANING in build_prompt(with_update.spec, make_pr()).system
    assert Action.UPDATE not in plain.spec.allowedActions


# --- a write whose answer was lost: fresh facts tell whether it took effect --------------------


@pytest.mark.parametrize(
    ("operation", "fresh", "done"),
    [
        pytest.param(Enqueue("PR_1", HEAD), {"in_merge_queue": True}, True, id="queued"),
        pytest.param(Enqueue("PR_1", HEAD), {}, False, id="not-queued"),
        pytest.param(
            EnableAutoMerge("PR_1", HEAD, MergeMethod.SQUASH, "t"),
            {"auto_merge_by": "ai-operator-bot"},
            True,
            id="armed",
        ),
        pytest.param(
            EnableAutoMerge("PR_1", HEAD, MergeMethod.SQUASH, "t"), {}, False, id="not-armed"
        ),
        pytest.param(DisableAutoMerge("PR_1"), {}, True, id="disarmed"),
        pytest.param(Dequeue("PR_1"), {"in_merge_queue": True}, False, id="still-queued"),
        pytest.param(UpdateBranch("PR_1", HEAD), {"head_oid": "c" * 40}, True, id="updated"),
        pytest.param(UpdateBranch("PR_1", HEAD), {}, False, id="not-updated"),
    ],
)
def test_fresh_facts_tell_whether_a_handover_took_effect(operation, fresh, done):
    """The read-back after a lost answer decides; nothing is sent twice."""
    assert already_done(operation, make_pr(**fresh)) is done


# --- the timeline: who armed, who undid, at this head -----------------------------------------


def ev(kind: EventKind, actor: str = "ai-operator-bot", **extra) -> TimelineEvent:
    return TimelineEvent(kind, actor=actor, by_operator=actor == "ai-operator-bot", **extra)


ON = EventKind.AUTO_MERGE_ENABLED
OFF = EventKind.AUTO_MERGE_DISABLED
IN = EventKind.ADDED_TO_MERGE_QUEUE
OUT = EventKind.REMOVED_FROM_MERGE_QUEUE


NEW_HEAD = "b" * 40


@pytest.mark.parametrize(
    ("events", "armed_here", "disabled_by", "dequeued_by"),
    [
        pytest.param([ev(ON)], True, None, None, id="armed-here"),
        pytest.param(
            [ev(ON), ev(EventKind.HEAD, oid="c" * 40)],
            False,
            None,
            None,
            id="armed-before-this-head",
        ),
        pytest.param([ev(ON), ev(OFF, "alice")], False, "alice", None, id="a-person-disabled-it"),
        pytest.param([ev(ON, "alice")], False, None, None, id="a-person-armed-it"),
        pytest.param([ev(ON), ev(OFF)], False, None, None, id="the-operator-disarmed-it"),
        pytest.param([ev(IN), ev(OUT, "alice")], False, None, "alice", id="a-person-dequeued-it"),
        pytest.param([ev(IN, "alice"), ev(OUT, "bob")], False, None, None, id="not-ours-to-win"),
    ],
)
def test_the_timeline_says_who_armed_and_who_undid(events, armed_here, disabled_by, dequeued_by):
    """Read by the operator's login, after the event that brought the current head."""
    moved = [e.oid for e in events if e.kind is EventKind.HEAD]
    head = moved[-1] if moved else NEW_HEAD
    timeline = [ev(EventKind.HEAD, oid=NEW_HEAD), *events]
    facts = read_timeline(timeline, head_oid=head, is_open=True, labels=())
    assert facts.auto_merge_armed_here is armed_here
    assert facts.auto_merge_disabled_by == disabled_by
    assert facts.dequeued_by == dequeued_by


def test_arming_by_the_operator_is_no_change_of_facts_but_a_persons_is():
    """The operator's own queueing or arming keeps a decision reusable; a person's does not."""
    plain = make_pr()
    assert make_pr(**ARMED_BY_OPERATOR).fingerprint() == plain.fingerprint()
    assert make_pr(**QUEUED_BY_OPERATOR).fingerprint() == plain.fingerprint()
    assert make_pr(auto_merge_by="alice").fingerprint() != plain.fingerprint()


# --- what the operator armed on a PR the search no longer finds -------------------------------


def test_a_pr_the_rule_no_longer_covers_is_disarmed_whatever_was_decided():
    """Even a wait decided for a PR that left the rule disarms the operator's auto-merge."""
    rule = rule_with("AutoMerge")
    left = make_pr(**PENDING, **ARMED_BY_OPERATOR, labels=("staging",))
    the_plan = plan(rule, leave_alone(rule, left, "f", "no longer covered"), left)
    assert the_plan.operations[0] == DisableAutoMerge("PR_1")


@pytest.mark.parametrize(
    ("applied", "seen", "found"),
    [
        pytest.param(("enable auto-merge (squash)", "comment"), set(), True, id="armed-unseen"),
        pytest.param(("enqueue",), set(), True, id="queued-unseen"),
        pytest.param(("enqueue",), {"acme/web#7"}, False, id="seen-by-the-search"),
        pytest.param(("disable auto-merge", "comment"), set(), False, id="already-disarmed"),
        pytest.param(("merge (squash)",), set(), False, id="merged"),
    ],
)
def test_records_say_which_unseen_prs_to_read_again(applied, seen, found):
    """Only a record of arming or queueing, for a PR the search did not find, is read again."""
    decision = decide(rule_with(), make_pr(), Verdict(action=Action.MERGE, reason="g"), "f")
    records = {"acme/web#7": Remembered("k", 0.0, decision, applied=applied)}
    assert bool(armed_elsewhere(records, seen)) is found


def test_queued_and_armed_count_apart_from_merged_in_the_metrics():
    """ai_operator_actions_total{action="merge"} counts merges only; queue and auto-merge apart."""

    def row(number, route):
        return PullRequestResult(
            rule="ns/r", repository="acme/web", number=number, action=Action.MERGE, route=route
        )

    report = PassReport(
        rule="ns/r",
        results=[
            row(1, MergeRoute.DIRECT),
            row(2, MergeRoute.QUEUE),
            row(3, MergeRoute.AUTO_MERGE),
        ],
    )
    tally = counts(report)
    assert tally.actions == {"merge": 1, "queue": 1, "auto-merge": 1}
    summary = summary_from_counts(
        "ns/r", tally, duration_seconds=1.0, succeeded=True, finished_at=0.0
    )
    [family] = [f for f in pass_metric_families(summary, {}) if f.name == "ai_operator_actions"]
    values = {s.labels["action"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert (values["merge"], values["queue"], values["auto-merge"]) == (1, 1, 1)
