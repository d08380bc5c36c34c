"""The outcome record: what the operator did to one pull request at one head, for one rule. Pure.

One record per (rule, pull request, head commit), written after GitHub answered: the decision,
the key of the facts it was made on (:func:`jobs.policy.reuse.decision_key`), the operations
applied (with GitHub's ids of what they made: a comment's, the labels'), the token's login that
applied them, and when. It is the operator's own index of its work, stored where the pass runs
(:mod:`jobs.clients.decision_cache` for ``run``; in the cluster, ConfigMaps owned by the rule,
:mod:`jobs.clients.outcome_index`). Losing it loses only savings (the model is asked again), never
safety: what people did is read from GitHub's timeline (:mod:`jobs.policy.people`) on every pass.

What is never recorded: a fallback (an invalid or missing answer, a forbidden action), a
decision made on facts other than those its record would be keyed on, and a failure. The next
pass asks again, so a glitch never pins a pull request to ``wait``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace

from ai_operator.jobs.policy.decision import Decision
from ai_operator.jobs.policy.reuse import Candidate, Remembered
from ai_operator.jobs.policy.shadow import ShadowDecision


def not_recorded(decision: Decision) -> str | None:
    """Why ``decision`` must not be remembered; None when it may be."""
    if decision.fallback:
        return "a fallback is never remembered: the next pass asks again"
    return None


def outcome_records(
    decisions: Sequence[Decision],
    keys: Mapping[str, str],
    applied: Mapping[str, Sequence[str]],
    *,
    actor: str | None,
    now: float,
    github_ids: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    deferred: Collection[str] = (),
) -> dict[str, Remembered]:
    """Records of the decisions just made and acted on, by ``owner/name#number``.

    ``keys`` are the decision keys of the facts each decision was made on; ``applied`` the
    operations GitHub confirmed, per pull request; ``actor`` the token's login; ``github_ids``
    GitHub's ids of what they made or added, per pull request and operation; ``deferred`` the
    pull requests whose writes waited for a later pass (acted on again, first; reused while the
    key stands: :func:`reacted`).
    """
    ids = github_ids or {}
    return {
        d.display: Remembered(
            keys[d.display],
            now,
            d,
            applied=tuple(applied.get(d.display, ())),
            actor=actor,
            head=d.head_oid,
            github_ids={op: tuple(made) for op, made in ids.get(d.display, {}).items()},
            deferred=d.display in deferred,
        )
        for d in decisions
        if d.display in keys and not_recorded(d) is None
    }


def reacted(
    reused: Iterable[Candidate],
    applied: Mapping[str, Sequence[str]],
    *,
    actor: str | None,
    github_ids: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    deferred: Collection[str] = (),
    not_acted: Collection[str] = (),
) -> dict[str, Remembered]:
    """Records of reused decisions whose writes had waited, as this pass acted on them again.

    Each keeps its key and its decision time (the model was asked then, not now: the maximum age
    still counts from it) and records what this act applied (``applied``, ``github_ids``) and
    whether its writes waited again (``deferred``). An act that failed or wrote nothing by
    choice (a dry run: ``not_acted``), or a reused decision that had not waited, records nothing
    new: its record stays as it was.
    """
    ids = github_ids or {}
    return {
        name: replace(
            found,
            applied=tuple(applied.get(name, ())),
            github_ids={op: tuple(made) for op, made in ids.get(name, {}).items()},
            actor=actor or found.actor,
            deferred=name in deferred,
        )
        for candidate in reused
        if (found := candidate.remembered) is not None
        and found.deferred
        and (name := candidate.pr.display) in applied
        and name not in not_acted
    }


def shadow_records(records: Mapping[str, Remembered], *, now: float) -> dict[str, Remembered]:
    """``records`` as a shadow pass keeps them: marked shadow, each with its shadow decision.

    The mark keeps an enforcing pass from ever acting on them (:func:`jobs.policy.reuse.declined`);
    the decision, at its head and ``now``, waits to be settled (:mod:`jobs.policy.shadow`).
    """
    return {
        name: replace(
            record,
            shadow=True,
            applied=(),
            shadow_decisions=(
                ShadowDecision(
                    record.decision.action, record.head or record.decision.head_oid, now
                ),
            ),
        )
        for name, record in records.items()
        if record.decision is not None
    }


ARMING_OPERATIONS = ("enqueue", "enable auto-merge")
"""How the applied operations that hand a merge to GitHub begin (as the reports name them)."""


def armed_elsewhere(records: Mapping[str, Remembered], seen: Collection[str]) -> list[Remembered]:
    """Records whose last act queued or armed a PR that the rule's search did not find now.

    The PR may have left the rule (a label added or removed) while GitHub still holds what the
    operator armed: it is read afresh and disarmed if it is (:mod:`jobs.policy.plan`). The record
    only says which PRs to read; what is done is decided on what GitHub says then.
    """
    return [
        record
        for name, record in sorted(records.items())
        if name not in seen
        and record.decision is not None
        and any(op.startswith(ARMING_OPERATIONS) for op in record.applied)
    ]
