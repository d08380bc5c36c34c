"""What the controller writes about a rule: its status, and the events worth telling people.

Pure: everything here turns an :class:`Outcome` (what reconciling a rule found), the rule's
previous status and the newest run into a :class:`jobs.rules.model.RuleStatus` (the model the
CRD's status schema is generated from, so that what is written and what the CRD declares cannot
disagree) and :class:`Event` values (posted as :class:`EventObject`). No I/O, no clock (``now``
is passed in).

The status has three conditions in ``metav1.Condition`` shape, each set for the rule's
generation:

===========  ==========================  ==================================================
type         True when                   reason
===========  ==========================  ==================================================
Ready        compiled and applied        ``Applied``; when False: ``Invalid``, ``ApplyFailed``
Invalid      the rule is refused         the outcome's reason (:data:`INVALID_REASONS`);
                                         else ``Valid``
ApplyFailed  the API refused the object  ``ApplyFailed`` / ``NotOwned``; else ``Applied`` or
             or kept failing             ``NotApplied`` (an invalid rule is not applied)
===========  ==========================  ==================================================

A condition's ``lastTransitionTime`` changes only when its status does, so a status computed
twice from the same facts is identical, and the controller can skip writing it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.reconcile.report import append_history, history_entry
from ai_operator.jobs.reconcile.wire import SUMMARY
from ai_operator.jobs.rules.model import (
    Condition,
    GeneratedObject,
    LastRun,
    RuleStatus,
    RunRecord,
    ShadowStatus,
)
from ai_operator.pipelines.controller.objects import (
    JobObject,
    RuleObject,
    WorkflowObject,
)

MAX_MESSAGE = 1024  # events are cut at 1 KiB by the API server; conditions are kept as short
MAX_NAME = 253
SUMMARY_OUTPUT = SUMMARY  # the workflow's global output with the run's counts
APP_COMPONENT = "ai-operator"
"""Who posts the controller's events (``source.component``, ``reportingComponent``)."""


class State(StrEnum):
    """Where a rule stands after a reconciliation (the ``state`` label of the rules metric)."""

    READY = "ready"
    INVALID = "invalid"
    APPLY_FAILED = "apply_failed"


STATES: tuple[State, ...] = tuple(State)


@dataclass(frozen=True, order=True)
class RuleState:
    """A served rule's namespace and state (what ``/metrics`` counts)."""

    namespace: str
    state: State


class ConditionType(StrEnum):
    """The conditions of a rule's status."""

    READY = "Ready"
    INVALID = "Invalid"
    APPLY_FAILED = "ApplyFailed"
    PAUSED = "Paused"
    """Present only while writes are paused (the installation's value, the namespace's
    annotation): the rule's passes decide and write nothing."""


class ConditionStatus(StrEnum):
    """A condition's status (the controller never writes ``Unknown``)."""

    TRUE = "True"
    FALSE = "False"


class Reason(StrEnum):
    """Why a rule is in its state: an outcome's reason, and the reasons of the conditions."""

    APPLIED = "Applied"
    """Ready: compiled and applied (or found up to date)."""
    VALIDATION_FAILED = "ValidationFailed"
    """Invalid: the rule fails the checks of ``ai-operator validate``."""
    OUTSIDE_LIMITS = "OutsideLimits"
    """Invalid: the rule asks for more than its namespace's PRReconciliationLimits allow."""
    COMPILE_FAILED = "CompileFailed"
    """Invalid: the rule is valid but cannot be compiled."""
    CHECK_FAILED = "CheckFailed"
    """Invalid: checking the rule raised (nested too deeply, a bug): never retried."""
    CHECK_TIMED_OUT = "CheckTimedOut"
    """Invalid: checking the rule took longer than the time limit."""
    APPLY_FAILED = "ApplyFailed"
    """ApplyFailed: the API server refused the object, or kept failing; retried with backoff."""
    NOT_OWNED = "NotOwned"
    """ApplyFailed: an object of the generated name exists and is not this rule's."""
    # Reasons only conditions carry (the other side of a state):
    VALID = "Valid"
    """Invalid=False: the rule passed its checks."""
    NOT_APPLIED = "NotApplied"
    """ApplyFailed=False for an invalid rule: nothing was applied, nothing failed."""
    INVALID = "Invalid"
    """Ready=False for an invalid rule."""
    PAUSED = "Paused"
    """Paused=True: writes are paused for the installation or the rule's namespace."""


INVALID_REASONS = frozenset(
    {
        Reason.VALIDATION_FAILED,
        Reason.OUTSIDE_LIMITS,
        Reason.COMPILE_FAILED,
        Reason.CHECK_FAILED,
        Reason.CHECK_TIMED_OUT,
    }
)
REASONS: Mapping[State, frozenset[Reason]] = {
    State.READY: frozenset({Reason.APPLIED}),
    State.INVALID: INVALID_REASONS,
    State.APPLY_FAILED: frozenset({Reason.APPLY_FAILED, Reason.NOT_OWNED}),
}
"""The reasons an outcome of each state may give (an :class:`Outcome` checks it)."""


class EventReason(StrEnum):
    """The reason of an Event the controller posts on a rule."""

    APPLIED = "Applied"
    ADOPTED = "Adopted"
    DRIFT_REPAIRED = "DriftRepaired"
    INVALID = "Invalid"
    APPLY_FAILED = "ApplyFailed"
    RUN_FAILED = "RunFailed"


class EventType(StrEnum):
    """An Event's type."""

    NORMAL = "Normal"
    WARNING = "Warning"


class RunPhase(StrEnum):
    """A run's phase as ``lastRun`` shows it (Argo's phases; a Job's mapped onto them)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"


FAILED_PHASES = frozenset({RunPhase.FAILED, RunPhase.ERROR})


@dataclass(frozen=True)
class Event:
    """A Kubernetes event to post on the rule."""

    reason: EventReason
    message: str
    type: EventType = EventType.NORMAL


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What reconciling one rule found; its ``reason`` must be one of its ``state``'s."""

    state: State
    reason: Reason
    message: str
    generated: GeneratedObject | None = None
    schedule: str | None = None
    schedule_note: str | None = None
    applied: bool = False
    """The object was written by this reconciliation (not merely found up to date)."""
    told: tuple[Event, ...] = ()
    """More events to post (an object put back after a hand edit, an old object adopted)."""
    triggers: str | None = None
    """What starts the rule's passes (``schedule``, ``schedule+events``)."""
    sensor: str | None = None
    """The rule's Sensor, when it has one."""
    pending: bool = False
    """Something the outcome calls for is not done yet (an invalid rule's object could not be
    deleted): the rule is reconciled again soon."""

    def __post_init__(self) -> None:
        if self.reason not in REASONS[self.state]:
            raise ValueError(f"{self.reason} is not a reason of the state {self.state}")

    @classmethod
    def invalid(cls, reason: Reason, message: str) -> Outcome:
        """The rule is refused (it runs nothing) for ``reason``."""
        return cls(state=State.INVALID, reason=reason, message=message)

    @classmethod
    def apply_failed(
        cls,
        reason: Reason,
        message: str,
        *,
        generated: GeneratedObject | None = None,
        schedule: str | None = None,
    ) -> Outcome:
        """The rule is valid but its object could not be applied (tried again later)."""
        return cls(
            state=State.APPLY_FAILED,
            reason=reason,
            message=message,
            generated=generated,
            schedule=schedule,
        )

    @property
    def retried(self) -> bool:
        """Whether the controller reconciles the rule again soon, with backoff."""
        return self.state is State.APPLY_FAILED or self.pending


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second, as Kubernetes writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --- status ----------------------------------------------------------------------------------


def read_status(raw: object) -> RuleStatus:
    """A rule's status as the API server returned it; a status the model refuses reads as none.

    Only the controller writes the status, so a refused one was changed by hand: it is
    written anew.
    """
    if not isinstance(raw, Mapping):
        return RuleStatus()
    try:
        return RuleStatus.model_validate(raw)
    except ValidationError:
        return RuleStatus.model_validate({"history": _history_of(raw.get("history"))})


def rule_status(
    outcome: Outcome,
    generation: int | None,
    runs: Runs,
    previous: RuleStatus,
    now: datetime,
    paused: str | None = None,
) -> RuleStatus:
    """The whole status for ``outcome`` and ``runs``, keeping unchanged transition times.

    ``paused`` says why writes are paused: the condition ``Paused`` is then added (it is absent
    otherwise, so a rule that was never paused has only its three conditions).
    """
    last = runs.last
    return RuleStatus(
        observedGeneration=generation,
        conditions=conditions(outcome, generation, previous.conditions, now, paused),
        generated=outcome.generated,
        schedule=outcome.schedule,
        scheduleNote=outcome.schedule_note,
        lastRun=last,
        history=list(runs.history) if runs.history is not None else list(previous.history),
        lastReconciliationTime=last.finishedAt if last else None,
        processedPRCount=last.pullRequests if last else None,
        lastError=outcome.message if outcome.state is not State.READY else None,
        shadow=runs.shadow if runs.shadow is not None else previous.shadow,
        triggers=outcome.triggers,
        sensor=outcome.sensor,
    )


def status_patch(status: RuleStatus) -> dict[str, Any]:
    """The merge patch that makes the stored status ``status``: every field, ``None`` removing.

    Objects are written whole with ``None`` for their absent fields (a merge patch would
    otherwise keep, say, the previous run's ``message`` on the next one); list members are
    stored as they are, so a history entry carries only the fields it has.
    """
    dumped = status.model_dump(mode="json")
    patch: dict[str, Any] = {name: dumped.get(name) for name in RuleStatus.model_fields}
    history = patch.get("history")
    patch["history"] = (
        [{k: v for k, v in entry.items() if v is not None} for entry in history]
        if history
        else None
    )
    return patch


def conditions(
    outcome: Outcome,
    generation: int | None,
    previous: Iterable[Condition],
    now: datetime,
    paused: str | None = None,
) -> list[Condition]:
    """Ready, Invalid and ApplyFailed for ``outcome``, keeping unchanged transition times.

    While ``paused`` (why writes are paused), the condition Paused too.
    """
    before = {condition.type: condition for condition in previous}
    result = []
    wanted_ones = _wanted_conditions(outcome)
    if paused:
        wanted_ones.append(_Wanted(ConditionType.PAUSED, True, Reason.PAUSED, paused))
    for wanted in wanted_ones:
        status = ConditionStatus.TRUE if wanted.true else ConditionStatus.FALSE
        old = before.get(wanted.type)
        since = old.lastTransitionTime if old is not None and old.status == status.value else None
        result.append(
            Condition(
                type=wanted.type,
                status=status.value,
                reason=wanted.reason,
                message=short(wanted.message),
                lastTransitionTime=since or timestamp(now),
                observedGeneration=generation,
            )
        )
    return result


@dataclass(frozen=True)
class _Wanted:
    """One condition as the outcome sets it (before transition times)."""

    type: ConditionType
    true: bool
    reason: Reason
    message: str


def _wanted_conditions(outcome: Outcome) -> list[_Wanted]:
    """Each condition's truth, reason and message for ``outcome``: the state machine's output."""
    state = outcome.state
    ready, invalid, failed = (
        state is State.READY,
        state is State.INVALID,
        state is State.APPLY_FAILED,
    )
    ready_reason = Reason.APPLIED if ready else (Reason.INVALID if invalid else Reason.APPLY_FAILED)
    applied_reason = Reason.NOT_APPLIED if invalid else Reason.APPLIED
    return [
        _Wanted(ConditionType.READY, ready, ready_reason, outcome.message),
        _Wanted(
            ConditionType.INVALID,
            invalid,
            outcome.reason if invalid else Reason.VALID,
            outcome.message if invalid else "",
        ),
        _Wanted(
            ConditionType.APPLY_FAILED,
            failed,
            outcome.reason if failed else applied_reason,
            outcome.message if failed else "",
        ),
    ]


def same_status(status: RuleStatus, current: JsonValue) -> bool:
    """Whether writing ``status`` over the stored ``current`` changes nothing (absent is None)."""
    now = current if isinstance(current, Mapping) else {}
    wanted = status_patch(status)
    return all(_pruned(now.get(key)) == _pruned(value) for key, value in wanted.items())


def _pruned(value: Any) -> Any:
    """``value`` without ``None`` members, as the API server stores a merge patch."""
    if isinstance(value, Mapping):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


# --- events ----------------------------------------------------------------------------------

_CONDITION_EVENTS = (
    (ConditionType.INVALID, State.INVALID, EventReason.INVALID),
    (ConditionType.APPLY_FAILED, State.APPLY_FAILED, EventReason.APPLY_FAILED),
)


def events(outcome: Outcome, previous: RuleStatus, last_run: LastRun | None) -> list[Event]:
    """What to tell people: an apply, a new problem, a newly failed run (once per run)."""
    found: list[Event] = list(outcome.told)
    before = {condition.type: condition for condition in previous.conditions}
    if outcome.applied and outcome.generated:
        what = f"{outcome.generated.kind} {outcome.generated.name}"
        message = short(f"compiled and applied {what} ({outcome.schedule})")
        found.append(Event(EventReason.APPLIED, message))
    for kind, state, reason in _CONDITION_EVENTS:
        old = before.get(kind)
        unchanged = (
            old is not None
            and old.status == ConditionStatus.TRUE.value
            and old.message == short(outcome.message)
        )
        if outcome.state is state and not unchanged:
            found.append(Event(reason, short(outcome.message), EventType.WARNING))
    if last_run is not None and last_run.phase in FAILED_PHASES:
        old_run = previous.lastRun
        seen = (
            old_run is not None and old_run.name == last_run.name and old_run.phase in FAILED_PHASES
        )
        if not seen:
            message = f"run {last_run.name} ended {last_run.phase}"
            if last_run.message:
                message += f": {last_run.message}"
            found.append(Event(EventReason.RUN_FAILED, short(message), EventType.WARNING))
    return found


class _Written(BaseModel):
    """A document the controller writes: every field as declared, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EventMetadata(_Written):
    """An Event's ``metadata``."""

    name: str
    namespace: str


class InvolvedObject(_Written):
    """An Event's ``involvedObject``: the rule, at the version reconciled."""

    apiVersion: str
    kind: str
    name: str
    namespace: str
    uid: str | None
    resourceVersion: str | None


class EventSource(_Written):
    """An Event's ``source``."""

    component: str = APP_COMPONENT


class EventObject(_Written):
    """A ``core/v1`` Event about a rule, as the controller posts it."""

    apiVersion: Literal["v1"] = "v1"
    kind: Literal["Event"] = "Event"
    metadata: EventMetadata
    involvedObject: InvolvedObject
    reason: str
    message: str
    type: str
    source: EventSource = EventSource()
    reportingComponent: str = APP_COMPONENT
    reportingInstance: str
    firstTimestamp: str
    lastTimestamp: str
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        """The Event as the API server takes it."""
        return self.model_dump(mode="json")


def event_object(event: Event, rule: RuleObject, now: datetime, instance: str) -> EventObject:
    """The ``core/v1`` Event about ``rule``, named by what it says (see :func:`event_name`)."""
    ref = rule.ref
    moment = timestamp(now)
    return EventObject(
        metadata=EventMetadata(
            name=event_name(event, rule, moment, instance), namespace=ref.namespace
        ),
        involvedObject=InvolvedObject(
            apiVersion=ref.api_version,
            kind=ref.kind,
            name=ref.name,
            namespace=ref.namespace,
            uid=ref.uid,
            resourceVersion=rule.resource_version,
        ),
        reason=event.reason.value,
        message=event.message,
        type=event.type.value,
        reportingInstance=instance,
        firstTimestamp=moment,
        lastTimestamp=moment,
    )


def event_name(event: Event, rule: RuleObject, moment: str, instance: str) -> str:
    """``<rule>.<digest>``: the same event of the same reconciliation always has the same name.

    So a create that is repeated after a timeout (it may have been applied) answers 409
    ``AlreadyExists`` rather than posting the event twice.
    """
    said = "\n".join(
        (
            rule.ref.uid or "",
            rule.resource_version or "",
            event.reason,
            event.type,
            event.message,
            moment,
            instance,
        )
    )
    digest = hashlib.sha256(said.encode()).hexdigest()[:16]
    return f"{rule.ref.name[: MAX_NAME - len(digest) - 1]}.{digest}"


# --- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    """What the rule's runs say: the newest, and the history (None: leave it as it is)."""

    last: LastRun | None = None
    history: tuple[RunRecord, ...] | None = field(default=None)
    shadow: ShadowStatus | None = None
    """The shadow score of the newest finished run that reported one (None: keep the status')."""


def workflow_runs(workflows: Iterable[WorkflowObject], previous: RuleStatus) -> Runs:
    """The newest Workflow as ``lastRun``; every finished one added to the status history.

    Entries are made by :func:`jobs.reconcile.report.history_entry` from the run's counts, in the
    order the runs finished; adding a run already there changes nothing.
    """
    items = list(workflows)
    latest = newest(items)
    history = list(previous.history)
    finished = sorted(
        (w for w in items if w.status.finishedAt), key=lambda w: str(w.status.finishedAt)
    )
    for workflow in finished:
        entry = history_entry(
            run_counts(workflow),
            finished_at=str(workflow.status.finishedAt),
            succeeded=workflow.status.phase == RunPhase.SUCCEEDED,
            workflow=workflow.metadata.name,
        )
        history = append_history(history, entry)
    return Runs(
        workflow_run(latest) if latest else None,
        tuple(history),
        _newest_shadow(finished),
    )


def _newest_shadow(finished: Sequence[WorkflowObject]) -> ShadowStatus | None:
    """``status.shadow`` from the newest finished run whose counts carry a shadow score."""
    for workflow in reversed(finished):
        score = run_counts(workflow).shadow_score
        if score is None:
            continue
        try:
            return ShadowStatus.model_validate(
                {**score.to_json(), "workflow": workflow.metadata.name}
            )
        except ValidationError:
            continue
    return None


def _history_of(raw: object) -> list[RunRecord]:
    """The entries of a status history the model accepts (others were changed by hand)."""
    if not isinstance(raw, list):
        return []
    found = []
    for item in raw:
        try:
            found.append(RunRecord.model_validate(item))
        except ValidationError:
            continue
    return found


def job_runs(jobs: Iterable[JobObject]) -> Runs:
    """The newest Job as ``lastRun`` (no history: a Job's counts are only in its pod's log)."""
    latest = newest(list(jobs))
    return Runs(job_run(latest) if latest else None, None)


_Run = TypeVar("_Run", WorkflowObject, JobObject)


def newest(items: Sequence[_Run]) -> _Run | None:
    """The most recently created run (ties: the greatest name)."""
    return max(
        items,
        key=lambda item: (item.metadata.creationTimestamp or "", item.metadata.name),
        default=None,
    )


def run_counts(workflow: WorkflowObject) -> PassCounts:
    """The run's counts, from its global output ``summary`` (empty counts when it has none)."""
    return PassCounts.read(workflow.status.output(SUMMARY_OUTPUT) or "")


def workflow_run(workflow: WorkflowObject) -> LastRun:
    """``lastRun`` of an Argo Workflow: phase, times, and the run's counts when it has them."""
    status = workflow.status
    phase = status.phase or RunPhase.PENDING
    pull_requests: int | None = None
    actions: dict[str, int] | None = None
    dry_run: bool | None = None
    if status.output(SUMMARY_OUTPUT) is not None:
        counts = run_counts(workflow)
        pull_requests = counts.prs_processed
        dry_run = True if counts.dry_run else None
        actions = dict(sorted(counts.actions.items())) or None
    failed = phase in FAILED_PHASES and status.message
    return LastRun(
        name=workflow.metadata.name,
        phase=phase,
        startedAt=status.startedAt,
        finishedAt=status.finishedAt,
        pullRequests=pull_requests,
        actions=actions,
        dryRun=dry_run,
        message=short(str(status.message), 200) if failed else None,
    )


def job_run(job: JobObject) -> LastRun:
    """``lastRun`` of a CronJob's Job: phase and times (its counts are only in the pod's log)."""
    status = job.status
    done = status.done()
    message = None
    if "Complete" in done:
        phase, finished = RunPhase.SUCCEEDED, status.completionTime
    elif "Failed" in done:
        phase, finished = RunPhase.FAILED, done["Failed"].lastTransitionTime
        if done["Failed"].message:
            message = short(done["Failed"].message, 200)
    else:
        phase = RunPhase.RUNNING if status.active else RunPhase.PENDING
        finished = None
    return LastRun(
        name=job.metadata.name,
        phase=phase.value,
        startedAt=status.startTime,
        finishedAt=finished,
        message=message,
    )
