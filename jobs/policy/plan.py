"""From a decision to a :class:`Plan`: the GitHub operations that carry it out. Pure.

``plan`` re-checks a decision's action on the facts read just before acting (every guardrail and
every selector condition, :func:`jobs.policy.guardrails.guard`) and lists the operations it
takes, leaving out what an earlier pass already did (a comment whose marker is there, a label
already set): so a rerun changes nothing. People win over the operator, as the timeline tells
(:mod:`jobs.policy.people`, whichever rule acted): a pull request the operator closed and a person
reopened is not closed again at the same head (it is escalated, or left waiting), a label the
operator added and a person removed is not added again at the same head, and a comment of the
operator's that a person deleted is not posted again at the same head.
Carrying a plan out is :mod:`jobs.reconcile.apply`'s job, and only its;
:func:`already_done` tells it whether an operation that answered an error took effect anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from ai_operator.jobs.policy.decision import Decision, escalation_labels
from ai_operator.jobs.policy.guardrails import Block, blocked_action, guard
from ai_operator.jobs.policy.markers import make_marker, render_marker, without_hidden_text
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot, PullRequestState
from ai_operator.jobs.rules.model import Action, MergeMethod, PRReconciliationRule

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


Operation = Merge | Close | Comment | AddLabels


@dataclass(frozen=True)
class Plan:
    """The operations that carry out a decision on fresh facts."""

    decision: Decision
    action: Action
    operations: tuple[Operation, ...]
    guardrail: str | None = None
    guardrail_reason: str | None = None


def plan(rule: PRReconciliationRule, decision: Decision, fresh: PullRequestSnapshot) -> Plan:
    """The operations for ``decision`` given the PR's facts just before acting."""
    guarded = guard(fresh, rule.spec, decision.action, decision.head_oid)
    block = guarded.block
    action = guarded.action
    if action is Action.CLOSE:
        block = reopened_block(fresh) or block
        action = blocked_action(rule.spec, block) if block else action
    labels = decision.labels
    if action is Action.ESCALATE and not labels:
        labels = escalation_labels(rule.spec, ())
    if action is Action.ESCALATE:
        labels, kept_out = _labels_people_removed(rule, decision, fresh, labels)
        block = block or kept_out
    guardrail_reason = block.reason if block else decision.guardrail_reason
    return Plan(
        decision=decision,
        action=action,
        operations=_operations(rule, decision, fresh, action, labels, guardrail_reason),
        guardrail=block.guardrail if block else decision.guardrail,
        guardrail_reason=guardrail_reason,
    )


def already_done(operation: Operation, fresh: PullRequestSnapshot) -> bool:
    """Whether ``fresh`` shows the effect of ``operation`` (say, after an answer that was lost)."""
    match operation:
        case Merge():
            return fresh.state is PullRequestState.MERGED
        case Close():
            return fresh.state is PullRequestState.CLOSED
        case Comment(marker=marker):
            return marker in fresh.comment_markers
        case AddLabels(names=names):
            present = {label.casefold() for label in fresh.labels}
            return all(name.casefold() in present for name in names)


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
    action: Action,
    labels: tuple[str, ...],
    guardrail_reason: str | None,
) -> tuple[Operation, ...]:
    spec = rule.spec
    ops: list[Operation] = []
    comment = _comment(rule, decision, fresh, action, guardrail_reason)
    if comment is not None and comment.marker in fresh.comment_markers:
        comment = None  # posted by an earlier pass
    if comment is not None and fresh.comment_deleted_by is not None:
        comment = None  # a person deleted the operator's comment at this head: not posted again
    if action is Action.MERGE:
        headline = f"{fresh.title} (#{fresh.number})"
        ops.append(Merge(fresh.id, decision.head_oid, spec.mergeMethod, headline))
        ops.extend([comment] if comment else [])
    elif action is Action.CLOSE:
        ops.extend([comment] if comment else [])
        ops.append(Close(fresh.id))
    elif action is Action.ESCALATE:
        present = {label.casefold() for label in fresh.labels}
        missing = tuple(name for name in labels if name.casefold() not in present)
        if missing:
            create = spec.escalation.createMissingLabels
            ops.append(AddLabels(fresh.repository, fresh.id, missing, create))
        ops.extend([comment] if comment else [])
    return tuple(ops)


def _comment(
    rule: PRReconciliationRule,
    decision: Decision,
    fresh: PullRequestSnapshot,
    action: Action,
    guardrail_reason: str | None,
) -> Comment | None:
    # The model's own comment fits only the action it chose; a guardrail's action gets ours.
    own = without_hidden_text(decision.comment or "").strip() if action is decision.proposed else ""
    if action is Action.WAIT or (action is Action.MERGE and not own):
        return None
    marker = make_marker(rule.qualified_name, action.value, decision.head_oid)
    text = own or _default_text(action, decision)
    if guardrail_reason:
        text = f"{text}\n\n> Safety rule: {guardrail_reason}."
    text = without_hidden_text(text)  # the model's and the PR's words carry no marker of ours
    footer = (
        f"<sub>ai-operator · rule `{rule.qualified_name}` · {action.value} · "
        f"{decision.head_oid[:7]}</sub>"
    )
    body = f"{text[:MAX_COMMENT_CHARS]}\n\n{footer}\n{render_marker(marker)}"
    return Comment(fresh.id, body, marker)


def _default_text(action: Action, decision: Decision) -> str:
    if action is Action.CLOSE:
        return f"Closing this pull request: {decision.reason}"
    return f"This pull request needs a human decision: {decision.reason}"
