"""Reusing decisions between passes, and choosing whom a capped pass asks the model about. Pure.

A pass remembers, per pull request, the last decision it made, when, and under which key. The
key (:func:`decision_key`) names everything the decision depends on: the rule's spec, the model,
the pull request, and the facts of :meth:`~jobs.policy.snapshot.PullRequestSnapshot.fingerprint`
(head commit, checks, mergeability, reviews, labels except those the operator's token added,
base, title, body, state, draft) plus Argo CD's health and sync of the PR's application
(:meth:`jobs.policy.argocd.ArgoCDStatus.facts`: a change of health is a change of facts).
While the key is unchanged and the decision is younger than the maximum age, the
pass reuses it instead of asking the model; a reused decision is then acted on like a fresh one
(plan and guardrails on fresh facts), so reuse never skips a safety check.

:func:`triage` splits a pass's matching pull requests into those it reuses, those it asks about
(at most the cap: ``maxPullRequests`` bounds model calls, not what is seen) and those deferred to a
later pass, those whose writes waited last pass first (:mod:`jobs.policy.pacing`), then least
recently decided first, so that every matching pull request is decided within
``ceil(matching / cap)`` passes. :func:`memory_document` and :func:`read_memory_document` are the
one on-disk (or in-ConfigMap) shape of the memory, bounded in entries.

No I/O and no clock: ``now`` is passed in.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from ai_operator.jobs.policy.caps import PassOrder, pass_order
from ai_operator.jobs.policy.decision import Decision
from ai_operator.jobs.policy.shadow import RETENTION_SECONDS, ShadowDecision, combined
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot

MEMORY_FORMAT = 1
KEY_PREFIX = "d-"
MEMO_SHARDS = "0123456789abcdef"
"""The pipeline spreads its outcome index over one ConfigMap per shard (a digest's first hex
digit, :func:`jobs.clients.outcome_index.shard_of`)."""


def decision_key(spec_hash: str, model: str, pr: PullRequestSnapshot) -> str:
    """The key a decision about ``pr`` is remembered under: it changes when anything it read does.

    ``model`` names the provider and model (``anthropic/claude-sonnet-5``). Of the labels, only
    those the operator's token added are left out (read from the timeline, case-insensitively):
    the operator's own escalation is no change of facts, a person adding any label is.
    """
    facts = "|".join(
        (spec_hash, model, pr.repository, str(pr.number), pr.fingerprint(), pr.argocd.facts())
    )
    return KEY_PREFIX + hashlib.sha256(facts.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Remembered:
    """What a memory holds about one pull request: its last decision, when, under which key.

    ``decision`` is None where the memory knows only that and when a decision was made.
    """

    key: str
    decided_at: float
    decision: Decision | None = None
    applied: tuple[str, ...] = ()
    """The operations GitHub confirmed (:mod:`jobs.policy.outcome`)."""
    github_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """GitHub's ids of what they made or added, by operation (a comment's id, the labels')."""
    actor: str | None = None
    """The login of the token that applied them."""
    head: str | None = None
    """The head commit the decision was made at."""
    deferred: bool = False
    """Its writes waited for a later pass (:mod:`jobs.policy.pacing`): it is acted on again,
    before the pull requests that did not wait; while its key stands (and it is younger than the
    maximum age, counted from ``decided_at``, when the model was asked) the decision is reused
    and only acted on again, on fresh facts, through the write gate."""
    shadow: bool = False
    """Made by a shadow pass (``spec.mode: Shadow``): never acted on by an enforcing pass."""
    shadow_decisions: tuple[ShadowDecision, ...] = ()
    """This pull request's shadow decisions and what settled them (:mod:`jobs.policy.shadow`)."""


@dataclass(frozen=True)
class Candidate:
    """A matching pull request, its current decision key, and what memory says of it."""

    pr: PullRequestSnapshot
    key: str
    remembered: Remembered | None = None

    @property
    def last_decided(self) -> float:
        """When it was last decided; minus infinity if never (so it comes first)."""
        return self.remembered.decided_at if self.remembered else -math.inf


@dataclass(frozen=True)
class Triage:
    """One pass's split of the matching pull requests."""

    reuse: tuple[Candidate, ...]
    """Unchanged since a decision younger than the maximum age: that decision is reused."""
    ask: tuple[Candidate, ...]
    """To be decided by the model now (at most the cap)."""
    deferred: tuple[Candidate, ...]
    """Beyond the cap: decided in a later pass, before anyone decided more recently."""
    declined: Mapping[str, str] = field(default_factory=dict)
    """Why a remembered decision was not reused, by ``owner/name#number`` (see :func:`declined`)."""

    @property
    def matched(self) -> int:
        """How many pull requests matched the rule."""
        return len(self.reuse) + len(self.ask) + len(self.deferred)


def declined(
    candidate: Candidate, *, now: float, max_age: float, shadow: bool = False
) -> str | None:
    """Why ``candidate``'s remembered decision cannot be reused; None when it still stands.

    The one place where reuse is decided, from the rule generation, instruction and model and
    the pull request's facts (all in the key), and the outcome record. What people did since is
    read from the timeline when acting (the plan), so reuse never skips a safety check. A
    decision whose writes were deferred (no write budget left) is reused like any other: it is
    acted on again, on fresh facts and through the write gate, without asking the model again.
    ``shadow``: the pass is a shadow pass; only such a pass may reuse a shadow decision.
    """
    found = candidate.remembered
    if found is None:
        return "never decided"
    if found.shadow and not shadow:
        return "a shadow decision is never acted on"
    if found.decision is not None and found.decision.fallback:
        return "a fallback is never reused"
    if found.deferred and found.decision is None:
        return "its writes were deferred and its decision is not known: decided again"
    if found.key != candidate.key:
        return "the facts, the rule or the model changed"
    age = now - found.decided_at
    if age < 0:
        return "decided in the future (a skewed clock): not trusted"
    if age > max_age:
        return "decided too long ago"
    return None


def triage(
    candidates: Iterable[Candidate],
    *,
    now: float,
    max_age: float,
    cap: int,
    rotate: int = 0,
    shadow: bool = False,
) -> Triage:
    """Reuse what still stands; ask about at most ``cap`` of the rest, least recently decided first.

    Ties (never decided, or decided at the same moment) go to the pull request updated longest
    ago, then by repository and number, so the order is total and the same on every machine.
    ``rotate`` starts the order that many places further (wrapping): a pass that cannot read its
    memory gives each pass a different offset (:func:`rotation`), so the pull requests beyond the
    cap still take their turn instead of the same first ``cap`` every time. ``shadow``: a
    shadow pass (:func:`declined`).
    """
    reuse: list[Candidate] = []
    rest: list[Candidate] = []
    reasons: dict[str, str] = {}
    for candidate in candidates:
        why = declined(candidate, now=now, max_age=max_age, shadow=shadow)
        if why is None:
            reuse.append(candidate)
        else:
            rest.append(candidate)
            if candidate.remembered is not None:
                reasons[candidate.pr.display] = why
    reuse.sort(key=_fairness)  # what waited for write budget acts first
    rest.sort(key=_fairness)
    if rest and rotate:
        start = rotate % len(rest)
        rest = rest[start:] + rest[:start]
    limit = max(0, cap)
    return Triage(tuple(reuse), tuple(rest[:limit]), tuple(rest[limit:]), reasons)


def rotation(now: float, interval_seconds: float, cap: int) -> int:
    """The offset of a pass without memory: ``cap`` further on at every scheduled pass."""
    return int(now // max(1.0, interval_seconds)) * max(0, cap)


def order_in_pass(pr: PullRequestSnapshot, remembered: Remembered | None) -> PassOrder:
    """Where ``pr`` comes in a pass's order, given what the pass remembers of it."""
    return _fairness(Candidate(pr, "", remembered))


def _fairness(candidate: Candidate) -> PassOrder:
    waited = candidate.remembered is not None and candidate.remembered.deferred
    return pass_order(candidate.pr, deferred=waited, last_decided=candidate.last_decided)


# --- the memory's stored shape --------------------------------------------------------------


def memory_document(
    entries: Mapping[str, Remembered], *, rule: str, now: float, max_age: float, max_entries: int
) -> dict[str, Any]:
    """The memory as one JSON document: entries past ``max_age`` dropped, the newest kept.

    Entries are keyed by ``owner/name#number``; at most ``max_entries`` stay, the most recently
    decided, so the document's size is bounded whatever the number of pull requests seen. An
    entry holding shadow decisions stays for their retention
    (:data:`jobs.policy.shadow.RETENTION_SECONDS`) even past ``max_age``: its score is kept.
    """
    fresh = [
        (name, found)
        for name, found in entries.items()
        if found.decision is not None
        and not found.decision.fallback
        and 0 <= now - found.decided_at <= _kept_for(found, max_age)
    ]
    fresh.sort(key=lambda item: item[1].decided_at, reverse=True)
    return {
        "format": MEMORY_FORMAT,
        "rule": rule,
        "entries": {
            name: {
                "key": found.key,
                "decidedAt": round(found.decided_at, 3),
                "decision": found.decision.model_dump(mode="json") if found.decision else None,
                "applied": list(found.applied),
                "githubIds": {op: list(ids) for op, ids in found.github_ids.items()},
                "actor": found.actor,
                "head": found.head,
                **({"deferred": True} if found.deferred else {}),
                **_shadow_fields(found),
            }
            for name, found in fresh[: max(0, max_entries)]
        },
    }


def _kept_for(found: Remembered, max_age: float) -> float:
    return max(max_age, RETENTION_SECONDS) if found.shadow_decisions else max_age


def _shadow_fields(found: Remembered) -> dict[str, Any]:
    """The shadow fields, only on records that have them (the others keep their shape)."""
    if not found.shadow and not found.shadow_decisions:
        return {}
    return {
        "shadow": found.shadow,
        "shadowDecisions": [decision.to_json() for decision in found.shadow_decisions],
    }


def read_memory_document(document: object, *, rule: str) -> dict[str, Remembered]:
    """The entries of a :func:`memory_document`; anything malformed or of another rule is skipped.

    A memory that cannot be read is an empty memory: the pass then asks the model, which is
    never wrong, only slower.
    """
    if not isinstance(document, Mapping) or document.get("format") != MEMORY_FORMAT:
        return {}
    if document.get("rule") != rule or not isinstance(document.get("entries"), Mapping):
        return {}
    entries: dict[str, Remembered] = {}
    for name, raw in document["entries"].items():
        found = _entry(raw)
        if found is not None and found.decision is not None and found.decision.display == name:
            entries[str(name)] = found
    return entries


def _entry(raw: object) -> Remembered | None:
    if not isinstance(raw, Mapping):
        return None
    key, decided_at = raw.get("key"), raw.get("decidedAt")
    if not isinstance(key, str) or not isinstance(decided_at, int | float):
        return None
    try:
        decision = Decision.model_validate(raw.get("decision"))
    except ValidationError:
        return None
    if decision.fallback:
        return None  # never reused, whoever wrote it
    applied, actor, head = raw.get("applied"), raw.get("actor"), raw.get("head")
    made = raw.get("githubIds")
    shadows = raw.get("shadowDecisions")
    read = (ShadowDecision.from_json(item) for item in shadows) if isinstance(shadows, list) else ()
    return Remembered(
        key,
        float(decided_at),
        decision,
        applied=tuple(str(a) for a in applied) if isinstance(applied, list) else (),
        github_ids={
            str(op): tuple(str(i) for i in ids)
            for op, ids in (made.items() if isinstance(made, Mapping) else ())
            if isinstance(ids, list)
        },
        actor=actor if isinstance(actor, str) else None,
        head=head if isinstance(head, str) else None,
        deferred=raw.get("deferred") is True,
        shadow=raw.get("shadow") is True,
        shadow_decisions=tuple(decision for decision in read if decision is not None),
    )


def merged(*memories: Mapping[str, Remembered]) -> dict[str, Remembered]:
    """One memory from several (say, two runs saving at once): per pull request, the newest.

    Of two records of the same decision time the later memory's wins: a decision whose writes
    waited is recorded again, at its decision time, once acted on
    (:func:`jobs.policy.outcome.reacted`).

    Shadow decisions are kept from every copy (:func:`jobs.policy.shadow.combined`): a newer
    record never drops the score of the ones it replaces.
    """
    result: dict[str, Remembered] = {}
    for memory in memories:
        for name, found in memory.items():
            known = result.get(name)
            newest = found if known is None or found.decided_at >= known.decided_at else known
            if known is not None and (known.shadow_decisions or found.shadow_decisions):
                shadows = combined(known.shadow_decisions, found.shadow_decisions)
                newest = replace(newest, shadow_decisions=shadows)
            result[name] = newest
    return result


def remember(
    decisions: Sequence[Decision], keys: Mapping[str, str], now: float
) -> dict[str, Remembered]:
    """Entries for decisions just made, under the keys their pull requests had this pass.

    A fallback is left out: it is never remembered (:mod:`jobs.policy.outcome`).
    """
    return {
        d.display: Remembered(keys[d.display], now, d, head=d.head_oid)
        for d in decisions
        if d.display in keys and not d.fallback
    }
