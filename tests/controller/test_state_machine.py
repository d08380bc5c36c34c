"""The rule's state machine: from which state, on what outcome, to which state and conditions.

Each row is one transition: the state the rule was in (``None``: a new rule), what reconciling
it found (:class:`Outcome`), and what the controller then writes: the three conditions' status
and reason, and the events it posts. The states, reasons and events are enums whose values are
the strings written to Kubernetes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ai_operator.jobs.rules.model import GeneratedObject, LastRun, RuleStatus
from ai_operator.pipelines.controller.status import (
    STATES,
    ConditionType,
    Event,
    EventReason,
    EventType,
    Outcome,
    Reason,
    Runs,
    State,
    events,
    read_status,
    rule_status,
    status_patch,
)

BEFORE = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
AFTER = BEFORE + timedelta(minutes=5)
CRON_WORKFLOW = GeneratedObject(kind="CronWorkflow", name="staging-automerge")


def applied(*, written: bool = True) -> Outcome:
    return Outcome(
        state=State.READY,
        reason=Reason.APPLIED,
        message="compiled into CronWorkflow ai/staging-automerge",
        generated=CRON_WORKFLOW,
        schedule="*/5 * * * *",
        applied=written,
    )


def invalid(reason: Reason = Reason.VALIDATION_FAILED, message: str = "spec.x: bad") -> Outcome:
    return Outcome.invalid(reason, message)


def failed(reason: Reason = Reason.APPLY_FAILED, message: str = "forbidden") -> Outcome:
    return Outcome.apply_failed(reason, message, schedule="*/5 * * * *")


STARTS: dict[State | None, Outcome | None] = {
    None: None,
    State.READY: applied(),
    State.INVALID: invalid(),
    State.APPLY_FAILED: failed(),
}


@dataclass(frozen=True)
class Transition:
    """From ``start``, on ``outcome``: the conditions (type -> status, reason) and the events."""

    start: State | None
    outcome: Outcome
    ready: tuple[str, Reason]
    invalid: tuple[str, Reason]
    apply_failed: tuple[str, Reason]
    told: tuple[EventReason, ...]


READY_OK = ("True", Reason.APPLIED)
VALID = ("False", Reason.VALID)
NOT_FAILED = ("False", Reason.APPLIED)

TRANSITIONS = {
    "a new rule that applies is Ready, told once": Transition(
        None, applied(), READY_OK, VALID, NOT_FAILED, (EventReason.APPLIED,)
    ),
    "a Ready rule found up to date stays Ready, silently": Transition(
        State.READY, applied(written=False), READY_OK, VALID, NOT_FAILED, ()
    ),
    "a Ready rule changed and applied again stays Ready, told": Transition(
        State.READY, applied(), READY_OK, VALID, NOT_FAILED, (EventReason.APPLIED,)
    ),
    "a Ready rule edited into an invalid one becomes Invalid": Transition(
        State.READY,
        invalid(),
        ("False", Reason.INVALID),
        ("True", Reason.VALIDATION_FAILED),
        ("False", Reason.NOT_APPLIED),
        (EventReason.INVALID,),
    ),
    "a new rule outside its namespace's limits is Invalid": Transition(
        None,
        invalid(Reason.OUTSIDE_LIMITS, "spec.maxPRsPerRun: 50 is more than 20"),
        ("False", Reason.INVALID),
        ("True", Reason.OUTSIDE_LIMITS),
        ("False", Reason.NOT_APPLIED),
        (EventReason.INVALID,),
    ),
    "a rule that does not compile is Invalid": Transition(
        State.READY,
        invalid(Reason.COMPILE_FAILED, "no image"),
        ("False", Reason.INVALID),
        ("True", Reason.COMPILE_FAILED),
        ("False", Reason.NOT_APPLIED),
        (EventReason.INVALID,),
    ),
    "a rule whose check raised is Invalid": Transition(
        None,
        invalid(Reason.CHECK_FAILED, "the rule is nested too deeply to be checked"),
        ("False", Reason.INVALID),
        ("True", Reason.CHECK_FAILED),
        ("False", Reason.NOT_APPLIED),
        (EventReason.INVALID,),
    ),
    "a rule whose check took too long is Invalid": Transition(
        None,
        invalid(Reason.CHECK_TIMED_OUT, "checking the rule took longer than 5 s"),
        ("False", Reason.INVALID),
        ("True", Reason.CHECK_TIMED_OUT),
        ("False", Reason.NOT_APPLIED),
        (EventReason.INVALID,),
    ),
    "an Invalid rule with the same problem stays Invalid, silently": Transition(
        State.INVALID,
        invalid(),
        ("False", Reason.INVALID),
        ("True", Reason.VALIDATION_FAILED),
        ("False", Reason.NOT_APPLIED),
        (),
    ),
    "an Invalid rule with another problem stays Invalid, told": Transition(
        State.INVALID,
        invalid(message="spec.y: bad too"),
        ("False", Reason.INVALID),
        ("True", Reason.VALIDATION_FAILED),
        ("False", Reason.NOT_APPLIED),
        (EventReason.INVALID,),
    ),
    "an Invalid rule fixed becomes Ready": Transition(
        State.INVALID, applied(), READY_OK, VALID, NOT_FAILED, (EventReason.APPLIED,)
    ),
    "a Ready rule the API refuses becomes ApplyFailed": Transition(
        State.READY,
        failed(),
        ("False", Reason.APPLY_FAILED),
        VALID,
        ("True", Reason.APPLY_FAILED),
        (EventReason.APPLY_FAILED,),
    ),
    "a new rule whose object another owns is ApplyFailed (NotOwned)": Transition(
        None,
        failed(Reason.NOT_OWNED, "CronWorkflow ai/x exists and is not controlled by this rule"),
        ("False", Reason.APPLY_FAILED),
        VALID,
        ("True", Reason.NOT_OWNED),
        (EventReason.APPLY_FAILED,),
    ),
    "an ApplyFailed rule failing alike stays ApplyFailed, silently": Transition(
        State.APPLY_FAILED,
        failed(),
        ("False", Reason.APPLY_FAILED),
        VALID,
        ("True", Reason.APPLY_FAILED),
        (),
    ),
    "an ApplyFailed rule applied at a retry becomes Ready": Transition(
        State.APPLY_FAILED, applied(), READY_OK, VALID, NOT_FAILED, (EventReason.APPLIED,)
    ),
    "an ApplyFailed rule edited into an invalid one becomes Invalid": Transition(
        State.APPLY_FAILED,
        invalid(),
        ("False", Reason.INVALID),
        ("True", Reason.VALIDATION_FAILED),
        ("False", Reason.NOT_APPLIED),
        (EventReason.INVALID,),
    ),
}


def status_in(state: State | None) -> RuleStatus:
    start = STARTS[state]
    if start is None:
        return RuleStatus()
    return rule_status(start, 1, Runs(), RuleStatus(), BEFORE)


@pytest.mark.parametrize("row", TRANSITIONS.values(), ids=list(TRANSITIONS))
def test_transition(row: Transition) -> None:
    """From a state, on an outcome: the conditions written and the events posted."""
    previous = status_in(row.start)
    status = rule_status(row.outcome, 2, Runs(), previous, AFTER)
    found = {c.type: (c.status, c.reason) for c in status.conditions}
    assert found == {
        ConditionType.READY: row.ready,
        ConditionType.INVALID: row.invalid,
        ConditionType.APPLY_FAILED: row.apply_failed,
    }
    assert [event.reason for event in events(row.outcome, previous, None)] == list(row.told)
    assert status.lastError == (None if row.outcome.state is State.READY else row.outcome.message)
    assert all(c.observedGeneration == 2 for c in status.conditions)


@pytest.mark.parametrize("row", TRANSITIONS.values(), ids=list(TRANSITIONS))
def test_a_condition_keeps_its_transition_time_unless_its_status_changes(row: Transition) -> None:
    """``lastTransitionTime`` is the time of the last change of that condition's status."""
    previous = status_in(row.start)
    before = {c.type: c for c in previous.conditions}
    status = rule_status(row.outcome, 2, Runs(), previous, AFTER)
    for condition in status.conditions:
        old = before.get(condition.type)
        kept = old is not None and old.status == condition.status
        expected = "2026-12-01T10:00:00Z" if kept else "2026-12-01T10:05:00Z"
        assert condition.lastTransitionTime == expected, condition.type


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (State.READY, Reason.VALIDATION_FAILED),
        (State.INVALID, Reason.APPLIED),
        (State.INVALID, Reason.NOT_OWNED),
        (State.APPLY_FAILED, Reason.OUTSIDE_LIMITS),
        (State.READY, Reason.VALID),
    ],
)
def test_an_outcome_gives_only_a_reason_of_its_state(state: State, reason: Reason) -> None:
    """A state with another state's reason is a bug, refused where it is made."""
    with pytest.raises(ValueError, match="is not a reason of the state"):
        Outcome(state=state, reason=reason, message="x")


@pytest.mark.parametrize(
    ("outcome", "retried"),
    [
        (applied(), False),
        (invalid(), False),
        (failed(), True),
        (
            Outcome(
                state=State.INVALID, reason=Reason.VALIDATION_FAILED, message="x", pending=True
            ),
            True,
        ),
    ],
    ids=["ready", "invalid", "apply failed", "invalid, its object not deleted yet"],
)
def test_which_outcomes_are_reconciled_again_with_backoff(outcome: Outcome, retried: bool) -> None:
    """ApplyFailed, and an invalid rule whose object could not be deleted, are tried again."""
    assert outcome.retried is retried


def test_the_states_are_the_metric_labels() -> None:
    """``ai_operator_rules_total{state}`` takes these values, in this order."""
    assert [str(state) for state in STATES] == ["ready", "invalid", "apply_failed"]


def test_the_status_patch_is_plain_json_naming_every_status_field() -> None:
    """What is written: every field of the CRD's status (None removes it), strings on the wire."""
    status = rule_status(failed(), 3, Runs(), RuleStatus(), AFTER)
    patch = status_patch(status)
    assert set(patch) == set(RuleStatus.model_fields)
    assert json.loads(json.dumps(patch)) == patch
    assert patch["conditions"][2] == {
        "type": "ApplyFailed",
        "status": "True",
        "reason": "ApplyFailed",
        "message": "forbidden",
        "lastTransitionTime": "2026-12-01T10:05:00Z",
        "observedGeneration": 3,
    }
    assert type(patch["conditions"][2]["reason"]) is str
    assert patch["history"] is None and patch["generated"] is None
    assert read_status(patch | {"history": []}) == RuleStatus.model_validate(
        {k: v for k, v in patch.items() if v is not None}
    )


def test_a_status_changed_by_hand_reads_as_none() -> None:
    """A status the CRD's model refuses is written anew (its well-formed history is kept)."""
    found = read_status({"conditions": "broken", "history": [{"finishedAt": "x"}, 3]})
    assert found.conditions == []
    assert [entry.finishedAt for entry in found.history] == []


def test_a_failed_run_is_told_once() -> None:
    """RunFailed for a run that newly failed; not again at the next reconciliation."""
    run = LastRun(name="r-1", phase="Failed", message="boom")
    first = events(applied(written=False), RuleStatus(), run)
    assert first == [Event(EventReason.RUN_FAILED, "run r-1 ended Failed: boom", EventType.WARNING)]
    seen = rule_status(applied(written=False), 1, Runs(run, None), RuleStatus(), AFTER)
    assert events(applied(written=False), seen, run) == []
