"""From the AI's answer to a :class:`Decision`, and from a decision to a :class:`Plan`. Pure.

``decide`` turns a verdict (or an unusable answer) into the action that may happen, through the
guardrails. ``plan`` re-checks that action on fresh facts just before acting and lists the GitHub
operations it takes, leaving out what an earlier pass already did (a comment whose marker is
there, a label already set): so a rerun changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from jobs.markers import make_marker, render_marker
from jobs.model import Action, MergeMethod, PRReconciliationRule, RuleSpec
from jobs.policy.guardrails import guard
from jobs.policy.verdict import InvalidVerdict, Verdict
from jobs.snapshot import PullRequestSnapshot

MAX_COMMENT_CHARS = 4000


class Decision(BaseModel):
    """What one pass decided for one pull request, and why. Serializable between steps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    repository: str
    number: int
    title: str
    url: str
    headOid: str
    fingerprint: str
    proposed: Action | None = None
    action: Action
    reason: str
    comment: str | None = None
    labels: tuple[str, ...] = ()
    guardrail: str | None = None
    guardrailReason: str | None = None
    fallback: bool = False
    problem: str | None = None

    @property
    def display(self) -> str:
        """``owner/name#number``."""
        return f"{self.repository}#{self.number}"


def decide(
    rule: PRReconciliationRule,
    pr: PullRequestSnapshot,
    answer: Verdict | InvalidVerdict,
    fingerprint: str,
) -> Decision:
    """The decision for ``pr``: the AI's action if valid and safe, else a safe one."""
    spec = rule.spec
    proposed: Action | None
    extra: tuple[str, ...]
    if isinstance(answer, InvalidVerdict):
        wanted = spec.safe_fallback
        reason = f"no usable answer from the model ({answer.problem}); fallback: {wanted.value}"
        proposed, comment, extra = None, None, ()
    else:
        wanted, reason, proposed = answer.action, answer.reason, answer.action
        comment, extra = answer.comment, answer.labels
    guarded = guard(pr, spec, wanted, pr.head_oid)
    block = guarded.block
    return _decision(
        rule,
        pr,
        fingerprint,
        proposed=proposed,
        action=guarded.action,
        reason=reason,
        comment=comment,
        labels=escalation_labels(spec, extra) if guarded.action is Action.ESCALATE else (),
        guardrail=block.guardrail if block else None,
        guardrailReason=block.reason if block else None,
        fallback=isinstance(answer, InvalidVerdict),
        problem=answer.problem if isinstance(answer, InvalidVerdict) else None,
    )


def leave_alone(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, fingerprint: str, reason: str
) -> Decision:
    """A wait that needs no model, e.g. for a PR the rule no longer covers."""
    return _decision(rule, pr, fingerprint, action=Action.WAIT, reason=reason)


def _decision(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, fingerprint: str, **fields: Any
) -> Decision:
    return Decision(
        rule=rule.qualified_name,
        repository=pr.repository,
        number=pr.number,
        title=pr.title,
        url=pr.url,
        headOid=pr.head_oid,
        fingerprint=fingerprint,
        **fields,
    )


def escalation_labels(spec: RuleSpec, chosen: tuple[str, ...]) -> tuple[str, ...]:
    """The rule's escalation labels plus those the model chose among the optional ones."""
    optional = {name.casefold(): name for name in spec.escalation.optionalLabels}
    picked = [optional[name.casefold()] for name in chosen if name.casefold() in optional]
    return tuple(dict.fromkeys([*spec.escalation.labels, *picked]))


# --- Plans -----------------------------------------------------------------------------------


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
    already_done: tuple[str, ...] = ()


def plan(rule: PRReconciliationRule, decision: Decision, fresh: PullRequestSnapshot) -> Plan:
    """The operations for ``decision`` given the PR's facts just before acting."""
    guarded = guard(fresh, rule.spec, decision.action, decision.headOid)
    block = guarded.block
    action = guarded.action
    labels = decision.labels
    if action is Action.ESCALATE and not labels:
        labels = escalation_labels(rule.spec, ())
    why = block.reason if block else decision.guardrailReason
    operations, done = _operations(rule, decision, fresh, action, labels, why)
    return Plan(
        decision=decision,
        action=action,
        operations=operations,
        guardrail=block.guardrail if block else decision.guardrail,
        guardrail_reason=why,
        already_done=done,
    )


def _operations(
    rule: PRReconciliationRule,
    decision: Decision,
    fresh: PullRequestSnapshot,
    action: Action,
    labels: tuple[str, ...],
    why: str | None,
) -> tuple[tuple[Operation, ...], tuple[str, ...]]:
    spec = rule.spec
    ops: list[Operation] = []
    done: list[str] = []
    comment = _comment(rule, decision, fresh, action, why)
    if comment is not None and comment.marker in fresh.comment_markers:
        done.append("comment already posted")
        comment = None
    if action is Action.MERGE:
        headline = f"{fresh.title} (#{fresh.number})"
        ops.append(Merge(fresh.id, decision.headOid, spec.mergeMethod, headline))
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
        elif labels:
            done.append("labels already set")
        ops.extend([comment] if comment else [])
    return tuple(ops), tuple(done)


def _comment(
    rule: PRReconciliationRule,
    decision: Decision,
    fresh: PullRequestSnapshot,
    action: Action,
    why: str | None,
) -> Comment | None:
    # The model's own comment fits only the action it chose; a guardrail's action gets ours.
    own = (decision.comment or "").strip() if action is decision.proposed else ""
    if action is Action.WAIT or (action is Action.MERGE and not own):
        return None
    marker = make_marker(rule.qualified_name, action.value, decision.headOid)
    text = own or _default_text(action, decision)
    if why:
        text = f"{text}\n\n> Safety rule: {why}."
    footer = (
        f"<sub>ai-operator · rule `{rule.qualified_name}` · {action.value} · "
        f"{decision.headOid[:7]}</sub>"
    )
    body = f"{text[:MAX_COMMENT_CHARS]}\n\n{footer}\n{render_marker(marker)}"
    return Comment(fresh.id, body, marker)


def _default_text(action: Action, decision: Decision) -> str:
    if action is Action.CLOSE:
        return f"Closing this pull request: {decision.reason}"
    return f"This pull request needs a human decision: {decision.reason}"
