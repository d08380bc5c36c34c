"""From a decision to a :class:`Plan`: the GitHub operations that carry it out. Pure.

``plan`` re-checks a decision's action on the facts read just before acting (every guardrail and
every selector condition, :func:`jobs.policy.guardrails.guard`) and lists the operations it
takes, leaving out what an earlier pass already did (a comment whose marker is there, a label
already set): so a rerun changes nothing. People win over the operator, as the timeline tells
(:mod:`jobs.policy.people`, whichever rule acted): a pull request the operator closed and a person
reopened is not closed again at the same head (it is escalated, or left waiting), a label the
operator added and a person removed is not added again at the same head, and a comment of the
operator's that a person deleted is not posted again at the same head.

A merge is carried out as the rule's ``merge.strategy`` says (:func:`merge_route`): merged now,
added to the merge queue, or auto-merge enabled, each pinned to the decided head; a PR already in
the queue or already armed gets nothing more (no second comment), and neither is done again at a
head where a person undid it. When a PR no longer passes the rule (it left the selector, its head
moved, the decision is now to escalate, close or update, or a block that waiting will not clear),
the operator disarms what its own token armed (auto-merge, the queue) and says so in its comment;
what a person armed is never touched.
Carrying a plan out is :mod:`jobs.reconcile.apply`'s job, and only its;
:func:`already_done` tells it whether an operation that answered an error took effect anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ai_operator.jobs.policy.decision import Decision, escalation_labels
from ai_operator.jobs.policy.guardrails import Block, blocked_action, guard
from ai_operator.jobs.policy.markers import make_marker, render_marker, without_hidden_text
from ai_operator.jobs.policy.selection import selection_problems
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot, PullRequestState
from ai_operator.jobs.rules.model import (
    Action,
    MergeMethod,
    MergeStrategy,
    PRReconciliationRule,
    RuleSpec,
)

MAX_COMMENT_CHARS = 4000


@dataclass(frozen=True)
class Merge:
    """Merge the PR, but only if its head is still ``expected_head_oid``."""

    pr_id: str
    expected_head_oid: str
    method: MergeMethod
    headline: str


@dataclass(frozen=True)
class Close:
    """Close the PR without merging."""

    pr_id: str


@dataclass(frozen=True)
class Comment:
    """Post ``body``, which ends with the marker ``marker``."""

    subject_id: str
    body: str
    marker: str


@dataclass(frozen=True)
class AddLabels:
    """Add labels (by name) to the PR."""

    repository: str
    pr_id: str
    names: tuple[str, ...]
    create_missing: bool


@dataclass(frozen=True)
class Enqueue:
    """Add the PR to its base branch's merge queue, only if its head is ``expected_head_oid``."""

    pr_id: str
    expected_head_oid: str


@dataclass(frozen=True)
class EnableAutoMerge:
    """Arm GitHub's auto-merge at ``expected_head_oid``: GitHub merges once its checks pass."""

    pr_id: str
    expected_head_oid: str
    method: MergeMethod
    headline: str


@dataclass(frozen=True)
class Dequeue:
    """Take the PR out of the merge queue (only ever what the operator queued)."""

    pr_id: str


@dataclass(frozen=True)
class DisableAutoMerge:
    """Disarm auto-merge (only ever what the operator armed)."""

    pr_id: str


@dataclass(frozen=True)
class UpdateBranch:
    """Merge the base branch into the PR's branch, only if its head is ``expected_head_oid``."""

    pr_id: str
    expected_head_oid: str


Operation = (
    Merge
    | Close
    | Comment
    | AddLabels
    | Enqueue
    | EnableAutoMerge
    | Dequeue
    | DisableAutoMerge
    | UpdateBranch
)


class MergeRoute(StrEnum):
    """How a merge decision is carried out; the value is the action results and metrics report.

    Only ``merge`` is a merge done: ``queue`` and ``auto-merge`` hand the merge to GitHub.
    """

    DIRECT = "merge"
    QUEUE = "queue"
    AUTO_MERGE = "auto-merge"


_DISARMING_BLOCKS = frozenset({"not-covered", "head-moved"})
"""Transient blocks that still mean the PR no longer passes the rule at the armed head."""


@dataclass(frozen=True)
class Plan:
    """The operations that carry out a decision on fresh facts."""

    decision: Decision
    action: Action
    operations: tuple[Operation, ...]
    guardrail: str | None = None
    guardrail_reason: str | None = None
    route: MergeRoute | None = None
    """How a merge is carried out (None unless the action is merge)."""

    @property
    def reported_action(self) -> str:
        """The action as results, logs, comments and metrics name it (``queue``, not merge)."""
        return reported_action(self.action, self.route)


def reported_action(action: Action, route: MergeRoute | None) -> str:
    """``action``'s name, a merge named by how it is carried out: merge, queue or auto-merge."""
    return route.value if action is Action.MERGE and route is not None else action.value


def merge_route(spec: RuleSpec, fresh: PullRequestSnapshot) -> MergeRoute:
    """How ``spec`` carries out a merge of ``fresh``.

    ``Auto`` queues when the base branch requires the merge queue, else merges now. ``AutoMerge``
    carries out now a PR GitHub already reports ``CLEAN`` (GitHub refuses to arm auto-merge on
    one): merged, or queued where the base branch requires the queue.
    """
    match spec.merge.strategy:
        case MergeStrategy.DIRECT:
            return MergeRoute.DIRECT
        case MergeStrategy.MERGE_QUEUE:
            return MergeRoute.QUEUE
        case MergeStrategy.AUTO_MERGE:
            if fresh.merge_state_status != "CLEAN":
                return MergeRoute.AUTO_MERGE
            return MergeRoute.QUEUE if fresh.merge_queue_required else MergeRoute.DIRECT
        case MergeStrategy.AUTO:
            return MergeRoute.QUEUE if fresh.merge_queue_required else MergeRoute.DIRECT


def plan(rule: PRReconciliationRule, decision: Decision, fresh: PullRequestSnapshot) -> Plan:
    """The operations for ``decision`` given the PR's facts just before acting."""
    guarded = guard(fresh, rule.spec, decision.action, decision.head_oid)
    block = guarded.block
    action = guarded.action
    if action is Action.CLOSE:
        block = reopened_block(fresh) or block
        action = blocked_action(rule.spec, block) if block else action
    route = merge_route(rule.spec, fresh) if action is Action.MERGE else None
    if route is not None:
        undone = _merge_undone_block(route, fresh)
        if undone is not None:
            block, action, route = undone, blocked_action(rule.spec, undone), None
    labels = decision.labels
    if action is Action.ESCALATE and not labels:
        labels = escalation_labels(rule.spec, ())
    if action is Action.ESCALATE:
        labels, kept_out = _labels_people_removed(rule, decision, fresh, labels)
        block = block or kept_out
    guardrail_reason = block.reason if block else decision.guardrail_reason
    disarm = _disarm(rule.spec, fresh, action, block)
    steps = _Steps(action, route, labels, guardrail_reason, disarm)
    return Plan(
        decision=decision,
        action=action,
        operations=_operations(rule, decision, fresh, steps),
        guardrail=block.guardrail if block else decision.guardrail,
        guardrail_reason=guardrail_reason,
        route=route,
    )


def already_done(operation: Operation, fresh: PullRequestSnapshot) -> bool:
    """Whether ``fresh`` shows the effect of ``operation`` (say, after an answer that was lost)."""
    merged = fresh.state is PullRequestState.MERGED
    match operation:
        case Merge():
            return merged
        case Close():
            return fresh.state is PullRequestState.CLOSED
        case Comment(marker=marker):
            return marker in fresh.comment_markers
        case AddLabels(names=names):
            present = {label.casefold() for label in fresh.labels}
            return all(name.casefold() in present for name in names)
        case Enqueue():
            return merged or fresh.in_merge_queue
        case EnableAutoMerge():
            return merged or fresh.auto_merge_by is not None
        case Dequeue():
            return not fresh.in_merge_queue
        case DisableAutoMerge():
            return fresh.auto_merge_by is None
        case UpdateBranch(expected_head_oid=head):
            return fresh.head_oid != head  # updated, or moved otherwise: never sent again


@dataclass(frozen=True)
class _Steps:
    """What the operations are made from, once the action is settled."""

    action: Action
    route: MergeRoute | None
    labels: tuple[str, ...]
    guardrail_reason: str | None
    disarm: tuple[Operation, ...]


def _merge_undone_block(route: MergeRoute, fresh: PullRequestSnapshot) -> Block | None:
    """A person undid, at this head, the queueing or arming the operator did: not done again."""
    if route is MergeRoute.QUEUE and fresh.dequeued_by and not fresh.in_merge_queue:
        what, who = "removed the pull request from the merge queue", fresh.dequeued_by
    elif (
        route is MergeRoute.AUTO_MERGE
        and fresh.auto_merge_disabled_by
        and not (fresh.auto_merge_by)
    ):
        what, who = "disabled the auto-merge", fresh.auto_merge_disabled_by
    else:
        return None
    reason = f"{who} {what} the operator set at this commit; it is not done again"
    queue = route is MergeRoute.QUEUE
    guardrail = "dequeued-by-person" if queue else "auto-merge-disabled-by-person"
    return Block(guardrail, reason)


def _disarm(
    spec: RuleSpec, fresh: PullRequestSnapshot, action: Action, block: Block | None
) -> tuple[Operation, ...]:
    """Undo what the operator's token armed, when the PR no longer passes the rule.

    Never what a person armed (GitHub names who: ``autoMergeRequest.enabledBy``, the queue
    entry's ``enqueuer``), and nothing for a plain wait (checks running, say) on a PR the rule
    still covers.
    """
    if action is Action.MERGE or fresh.state is not PullRequestState.OPEN:
        return ()
    lost = (
        action in {Action.ESCALATE, Action.CLOSE, Action.UPDATE}
        or (block is not None and (not block.transient or block.guardrail in _DISARMING_BLOCKS))
        or bool(selection_problems(fresh, spec.selector))
    )
    if not lost:
        return ()
    ops: list[Operation] = []
    if fresh.auto_merge_by_operator and fresh.auto_merge_by is not None:
        ops.append(DisableAutoMerge(fresh.id))
    if fresh.queued_by_operator and fresh.in_merge_queue:
        ops.append(Dequeue(fresh.id))
    return tuple(ops)


def undone_by_people(fresh: PullRequestSnapshot) -> tuple[Block, ...]:
    """What people undid of the operator's work at this head, each as the block it becomes.

    A reopened pull request is not closed again, a label removed is not added again, a deleted
    comment is not posted again (the plan leaves each out).
    """
    blocks = [reopened_block(fresh)]
    if fresh.labels_removed_by_people:
        removed = ", ".join(sorted(fresh.labels_removed_by_people))
        blocks.append(
            Block(
                "label-removed-by-person",
                f"{removed} removed by a person after the operator added it at this commit; "
                "not added again",
            )
        )
    if fresh.comment_deleted_by is not None:
        blocks.append(
            Block(
                "comment-deleted-by-person",
                f"{fresh.comment_deleted_by} deleted the operator's comment at this commit; it "
                "is not posted again",
            )
        )
    return tuple(block for block in blocks if block is not None)


def reopened_block(fresh: PullRequestSnapshot) -> Block | None:
    """A person reopened what the operator closed at this head: not closed again.

    Read from the timeline (:mod:`jobs.policy.people`): the operator is the token, whichever
    rule closed it, with or without a comment.
    """
    if fresh.reopened_by is None:
        return None
    reason = (
        f"{fresh.reopened_by} reopened the pull request after the operator closed it at this "
        "commit; it is not closed again"
    )
    return Block("reopened-by-person", reason)


def _labels_people_removed(
    rule: PRReconciliationRule,
    decision: Decision,
    fresh: PullRequestSnapshot,
    labels: tuple[str, ...],
) -> tuple[tuple[str, ...], Block | None]:
    """The labels to add, without those a person removed after the operator added them here."""
    removed = fresh.labels_removed_by_people
    kept_out = [name for name in labels if name.casefold() in removed]
    if not kept_out:
        return labels, None
    reason = (
        f"{', '.join(kept_out)} removed by a person after the operator added it at this commit; "
        "not added again"
    )
    kept = tuple(name for name in labels if name.casefold() not in removed)
    return kept, Block("label-removed-by-person", reason)


def _operations(
    rule: PRReconciliationRule,
    decision: Decision,
    fresh: PullRequestSnapshot,
    steps: _Steps,
) -> tuple[Operation, ...]:
    spec = rule.spec
    action = steps.action
    ops: list[Operation] = list(steps.disarm)
    comment = _comment(rule, decision, fresh, steps)
    if comment is not None and comment.marker in fresh.comment_markers:
        comment = None  # posted by an earlier pass
    if comment is not None and fresh.comment_deleted_by is not None:
        comment = None  # a person deleted the operator's comment at this head: not posted again
    said = [comment] if comment else []
    if action is Action.MERGE:
        carried = _merge_operations(spec, decision, fresh, steps.route)
        # Already queued or armed: nothing more, and no second comment.
        ops.extend([*carried, *said] if carried else [])
    elif action is Action.UPDATE:
        ops.extend([UpdateBranch(fresh.id, decision.head_oid), *said])
    elif action is Action.CLOSE:
        ops.extend([*said, Close(fresh.id)])
    elif action is Action.ESCALATE:
        present = {label.casefold() for label in fresh.labels}
        missing = tuple(name for name in steps.labels if name.casefold() not in present)
        if missing:
            create = spec.escalation.createMissingLabels
            ops.append(AddLabels(fresh.repository, fresh.id, missing, create))
        ops.extend(said)
    elif steps.disarm:
        ops.extend(said)
    return tuple(ops)


def _merge_operations(
    spec: RuleSpec, decision: Decision, fresh: PullRequestSnapshot, route: MergeRoute | None
) -> tuple[Operation, ...]:
    """The mutations that carry out a merge by ``route``; none when it is already done."""
    headline = f"{fresh.title} (#{fresh.number})"
    if route is MergeRoute.QUEUE:
        return () if fresh.in_merge_queue else (Enqueue(fresh.id, decision.head_oid),)
    if route is MergeRoute.AUTO_MERGE:
        arm = EnableAutoMerge(fresh.id, decision.head_oid, spec.mergeMethod, headline)
        if fresh.auto_merge_by is None:
            return (arm,)
        if fresh.auto_merge_armed_here or not fresh.auto_merge_by_operator:
            return ()  # armed at this head, or by a person: it stands
        # The operator armed it at an earlier head: armed again, pinned to this one.
        return (DisableAutoMerge(fresh.id), arm)
    return (Merge(fresh.id, decision.head_oid, spec.mergeMethod, headline),)


def _comment(
    rule: PRReconciliationRule,
    decision: Decision,
    fresh: PullRequestSnapshot,
    steps: _Steps,
) -> Comment | None:
    action = steps.action
    # The model's own comment fits only the action it chose; a guardrail's action gets ours.
    own = without_hidden_text(decision.comment or "").strip() if action is decision.proposed else ""
    disarmed = _disarmed_text(steps.disarm)
    silent_unless_own = action is Action.WAIT or action in {Action.MERGE, Action.UPDATE}
    if silent_unless_own and not own and not disarmed:
        return None
    name = reported_action(action, steps.route)
    if action is Action.WAIT:
        name = "disarm"
    marker = make_marker(rule.qualified_name, name, decision.head_oid)
    text = own or _default_text(action, decision, steps)
    if disarmed:
        text = f"{text}\n\n{disarmed}" if text else disarmed
    if steps.guardrail_reason:
        text = f"{text}\n\n> Safety rule: {steps.guardrail_reason}."
    text = without_hidden_text(text)  # the model's and the PR's words carry no marker of ours
    footer = (
        f"<sub>ai-operator · rule `{rule.qualified_name}` · {name} · {decision.head_oid[:7]}</sub>"
    )
    body = f"{text[:MAX_COMMENT_CHARS]}\n\n{footer}\n{render_marker(marker)}"
    return Comment(fresh.id, body, marker)


def _disarmed_text(disarm: tuple[Operation, ...]) -> str:
    said = {
        DisableAutoMerge: "The operator disabled the auto-merge it had enabled.",
        Dequeue: "The operator removed this pull request from the merge queue, where it had "
        "added it.",
    }
    return " ".join(said[type(op)] for op in disarm if type(op) in said)


def _default_text(action: Action, decision: Decision, steps: _Steps) -> str:
    if action in {Action.WAIT, Action.MERGE, Action.UPDATE}:
        return "" if steps.disarm else decision.reason
    if action is Action.CLOSE:
        return f"Closing this pull request: {decision.reason}"
    return f"This pull request needs a human decision: {decision.reason}"
