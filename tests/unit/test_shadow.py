"""Shadow mode's score: what settles a decision, when it agrees, and what is kept. Pure."""

from __future__ import annotations

import pytest

from ai_operator.jobs.policy.decision import decide
from ai_operator.jobs.policy.outcome import shadow_records
from ai_operator.jobs.policy.reuse import (
    Candidate,
    Remembered,
    declined,
    memory_document,
    merged,
    read_memory_document,
)
from ai_operator.jobs.policy.shadow import (
    MAX_DECISIONS_PER_PR,
    Happened,
    HistoryEvent,
    HistoryKind,
    PullRequestHistory,
    ShadowDecision,
    agrees,
    read_score,
    score,
    settle,
    what_happened,
    with_decisions,
)
from ai_operator.jobs.policy.snapshot import PullRequestState
from ai_operator.jobs.policy.verdict import Verdict
from ai_operator.jobs.rules.model import Action
from tests.factories import make_pr, make_rule

HEAD, OTHER = "a" * 40, "b" * 40
DECIDED_AT = 1_800_000_000.0
LATER = DECIDED_AT + 60

OPEN, MERGED, CLOSED = PullRequestState.OPEN, PullRequestState.MERGED, PullRequestState.CLOSED


def history(
    *kinds: HistoryKind, state: PullRequestState = OPEN, head: str = HEAD
) -> PullRequestHistory:
    """Events after the decision, one second apart; a HEAD event brings ``OTHER``."""
    events = tuple(
        HistoryEvent(kind, LATER + i, OTHER if kind is HistoryKind.HEAD else None)
        for i, kind in enumerate(kinds)
    )
    return PullRequestHistory(state=state, head_oid=head, events=events)


MERGED_BY_PEOPLE = history(HistoryKind.MERGED, state=MERGED)
CLOSED_BY_PEOPLE = history(HistoryKind.CLOSED, state=CLOSED)
PERSON_STEPPED_IN = history(HistoryKind.PERSON)
NEW_HEAD = history(HistoryKind.HEAD, head=OTHER)
MERGED_AFTER_NEW_HEAD = history(HistoryKind.HEAD, HistoryKind.MERGED, state=MERGED, head=OTHER)
REVIEWED_THEN_MERGED = history(HistoryKind.PERSON, HistoryKind.MERGED, state=MERGED)
NOTHING_YET = history()


@pytest.mark.parametrize(
    ("decided", "seen", "happened", "agreed"),
    [
        # merge
        pytest.param(Action.MERGE, MERGED_BY_PEOPLE, Happened.MERGED, True, id="merge-merged"),
        pytest.param(Action.MERGE, CLOSED_BY_PEOPLE, Happened.CLOSED, False, id="merge-closed"),
        pytest.param(Action.MERGE, PERSON_STEPPED_IN, None, False, id="merge-review-not-settled"),
        pytest.param(Action.MERGE, NEW_HEAD, Happened.CHANGED, False, id="merge-changed"),
        pytest.param(
            Action.MERGE, REVIEWED_THEN_MERGED, Happened.MERGED, True, id="merge-reviewed-merged"
        ),
        pytest.param(
            Action.MERGE, MERGED_AFTER_NEW_HEAD, Happened.CHANGED, False, id="merge-other-head"
        ),
        pytest.param(Action.MERGE, NOTHING_YET, None, False, id="merge-pending"),
        # close
        pytest.param(Action.CLOSE, MERGED_BY_PEOPLE, Happened.MERGED, False, id="close-merged"),
        pytest.param(Action.CLOSE, CLOSED_BY_PEOPLE, Happened.CLOSED, True, id="close-closed"),
        pytest.param(Action.CLOSE, PERSON_STEPPED_IN, None, False, id="close-comment-not-settled"),
        pytest.param(Action.CLOSE, NEW_HEAD, Happened.CHANGED, False, id="close-changed"),
        pytest.param(Action.CLOSE, NOTHING_YET, None, False, id="close-pending"),
        # escalate
        pytest.param(
            Action.ESCALATE, MERGED_BY_PEOPLE, Happened.MERGED, False, id="escalate-merged"
        ),
        pytest.param(
            Action.ESCALATE, CLOSED_BY_PEOPLE, Happened.CLOSED, False, id="escalate-closed"
        ),
        pytest.param(
            Action.ESCALATE, PERSON_STEPPED_IN, Happened.STEPPED_IN, True, id="escalate-stepped-in"
        ),
        pytest.param(Action.ESCALATE, NEW_HEAD, Happened.CHANGED, False, id="escalate-changed"),
        pytest.param(
            Action.ESCALATE,
            REVIEWED_THEN_MERGED,
            Happened.STEPPED_IN,
            True,
            id="escalate-stepped-in-before-merge",
        ),
        pytest.param(Action.ESCALATE, NOTHING_YET, None, False, id="escalate-pending"),
        # wait
        pytest.param(Action.WAIT, MERGED_BY_PEOPLE, Happened.MERGED, False, id="wait-merged"),
        pytest.param(Action.WAIT, CLOSED_BY_PEOPLE, Happened.CLOSED, False, id="wait-closed"),
        pytest.param(
            Action.WAIT, PERSON_STEPPED_IN, Happened.STEPPED_IN, False, id="wait-stepped-in"
        ),
        pytest.param(Action.WAIT, NEW_HEAD, Happened.CHANGED, True, id="wait-changed"),
        pytest.param(Action.WAIT, NOTHING_YET, None, False, id="wait-pending"),
    ],
)
def test_what_settles_a_decision_and_whether_it_agrees(
    decided: Action, seen: PullRequestHistory, happened: Happened | None, agreed: bool
) -> None:
    """The first event that tells settles the decision; it agrees with one outcome only."""
    assert what_happened(decided, HEAD, DECIDED_AT, seen) is happened
    settled = settle(ShadowDecision(decided, HEAD, DECIDED_AT), seen, now=LATER + 100)
    assert settled.happened is happened
    assert settled.agreed is agreed
    assert settled.settled_at == (LATER + 100 if happened else None)


def test_events_before_the_decision_do_not_settle_it() -> None:
    """A label added before the decision is what it was decided on, not what happened next."""
    earlier = PullRequestHistory(OPEN, HEAD, (HistoryEvent(HistoryKind.PERSON, DECIDED_AT - 5),))
    assert what_happened(Action.ESCALATE, HEAD, DECIDED_AT, earlier) is None


@pytest.mark.parametrize(
    ("state", "head", "happened"),
    [
        pytest.param(MERGED, HEAD, Happened.MERGED, id="merged-at-that-head"),
        pytest.param(MERGED, OTHER, Happened.CHANGED, id="merged-at-another-head"),
        pytest.param(CLOSED, HEAD, Happened.CLOSED, id="closed"),
        pytest.param(OPEN, OTHER, Happened.CHANGED, id="open-at-another-head"),
        pytest.param(OPEN, HEAD, None, id="open-unchanged"),
    ],
)
def test_the_state_settles_when_the_timeline_does_not_tell(
    state: PullRequestState, head: str, happened: Happened | None
) -> None:
    """Events past the page read: the state and head now settle the decision the same way."""
    assert what_happened(Action.MERGE, HEAD, DECIDED_AT, history(state=state, head=head)) is (
        happened
    )


def test_each_action_agrees_with_exactly_one_outcome() -> None:
    """merge-merged, close-closed, escalate-stepped_in, wait-changed, update-changed; no more."""
    pairs = {(a, h) for a in Action for h in Happened if agrees(a, h)}
    assert pairs == {
        (Action.MERGE, Happened.MERGED),
        (Action.CLOSE, Happened.CLOSED),
        (Action.ESCALATE, Happened.STEPPED_IN),
        (Action.WAIT, Happened.CHANGED),
        (Action.UPDATE, Happened.CHANGED),
    }


def test_the_score_counts_decisions_settled_and_agreed_per_action() -> None:
    """decisions, settled, agreed per action, and the agreement over all settled."""
    decisions = [
        ShadowDecision(Action.MERGE, HEAD, 1, Happened.MERGED, 2),
        ShadowDecision(Action.MERGE, HEAD, 3, Happened.CHANGED, 4),
        ShadowDecision(Action.CLOSE, HEAD, 5, Happened.CLOSED, 6),
        ShadowDecision(Action.ESCALATE, HEAD, 7),
    ]
    found = score(decisions)
    assert (found.decisions, found.settled, found.agreed) == (4, 3, 2)
    assert found.agreement == pytest.approx(2 / 3)
    document = found.to_json()
    assert document["actions"]["merge"] == {
        "decisions": 2,
        "settled": 2,
        "agreed": 1,
        "happened": {"changed": 1, "merged": 1},
    }
    assert document["actions"]["wait"] == {
        "decisions": 0,
        "settled": 0,
        "agreed": 0,
        "happened": {},
    }
    back = read_score(document)
    assert back is not None
    assert back.to_json() == document
    assert with_decisions(found, {"wait": 2}).decisions == 6
    assert score([]).agreement is None


def remembered(*shadows: ShadowDecision, at: float = DECIDED_AT, shadow: bool = True) -> Remembered:
    rule = make_rule()
    decision = decide(rule, make_pr(), Verdict(action=Action.MERGE, reason="green"), "fp")
    return Remembered("d-key", at, decision, shadow=shadow, shadow_decisions=shadows)


def test_a_shadow_record_is_never_reused_by_an_enforcing_pass() -> None:
    """Remembered state only saves work: a shadow decision never makes an action happen."""
    record = remembered(ShadowDecision(Action.MERGE, HEAD, DECIDED_AT))
    candidate = Candidate(make_pr(), "d-key", record)
    assert declined(candidate, now=DECIDED_AT + 1, max_age=3600) == (
        "a shadow decision is never acted on"
    )
    assert declined(candidate, now=DECIDED_AT + 1, max_age=3600, shadow=True) is None


def test_shadow_records_round_trip_and_merge_without_losing_the_score() -> None:
    """The store keeps every copy's shadow decisions; a settled copy wins over an open one."""
    first = ShadowDecision(Action.MERGE, HEAD, DECIDED_AT)
    settled_first = ShadowDecision(Action.MERGE, HEAD, DECIDED_AT, Happened.CHANGED, LATER)
    second = ShadowDecision(Action.WAIT, OTHER, LATER + 1)
    stored = {"acme/web#7": remembered(first)}
    newer = {"acme/web#7": remembered(second, at=LATER + 1)}
    swept = {"acme/web#7": remembered(settled_first)}
    together = merged(stored, newer, swept)["acme/web#7"]
    assert together.shadow_decisions == (settled_first, second)
    document = memory_document(
        {"acme/web#7": together}, rule="ns/rule", now=LATER + 2, max_age=3600, max_entries=10
    )
    again = read_memory_document(document, rule="ns/rule")["acme/web#7"]
    assert again.shadow and again.shadow_decisions == (settled_first, second)


def test_records_without_shadow_keep_their_stored_shape() -> None:
    """An enforcing rule's records carry no shadow fields."""
    document = memory_document(
        {"acme/web#7": remembered(shadow=False)},
        rule="ns/rule",
        now=DECIDED_AT,
        max_age=3600,
        max_entries=10,
    )
    assert "shadow" not in document["entries"]["acme/web#7"]


def test_a_shadow_record_outlives_the_reuse_age_for_its_score() -> None:
    """A week of shadowing is read after it: the score is kept past the memo's max age."""
    record = remembered(ShadowDecision(Action.MERGE, HEAD, DECIDED_AT))
    week = DECIDED_AT + 7 * 86400
    document = memory_document(
        {"acme/web#7": record}, rule="ns/rule", now=week, max_age=3600, max_entries=10
    )
    assert "acme/web#7" in document["entries"]


def test_a_pull_requests_shadow_decisions_are_bounded() -> None:
    """At most MAX_DECISIONS_PER_PR are kept, the newest."""
    many = [
        {"acme/web#7": remembered(ShadowDecision(Action.WAIT, HEAD, float(i)))} for i in range(30)
    ]
    together = merged(*many)["acme/web#7"]
    assert len(together.shadow_decisions) == MAX_DECISIONS_PER_PR
    assert together.shadow_decisions[-1].decided_at == 29.0


def test_a_shadow_pass_keeps_its_records_marked_with_their_decision() -> None:
    """Nothing applied, marked shadow, one open decision at the head decided on."""
    record = remembered(shadow=False)
    kept = shadow_records({"acme/web#7": record}, now=DECIDED_AT)["acme/web#7"]
    assert kept.shadow and kept.applied == ()
    assert kept.shadow_decisions == (
        ShadowDecision(Action.MERGE, record.decision.head_oid, DECIDED_AT),
    )
