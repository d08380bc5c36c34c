"""Shadow mode's bookkeeping: settle recorded decisions from GitHub's timeline, and score them.

At the start of each pass of a rule in ``spec.mode: Shadow`` (``run_pass``; the pipeline's
fetch), :func:`settle_recorded` reads, for every pull request of the rule's outcome store that
holds an unsettled shadow decision, its state, head and timeline (one request each,
:meth:`~jobs.reconcile.ports.GitHubReader.pull_request_history`), settles what it can
(:func:`jobs.policy.shadow.settle`) and keeps the settled decisions back in the store. The pass
then decides as usual; the act step writes nothing (:mod:`jobs.reconcile.act`) and the records
kept are marked shadow with their decision (:func:`jobs.policy.outcome.shadow_records`).

A pull request that cannot be read is left unsettled for a later pass; a store that cannot be
written loses only the score. Nothing here writes to GitHub.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ai_operator.jobs.clients.decision_cache import DecisionCacheError
from ai_operator.jobs.clients.github.errors import GitHubError
from ai_operator.jobs.log import get_logger
from ai_operator.jobs.policy.reuse import Remembered
from ai_operator.jobs.policy.shadow import (
    ShadowDecision,
    ShadowScore,
    newly_settled,
    score,
    settle,
)
from ai_operator.jobs.reconcile.ports import DecisionMemory, GitHubReader


@dataclass(frozen=True)
class Sweep:
    """What one pass's settling found: the decisions it settled, the score after, what it missed."""

    settled: tuple[ShadowDecision, ...] = ()
    score: ShadowScore = field(default_factory=ShadowScore)
    unread: int = 0
    """Pull requests whose history could not be read (settled by a later pass)."""

    def settled_counts(self) -> dict[str, int]:
        """Settled decisions by ``decided:happened`` (the metrics' and the wire's shape)."""
        counts: dict[str, int] = {}
        for decision in self.settled:
            key = f"{decision.decided.value}:{decision.happened.value if decision.happened else ''}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def agreed_counts(self) -> dict[str, int]:
        """Settled decisions that agreed, by decided action."""
        counts: dict[str, int] = {}
        for decision in self.settled:
            if decision.agreed:
                counts[decision.decided.value] = counts.get(decision.decided.value, 0) + 1
        return counts


def settle_recorded(
    rule: str,
    remembered: Mapping[str, Remembered],
    github: GitHubReader,
    memory: DecisionMemory | None,
    *,
    now: float,
) -> Sweep:
    """Settle the unsettled shadow decisions of ``remembered`` (``rule``'s records); keep them."""
    updated: dict[str, Remembered] = {}
    unread = 0
    for name, record in remembered.items():
        if all(decision.settled for decision in record.shadow_decisions):
            continue
        repository, _, number = name.rpartition("#")
        try:
            history = github.pull_request_history(repository, int(number))
        except (GitHubError, ValueError) as exc:
            unread += 1
            get_logger("shadow", rule=rule).warning(
                "history not read: settled by a later pass", pr=name, error=str(exc)
            )
            continue
        settled = tuple(settle(d, history, now) for d in record.shadow_decisions)
        if settled != record.shadow_decisions:
            updated[name] = replace(record, shadow_decisions=settled)
    if updated and memory is not None:
        try:
            memory.keep(rule, updated)
        except DecisionCacheError as exc:
            get_logger("shadow", rule=rule).warning("settled decisions not kept", error=str(exc))
    after = {**remembered, **updated}
    found = [
        d
        for name, record in updated.items()
        for d in newly_settled(remembered[name].shadow_decisions, record.shadow_decisions)
    ]
    every = (d for record in after.values() for d in record.shadow_decisions)
    return Sweep(tuple(found), score(every), unread)


def score_of(remembered: Mapping[str, Remembered]) -> ShadowScore:
    """The score of every shadow decision a rule's store keeps."""
    return score(d for record in remembered.values() for d in record.shadow_decisions)
