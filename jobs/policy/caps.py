"""Whether a pass's cap on merges or closes (``spec.limits``) defers a pull request. Pure.

``spec.limits.maxMergesPerPass`` and ``maxClosesPerPass`` bound what one pass does: the pull
requests past the cap wait for a later pass (deferred, never dropped). Which ones go first is
the pass's order, :func:`pass_order`, the one order a pass follows (its triage,
:func:`jobs.policy.reuse.triage`, and the sharing out of writes, :func:`jobs.policy.pacing.allot`):
what was deferred last pass first, then least recently decided, then least recently updated,
then by repository and number, so that the order is total, the same on every machine, and fair
(a pull request that waited is not passed over again).

No I/O and no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ai_operator.jobs.policy.guardrails import Block
from ai_operator.jobs.policy.pacing import fair_key
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.rules.model import Action, RuleLimits

CAP_FIELDS = {Action.MERGE: "maxMergesPerPass", Action.CLOSE: "maxClosesPerPass"}


PassOrder = tuple[int, float, float, str, int]


def pass_order(
    pr: PullRequestSnapshot, *, deferred: bool = False, last_decided: float = -math.inf
) -> PassOrder:
    """Where ``pr`` comes in a pass's order.

    ``deferred``: its writes waited last pass; ``last_decided``: when its decision was last made
    (seconds since the epoch; minus infinity when never, so it comes first).
    """
    return (
        *fair_key(deferred, last_decided),
        pr.updated_at.timestamp(),
        pr.repository,
        pr.number,
    )


def cap_of(limits: RuleLimits, action: Action) -> int | None:
    """The cap on ``action`` per pass; None when there is none."""
    field = CAP_FIELDS.get(action)
    return getattr(limits, field) if field else None


def cap_block(
    pr: PullRequestSnapshot,
    action: Action,
    ready: Sequence[PullRequestSnapshot],
    limits: RuleLimits,
    order: Callable[[PullRequestSnapshot], PassOrder] = pass_order,
) -> Block | None:
    """The block of ``pr`` when the pass's cap on ``action`` is reached before its turn.

    ``ready`` are the pass's pull requests that ``action`` would go to (``pr`` among them or
    not): those before ``pr`` in ``order`` (:func:`pass_order` with what the pass remembers of
    each) take the cap first.
    """
    cap = cap_of(limits, action)
    if cap is None:
        return None
    ahead = sorted(
        (other for other in ready if other.display != pr.display and order(other) < order(pr)),
        key=order,
    )
    if len(ahead) < cap:
        return None
    first = ", ".join(other.display for other in ahead[:cap])
    reason = (
        f"spec.limits.{CAP_FIELDS[action]} is {cap} and {cap} pull request(s) come first in the "
        f"pass's order ({first}): deferred to a later pass"
    )
    return Block("cap-reached", reason, transient=True)
