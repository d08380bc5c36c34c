"""People win: what a pull request's timeline says people undid of the operator's work. Pure.

The operator is its token's account (the viewer's login, or a GitHub App's bot login), whatever
rule acted: an operation is *undone by a person* when an actor other than the operator reversed
it after the operator applied it. No comment marker is needed, so this holds when the operator's
comment failed to post, was deleted, or was posted by another rule sharing the token.

"At this head" means after the timeline item that brought the current head commit (a
``PullRequestCommit`` or a ``HeadRefForcePushedEvent`` naming it). When the timeline holds no such
item, every event counts as at this head: the cautious reading (an undo is then never redone).

:func:`read_timeline` turns the events (oldest first) into :class:`TimelineFacts`:

- ``reopened_by``: who reopened the pull request after the operator closed it at this head; once
  the operator's close was undone, it stays undone however often people close and reopen it;
- ``labels_removed_by_people``: labels the operator added at this head that are gone, last
  removed by someone else (whoever had added them again in between);
- ``labels_added_by_operator``: labels present whose last addition was the operator's (these are
  the only labels a remembered decision ignores);
- ``comment_deleted_by``: who deleted an operator's comment at this head (it is not posted again);
- ``auto_merge_disabled_by`` and ``dequeued_by``: who disabled the auto-merge the operator enabled
  at this head, or removed from the merge queue what the operator added at this head (neither
  is done again at this head);
- ``auto_merge_armed_here``: the operator's own enabling of auto-merge at this head still stands.

Label names are compared case-insensitively (GitHub's labels are).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    """The timeline events people win by."""

    CLOSED = "closed"
    REOPENED = "reopened"
    LABELED = "labeled"
    UNLABELED = "unlabeled"
    COMMENT_DELETED = "comment-deleted"
    HEAD = "head"
    """A commit or force push that made ``oid`` the head."""
    AUTO_MERGE_ENABLED = "auto-merge-enabled"
    AUTO_MERGE_DISABLED = "auto-merge-disabled"
    ADDED_TO_MERGE_QUEUE = "added-to-merge-queue"
    REMOVED_FROM_MERGE_QUEUE = "removed-from-merge-queue"


@dataclass(frozen=True)
class TimelineEvent:
    """One timeline event, as the GitHub client maps it: no SDK type."""

    kind: EventKind
    actor: str = ""
    by_operator: bool = False
    label: str | None = None
    oid: str | None = None
    about_operator: bool = False
    """A deleted comment's author was the operator."""


@dataclass(frozen=True)
class TimelineFacts:
    """What people did to the operator's work, read from the timeline."""

    reopened_by: str | None = None
    labels_removed_by_people: frozenset[str] = frozenset()
    labels_added_by_operator: frozenset[str] = frozenset()
    comment_deleted_by: str | None = None
    auto_merge_disabled_by: str | None = None
    dequeued_by: str | None = None
    auto_merge_armed_here: bool = False


def at_this_head(events: Sequence[TimelineEvent], head_oid: str) -> Sequence[TimelineEvent]:
    """The events after the one that brought ``head_oid``; all of them when none did."""
    start = 0
    for index, event in enumerate(events):
        if event.kind is EventKind.HEAD and event.oid == head_oid:
            start = index + 1
    return events[start:]


def read_timeline(
    events: Sequence[TimelineEvent], *, head_oid: str, is_open: bool, labels: Iterable[str]
) -> TimelineFacts:
    """The facts of :class:`TimelineFacts` from ``events`` (oldest first)."""
    here = at_this_head(events, head_oid)
    present = {name.casefold() for name in labels}
    return TimelineFacts(
        reopened_by=_undone_by(here, EventKind.CLOSED, EventKind.REOPENED) if is_open else None,
        labels_removed_by_people=_labels_removed(here, present),
        labels_added_by_operator=_labels_added(events, present),
        comment_deleted_by=_comment_deleted_by(here),
        auto_merge_disabled_by=_undone_by(
            here, EventKind.AUTO_MERGE_ENABLED, EventKind.AUTO_MERGE_DISABLED
        ),
        dequeued_by=_undone_by(
            here, EventKind.ADDED_TO_MERGE_QUEUE, EventKind.REMOVED_FROM_MERGE_QUEUE
        ),
        auto_merge_armed_here=_operator_still_did(
            here, EventKind.AUTO_MERGE_ENABLED, EventKind.AUTO_MERGE_DISABLED
        ),
    )


def _undone_by(events: Sequence[TimelineEvent], done: EventKind, undo: EventKind) -> str | None:
    """Who last undid (``undo``) what the operator did (``done``); once undone, it stays so."""
    operator_did, undone_by = False, None
    for event in events:
        if event.kind is done and event.by_operator:
            operator_did = True
        elif event.kind is undo and operator_did:
            undone_by = None if event.by_operator else event.actor
    return undone_by


def _operator_still_did(events: Sequence[TimelineEvent], done: EventKind, undo: EventKind) -> bool:
    """Whether the last ``done`` or ``undo`` among ``events`` is the operator's ``done``."""
    last = [event for event in events if event.kind in {done, undo}]
    return bool(last) and last[-1].kind is done and last[-1].by_operator


def _labels_removed(events: Sequence[TimelineEvent], present: set[str]) -> frozenset[str]:
    added_by_operator: set[str] = set()
    last_removed_by_person: dict[str, bool] = {}
    for event in events:
        if event.label is None:
            continue
        name = event.label.casefold()
        if event.kind is EventKind.LABELED and event.by_operator:
            added_by_operator.add(name)
        elif event.kind is EventKind.UNLABELED:
            last_removed_by_person[name] = not event.by_operator
    return frozenset(
        name
        for name in added_by_operator
        if name not in present and last_removed_by_person.get(name, False)
    )


def _labels_added(events: Sequence[TimelineEvent], present: set[str]) -> frozenset[str]:
    last_added_by_operator: dict[str, bool] = {}
    for event in events:
        if event.kind is EventKind.LABELED and event.label is not None:
            last_added_by_operator[event.label.casefold()] = event.by_operator
    return frozenset(
        name for name, mine in last_added_by_operator.items() if mine and name in present
    )


def _comment_deleted_by(events: Sequence[TimelineEvent]) -> str | None:
    deleted_by = None
    for event in events:
        if (
            event.kind is EventKind.COMMENT_DELETED
            and event.about_operator
            and not event.by_operator
        ):
            deleted_by = event.actor
    return deleted_by
