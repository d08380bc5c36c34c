"""Gather: the open pull requests a rule covers, as snapshots, and the pipeline's references.

GitHub's search is only a first filter (its index lags): every selector condition is checked
again on the facts read in the same request (:func:`jobs.policy.selection.covers`). Every matching
pull request is gathered (up to the 1,000 results a search returns): ``maxPullRequests`` bounds
the model calls of a pass (:func:`jobs.policy.reuse.triage`), not which pull requests are seen.

Errors: ``GitHubError`` from the reader, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ai_operator.jobs.policy.reuse import (
    Candidate,
    Remembered,
    Triage,
    decision_key,
    rotation,
    triage,
)
from ai_operator.jobs.policy.selection import covers
from ai_operator.jobs.policy.shadow import shadowing
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.reconcile.event_scope import EventScope
from ai_operator.jobs.reconcile.ports import GitHubReader, NamedReader
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.rules.schedule import minutes_between, resolve

SEARCH_LIMIT = 1000  # GitHub's search returns at most 1,000 results


def gather(
    rule: PRReconciliationRule, repositories: Sequence[str], github: GitHubReader
) -> list[PullRequestSnapshot]:
    """Every open pull request the rule covers, re-checked (raises GitHubError)."""
    candidates = github.search_pull_requests(repositories, rule.spec.selector, SEARCH_LIMIT)
    covered = [pr for pr in candidates if covers(pr, rule.spec.selector)]
    return sorted(covered, key=lambda pr: (pr.repository, pr.number))


def gather_named(
    rule: PRReconciliationRule, scope: EventScope, github: NamedReader
) -> list[PullRequestSnapshot]:
    """The open pull requests an event named that the rule covers, read in one request."""
    named = github.pull_requests(scope.repository, scope.numbers)
    covered = [pr for pr in named if covers(pr, rule.spec.selector)]
    return sorted(covered, key=lambda pr: (pr.repository, pr.number))


def sort_out(
    rule: PRReconciliationRule,
    prs: Sequence[PullRequestSnapshot],
    remembered: Mapping[str, Remembered],
    *,
    model: str,
    now: float,
    max_age: float,
    cap: int,
    memory_ok: bool = True,
) -> Triage:
    """Which of ``prs`` reuse a remembered decision, which to ask about, which wait (cap).

    ``remembered`` maps ``owner/name#number`` to the last decision kept for it; a decision is
    reused while the PR's key (rule spec, ``model``, facts) is unchanged and younger than
    ``max_age`` seconds. See :func:`jobs.policy.reuse.triage` for the order under the cap.
    Without a memory (``memory_ok`` false: none, or one that could not be read), each scheduled
    pass starts the order further on, so the pull requests beyond the cap still take turns.
    """
    spec_hash = rule.spec_hash()
    candidates = [
        Candidate(pr, decision_key(spec_hash, model, pr), remembered.get(pr.display)) for pr in prs
    ]
    rotate = 0 if memory_ok else rotation(now, _interval_seconds(rule), cap)
    shadow = shadowing(rule.spec)
    return triage(candidates, now=now, max_age=max_age, cap=cap, rotate=rotate, shadow=shadow)


def _interval_seconds(rule: PRReconciliationRule) -> float:
    return 60.0 * minutes_between(resolve(rule.spec.schedule, rule.spec.reconciliationInterval))
