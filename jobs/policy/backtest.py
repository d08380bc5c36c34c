"""Backtesting a rule: settled pull requests as they stood, and how far its decisions agree. Pure.

A settled pull request (merged or closed by people) is decided again as if it were still open at
its last head commit. GitHub keeps that commit's checks, the reviews and the labels, but not
everything as it was, so :func:`as_open` makes these documented approximations:

- it is open, and nobody undid any of the operator's work on it (the operator did nothing);
- mergeability: a merged pull request was mergeable and clean (GitHub merged it); a closed one
  keeps what GitHub reports now, and GitHub's ``UNKNOWN`` (it stops computing mergeability once
  a pull request is closed) is read as mergeable and clean;
- labels are those it carries now (labels changed after it was settled count as before);
- its facts were read at the moment it was settled (the required-check grace period is measured
  from its head commit to then).

What people did is ``merged`` or ``closed`` (unmerged). A decision agrees with it
(:func:`agrees`) when: ``merge`` and people merged it; ``close`` and people closed it unmerged;
``escalate`` and a person stepped in before it was settled (a review by someone other than its
author); ``wait`` never does (every pull request here was settled).

No I/O and no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ai_operator.jobs.policy.snapshot import Mergeable, PullRequestSnapshot, PullRequestState
from ai_operator.jobs.rules.matching import canonical_login
from ai_operator.jobs.rules.model import ALL_ACTIONS, DEFAULT_ACTIONS, Action

_BLOCKING_MERGE_STATES = frozenset({"DIRTY", "BEHIND", "BLOCKED", "DRAFT", "UNSTABLE"})


class Happened(StrEnum):
    """What people did to a pull request."""

    MERGED = "merged"
    CLOSED = "closed"


HAPPENED: tuple[Happened, ...] = (Happened.MERGED, Happened.CLOSED)


@dataclass(frozen=True)
class Settled:
    """A pull request people merged or closed: its facts as GitHub keeps them, and when."""

    pr: PullRequestSnapshot
    happened: Happened
    settled_at: datetime

    @property
    def stepped_in(self) -> bool:
        """Whether a person other than its author reviewed it before it was settled."""
        author = canonical_login(self.pr.author)
        return any(canonical_login(review.author) != author for review in self.pr.reviews)


def as_open(settled: Settled) -> PullRequestSnapshot:
    """``settled`` as it stood before people settled it, with the approximations above."""
    pr = settled.pr
    merged = settled.happened is Happened.MERGED
    mergeable, merge_state = pr.mergeable, pr.merge_state_status
    if merged or mergeable is Mergeable.UNKNOWN:
        mergeable = Mergeable.MERGEABLE
    if merged or merge_state not in _BLOCKING_MERGE_STATES:
        merge_state = "CLEAN" if mergeable is Mergeable.MERGEABLE else "DIRTY"
    return pr.model_copy(
        update={
            "state": PullRequestState.OPEN,
            "mergeable": mergeable,
            "merge_state_status": merge_state,
            "comment_markers": frozenset(),
            "reopened_by": None,
            "labels_removed_by_people": frozenset(),
            "labels_added_by_operator": frozenset(),
            "comment_deleted_by": None,
            "read_at": settled.settled_at,
        }
    )


def within(settled: Settled, since: datetime, until: datetime) -> bool:
    """Whether ``settled`` was settled in the window (both ends included)."""
    return since <= settled.settled_at <= until


def agrees(decided: Action, settled: Settled) -> bool:
    """Whether deciding ``decided`` agrees with what people did to ``settled``."""
    if decided is Action.MERGE:
        return settled.happened is Happened.MERGED
    if decided is Action.CLOSE:
        return settled.happened is Happened.CLOSED
    if decided is Action.ESCALATE:
        return settled.stepped_in
    return False


@dataclass(frozen=True)
class Compared:
    """One settled pull request: what the rule decided, what people did, and the model's reason."""

    display: str
    url: str
    decided: Action
    happened: Happened
    agreed: bool
    reason: str


@dataclass(frozen=True)
class Agreement:
    """How many decisions agreed with people, of how many."""

    agreed: int = 0
    of: int = 0

    @property
    def rate(self) -> float | None:
        """The share that agreed; None when nothing was decided."""
        return round(self.agreed / self.of, 3) if self.of else None


@dataclass(frozen=True)
class Score:
    """A backtest's figures: the confusion table, the agreement, the disagreements."""

    confusion: dict[Action, dict[Happened, int]]
    overall: Agreement
    by_action: dict[Action, Agreement]
    disagreements: tuple[Compared, ...] = field(default_factory=tuple)


def score(rows: Sequence[Compared]) -> Score:
    """The figures of ``rows``: every action and outcome appears in the table, zeros included."""
    decided = {row.decided for row in rows}
    actions = [a for a in ALL_ACTIONS if a in DEFAULT_ACTIONS or a in decided]
    confusion = {action: dict.fromkeys(HAPPENED, 0) for action in actions}
    for row in rows:
        confusion[row.decided][row.happened] += 1
    by_action = {
        action: Agreement(
            sum(1 for r in rows if r.decided is action and r.agreed),
            sum(1 for r in rows if r.decided is action),
        )
        for action in actions
    }
    overall = Agreement(sum(1 for r in rows if r.agreed), len(rows))
    return Score(confusion, overall, by_action, tuple(r for r in rows if not r.agreed))
