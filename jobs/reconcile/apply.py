"""The one place that changes GitHub: carries out a :class:`~jobs.policy.plan.Plan`.

A dry run is "do not call :func:`apply_plan`", nothing more. Operations run in the plan's order and
stop at the first failure, so a refused merge never gets its comment. A merge, an enqueue, an
auto-merge and a branch update all carry the decided head (``expectedHeadOid``).

A write can fail after GitHub applied it (a 5xx or a timeout on the way back, or a retry that
then finds the merge already done). After a failure the pull request is read again: an operation
whose effect is there counted as done (:func:`jobs.policy.plan.already_done`); one that is surely
not there, after a failure a later try may clear, is sent once more (the client never retries a
mutation itself, as GitHub may have received it).

With a :class:`~jobs.reconcile.gate.WriteGate`, a plan is carried out only when the gate admits it
(the pause, GitHub's ``retry-after``, the pass's write budget); otherwise it is deferred whole and
nothing is sent. A rate limit the client did not wait out defers the rest of the plan, and the
gate holds every later write of the pass until GitHub's ``retry-after`` has passed. A deferred
plan is carried out in a later pass, minus what is already done (:func:`jobs.policy.plan.plan`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ai_operator.jobs.clients.github.errors import (
    GitHubAuthError,
    GitHubError,
    LabelMissing,
    RateLimited,
)
from ai_operator.jobs.policy.pacing import Deferral
from ai_operator.jobs.policy.plan import (
    AddLabels,
    Close,
    Comment,
    Dequeue,
    DisableAutoMerge,
    EnableAutoMerge,
    Enqueue,
    Merge,
    Operation,
    Plan,
    UpdateBranch,
    already_done,
)
from ai_operator.jobs.reconcile.gate import WriteGate
from ai_operator.jobs.reconcile.ports import GitHubPort, GitHubWriter


@dataclass(frozen=True)
class Outcome:
    """What applying a plan did."""

    applied: tuple[str, ...]
    error: str | None = None
    error_retryable: bool = False
    github_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """GitHub's ids of what the operations made or added, by operation (:func:`describe`): the
    new comment's id, the labels' ids. None for an operation whose answer was lost."""
    deferred: Deferral | None = None
    """Why the plan (or its rest, after ``applied``) waits for a later pass; None: it did not."""

    @property
    def ok(self) -> bool:
        """Whether every operation succeeded."""
        return self.error is None


def apply_plan(github: GitHubPort, plan: Plan, gate: WriteGate | None = None) -> Outcome:
    """Run the plan's operations in order; stop at the first one that did not take effect.

    With ``gate``, nothing is sent unless the gate admits the plan (else it is deferred).
    """
    if gate is not None:
        waits = gate.admit(plan.operations)
        if waits is not None:
            return Outcome((), deferred=waits)
    applied: list[str] = []
    ids: dict[str, tuple[str, ...]] = {}
    for operation in plan.operations:
        try:
            made = _run(github, operation)
        except GitHubError as exc:
            if gate is not None and isinstance(exc, RateLimited):
                gate.hold(exc.retry_after)
                return Outcome(tuple(applied), github_ids=ids, deferred=Deferral.RATE_LIMIT)
            done = _took_effect(github, plan, operation, exc)
            if done is None:
                error = f"{describe(operation)} failed: {exc}"
                return Outcome(tuple(applied), error, exc.retryable, ids)
            made = done
        applied.append(describe(operation))
        if made:
            ids[describe(operation)] = made
    return Outcome(tuple(applied), github_ids=ids)


def _took_effect(
    github: GitHubPort, plan: Plan, operation: Operation, exc: GitHubError
) -> tuple[str, ...] | None:
    """Whether ``operation`` is done after all: read the PR back; if surely not, try once more.

    The ids of what a second try made; ``()`` when the read-back found it done; None when it is
    not done.

    The client never retries a mutation whose answer may have been lost; this read-back decides
    instead, so a write GitHub applied is never sent twice.
    """
    if isinstance(exc, GitHubAuthError | LabelMissing | RateLimited):
        return None  # GitHub surely did nothing (and a rate limit is not sent again at once)
    decision = plan.decision
    try:
        fresh = github.pull_request(decision.repository, decision.number)
        if already_done(operation, fresh):
            return ()
        if exc.retryable:
            return _run(github, operation)
    except GitHubError:
        return None
    return None


def describe(operation: Operation) -> str:
    """A short name of an operation, for reports."""
    match operation:
        case Merge(method=method):
            return f"merge ({method.value.lower()})"
        case Close():
            return "close"
        case Comment():
            return "comment"
        case AddLabels(names=names):
            return f"label {', '.join(names)}"
        case Enqueue():
            return "enqueue"
        case EnableAutoMerge(method=method):
            return f"enable auto-merge ({method.value.lower()})"
        case Dequeue():
            return "dequeue"
        case DisableAutoMerge():
            return "disable auto-merge"
        case UpdateBranch():
            return "update branch"


def _run(github: GitHubWriter, operation: Operation) -> tuple[str, ...]:
    """Carry out one operation; GitHub's ids of what it made or added (a comment, labels)."""
    match operation:
        case Merge(pr_id, head, method, headline):
            github.merge_pull_request(pr_id, head, method, headline)
            return ()
        case Close(pr_id):
            github.close_pull_request(pr_id)
            return ()
        case Comment(subject_id, body, _):
            comment = github.add_comment(subject_id, body)
            return (comment,) if comment else ()
        case AddLabels(repository, pr_id, names, create):
            ids = github.label_ids(repository, list(names), create_missing=create)
            github.add_labels(pr_id, ids)
            return tuple(ids)
        case Enqueue(pr_id, head):
            github.enqueue_pull_request(pr_id, head)
        case EnableAutoMerge(pr_id, head, method, headline):
            github.enable_auto_merge(pr_id, head, method, headline)
        case Dequeue(pr_id):
            github.dequeue_pull_request(pr_id)
        case DisableAutoMerge(pr_id):
            github.disable_auto_merge(pr_id)
        case UpdateBranch(pr_id, head):
            github.update_branch(pr_id, head)
    return ()
