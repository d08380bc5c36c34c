"""People win: what the timeline says people undid of the operator's work, whichever rule acted."""

from __future__ import annotations

import pytest

from ai_operator.jobs.policy.people import EventKind, TimelineEvent, TimelineFacts, read_timeline

HEAD = "a" * 40
OLD = "b" * 40


def op(kind: EventKind, **facts) -> TimelineEvent:
    """An event of the operator's token."""
    return TimelineEvent(kind, actor="ai-operator-bot", by_operator=True, **facts)


def person(kind: EventKind, who: str = "alice", **facts) -> TimelineEvent:
    return TimelineEvent(kind, actor=who, **facts)


def head(oid: str) -> TimelineEvent:
    return TimelineEvent(EventKind.HEAD, oid=oid)


C, R, L, U = EventKind.CLOSED, EventKind.REOPENED, EventKind.LABELED, EventKind.UNLABELED
LABEL = "needs-human-approval"


def facts(events, *, is_open=True, labels=()) -> TimelineFacts:
    return read_timeline(events, head_oid=HEAD, is_open=is_open, labels=labels)


@pytest.mark.parametrize(
    ("events", "reopened_by"),
    [
        pytest.param([op(C), person(R)], "alice", id="closed-then-reopened"),
        pytest.param(
            [op(C), person(R), person(C, "bob"), person(R, "bob")], "bob", id="flipped-twice"
        ),
        pytest.param(
            [op(C), person(R), person(C), person(R), person(C), person(R, "carol")],
            "carol",
            id="flipped-three-times",
        ),
        pytest.param([person(C), person(R)], None, id="people-only"),
        pytest.param([op(C), op(R)], None, id="the-operator-reopened"),
        pytest.param([op(C), person(R), head(HEAD)], None, id="at-an-earlier-head"),
        pytest.param([head(OLD), op(C), person(R)], "alice", id="head-known-elsewhere"),
        pytest.param([head(HEAD), op(C), person(R)], "alice", id="at-this-head"),
    ],
)
def test_a_close_the_operator_made_stays_undone_at_this_head(events, reopened_by):
    """However often people close and reopen it, the operator's close is not redone here."""
    assert facts(events).reopened_by == reopened_by


@pytest.mark.parametrize(
    ("events", "labels", "removed"),
    [
        pytest.param([op(L, label=LABEL), person(U, label=LABEL)], (), {LABEL}, id="removed"),
        pytest.param(
            [
                op(L, label=LABEL),
                person(U, label=LABEL),
                person(L, label=LABEL),
                person(U, "bob", label=LABEL),
            ],
            (),
            {LABEL},
            id="re-added-by-a-person-then-removed",
        ),
        pytest.param(
            [op(L, label="Needs-Human-Approval"), person(U, label=LABEL)],
            (),
            {LABEL},
            id="other-case",
        ),
        pytest.param([op(L, label=LABEL), person(U, label=LABEL)], (LABEL,), set(), id="back"),
        pytest.param([person(L, label=LABEL), person(U, label=LABEL)], (), set(), id="peoples"),
        pytest.param([op(L, label=LABEL), person(U, label=LABEL), head(HEAD)], (), set(), id="old"),
    ],
)
def test_a_label_the_operator_added_and_a_person_removed_is_undone(events, labels, removed):
    """Whoever added it last, a label the operator added at this head and that is gone, last
    removed by a person, counts as undone."""
    assert facts(events, labels=labels).labels_removed_by_people == removed


def test_the_operators_labels_are_those_it_added_last():
    """Only labels whose last addition was the operator's are its own (case-insensitively)."""
    events = [
        op(L, label="Needs-Human-Approval"),
        op(L, label="ci-failed"),
        person(U, label="ci-failed"),
        person(L, label="ci-failed"),
        person(L, label="urgent"),
    ]
    got = facts(events, labels=("needs-human-approval", "ci-failed", "urgent"))
    assert got.labels_added_by_operator == {"needs-human-approval"}


@pytest.mark.parametrize(
    ("events", "deleted_by"),
    [
        pytest.param(
            [person(EventKind.COMMENT_DELETED, about_operator=True)], "alice", id="by-a-person"
        ),
        pytest.param([person(EventKind.COMMENT_DELETED)], None, id="someone-elses-comment"),
        pytest.param(
            [person(EventKind.COMMENT_DELETED, about_operator=True), head(HEAD)],
            None,
            id="at-an-earlier-head",
        ),
    ],
)
def test_a_deleted_comment_of_the_operator_is_known(events, deleted_by):
    """A comment of the operator deleted at this head is not posted again."""
    assert facts(events).comment_deleted_by == deleted_by
