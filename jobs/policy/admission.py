"""Admission: whether a decision handed to ``act`` is one its rule could have made. Pure.

In the pipeline, ``act`` reads its decision from an argument that another pod wrote, and pods
may write task results in their namespace: the input is not only ours. So before anything is
read or written, ``act`` checks the decision against the rule it runs under and refuses the
rest, as that pull request's error (counted, never written):

- the decision is this rule's (its ``rule`` names it);
- its repository is one of the rule's resolved repositories, within the namespace's limits;
- its action is one the rule allows (``wait`` always is), within the namespace's limits;
- its labels are among the rule's escalation and optional labels;
- its head is a commit id (it is written into the comment's marker and footer).

The guardrails and the plan still check the decision on fresh facts afterwards; admission only
refuses what no decision of this rule could be. This module performs no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ai_operator.jobs.policy.decision import Decision
from ai_operator.jobs.rules.limits import BUILT_IN, LimitsSpec
from ai_operator.jobs.rules.model import Action, PRReconciliationRule

_COMMIT_ID = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")  # SHA-1, or SHA-256


@dataclass(frozen=True)
class Scope:
    """What the rule's pass may touch: its resolved repositories, and the namespace's limits."""

    repositories: Sequence[str]
    limits: LimitsSpec = BUILT_IN


def admission_problems(
    rule: PRReconciliationRule, decision: Decision, scope: Scope | None = None
) -> list[str]:
    """Why ``decision`` is no decision ``rule`` could make; empty when it may be acted on.

    Without ``scope`` the repository is not checked: a pass that gathered the pull requests
    itself (``run``, the demo on its sandbox) decided only about those.
    """
    spec = rule.spec
    repositories = scope.repositories if scope else ()
    limits = scope.limits if scope else BUILT_IN
    problems = []
    if decision.rule != rule.qualified_name:
        problems.append(f"the decision is rule {decision.rule!r}'s, not {rule.qualified_name!r}'s")
    covered = {name.casefold() for name in repositories}
    if covered and decision.repository.casefold() not in covered:
        listed = ", ".join(repositories)
        problems.append(f"{decision.repository} is not among the rule's repositories ({listed})")
    elif not limits.permits_repository(decision.repository):
        problems.append(f"{decision.repository} is outside the repositories of the namespace")
    allowed = spec.permitted_actions & (set(limits.allowedActions) | {Action.WAIT})
    if decision.action not in allowed:
        problems.append(f"the action {decision.action.value!r} is not allowed by the rule")
    escalation = spec.escalation
    labels = {name.casefold() for name in (*escalation.labels, *escalation.optionalLabels)}
    stray = [name for name in decision.labels if name.casefold() not in labels]
    if stray:
        problems.append(f"the labels {', '.join(stray)} are not the rule's escalation labels")
    if not _COMMIT_ID.match(decision.head_oid):
        problems.append(f"the head {decision.head_oid[:80]!r} is no commit id")
    return problems
