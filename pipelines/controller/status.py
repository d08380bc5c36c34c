"""What the controller writes about a rule: its status, and the events worth telling people.

Pure: everything here turns an :class:`Outcome` (what reconciling a rule found), the rule's
previous status and the newest run into dictionaries. No I/O, no clock (``now`` is passed in).

The status (see :class:`jobs.rules.model.RuleStatus`) has three conditions in
``metav1.Condition`` shape, each set for the rule's generation:

========  ==========================  ====================================================
type      True when                   reason
========  ==========================  ====================================================
Ready     compiled and applied        ``Applied``; when False: ``Invalid``, ``ApplyFailed``
Invalid   the rule fails validation   ``ValidationFailed`` / ``CompileFailed``; else ``Valid``
ApplyFailed  the API refused the      ``ApplyFailed`` / ``NotOwned``; else ``Applied`` or
          object or kept failing      ``NotApplied`` (an invalid rule is not applied)
========  ==========================  ====================================================

A condition's ``lastTransitionTime`` changes only when its status does, so a status computed
twice from the same facts is identical, and the controller can skip writing it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from jobs.reconcile.report import append_history, history_entry

State = Literal["ready", "invalid", "apply_failed"]
STATES: tuple[State, ...] = ("ready", "invalid", "apply_failed")
FAILED_PHASES = frozenset({"Failed", "Error"})
MAX_MESSAGE = 1024  # events are cut at 1 KiB by the API server; conditions are kept as short

SUMMARY_OUTPUT = "summary"  # the workflow's global output with the run's counts


@dataclass(frozen=True)
class Generated:
    """The object a rule is compiled into."""

    kind: str
    name: str


@dataclass(frozen=True)
class Outcome:
    """What reconciling one rule found."""

    state: State
    reason: str
    """One CamelCase word: Applied, Unchanged, ValidationFailed, CompileFailed, ..."""
    message: str
    generated: Generated | None = None
    schedule: str | None = None
    schedule_note: str | None = None
    applied: bool = False
    """The object was written by this reconciliation (not merely found up to date)."""
    told: tuple[Event, ...] = ()
    """More events to post (an object put back after a hand edit, an old object adopted)."""
    pending: bool = False
    """Something the outcome calls for is not done yet (an invalid rule's object could not be
    deleted): the rule is reconciled again soon."""


@dataclass(frozen=True)
class Event:
    """A Kubernetes event to post on the rule."""

    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second, as Kubernetes writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --- status ----------------------------------------------------------------------------------


def rule_status(
    outcome: Outcome,
    generation: int | None,
    runs: Runs,
    previous: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The whole status to write; ``None`` values remove a field (merge patch)."""
    old = previous or {}
    last_run = runs.last
    generated = (
        {"kind": outcome.generated.kind, "name": outcome.generated.name}
        if outcome.generated
        else None
    )
    problem = outcome.message if outcome.state != "ready" else None
    return {
        "observedGeneration": generation,
        "conditions": conditions(outcome, generation, old.get("conditions"), now),
        "generated": generated,
        "schedule": outcome.schedule,
        "scheduleNote": outcome.schedule_note,
        "lastRun": dict(last_run) if last_run else None,
        "history": (runs.history or None) if runs.history is not None else old.get("history"),
        "lastReconciliationTime": (last_run or {}).get("finishedAt"),
        "processedPRCount": (last_run or {}).get("pullRequests"),
        "lastError": problem,
    }


def conditions(
    outcome: Outcome, generation: int | None, previous: object, now: datetime
) -> list[dict[str, Any]]:
    """Ready, Invalid and ApplyFailed for ``outcome``, keeping unchanged transition times."""
    ready = outcome.state == "ready"
    invalid = outcome.state == "invalid"
    failed = outcome.state == "apply_failed"
    wanted = [
        ("Ready", ready, "Applied" if ready else _ready_reason(outcome), outcome.message),
        ("Invalid", invalid, outcome.reason if invalid else "Valid", _if(invalid, outcome)),
        (
            "ApplyFailed",
            failed,
            outcome.reason if failed else ("NotApplied" if invalid else "Applied"),
            _if(failed, outcome),
        ),
    ]
    before = _by_type(previous)
    result = []
    for kind, value, reason, message in wanted:
        status = "True" if value else "False"
        old = before.get(kind, {})
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        result.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": short(message),
                "lastTransitionTime": since or timestamp(now),
                "observedGeneration": generation,
            }
        )
    return result


def _ready_reason(outcome: Outcome) -> str:
    return "Invalid" if outcome.state == "invalid" else "ApplyFailed"


def _if(condition: bool, outcome: Outcome) -> str:
    return outcome.message if condition else ""


def _by_type(conditions_: object) -> dict[str, Mapping[str, Any]]:
    if not isinstance(conditions_, list):
        return {}
    return {
        str(item.get("type")): item
        for item in conditions_
        if isinstance(item, Mapping) and item.get("type")
    }


def same_status(wanted: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """Whether writing ``wanted`` would change nothing (an absent field equals ``None``)."""
    now = current or {}
    return all(_pruned(now.get(key)) == _pruned(value) for key, value in wanted.items())


def _pruned(value: Any) -> Any:
    """``value`` without ``None`` members, as the API server stores a merge patch."""
    if isinstance(value, Mapping):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


# --- events ----------------------------------------------------------------------------------


def events(
    outcome: Outcome, previous: Mapping[str, Any] | None, last_run: Mapping[str, Any] | None
) -> list[Event]:
    """What to tell people: an apply, a new problem, a newly failed run (once per run)."""
    found: list[Event] = list(outcome.told)
    before = _by_type((previous or {}).get("conditions"))
    if outcome.applied and outcome.generated:
        what = f"{outcome.generated.kind} {outcome.generated.name}"
        found.append(Event("Applied", short(f"compiled and applied {what} ({outcome.schedule})")))
    for kind, state in (("Invalid", "invalid"), ("ApplyFailed", "apply_failed")):
        old = before.get(kind, {})
        unchanged = old.get("status") == "True" and old.get("message") == short(outcome.message)
        if outcome.state == state and not unchanged:
            found.append(Event(kind, short(outcome.message), "Warning"))
    if last_run and last_run.get("phase") in FAILED_PHASES:
        old_run = (previous or {}).get("lastRun") or {}
        seen = old_run.get("name") == last_run["name"] and old_run.get("phase") in FAILED_PHASES
        if not seen:
            message = f"run {last_run['name']} ended {last_run['phase']}"
            if last_run.get("message"):
                message += f": {last_run['message']}"
            found.append(Event("RunFailed", short(message), "Warning"))
    return found


def event_document(
    event: Event, rule: Mapping[str, Any], now: datetime, instance: str
) -> dict[str, Any]:
    """The ``core/v1`` Event about ``rule``."""
    metadata = rule["metadata"]
    moment = timestamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": rule.get("apiVersion"),
            "kind": rule.get("kind"),
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "reason": event.reason,
        "message": event.message,
        "type": event.type,
        "source": {"component": "ai-operator"},
        "reportingComponent": "ai-operator",
        "reportingInstance": instance,
        "firstTimestamp": moment,
        "lastTimestamp": moment,
        "count": 1,
    }


# --- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    """What the rule's runs say: the newest, and the history (None: leave it as it is)."""

    last: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None


def workflow_runs(workflows: Iterable[Mapping[str, Any]], previous: Mapping[str, Any]) -> Runs:
    """The newest Workflow as ``lastRun``; every finished one added to the status history.

    Entries are made by :func:`jobs.reconcile.report.history_entry` from the run's counts, in the
    order the runs finished; adding a run already there changes nothing.
    """
    items = list(workflows)
    latest = newest(items)
    old = previous.get("history")
    history = (
        [dict(entry) for entry in old if isinstance(entry, Mapping)]
        if isinstance(old, list)
        else []
    )
    finished = [w for w in items if (w.get("status") or {}).get("finishedAt")]
    for workflow in sorted(finished, key=lambda w: str(w["status"]["finishedAt"])):
        status = workflow["status"]
        entry = history_entry(
            _summary_counts(status) or {},
            finished_at=str(status["finishedAt"]),
            succeeded=status.get("phase") == "Succeeded",
            workflow=str(workflow["metadata"]["name"]),
        )
        history = append_history(history, entry)
    return Runs(workflow_run(latest) if latest else None, history)


def job_runs(jobs: Iterable[Mapping[str, Any]]) -> Runs:
    """The newest Job as ``lastRun`` (no history: a Job's counts are only in its pod's log)."""
    latest = newest(jobs)
    return Runs(job_run(latest) if latest else None, None)


def newest(items: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most recently created object (ties: the greatest name)."""
    return max(
        items,
        key=lambda item: (
            str(item.get("metadata", {}).get("creationTimestamp") or ""),
            str(item.get("metadata", {}).get("name") or ""),
        ),
        default=None,
    )


def workflow_run(workflow: Mapping[str, Any]) -> dict[str, Any]:
    """``lastRun`` of an Argo Workflow: phase, times, and the run's counts when it has them."""
    status = workflow.get("status") or {}
    run: dict[str, Any] = {
        "name": workflow["metadata"]["name"],
        "phase": str(status.get("phase") or "Pending"),
        "startedAt": status.get("startedAt"),
        "finishedAt": status.get("finishedAt"),
        "pullRequests": None,
        "actions": None,
    }
    counts = _summary_counts(status)
    if counts is not None:
        processed = counts.get("prsProcessed")
        run["pullRequests"] = processed if isinstance(processed, int) and processed >= 0 else None
        if counts.get("dryRun") is True:
            run["dryRun"] = True
        actions = counts.get("actions")
        if isinstance(actions, dict):
            run["actions"] = {
                str(k): v for k, v in sorted(actions.items()) if isinstance(v, int) and v >= 0
            }
    if run["phase"] in FAILED_PHASES and status.get("message"):
        run["message"] = short(str(status["message"]), 200)
    return run


def _summary_counts(status: Mapping[str, Any]) -> dict[str, Any] | None:
    parameters = (status.get("outputs") or {}).get("parameters") or []
    for parameter in parameters:
        if isinstance(parameter, Mapping) and parameter.get("name") == SUMMARY_OUTPUT:
            try:
                value = json.loads(str(parameter.get("value") or ""))
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None


def job_run(job: Mapping[str, Any]) -> dict[str, Any]:
    """``lastRun`` of a CronJob's Job: phase and times (its counts are only in the pod's log)."""
    status = job.get("status") or {}
    done = {
        str(c.get("type")): c
        for c in status.get("conditions") or []
        if isinstance(c, Mapping) and c.get("status") == "True"
    }
    if "Complete" in done:
        phase, finished = "Succeeded", status.get("completionTime")
    elif "Failed" in done:
        phase, finished = "Failed", done["Failed"].get("lastTransitionTime")
    else:
        phase, finished = ("Running" if status.get("active") else "Pending"), None
    run: dict[str, Any] = {
        "name": job["metadata"]["name"],
        "phase": phase,
        "startedAt": status.get("startTime"),
        "finishedAt": finished,
        "pullRequests": None,
        "actions": None,
    }
    if phase == "Failed" and done["Failed"].get("message"):
        run["message"] = short(str(done["Failed"]["message"]), 200)
    return run
