"""Why a rule does or does not act on a pull request right now, from the pass's own functions.

Nothing here decides anything of its own: the selector's clauses are
:func:`jobs.policy.selection.selector_clauses` (what gather re-checks), the safety rules are
:func:`jobs.policy.guardrails.merge_gates` (what guard reads), reuse is
:func:`jobs.policy.reuse.declined`, what people undid is :func:`jobs.policy.plan.undone_by_people`,
and the action is :func:`jobs.policy.plan.plan` of the decision the pass would act on: the
recorded one when it would be reused, else a merge (the question people ask is "why was this not
merged?"; the model itself is not asked). The cap is :func:`jobs.policy.caps.cap_block`. So the
explanation cannot drift from what a pass does, and a blocked merge is explained in the very words
of the escalation comment and the decision log (the guardrail's reason).

Pure: the facts, the memory and the clock are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ai_operator.jobs.policy.caps import PassOrder, cap_block, pass_order
from ai_operator.jobs.policy.decision import Decision, decide
from ai_operator.jobs.policy.guardrails import Block, Gate, merge_gates
from ai_operator.jobs.policy.plan import Plan, plan, undone_by_people
from ai_operator.jobs.policy.reuse import Candidate, Remembered, decision_key, declined
from ai_operator.jobs.policy.selection import Clause, selector_clauses
from ai_operator.jobs.policy.shadow import shadowing
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.policy.verdict import Verdict
from ai_operator.jobs.rules.model import Action, PRReconciliationRule

IF_MERGED = "if the model decides merge"


@dataclass(frozen=True)
class Recorded:
    """The last recorded decision, and whether a pass would reuse it (and why not)."""

    decision: Decision | None = None
    decided_at: float | None = None
    reused: bool = False
    why_not: str | None = None


@dataclass(frozen=True)
class Explanation:
    """Why the rule does or does not act on one pull request now, in the order a pass sees it."""

    rule: str
    pr: str
    url: str
    head: str
    verdict: str
    """``not-covered``, a guardrail's name (``draft``, ``checks-not-passed``, ...), a people-win
    block (``reopened-by-person``, ...), ``cap-reached``, ``reused`` or ``asks-model``."""
    summary: str
    action: Action | None
    """What the pass does now (None: the rule does not cover it, or the model is asked)."""
    reason: str | None
    """The blocking rule's own words (the escalation comment's and the decision log's)."""
    selector: tuple[Clause, ...]
    safety: tuple[Gate, ...]
    recorded: Recorded
    people: tuple[Block, ...] = ()
    cap: Block | None = None
    next_pass: datetime | None = None
    schedule: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def would_do(
    rule: PRReconciliationRule,
    pr: PullRequestSnapshot,
    remembered: Remembered | None,
    *,
    model: str,
    now: float,
    max_age: float,
) -> tuple[Plan, Recorded]:
    """The plan a pass would make for ``pr`` now, and what its memory says.

    The recorded decision when it would be reused, else a merge as if the model decided it.
    """
    candidate = Candidate(pr, decision_key(rule.spec_hash(), model, pr), remembered)
    why_not = declined(candidate, now=now, max_age=max_age, shadow=shadowing(rule.spec))
    recorded = Recorded(
        decision=remembered.decision if remembered else None,
        decided_at=remembered.decided_at if remembered else None,
        reused=why_not is None,
        why_not=why_not,
    )
    reused = remembered.decision if remembered and why_not is None else None
    decision = reused or decide(
        rule, pr, Verdict(action=Action.MERGE, reason=IF_MERGED), pr.fingerprint()
    )
    return plan(rule, decision, pr), recorded


def explain(
    rule: PRReconciliationRule,
    pr: PullRequestSnapshot,
    *,
    repositories: Sequence[str],
    remembered: Remembered | None,
    model: str,
    now: float,
    max_age: float,
    ready: Mapping[Action, Sequence[PullRequestSnapshot]] | None = None,
    order: Callable[[PullRequestSnapshot], PassOrder] = pass_order,
    next_pass: datetime | None = None,
    schedule: str = "",
) -> Explanation:
    """The explanation of ``rule`` on ``pr``.

    ``ready`` are the pass's other pull requests by the action it would take on each (for the
    caps), in the pass's ``order`` (:func:`jobs.policy.reuse.order_in_pass` of what the pass
    remembers of each); ``next_pass`` when the next scheduled pass starts (None: suspended).
    """
    spec = rule.spec
    covered_repository = pr.repository.casefold() in {r.casefold() for r in repositories}
    where = Clause(
        "repositories",
        covered_repository,
        f"{pr.repository} is one of the rule's repositories"
        if covered_repository
        else f"{pr.repository} is not one of the rule's repositories ({', '.join(repositories)})",
    )
    clauses = (where, *selector_clauses(pr, spec.selector))
    the_plan, recorded = would_do(rule, pr, remembered, model=model, now=now, max_age=max_age)
    base = Explanation(
        rule=rule.qualified_name,
        pr=pr.display,
        url=pr.url,
        head=pr.head_oid,
        verdict="",
        summary="",
        action=None,
        reason=None,
        selector=clauses,
        safety=merge_gates(pr, spec, pr.head_oid),
        recorded=recorded,
        people=undone_by_people(pr),
        next_pass=next_pass,
        schedule=schedule,
    )
    missed = [clause for clause in clauses if not clause.held]
    if missed:
        summary = f"does not act: the rule does not cover it ({missed[0].name}: {missed[0].detail})"
        return replace(
            base,
            verdict="not-covered",
            summary=summary,
            action=None,
            reason=missed[0].detail,
        )
    action = the_plan.action
    capped = cap_block(pr, action, (ready or {}).get(action, ()), spec.limits, order)
    what = _what(recorded)
    if the_plan.guardrail:
        reason = the_plan.guardrail_reason or ""
        summary = f"{what}; {_wanted(the_plan)} is blocked: {reason}; so: {action.value}"
        return replace(
            base,
            verdict=the_plan.guardrail,
            summary=summary,
            action=action,
            reason=reason,
            cap=capped,
        )
    if capped is not None:
        summary = f"{what}; it would {action.value}, but {capped.reason}"
        return replace(
            base,
            verdict="cap-reached",
            summary=summary,
            action=Action.WAIT,
            reason=capped.reason,
            cap=capped,
        )
    if recorded.reused:
        summary = f"{what}: {_reused_outcome(the_plan)}"
        return replace(base, verdict="reused", summary=summary, action=action, reason=None)
    summary = f"{what}; {IF_MERGED}, the merge goes through: every safety rule holds"
    return replace(base, verdict="asks-model", summary=summary, action=None, reason=None)


def _reused_outcome(the_plan: Plan) -> str:
    action = the_plan.action
    if action is Action.WAIT:
        return "wait"
    if not the_plan.operations:
        return f"{action.value}, already done: nothing left to do"
    if action is Action.MERGE:
        return "merge now, every safety rule holds"
    return f"{action.value} now"


def _what(recorded: Recorded) -> str:
    if recorded.reused and recorded.decision is not None:
        return f"reuses its recorded decision ({recorded.decision.action.value})"
    return f"asks the model ({recorded.why_not or 'never decided'})"


def _wanted(the_plan: Plan) -> str:
    decided = the_plan.decision
    wanted = decided.proposed or decided.action
    return f"a {wanted.value}" if wanted is not Action.ESCALATE else "escalating"
