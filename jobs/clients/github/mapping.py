"""Maps the sgqlc objects of the ``PullRequestFacts`` fragment into :class:`PullRequestSnapshot`.

sgqlc turns a JSON null object into an empty, falsy object, so absent things are tested with
``if not x``. Nothing returned from here is an sgqlc type; nothing here sends a request.
"""

from __future__ import annotations

from typing import Any

from jobs.policy.markers import find_markers
from jobs.policy.snapshot import (
    Check,
    CiStatus,
    Mergeable,
    PullRequestSnapshot,
    PullRequestState,
    Review,
)

GHOST = "ghost"
"""GitHub's name for a deleted account."""

_CI_STATUS = {
    "SUCCESS": CiStatus.SUCCESS,
    "FAILURE": CiStatus.FAILURE,
    "ERROR": CiStatus.ERROR,
    "PENDING": CiStatus.PENDING,
    "EXPECTED": CiStatus.PENDING,
}
_PENDING_STATUS_STATES = frozenset({"PENDING", "EXPECTED"})


def to_snapshot(pr: Any) -> PullRequestSnapshot:
    """Map one pull request read with the ``PullRequestFacts`` fragment into a snapshot."""
    head_commit = pr.commits.nodes[0].commit if pr.commits.nodes else None
    rollup = head_commit.status_check_rollup if head_commit else None
    return PullRequestSnapshot(
        id=pr.id,
        repository=pr.repository.name_with_owner,
        number=pr.number,
        url=pr.url,
        title=pr.title,
        body=pr.body or "",
        author=author_login(pr.author),
        labels=tuple(label.name for label in pr.labels.nodes),
        base_branch=pr.base_ref_name,
        head_branch=pr.head_ref_name,
        head_oid=pr.head_ref_oid,
        state=PullRequestState(pr.state),
        is_draft=pr.is_draft,
        ci_status=_CI_STATUS.get(rollup.state, CiStatus.UNKNOWN) if rollup else CiStatus.UNKNOWN,
        checks=tuple(_check(context) for context in rollup.contexts.nodes) if rollup else (),
        mergeable=Mergeable(pr.mergeable),
        merge_state_status=pr.merge_state_status,
        review_decision=pr.review_decision,
        reviews=tuple(
            Review(author=author_login(r.author), state=r.state) for r in pr.latest_reviews.nodes
        ),
        additions=pr.additions,
        deletions=pr.deletions,
        changed_files=pr.changed_files,
        created_at=pr.created_at,
        updated_at=pr.updated_at,
        # Only this token's own comments count: anyone can paste a marker into a comment.
        comment_markers=frozenset().union(
            *(find_markers(c.body) for c in pr.comments.nodes if c.viewer_did_author)
        ),
    )


def author_login(actor: Any) -> str:
    """Spell a login as GitHub's UI does: a bot ``dependabot`` is ``dependabot[bot]``."""
    if not actor:
        return GHOST
    if actor.__typename__ == "Bot":
        return f"{actor.login}[bot]"
    return str(actor.login)


def _check(context: Any) -> Check:
    """Keep a check run as it is; a commit status is COMPLETED with its state, or PENDING."""
    if context.__typename__ == "StatusContext":
        if context.state in _PENDING_STATUS_STATES:
            return Check(name=context.context, status="PENDING")
        return Check(name=context.context, status="COMPLETED", conclusion=context.state)
    return Check(name=context.name, status=context.status, conclusion=context.conclusion)
