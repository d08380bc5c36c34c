"""From the AI's answer to a :class:`Decision`. Pure.

``decide`` turns a verdict (or an unusable answer) into the action that may happen, through the
guardrails; :mod:`jobs.policy.plan` later re-checks it on fresh facts and lists the operations.
A :class:`Decision` is the one record of what was decided about a pull request: the pass's report
row is made from it, and the pipeline hands it from ``decide`` to ``act``.
"""

from __future__ import annotations

from typing import Any

from ai_operator.jobs.policy.guardrails import guard
from ai_operator.jobs.policy.snapshot import WIRE_FORMAT, PullRequestKey, PullRequestSnapshot
from ai_operator.jobs.policy.verdict import InvalidVerdict, Verdict
from ai_operator.jobs.rules.model import Action, PRReconciliationRule, RuleSpec


class Decision(PullRequestKey):
    """What one pass decided for one pull request, and why. Serializable between steps."""

    model_config = WIRE_FORMAT

    rule: str
    title: str
    url: str
    head_oid: str
    fingerprint: str
    proposed: Action | None = None
    action: Action
    reason: str
    comment: str | None = None
    labels: tuple[str, ...] = ()
    guardrail: str | None = None
    guardrail_reason: str | None = None
    fallback: bool = False
    problem: str | None = None


def decide(
    rule: PRReconciliationRule,
    pr: PullRequestSnapshot,
    answer: Verdict | InvalidVerdict,
    fingerprint: str,
) -> Decision:
    """The decision for ``pr``: the AI's action if valid and safe, else a safe one."""
    spec = rule.spec
    proposed: Action | None
    chosen_labels: tuple[str, ...]
    if isinstance(answer, InvalidVerdict):
        wanted = spec.safe_fallback
        reason = f"no usable answer from the model ({answer.problem}); fallback: {wanted.value}"
        proposed, comment, chosen_labels = None, None, ()
    else:
        wanted, reason, proposed = answer.action, answer.reason, answer.action
        comment, chosen_labels = answer.comment, answer.labels
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
        labels=escalation_labels(spec, chosen_labels) if guarded.action is Action.ESCALATE else (),
        guardrail=block.guardrail if block else None,
        guardrail_reason=block.reason if block else None,
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
        head_oid=pr.head_oid,
        fingerprint=fingerprint,
        **fields,
    )


def escalation_labels(spec: RuleSpec, chosen: tuple[str, ...]) -> tuple[str, ...]:
    """The rule's escalation labels plus those the model chose among the optional ones."""
    optional = {name.casefold(): name for name in spec.escalation.optionalLabels}
    picked = [optional[name.casefold()] for name in chosen if name.casefold() in optional]
    return tuple(dict.fromkeys([*spec.escalation.labels, *picked]))
