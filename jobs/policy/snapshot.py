"""What one pass knows about one pull request: the frozen facts every decision reads.

The GitHub client maps GraphQL results into :class:`PullRequestSnapshot` at once; nothing past the
client sees an sgqlc type. The fingerprint names the facts a decision depends on, so a pipeline can
skip asking the AI again while they stay the same.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ai_operator.jobs.policy.argocd import NOT_READ, ArgoCDStatus
from ai_operator.jobs.rules.model import MergeMethod


class CiStatus(StrEnum):
    """The head commit's combined check state, as the seed's templates spell it."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    PENDING = "PENDING"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"


class Mergeable(StrEnum):
    """GitHub's ``MergeableState``."""

    MERGEABLE = "MERGEABLE"
    CONFLICTING = "CONFLICTING"
    UNKNOWN = "UNKNOWN"


class PullRequestState(StrEnum):
    """GitHub's ``PullRequestState``."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"
    MERGED = "MERGED"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


WIRE_FORMAT = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)
"""Config of models that travel between pipeline steps: camelCase on the wire (``headOid``)."""


class PullRequestKey(_Frozen):
    """What names a pull request: its repository (``owner/name``) and number."""

    repository: str
    number: int

    @property
    def display(self) -> str:
        """``owner/name#number``, as people and GitHub write it."""
        return f"{self.repository}#{self.number}"


class Check(_Frozen):
    """One check run or commit status on the head commit."""

    name: str
    status: str  # COMPLETED, IN_PROGRESS, QUEUED, ... or a StatusState for commit statuses
    conclusion: str | None = None  # SUCCESS, FAILURE, NEUTRAL, SKIPPED, ... when completed
    started_at: datetime | None = None  # orders runs of the same check: the latest one counts
    required: bool | None = None  # required by branch protection; None when not read

    @property
    def completed(self) -> bool:
        """Whether the check has a conclusion."""
        return self.status == "COMPLETED"


class Review(_Frozen):
    """A submitted review."""

    author: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING


class PullRequestRef(PullRequestKey):
    """A pull request as a pipeline passes it between steps: a reference, never its text."""

    model_config = WIRE_FORMAT

    head_oid: str
    fingerprint: str


class PullRequestSnapshot(PullRequestKey):
    """Every fact one pass reads about a pull request, read once."""

    id: str
    url: str
    title: str
    body: str = ""
    author: str
    labels: tuple[str, ...] = ()
    base_branch: str
    head_branch: str
    head_oid: str
    state: PullRequestState = PullRequestState.OPEN
    is_draft: bool = False
    ci_status: CiStatus = CiStatus.UNKNOWN
    checks: tuple[Check, ...] = ()
    mergeable: Mergeable = Mergeable.UNKNOWN
    merge_state_status: str = "UNKNOWN"
    review_decision: str | None = None
    reviews: tuple[Review, ...] = ()
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0
    created_at: datetime
    updated_at: datetime
    comment_markers: frozenset[str] = Field(
        default=frozenset(), description="Markers of this tool's comments already on the PR."
    )
    merge_methods: frozenset[MergeMethod] | None = Field(
        default=None, description="Merge methods the repository allows; None when not read."
    )
    reopened_by: str | None = Field(
        default=None,
        description="Who reopened the PR after this token closed it at this head (None: nobody).",
    )
    labels_removed_by_people: frozenset[str] = Field(
        default=frozenset(),
        description="Labels this token added at this head that someone else removed (lower case).",
    )
    labels_added_by_operator: frozenset[str] = Field(
        default=frozenset(),
        description="Labels present whose last addition was this token's (lower case).",
    )
    comment_deleted_by: str | None = Field(
        default=None,
        description="Who deleted a comment of this token at this head (None: nobody).",
    )
    merge_queue_required: bool = Field(
        default=False, description="The base branch requires GitHub's merge queue."
    )
    in_merge_queue: bool = Field(default=False, description="The PR is in the merge queue.")
    queued_by: str | None = Field(
        default=None, description="Who added the PR to the merge queue (None: not queued)."
    )
    queued_by_operator: bool = Field(
        default=False, description="This token added the PR to the merge queue."
    )
    auto_merge_by: str | None = Field(
        default=None, description="Who enabled auto-merge (``enabledBy``; None: not enabled)."
    )
    auto_merge_by_operator: bool = Field(
        default=False, description="This token enabled the auto-merge that is on."
    )
    auto_merge_armed_here: bool = Field(
        default=False,
        description="This token enabled auto-merge at this head, and nobody disabled it since.",
    )
    auto_merge_disabled_by: str | None = Field(
        default=None,
        description="Who disabled the auto-merge this token enabled at this head (None: nobody).",
    )
    dequeued_by: str | None = Field(
        default=None,
        description="Who dequeued what this token queued at this head (None: nobody).",
    )
    head_committed_at: datetime | None = Field(
        default=None, description="When the head commit was made; None when not read."
    )
    read_at: datetime | None = Field(
        default=None, description="When these facts were read; None when not known."
    )
    argocd: ArgoCDStatus = Field(
        default=NOT_READ,
        description="The health and sync of the PR's Argo CD application (Unknown: not read).",
    )

    def with_argocd(self, status: ArgoCDStatus) -> PullRequestSnapshot:
        """These facts with Argo CD's status of the PR's application."""
        return self.model_copy(update={"argocd": status})

    @property
    def changes_requested(self) -> bool:
        """Whether a reviewer's latest word is a change request."""
        if self.review_decision == "CHANGES_REQUESTED":
            return True
        latest: dict[str, str] = {}
        for review in self.reviews:
            if review.state in {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}:
                latest[review.author] = review.state
        return "CHANGES_REQUESTED" in latest.values()

    def fingerprint(self, ignore_labels: frozenset[str] = frozenset()) -> str:
        """Digest of the facts a decision depends on.

        Labels the operator's token added (:attr:`labels_added_by_operator`, read from the
        timeline) are left out, so that the operator's own escalation does not count as a change
        of facts, and so are ``ignore_labels``; both compare case-insensitively. A label a person
        added counts, even one of the rule's escalation labels. Comments are left out too.
        """
        ignored = {name.casefold() for name in ignore_labels} | self.labels_added_by_operator
        facts = {
            "head": self.head_oid,
            "state": self.state,
            "draft": self.is_draft,
            "title": self.title,
            "body": self.body,
            "labels": sorted({n for n in self.labels if n.casefold() not in ignored}),
            "base": self.base_branch,
            "ci": self.ci_status,
            "checks": sorted((c.name, c.status, c.conclusion or "") for c in self.checks),
            "mergeable": self.mergeable,
            "mergeState": self.merge_state_status,
            "reviewDecision": self.review_decision,
            "reviews": sorted((r.author, r.state) for r in self.reviews),
        }
        # What people did with the merge queue and auto-merge is a fact; what the operator's own
        # token did is not (like its labels): arming or queueing never makes a decision stale.
        people = {
            "queuedBy": None if self.queued_by_operator else self.queued_by,
            "autoMergeBy": None if self.auto_merge_by_operator else self.auto_merge_by,
        }
        if any(people.values()):
            facts["people"] = people
        digest = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:20]

    def ref(self, ignore_labels: frozenset[str] = frozenset()) -> PullRequestRef:
        """The small reference a pipeline step hands to the next."""
        return PullRequestRef(
            repository=self.repository,
            number=self.number,
            head_oid=self.head_oid,
            fingerprint=self.fingerprint(ignore_labels),
        )
