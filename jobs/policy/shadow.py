"""Shadow mode: score a rule's decisions against what people then did. Pure.

A rule in ``spec.mode: Shadow`` decides as it would in ``Enforce`` (the real model and guardrails)
and writes nothing to GitHub. Each decision is recorded as a :class:`ShadowDecision` with the head
commit it was made at and when (in the rule's outcome store, beside its outcome record:
:mod:`jobs.policy.reuse`). Later passes read each unsettled pull request's history from GitHub's
timeline (:class:`PullRequestHistory`) and settle the decision by the first thing that tells
whether it was right (:func:`what_happened`):

=========  ==========================================================  ===================
decided    settled by the first of                                      agrees when
=========  ==========================================================  ===================
merge      merged, closed, a new head                                   people merged that
                                                                        head (``merged``)
close      merged, closed, a new head                                   closed unmerged
                                                                        (``closed``)
escalate   merged, closed, a new head, a person's review, label or     a person stepped in
           comment                                                      (``stepped_in``)
wait       merged, closed, a new head, a person's review, label or     still open and a new
           comment                                                      head (``changed``)
=========  ==========================================================  ===================

A merge at another head than the decided one is ``changed``. People review and comment on the
way to a merge or a close, so those do not settle a merge or a close decision; they do settle an
escalation (it asked for exactly that) and a wait (someone took it up instead). Events by the
operator's own token (another rule sharing it) are no person's. When the timeline holds no
settling event but the pull request is merged, closed or at another head (events past the page
read), its state settles the decision the same way.

A shadow decision only feeds this score: it is never acted on (:func:`jobs.policy.reuse.declined`
refuses it to an ``Enforce`` pass), and losing it loses only the score.

No I/O and no clock: times are passed in (Unix seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator

from ai_operator.jobs.policy.snapshot import PullRequestState
from ai_operator.jobs.rules.model import ALL_ACTIONS, DEFAULT_ACTIONS, Action, RuleMode, RuleSpec

MAX_DECISIONS_PER_PR = 20
"""Shadow decisions one pull request's record keeps (the newest): its size stays bounded."""
RETENTION_SECONDS = 30 * 86400.0
"""How long a record with shadow decisions is kept, whatever the reuse age: a week of shadowing
and its reading fit in it."""


def shadowing(spec: RuleSpec) -> bool:
    """Whether the rule runs in shadow mode: it decides and records, and never writes."""
    return spec.mode == RuleMode.SHADOW


class Happened(StrEnum):
    """What settled a shadow decision: what people (or the pull request) did next."""

    MERGED = "merged"
    CLOSED = "closed"
    STEPPED_IN = "stepped_in"
    CHANGED = "changed"


AGREEING: Mapping[Action, Happened] = {
    Action.MERGE: Happened.MERGED,
    Action.CLOSE: Happened.CLOSED,
    Action.ESCALATE: Happened.STEPPED_IN,
    Action.WAIT: Happened.CHANGED,
    Action.UPDATE: Happened.CHANGED,
}
"""The one outcome each decided action agrees with."""

_PEOPLE_SETTLE = frozenset({Action.ESCALATE, Action.WAIT})
"""Decisions a person's review, label or comment settles."""


class HistoryKind(StrEnum):
    """The timeline items a decision is settled by."""

    MERGED = "merged"
    CLOSED = "closed"
    HEAD = "head"
    """A commit or force push that made ``oid`` the head."""
    PERSON = "person"
    """A review, label or comment by someone other than the operator's token."""


@dataclass(frozen=True)
class HistoryEvent:
    """One timeline item, as the GitHub client maps it: no SDK type."""

    kind: HistoryKind
    at: float
    oid: str | None = None


@dataclass(frozen=True)
class PullRequestHistory:
    """A pull request's state and head now, and its timeline items (oldest first)."""

    state: PullRequestState
    head_oid: str
    events: tuple[HistoryEvent, ...] = ()


@dataclass(frozen=True)
class ShadowDecision:
    """One decision of a shadow pass: what was decided, at which head, when; then what happened."""

    decided: Action
    head: str
    decided_at: float
    happened: Happened | None = None
    settled_at: float | None = None

    @property
    def key(self) -> tuple[str, str, float]:
        """What names this decision among a pull request's."""
        return (self.decided.value, self.head, round(self.decided_at, 3))

    @property
    def settled(self) -> bool:
        """Whether what happened is known."""
        return self.happened is not None

    @property
    def agreed(self) -> bool:
        """Whether what happened is what the decision agrees with."""
        return self.happened is not None and agrees(self.decided, self.happened)

    def to_json(self) -> dict[str, Any]:
        """The stored shape (camelCase)."""
        return {
            "decided": self.decided.value,
            "head": self.head,
            "decidedAt": round(self.decided_at, 3),
            "happened": self.happened.value if self.happened else None,
            "settledAt": round(self.settled_at, 3) if self.settled_at is not None else None,
        }

    @classmethod
    def from_json(cls, raw: object) -> ShadowDecision | None:
        """The stored shape read back; None when it is not one."""
        if not isinstance(raw, Mapping):
            return None
        try:
            decided = Action(str(raw.get("decided")))
            happened = Happened(raw["happened"]) if raw.get("happened") is not None else None
        except (ValueError, KeyError):
            return None
        head, at, settled_at = raw.get("head"), raw.get("decidedAt"), raw.get("settledAt")
        if not isinstance(head, str) or not isinstance(at, int | float):
            return None
        settled = float(settled_at) if isinstance(settled_at, int | float) else None
        return cls(decided, head, float(at), happened, settled if happened else None)


def agrees(decided: Action, happened: Happened) -> bool:
    """Whether ``happened`` is what ``decided`` agrees with (:data:`AGREEING`)."""
    return AGREEING[decided] is happened


def what_happened(
    decided: Action, head: str, decided_at: float, history: PullRequestHistory
) -> Happened | None:
    """What settles a decision made at ``head`` and ``decided_at``; None while nothing has."""
    for event in history.events:
        if event.at <= decided_at:
            continue
        found = _settled_by(decided, head, event, history)
        if found is not None:
            return found
    return _settled_by_state(head, history)


def _settled_by(
    decided: Action, head: str, event: HistoryEvent, history: PullRequestHistory
) -> Happened | None:
    if event.kind is HistoryKind.MERGED:
        return Happened.MERGED if history.head_oid == head else Happened.CHANGED
    if event.kind is HistoryKind.CLOSED:
        return Happened.CLOSED
    if event.kind is HistoryKind.HEAD:
        return Happened.CHANGED if event.oid != head else None
    if decided in _PEOPLE_SETTLE:
        return Happened.STEPPED_IN
    return None


def _settled_by_state(head: str, history: PullRequestHistory) -> Happened | None:
    if history.state is PullRequestState.MERGED:
        return Happened.MERGED if history.head_oid == head else Happened.CHANGED
    if history.state is PullRequestState.CLOSED:
        return Happened.CLOSED
    return Happened.CHANGED if history.head_oid != head else None


def settle(decision: ShadowDecision, history: PullRequestHistory, now: float) -> ShadowDecision:
    """``decision`` settled by ``history`` when it is (at ``now``); unchanged otherwise."""
    if decision.settled:
        return decision
    found = what_happened(decision.decided, decision.head, decision.decided_at, history)
    return decision if found is None else replace(decision, happened=found, settled_at=now)


def combined(*lists: Iterable[ShadowDecision]) -> tuple[ShadowDecision, ...]:
    """One pull request's shadow decisions from several copies: settled wins, newest kept."""
    by_key: dict[tuple[str, str, float], ShadowDecision] = {}
    for decisions in lists:
        for decision in decisions:
            known = by_key.get(decision.key)
            if known is None or (decision.settled and not known.settled):
                by_key[decision.key] = decision
    ordered = sorted(by_key.values(), key=lambda d: d.decided_at)
    return tuple(ordered[-MAX_DECISIONS_PER_PR:])


@dataclass(frozen=True)
class ActionScore:
    """The score of one decided action."""

    decisions: int = 0
    settled: int = 0
    agreed: int = 0
    happened: Mapping[str, int] = field(default_factory=dict)
    """Settled decisions by what happened."""

    def to_json(self) -> dict[str, Any]:
        """As ``status.shadow`` and ``run --output json`` give it."""
        return {
            "decisions": self.decisions,
            "settled": self.settled,
            "agreed": self.agreed,
            "happened": dict(sorted(self.happened.items())),
        }


@dataclass(frozen=True)
class ShadowScore:
    """How far a rule's shadow decisions agree with people: per decided action, and in all."""

    actions: Mapping[str, ActionScore] = field(default_factory=dict)

    @property
    def decisions(self) -> int:
        """Shadow decisions recorded."""
        return sum(score.decisions for score in self.actions.values())

    @property
    def settled(self) -> int:
        """Of them, those settled."""
        return sum(score.settled for score in self.actions.values())

    @property
    def agreed(self) -> int:
        """Of the settled, those that agreed."""
        return sum(score.agreed for score in self.actions.values())

    @property
    def agreement(self) -> float | None:
        """Agreed over settled; None while nothing is settled."""
        return self.agreed / self.settled if self.settled else None

    def to_json(self) -> dict[str, Any]:
        """The rule's ``status.shadow`` and the JSON output's ``shadow``."""
        agreement = self.agreement
        return {
            "decisions": self.decisions,
            "settled": self.settled,
            "agreed": self.agreed,
            "agreement": round(agreement, 4) if agreement is not None else None,
            "actions": {
                action.value: self.actions.get(action.value, ActionScore()).to_json()
                for action in ALL_ACTIONS
                if action in DEFAULT_ACTIONS or action.value in self.actions
            },
        }


def read_score(raw: object) -> ShadowScore | None:
    """A score from its JSON (:meth:`ShadowScore.to_json`); None from anything else."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("actions"), Mapping):
        return None
    actions: dict[str, ActionScore] = {}
    for action in ALL_ACTIONS:
        found = raw["actions"].get(action.value)
        if isinstance(found, Mapping):
            happened = found.get("happened")
            actions[action.value] = ActionScore(
                _count(found.get("decisions")),
                _count(found.get("settled")),
                _count(found.get("agreed")),
                {str(k): _count(v) for k, v in happened.items()}
                if isinstance(happened, Mapping)
                else {},
            )
    return ShadowScore(actions)


def with_decisions(found: ShadowScore, decided: Mapping[str, int]) -> ShadowScore:
    """``found`` with ``decided`` more decisions per action (recorded after it was counted)."""
    actions = dict(found.actions)
    for action, more in decided.items():
        known = actions.get(action, ActionScore())
        actions[action] = replace(known, decisions=known.decisions + more)
    return ShadowScore(actions)


def _count(value: object) -> int:
    return (
        0 if isinstance(value, bool) or not isinstance(value, int | float) else max(0, int(value))
    )


def score(decisions: Iterable[ShadowDecision]) -> ShadowScore:
    """The score of ``decisions`` (every kept one of a rule)."""
    counts: dict[str, dict[str, Any]] = {}
    for decision in decisions:
        mine = counts.setdefault(
            decision.decided.value, {"decisions": 0, "settled": 0, "agreed": 0, "happened": {}}
        )
        mine["decisions"] += 1
        if decision.happened is not None:
            mine["settled"] += 1
            mine["agreed"] += int(decision.agreed)
            happened = mine["happened"]
            happened[decision.happened.value] = happened.get(decision.happened.value, 0) + 1
    return ShadowScore({action: ActionScore(**values) for action, values in counts.items()})


def newly_settled(
    before: Iterable[ShadowDecision], after: Iterable[ShadowDecision]
) -> list[ShadowDecision]:
    """The decisions of ``after`` that ``before`` held unsettled (what one sweep settled)."""
    open_before = {decision.key for decision in before if not decision.settled}
    return [d for d in after if d.settled and d.key in open_before]


def _score_of(value: object) -> ShadowScore | None:
    return value if isinstance(value, ShadowScore) else read_score(value)


def _score_json(score: ShadowScore | None) -> dict[str, Any] | None:
    return score.to_json() if score is not None else None


ScoreField = Annotated[ShadowScore | None, PlainValidator(_score_of), PlainSerializer(_score_json)]
"""A shadow score where a model carries it (the pass's counts, fetch's counts on the wire):
written as its JSON (:meth:`ShadowScore.to_json`), read back leniently (None from anything
that is not one)."""
