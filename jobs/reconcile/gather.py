"""Gather: the open pull requests a rule covers, as snapshots, and the pipeline's references.

GitHub's search is only a first filter (its index lags): every selector condition is checked
again on the facts read in the same request (:func:`jobs.policy.selection.covers`).

Errors: ``GitHubError`` from the reader, unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from jobs.policy.selection import covers
from jobs.policy.snapshot import PullRequestSnapshot
from jobs.reconcile.ports import GitHubReader
from jobs.rules.model import PRReconciliationRule

SEARCH_HEADROOM = 50  # candidates beyond the cap, for those the re-check drops


def own_labels(rule: PRReconciliationRule) -> frozenset[str]:
    """Labels left out of fingerprints: the ones this rule's own escalation adds."""
    escalation = rule.spec.escalation
    return frozenset([*escalation.labels, *escalation.optionalLabels])


def gather(
    rule: PRReconciliationRule, repositories: Sequence[str], github: GitHubReader
) -> list[PullRequestSnapshot]:
    """The open pull requests the rule covers, re-checked and capped (raises GitHubError)."""
    cap = rule.spec.maxPullRequests
    candidates = github.search_pull_requests(
        repositories, rule.spec.selector, min(1000, cap + SEARCH_HEADROOM)
    )
    covered = [pr for pr in candidates if covers(pr, rule.spec.selector)]
    return sorted(covered, key=lambda pr: (pr.repository, pr.number))[:cap]


def pull_request_ref(rule: PRReconciliationRule, pr: PullRequestSnapshot) -> dict[str, Any]:
    """The pipeline's reference to ``pr``: small, with a memoization key and a display name.

    Shape: ``{"repository", "number", "headOid", "fingerprint", "key", "display"}``; ``key``
    matches Argo's memoization key pattern ``^[a-zA-Z0-9][-a-zA-Z0-9]*$``.
    """
    ref = pr.ref(own_labels(rule))
    digest = hashlib.sha256(
        f"{rule.spec_hash()}|{ref.repository}|{ref.number}|{ref.fingerprint}".encode()
    ).hexdigest()[:24]
    return {**ref.model_dump(), "key": f"d-{digest}", "display": ref.display}
