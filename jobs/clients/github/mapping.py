"""Maps the sgqlc objects of the ``PullRequestFacts`` fragment into :class:`PullRequestSnapshot`.

A pull request's nested connections may span several pages: :class:`Connections` holds all their
nodes (the client reads the pages after the first). Timeline events become two facts: who
reopened the pull request after this token closed it, and which labels this token added that
someone else removed. "This token" is the viewer; bots compare in one spelling.

sgqlc turns a JSON null object into an empty, falsy object, so absent things are tested with
``if not x``. Nothing returned from here is an sgqlc type; nothing here sends a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ai_operator.jobs.policy.markers import find_markers
from ai_operator.jobs.policy.people import EventKind, TimelineEvent, TimelineFacts, read_timeline
from ai_operator.jobs.policy.shadow import HistoryEvent, HistoryKind, PullRequestHistory
from ai_operator.jobs.policy.snapshot import (
    Check,
    CiStatus,
    Mergeable,
    PullRequestSnapshot,
    PullRequestState,
    Review,
)
from ai_operator.jobs.rules.matching import canonical_login
from ai_operator.jobs.rules.model import MergeMethod

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


@dataclass
class Connections:
    """Every node of a pull request's nested connections, oldest first, all pages read."""

    labels: list[Any] = field(default_factory=list)
    reviews: list[Any] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    comments: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)


def head_commit(pr: Any) -> Any:
    """The head commit read with the fragment, or None."""
    return pr.commits.nodes[0].commit if pr.commits.nodes else None


def first_pages(pr: Any) -> Connections:
    """The nodes the fragment itself read: the first page of each connection."""
    commit = head_commit(pr)
    rollup = commit.status_check_rollup if commit else None
    return Connections(
        labels=list(pr.labels.nodes),
        reviews=list(pr.latest_reviews.nodes),
        contexts=list(rollup.contexts.nodes) if rollup else [],
        comments=list(pr.comments.nodes),
        events=list(pr.timeline_items.nodes),
    )


def to_snapshot(
    pr: Any,
    viewer: str = "",
    connections: Connections | None = None,
    read_at: datetime | None = None,
) -> PullRequestSnapshot:
    """Map one pull request read with the ``PullRequestFacts`` fragment into a snapshot.

    ``viewer`` is the token's login; ``connections`` all nodes of the nested connections
    (default: the first pages the fragment read).
    """
    nodes = connections or first_pages(pr)
    commit = head_commit(pr)
    rollup = commit.status_check_rollup if commit else None
    state = PullRequestState(pr.state)
    labels = tuple(label.name for label in nodes.labels)
    people = read_timeline(
        [e for e in (_event(node, viewer) for node in nodes.events) if e is not None],
        head_oid=pr.head_ref_oid,
        is_open=state is PullRequestState.OPEN,
        labels=labels,
    )
    return PullRequestSnapshot(
        id=pr.id,
        repository=pr.repository.name_with_owner,
        number=pr.number,
        url=pr.url,
        title=pr.title,
        body=pr.body or "",
        author=author_login(pr.author),
        labels=labels,
        base_branch=pr.base_ref_name,
        head_branch=pr.head_ref_name,
        head_oid=pr.head_ref_oid,
        state=state,
        is_draft=pr.is_draft,
        ci_status=_CI_STATUS.get(rollup.state, CiStatus.UNKNOWN) if rollup else CiStatus.UNKNOWN,
        checks=tuple(_check(context) for context in nodes.contexts),
        mergeable=Mergeable(pr.mergeable),
        merge_state_status=pr.merge_state_status,
        review_decision=pr.review_decision,
        reviews=tuple(Review(author=author_login(r.author), state=r.state) for r in nodes.reviews),
        additions=pr.additions,
        deletions=pr.deletions,
        changed_files=pr.changed_files,
        created_at=pr.created_at,
        updated_at=pr.updated_at,
        # Only this token's own comments count: anyone can paste a marker into a comment.
        comment_markers=frozenset().union(
            *(find_markers(c.body) for c in nodes.comments if c.viewer_did_author)
        ),
        merge_methods=_merge_methods(pr.repository),
        reopened_by=people.reopened_by,
        labels_removed_by_people=people.labels_removed_by_people,
        labels_added_by_operator=people.labels_added_by_operator,
        comment_deleted_by=people.comment_deleted_by,
        **_merge_handover(pr, viewer, people),
        head_committed_at=commit.committed_date if commit else None,
        read_at=read_at or datetime.now(UTC),
    )


def _merge_handover(pr: Any, viewer: str, people: TimelineFacts) -> dict[str, Any]:
    """Who put the PR in the merge queue or armed its auto-merge, and what people undid."""
    entry = pr.merge_queue_entry
    armed = pr.auto_merge_request
    return {
        "merge_queue_required": bool(pr.is_merge_queue_enabled),
        "in_merge_queue": bool(pr.is_in_merge_queue),
        "queued_by": author_login(entry.enqueuer) if entry else None,
        "queued_by_operator": bool(entry) and _is_viewer(entry.enqueuer, viewer),
        "auto_merge_by": author_login(armed.enabled_by) if armed else None,
        "auto_merge_by_operator": bool(armed) and _is_viewer(armed.enabled_by, viewer),
        "auto_merge_armed_here": people.auto_merge_armed_here,
        "auto_merge_disabled_by": people.auto_merge_disabled_by,
        "dequeued_by": people.dequeued_by,
    }


def _merge_methods(repository: Any) -> frozenset[MergeMethod]:
    allowed = {
        MergeMethod.MERGE: repository.merge_commit_allowed,
        MergeMethod.SQUASH: repository.squash_merge_allowed,
        MergeMethod.REBASE: repository.rebase_merge_allowed,
    }
    return frozenset(method for method, on in allowed.items() if on)


def _is_viewer(actor: Any, viewer: str) -> bool:
    return (
        bool(actor)
        and bool(viewer)
        and canonical_login(author_login(actor)) == (canonical_login(viewer))
    )


_EVENT_KINDS = {
    "ClosedEvent": EventKind.CLOSED,
    "ReopenedEvent": EventKind.REOPENED,
    "LabeledEvent": EventKind.LABELED,
    "UnlabeledEvent": EventKind.UNLABELED,
    "CommentDeletedEvent": EventKind.COMMENT_DELETED,
    "AutoMergeEnabledEvent": EventKind.AUTO_MERGE_ENABLED,
    "AutoMergeDisabledEvent": EventKind.AUTO_MERGE_DISABLED,
    "AddedToMergeQueueEvent": EventKind.ADDED_TO_MERGE_QUEUE,
    "RemovedFromMergeQueueEvent": EventKind.REMOVED_FROM_MERGE_QUEUE,
}


def _event(node: Any, viewer: str) -> TimelineEvent | None:
    """One timeline item as a :class:`TimelineEvent`; None for a kind people win by not at all."""
    typename = node.__typename__
    if typename == "PullRequestCommit":
        return TimelineEvent(EventKind.HEAD, oid=node.commit.oid if node.commit else None)
    if typename == "HeadRefForcePushedEvent":
        after = node.after_commit
        return TimelineEvent(EventKind.HEAD, oid=after.oid if after else None)
    kind = _EVENT_KINDS.get(typename)
    if kind is None:
        return None
    label = (
        node.label.name if kind in {EventKind.LABELED, EventKind.UNLABELED} and node.label else None
    )
    about = kind is EventKind.COMMENT_DELETED and _is_viewer(node.deleted_comment_author, viewer)
    return TimelineEvent(
        kind,
        actor=author_login(node.actor),
        by_operator=_is_viewer(node.actor, viewer),
        label=label,
        about_operator=about,
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
    required = getattr(context, "is_required", None)  # not read by a search
    if context.__typename__ == "StatusContext":
        started = {"started_at": context.created_at, "required": required}
        if context.state in _PENDING_STATUS_STATES:
            return Check(name=context.context, status="PENDING", **started)
        return Check(name=context.context, status="COMPLETED", conclusion=context.state, **started)
    return Check(
        name=context.name,
        status=context.status,
        conclusion=context.conclusion,
        started_at=context.started_at or context.completed_at,
        required=required,
    )


def to_history(pr: Any, viewer: str) -> PullRequestHistory:
    """Map a pull request read with ``PullRequestHistory`` (:mod:`jobs.policy.shadow`).

    A label, comment or review by the token's own account is no person's, and is left out.
    """
    events = (_history_event(node, viewer) for node in pr.timeline_items.nodes)
    return PullRequestHistory(
        state=PullRequestState(pr.state),
        head_oid=pr.head_ref_oid,
        events=tuple(sorted((e for e in events if e is not None), key=lambda e: e.at)),
    )


_HISTORY_KINDS = {
    "MergedEvent": HistoryKind.MERGED,
    "ClosedEvent": HistoryKind.CLOSED,
    "LabeledEvent": HistoryKind.PERSON,
    "IssueComment": HistoryKind.PERSON,
    "PullRequestReview": HistoryKind.PERSON,
}


def _history_event(node: Any, viewer: str) -> HistoryEvent | None:
    typename = node.__typename__
    if typename == "PullRequestCommit":
        commit = node.commit
        return HistoryEvent(HistoryKind.HEAD, commit.committed_date.timestamp(), commit.oid)
    if typename == "HeadRefForcePushedEvent":
        after = node.after_commit
        return HistoryEvent(HistoryKind.HEAD, node.created_at.timestamp(), after.oid or None)
    kind = _HISTORY_KINDS.get(typename)
    if kind is None:
        return None
    who = node.actor if typename.endswith("Event") else node.author
    if kind is HistoryKind.PERSON and _is_viewer(who, viewer):
        return None
    return HistoryEvent(kind, node.created_at.timestamp())
