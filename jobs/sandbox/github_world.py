"""The in-memory GitHub behind the fake GraphQL server: repositories, labels, pull requests.

Tests build a world (``GitHubWorld.add_pull_request(...)``), hand it to ``FakeGitHub`` and then
read or change the very same objects the server answers from. This module holds plain state and
the rules of identity (node ids, head oids); it must not know GraphQL or HTTP.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the fake's only clock)."""
    return datetime.now(UTC)


def stable_digest(*parts: str) -> str:
    """A 40-hex digest of ``parts``: the source of every derived id and object id."""
    return hashlib.sha1("\0".join(parts).encode(), usedforsecurity=False).hexdigest()


def label_id(repository: str, name: str) -> str:
    """The node id of label ``name`` in ``repository`` (labels are case-insensitive)."""
    return "LA_" + stable_digest("label", repository.lower(), name.lower())[:16]


def repository_id(repository: str) -> str:
    """The node id of ``repository``."""
    return "R_" + stable_digest("repository", repository.lower())[:12]


@dataclass
class FakeCheck:
    """One context of the head commit's ``statusCheckRollup``."""

    name: str
    conclusion: str | None = "SUCCESS"
    status: str = "COMPLETED"
    kind: Literal["check_run", "status"] = "check_run"
    required: bool = False  # branch protection requires it (``isRequired``)
    started_at: datetime | None = None  # default: in list order, one second apart


EventKind = Literal[
    "ClosedEvent",
    "ReopenedEvent",
    "LabeledEvent",
    "UnlabeledEvent",
    "CommentDeletedEvent",
    "PullRequestCommit",
    "HeadRefForcePushedEvent",
    "MergedEvent",
    "IssueComment",
    "PullRequestReview",
    "AutoMergeEnabledEvent",
    "AutoMergeDisabledEvent",
    "AddedToMergeQueueEvent",
    "RemovedFromMergeQueueEvent",
]


@dataclass
class FakeEvent:
    """A timeline event: who closed, reopened, labelled or unlabelled a pull request.

    Also who deleted whose comment, and which commit a push brought (``oid``).
    """

    kind: EventKind
    actor: str
    created_at: datetime
    label: str | None = None
    deleted_author: str | None = None  # CommentDeletedEvent: whose comment it was
    oid: str | None = None  # PullRequestCommit, HeadRefForcePushedEvent: the new head
    state: str | None = None  # PullRequestReview: APPROVED, CHANGES_REQUESTED, COMMENTED
    body: str | None = None  # IssueComment


@dataclass
class FakeComment:
    """An issue comment on a pull request."""

    author: str
    body: str
    created_at: datetime = field(default_factory=utc_now)


@dataclass
class FakeAutoMerge:
    """An armed auto-merge (``autoMergeRequest``): who enabled it, when, how it will merge."""

    enabled_by: str
    enabled_at: datetime
    merge_method: str = "MERGE"
    commit_headline: str | None = None


@dataclass
class FakeQueueEntry:
    """A pull request's place in its base branch's merge queue (``mergeQueueEntry``)."""

    enqueuer: str
    enqueued_at: datetime
    head_oid: str


NOT_SET = datetime.min.replace(tzinfo=UTC)


def _default_checks() -> list[FakeCheck]:
    return [FakeCheck("ci")]


@dataclass
class FakePullRequest:
    """A pull request; mutable: tests and mutations change it in place."""

    repository: str
    number: int
    title: str = "Update config"
    body: str = ""
    author: str = "octocat"
    labels: list[str] = field(default_factory=list)
    base_ref: str = "main"
    head_ref: str = "feature"
    head_oid: str = ""
    rollup_state: str | None = "SUCCESS"
    checks: list[FakeCheck] = field(default_factory=_default_checks)
    mergeable: str = "MERGEABLE"
    merge_state_status: str = "CLEAN"
    review_decision: str | None = None
    reviews: list[tuple[str, str]] = field(default_factory=list)
    is_draft: bool = False
    state: str = "OPEN"
    additions: int = 1
    deletions: int = 1
    changed_files: int = 1
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = NOT_SET  # defaults to created_at
    comments: list[FakeComment] = field(default_factory=list)
    events: list[FakeEvent] = field(default_factory=list)
    merge_method: str | None = None
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    committed_at: datetime | None = None  # the head commit's date; default: created_at
    auto_merge: FakeAutoMerge | None = None
    queue_entry: FakeQueueEntry | None = None
    id: str = ""

    def __post_init__(self) -> None:
        key = f"{self.repository.lower()}#{self.number}"
        if not self.head_oid:
            self.head_oid = stable_digest("head", key)
        if not self.id:
            self.id = "PR_" + stable_digest("pull-request", key)[:16]
        if self.updated_at == NOT_SET:
            self.updated_at = self.created_at


@dataclass
class FakeLabel:
    """A repository label."""

    id: str
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class FakeRepository:
    """A repository and its labels (keyed by lower-case name)."""

    full_name: str
    labels: dict[str, FakeLabel] = field(default_factory=dict)
    merge_methods: set[str] = field(default_factory=lambda: {"MERGE", "SQUASH", "REBASE"})
    merge_queue_branches: set[str] = field(default_factory=set)
    """Branches whose protection requires the merge queue."""
    auto_merge_allowed: bool = True

    @property
    def id(self) -> str:
        """The node id."""
        return repository_id(self.full_name)

    def ensure_label(
        self, name: str, color: str = "ededed", description: str | None = None
    ) -> FakeLabel:
        """The label ``name``, created if missing."""
        key = name.lower()
        if key not in self.labels:
            self.labels[key] = FakeLabel(label_id(self.full_name, name), name, color, description)
        return self.labels[key]


class GitHubWorld:
    """Every repository and pull request the fake GitHub knows; guarded by ``lock``."""

    def __init__(
        self, viewer_login: str = "ai-operator-bot", web_url: str = "https://github.com"
    ) -> None:
        self.viewer_login = viewer_login
        self.web_url = web_url.rstrip("/")
        """Where the pull requests' pages are (a GitHub Enterprise Server: ``https://HOST``)."""
        self.lock = threading.RLock()
        self._repositories: dict[str, FakeRepository] = {}
        self._pull_requests: list[FakePullRequest] = []
        self._pushes = 0
        self._clock = NOT_SET

    def now(self) -> datetime:
        """The world's clock: the current time, strictly later at every reading.

        Creation and update times then order the way things happened (sorts stay deterministic).
        """
        with self.lock:
            self._clock = max(utc_now(), self._clock + timedelta(microseconds=1))
            return self._clock

    def touch(self, pr: FakePullRequest) -> None:
        """Record a change of ``pr`` now, like GitHub bumps ``updatedAt``."""
        pr.updated_at = max(self.now(), pr.updated_at)

    @property
    def pull_requests(self) -> list[FakePullRequest]:
        """All pull requests, in the order they were added."""
        return list(self._pull_requests)

    def add_repository(self, full_name: str, labels: Iterable[str] = ()) -> None:
        """Create ``owner/name`` (idempotent) with ``labels``."""
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"a repository is named owner/name, not {full_name!r}")
        with self.lock:
            repository = self._repositories.setdefault(full_name.lower(), FakeRepository(full_name))
            for label in labels:
                repository.ensure_label(label)

    def add_pull_request(self, repository: str, **facts: Any) -> FakePullRequest:
        """Open a pull request in ``repository`` (created if missing); ``facts`` set its fields."""
        with self.lock:
            self.add_repository(repository)
            repo = self.repository(repository)
            taken = {pr.number for pr in self._pull_requests if pr.repository == repo.full_name}
            number = facts.pop("number", max(taken, default=0) + 1)
            if number in taken:
                raise ValueError(f"{repo.full_name}#{number} already exists")
            facts.setdefault("created_at", self.now())
            # Copy list-valued facts: mutations change them in place, and a caller's list (one
            # constant for several PRs) must not change with them.
            facts = {k: list(v) if isinstance(v, list | tuple) else v for k, v in facts.items()}
            pull_request = FakePullRequest(repository=repo.full_name, number=number, **facts)
            for name in pull_request.labels:
                repo.ensure_label(name)
            self._pull_requests.append(pull_request)
            return pull_request

    def pull_request(self, repository: str, number: int) -> FakePullRequest:
        """The pull request ``repository#number``; KeyError when unknown."""
        with self.lock:
            for pr in self._pull_requests:
                if pr.repository.lower() == repository.lower() and pr.number == number:
                    return pr
        raise KeyError(f"{repository}#{number}")

    def labels(self, repository: str) -> set[str]:
        """The names of the labels defined in ``repository``."""
        with self.lock:
            return {label.name for label in self.repository(repository).labels.values()}

    def close(self, repository: str, number: int, actor: str) -> None:
        """``actor`` (a person in a test, or this token's mutation) closes ``repository#number``."""
        with self.lock:
            pr = self.pull_request(repository, number)
            if pr.state == "OPEN":
                pr.state = "CLOSED"
                self.touch(pr)
                pr.closed_at = pr.updated_at
                pr.events.append(FakeEvent("ClosedEvent", actor, pr.updated_at))

    def reopen(self, repository: str, number: int, actor: str) -> None:
        """``actor`` reopens ``repository#number``."""
        with self.lock:
            pr = self.pull_request(repository, number)
            if pr.state == "CLOSED":
                pr.state, pr.closed_at = "OPEN", None
                self.touch(pr)
                pr.events.append(FakeEvent("ReopenedEvent", actor, pr.updated_at))

    def add_label(self, repository: str, number: int, name: str, actor: str) -> None:
        """``actor`` adds label ``name`` (created in the repository if missing)."""
        with self.lock:
            pr = self.pull_request(repository, number)
            label = self.repository(repository).ensure_label(name)
            if label.name.lower() not in {present.lower() for present in pr.labels}:
                pr.labels.append(label.name)
                self.touch(pr)
                pr.events.append(FakeEvent("LabeledEvent", actor, pr.updated_at, label.name))

    def remove_label(self, repository: str, number: int, name: str, actor: str) -> None:
        """``actor`` removes label ``name`` from ``repository#number``."""
        with self.lock:
            pr = self.pull_request(repository, number)
            kept = [present for present in pr.labels if present.lower() != name.lower()]
            if len(kept) != len(pr.labels):
                removed = next(p for p in pr.labels if p.lower() == name.lower())
                pr.labels[:] = kept
                self.touch(pr)
                pr.events.append(FakeEvent("UnlabeledEvent", actor, pr.updated_at, removed))

    def merge(self, repository: str, number: int, actor: str, method: str = "MERGE") -> None:
        """``actor`` merges ``repository#number`` (a person in a test, or this token's mutation).

        The timeline gets a ``MergedEvent``, as GitHub's does.
        """
        with self.lock:
            pr = self.pull_request(repository, number)
            if pr.state == "OPEN":
                pr.state, pr.merge_method = "MERGED", method
                self.touch(pr)
                pr.merged_at = pr.closed_at = pr.updated_at
                pr.events.append(FakeEvent("MergedEvent", actor, pr.updated_at, oid=pr.head_oid))

    def comment(self, repository: str, number: int, author: str, body: str) -> FakeComment:
        """``author`` comments on ``repository#number``; the timeline gets the ``IssueComment``."""
        with self.lock:
            pr = self.pull_request(repository, number)
            comment = FakeComment(author, body, self.now())
            pr.comments.append(comment)
            self.touch(pr)
            pr.events.append(FakeEvent("IssueComment", author, comment.created_at, body=body))
            return comment

    def review(self, repository: str, number: int, author: str, state: str) -> None:
        """``author`` submits a review (``APPROVED``, ``CHANGES_REQUESTED``, ``COMMENTED``)."""
        with self.lock:
            pr = self.pull_request(repository, number)
            pr.reviews.append((author, state))
            self.touch(pr)
            pr.events.append(FakeEvent("PullRequestReview", author, pr.updated_at, state=state))

    def push_commit(self, repository: str, number: int, actor: str = "octocat") -> str:
        """Move the head of ``repository#number`` to a new commit (like a force push); its oid.

        The timeline gets a ``HeadRefForcePushedEvent`` naming the new head, as GitHub's does.
        """
        with self.lock:
            pr = self.pull_request(repository, number)
            self._leave_queue(pr, "github-merge-queue[bot]")  # GitHub dequeues a pushed PR
            pr.head_oid = self._next_head(pr)
            self.touch(pr)
            pr.committed_at = pr.updated_at
            pr.events.append(
                FakeEvent("HeadRefForcePushedEvent", actor, pr.updated_at, oid=pr.head_oid)
            )
            return pr.head_oid

    def _next_head(self, pr: FakePullRequest) -> str:
        self._pushes += 1
        return stable_digest("push", pr.head_oid, str(self._pushes))

    def require_merge_queue(self, repository: str, branch: str = "main") -> None:
        """Branch protection of ``branch`` requires GitHub's merge queue from now on."""
        with self.lock:
            self.add_repository(repository)
            self.repository(repository).merge_queue_branches.add(branch)

    def enable_auto_merge(
        self, repository: str, number: int, actor: str, method: str = "MERGE"
    ) -> None:
        """``actor`` arms auto-merge of ``repository#number`` (an ``AutoMergeEnabledEvent``)."""
        with self.lock:
            pr = self.pull_request(repository, number)
            now = self.now()
            pr.auto_merge = FakeAutoMerge(actor, now, method)
            pr.events.append(FakeEvent("AutoMergeEnabledEvent", actor, now))
            self.touch(pr)

    def disable_auto_merge(self, repository: str, number: int, actor: str) -> None:
        """``actor`` disarms auto-merge of ``repository#number``."""
        with self.lock:
            pr = self.pull_request(repository, number)
            if pr.auto_merge is not None:
                pr.auto_merge = None
                pr.events.append(FakeEvent("AutoMergeDisabledEvent", actor, self.now()))
                self.touch(pr)

    def enqueue(self, repository: str, number: int, actor: str) -> None:
        """``actor`` adds ``repository#number`` to its base branch's merge queue."""
        with self.lock:
            pr = self.pull_request(repository, number)
            now = self.now()
            pr.queue_entry = FakeQueueEntry(actor, now, pr.head_oid)
            pr.events.append(FakeEvent("AddedToMergeQueueEvent", actor, now))
            self.touch(pr)

    def dequeue(self, repository: str, number: int, actor: str) -> None:
        """``actor`` removes ``repository#number`` from the merge queue."""
        with self.lock:
            self._leave_queue(self.pull_request(repository, number), actor)

    def _leave_queue(self, pr: FakePullRequest, actor: str) -> None:
        if pr.queue_entry is not None:
            pr.queue_entry = None
            pr.events.append(FakeEvent("RemovedFromMergeQueueEvent", actor, self.now()))
            self.touch(pr)

    def update_branch(self, repository: str, number: int, actor: str) -> str:
        """``actor`` merges the base branch into the head branch: a new head whose checks run.

        The new head's checks start over (queued), so it is not mergeable until they pass.
        """
        with self.lock:
            pr = self.pull_request(repository, number)
            self._leave_queue(pr, "github-merge-queue[bot]")
            pr.head_oid = self._next_head(pr)
            self.touch(pr)
            pr.committed_at = pr.updated_at
            pr.events.append(FakeEvent("PullRequestCommit", actor, pr.updated_at, oid=pr.head_oid))
            pr.checks = [FakeCheck(c.name, None, "QUEUED", c.kind, c.required) for c in pr.checks]
            pr.rollup_state = "PENDING" if pr.checks else pr.rollup_state
            required = any(c.required for c in pr.checks)
            pr.merge_state_status = "BLOCKED" if required else "UNSTABLE"
            return pr.head_oid

    def finish_checks(self, repository: str, number: int, conclusion: str = "SUCCESS") -> None:
        """Every check of the head ends with ``conclusion``; then GitHub's own gates act.

        Passing checks let an armed auto-merge or a queued pull request merge, as GitHub does;
        a failing one takes the pull request out of the queue.
        """
        with self.lock:
            pr = self.pull_request(repository, number)
            pr.checks = [
                FakeCheck(c.name, conclusion, "COMPLETED", c.kind, c.required) for c in pr.checks
            ]
            passed = conclusion in {"SUCCESS", "NEUTRAL", "SKIPPED"}
            pr.rollup_state = "SUCCESS" if passed else "FAILURE"
            pr.merge_state_status = "CLEAN" if passed else "BLOCKED"
            self.touch(pr)
            if not passed:
                self._leave_queue(pr, "github-merge-queue[bot]")
            elif pr.state == "OPEN" and (pr.auto_merge or pr.queue_entry):
                method = pr.auto_merge.merge_method if pr.auto_merge else "MERGE"
                self._merged_by_github(pr, method)

    def _merged_by_github(self, pr: FakePullRequest, method: str) -> None:
        pr.state, pr.merge_method = "MERGED", method
        pr.auto_merge = pr.queue_entry = None
        self.touch(pr)
        pr.merged_at = pr.closed_at = pr.updated_at

    def delete_comment(self, repository: str, number: int, index: int, actor: str) -> None:
        """``actor`` deletes the ``index``-th comment (``-1``: the newest) of ``repository#number``.

        GitHub leaves a ``CommentDeletedEvent`` naming who deleted whose comment.
        """
        with self.lock:
            pr = self.pull_request(repository, number)
            comment = pr.comments.pop(index)
            self.touch(pr)
            pr.events.append(
                FakeEvent(
                    "CommentDeletedEvent", actor, pr.updated_at, deleted_author=comment.author
                )
            )

    # Lookups used by the GraphQL resolvers.

    def repository(self, full_name: str) -> FakeRepository:
        """The repository ``owner/name`` (case-insensitive); KeyError when unknown."""
        return self._repositories[full_name.lower()]

    def find_repository(self, full_name: str) -> FakeRepository | None:
        """The repository ``owner/name``, or None."""
        return self._repositories.get(full_name.lower())

    def repository_by_id(self, node_id: str) -> FakeRepository | None:
        """The repository whose node id is ``node_id``, or None."""
        return next((r for r in self._repositories.values() if r.id == node_id), None)

    def pull_request_by_id(self, node_id: str) -> FakePullRequest | None:
        """The pull request whose node id is ``node_id``, or None."""
        return next((pr for pr in self._pull_requests if pr.id == node_id), None)

    def label_by_id(self, node_id: str) -> tuple[FakeRepository, FakeLabel] | None:
        """The label whose node id is ``node_id`` with its repository, or None."""
        for repository in self._repositories.values():
            for label in repository.labels.values():
                if label.id == node_id:
                    return repository, label
        return None
