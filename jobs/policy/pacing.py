"""How many writes a pass may make, and which pull requests wait for the next pass. Pure.

GitHub limits content-creating requests (about 80 a minute and 500 an hour per token) and
answers 403/429 with ``retry-after`` beyond them. A pass therefore writes under a
:class:`WriteBudget`: at most ``writes`` mutations, and at most the rule's
``spec.limits.maxMergesPerPass`` merges and ``maxClosesPerPass`` closes. A pull request's plan is
carried out whole or not at all: a plan that does not fit is *deferred* (an escalation never gets
its label without its comment), reported with its :class:`Deferral` reason, and acted on again
in a later pass, before the pull requests that were not deferred (:func:`fair_key`).

Two ways to spend one budget, one rule:

- :func:`admit` spends a :class:`Ledger` plan by plan, in the order the plans are carried out
  (``ai-operator run`` acts serialized, so it spends the budget exactly).
- :func:`allot` shares the budget out *before* the pipeline's fan-out, in the stable fair order
  fetch lists the pull requests in: each of the first pull requests gets a whole
  :data:`WRITES_PER_PULL_REQUEST` share (and a merge or a close while the caps last), the rest
  none. Each act pod then spends its own share with :func:`admit`. Parallel pods share nothing
  at run time, and a retried or resubmitted pod gets the same share again: the budget of a pass
  is fixed when the pass is planned.

The default budget stays below GitHub's limits (:func:`writes_per_pass`): at most
``per_pass`` writes, and no more than ``per_hour`` spread over the passes of an hour.

No I/O and no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from ai_operator.jobs.policy.plan import Close, Merge, Operation
from ai_operator.jobs.rules.model import RuleLimits

DEFAULT_WRITES_PER_PASS = 60
"""Below GitHub's 80 content-creating requests a minute (a pass may last under a minute)."""
DEFAULT_WRITES_PER_HOUR = 400
"""Below GitHub's 500 content-creating requests an hour."""
WRITES_PER_PULL_REQUEST = 2
"""The most writes one pull request's plan makes (labels and a comment; a comment and a close; a
merge and its comment): the share :func:`allot` gives each pull request it lets write."""


class Deferral(StrEnum):
    """Why a pull request's writes wait for a later pass (the ``reason`` label of its metric)."""

    BUDGET = "budget"
    """The pass's write budget is spent."""
    MERGES = "merges"
    """``spec.limits.maxMergesPerPass`` merges were made."""
    CLOSES = "closes"
    """``spec.limits.maxClosesPerPass`` closes were made."""
    RATE_LIMIT = "rate-limit"
    """GitHub answered with a rate limit whose ``retry-after`` is longer than the pass waits."""
    PAUSED = "paused"
    """Writes are paused (the installation's value or the namespace's annotation)."""


DEFERRALS: tuple[str, ...] = tuple(reason.value for reason in Deferral)


@dataclass(frozen=True)
class WriteBudget:
    """What a pass (or one pull request's share of it) may still write; None is no cap."""

    writes: int | None = None
    merges: int | None = None
    closes: int | None = None

    @classmethod
    def of(cls, limits: RuleLimits, writes: int | None) -> WriteBudget:
        """A pass's budget: ``writes`` mutations and the rule's merge and close caps."""
        return cls(writes, limits.maxMergesPerPass, limits.maxClosesPerPass)

    @property
    def unlimited(self) -> bool:
        """Whether nothing is capped."""
        return self.writes is None and self.merges is None and self.closes is None

    def share(self) -> WriteBudget:
        """One pull request's whole share of this budget (what :func:`allot` gives)."""
        return WriteBudget(
            None if self.writes is None else WRITES_PER_PULL_REQUEST,
            None if self.merges is None else 1,
            None if self.closes is None else 1,
        )


@dataclass(frozen=True)
class Ledger:
    """What is left of a budget, and whether any of it was spent."""

    left: WriteBudget
    spent: int = 0

    @classmethod
    def of(cls, budget: WriteBudget) -> Ledger:
        """A ledger with all of ``budget`` left."""
        return cls(budget)


@dataclass(frozen=True)
class Cost:
    """What a plan writes: mutations, of which merges and closes."""

    writes: int
    merges: int
    closes: int


def cost(operations: Iterable[Operation]) -> Cost:
    """The writes of a plan's operations: one per operation."""
    ops = list(operations)
    merges = sum(1 for op in ops if isinstance(op, Merge))
    closes = sum(1 for op in ops if isinstance(op, Close))
    return Cost(len(ops), merges, closes)


def admit(ledger: Ledger, operations: Sequence[Operation]) -> tuple[Deferral | None, Ledger]:
    """Whether a plan fits what is left (None) or why it waits; the ledger after it.

    A plan that writes nothing always fits. The merge and close caps are checked first (they
    name a reason of their own), then the writes. The first plan of an unspent ledger with any
    writes left fits whatever its size, so that no plan waits for ever behind a small budget.
    """
    need = cost(operations)
    if need.writes == 0:
        return None, ledger
    left = ledger.left
    if need.merges and not _fits(left.merges, need.merges):
        return Deferral.MERGES, ledger
    if need.closes and not _fits(left.closes, need.closes):
        return Deferral.CLOSES, ledger
    first = ledger.spent == 0 and (left.writes is None or left.writes > 0)
    if not first and not _fits(left.writes, need.writes):
        return Deferral.BUDGET, ledger
    after = replace(
        left,
        writes=_less(left.writes, need.writes),
        merges=_less(left.merges, need.merges),
        closes=_less(left.closes, need.closes),
    )
    return None, Ledger(after, ledger.spent + need.writes)


def allot(
    order: Sequence[str], budget: WriteBudget, expected: Mapping[str, str] | None = None
) -> dict[str, WriteBudget]:
    """Each pull request's share of ``budget``, in ``order`` (the stable fair order of the pass).

    Whole writes shares (:meth:`WriteBudget.share`) go to the first pull requests while the
    budget lasts, none to the rest. The decisions are not known yet, so the ``merges`` merge
    rights (and the ``closes`` close rights) go first to the pull requests whose last decision
    (``expected``: name -> action) was to merge (close), then in order to those never decided; a
    pull request whose action gets no right waits, and is first next pass with its right.
    Without a cap, every pull request may write freely.
    """
    known = expected or {}
    if budget.unlimited:
        return {name: WriteBudget() for name in order}
    slots = math.inf if budget.writes is None else budget.writes // WRITES_PER_PULL_REQUEST
    merging = _rights(order, known, "merge", budget.merges)
    closing = _rights(order, known, "close", budget.closes)
    shares: dict[str, WriteBudget] = {}
    for index, name in enumerate(order):
        share = budget.share()
        shares[name] = replace(
            share,
            writes=0 if index >= slots else share.writes,
            merges=None if share.merges is None else int(name in merging),
            closes=None if share.closes is None else int(name in closing),
        )
    return shares


def _rights(
    order: Sequence[str], expected: Mapping[str, str], action: str, cap: int | None
) -> set[str]:
    """Who gets one of ``cap`` rights to ``action``: those expected to take it, then the unknown."""
    if cap is None:
        return set(order)
    likely = [name for name in order if expected.get(name) == action]
    unknown = [name for name in order if name not in expected]
    return set((likely + unknown)[: max(0, cap)])


def fair_key(deferred_last_pass: bool, last_decided: float) -> tuple[int, float]:
    """The head of a pass's order: what waited last pass first, then least recently decided."""
    return (0 if deferred_last_pass else 1, last_decided)


def writes_per_pass(per_pass: int, per_hour: int, interval_seconds: float | None) -> int:
    """The default budget of one pass: ``per_pass``, and ``per_hour`` spread over an hour's passes.

    A rule run every 5 minutes makes 12 passes an hour: 400 an hour allow 33 writes a pass. At
    least :data:`WRITES_PER_PULL_REQUEST`, so that every pass can settle one pull request.
    """
    budget = per_pass
    if interval_seconds and interval_seconds > 0:
        passes_an_hour = max(1.0, 3600.0 / interval_seconds)
        budget = min(budget, math.floor(per_hour / passes_an_hour))
    return max(WRITES_PER_PULL_REQUEST, budget)


def deferred_counts(reasons: Iterable[str | None]) -> dict[str, int]:
    """How many pull requests waited, by reason (unknown reasons are dropped)."""
    found: dict[str, int] = {}
    for reason in reasons:
        if reason in DEFERRALS:
            found[reason] = found.get(reason, 0) + 1
    return found


def known_deferrals(counts: Mapping[str, int]) -> dict[str, int]:
    """``counts`` keeping only this version's reasons."""
    return {k: n for k, n in counts.items() if k in DEFERRALS and n}


def _fits(left: int | None, need: int) -> bool:
    return left is None or left >= need


def _less(left: int | None, spent: int) -> int | None:
    return None if left is None else max(0, left - spent)
