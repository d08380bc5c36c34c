"""What a pass needs from the outside world: GitHub's reads and writes, a model, Argo CD, a memory.

These protocols are the only way the pass sees its clients: the GitHub client
(:class:`~jobs.clients.github.GitHubClient`) and the decision clients in :mod:`jobs.clients.ai`
satisfy them, and so do the tests' fakes. Declarations only: no code runs here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.policy.argocd import ArgoCDStatus
from ai_operator.jobs.policy.reuse import Remembered
from ai_operator.jobs.policy.shadow import PullRequestHistory
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.rules.model import MergeMethod, Selector


class GitHubReader(Protocol):
    """The GitHub client's reads, as a pass uses them (raise ``GitHubError``)."""

    def search_pull_requests(
        self, repositories: Sequence[str], selector: Selector, limit: int
    ) -> list[PullRequestSnapshot]:
        """Candidates from GitHub's search, at most ``limit``."""

    def pull_request(self, repository: str, number: int) -> PullRequestSnapshot:
        """Fresh facts of one pull request."""

    def viewer_login(self) -> str:
        """The token's login: the operator's identity."""

    def pull_request_history(self, repository: str, number: int) -> PullRequestHistory:
        """State, head and timeline items of one pull request: what settles a shadow decision."""


@runtime_checkable
class NamedReader(Protocol):
    """Reads the pull requests an event named (an event-started run)."""

    def pull_requests(self, repository: str, numbers: Sequence[int]) -> list[PullRequestSnapshot]:
        """The open ones among ``repository``'s ``numbers``, in one request."""
        ...


class GitHubWriter(Protocol):
    """The GitHub client's mutations, as :func:`jobs.reconcile.apply.apply_plan` uses them."""

    def merge_pull_request(
        self,
        pr_id: str,
        expected_head_oid: str,
        method: MergeMethod,
        commit_headline: str | None = None,
    ) -> None:
        """Merge, refused by GitHub if the head moved."""

    def close_pull_request(self, pr_id: str) -> None:
        """Close without merging."""

    def enqueue_pull_request(self, pr_id: str, expected_head_oid: str) -> None:
        """Add to the merge queue, refused by GitHub if the head moved."""

    def dequeue_pull_request(self, pr_id: str) -> None:
        """Take out of the merge queue."""

    def enable_auto_merge(
        self,
        pr_id: str,
        expected_head_oid: str,
        method: MergeMethod,
        commit_headline: str | None = None,
    ) -> None:
        """Arm auto-merge, refused by GitHub if the head moved."""

    def disable_auto_merge(self, pr_id: str) -> None:
        """Disarm auto-merge."""

    def update_branch(self, pr_id: str, expected_head_oid: str) -> None:
        """Merge the base branch into the head branch, refused by GitHub if the head moved."""

    def add_comment(self, subject_id: str, body: str) -> str | None:
        """Post a comment; its id when GitHub names it."""

    def label_ids(self, repository: str, names: list[str], *, create_missing: bool) -> list[str]:
        """Resolve label names to IDs."""

    def add_labels(self, labelable_id: str, label_ids: list[str]) -> None:
        """Add labels by ID."""


class GitHubPort(GitHubReader, GitHubWriter, Protocol):
    """Everything a pass needs from GitHub."""


class Decider(Protocol):
    """A model that answers in JSON (raises ``AIError``)."""

    def ask(self, system: str, user: str, schema: dict[str, Any]) -> object:
        """The model's decoded JSON answer to ``system`` and ``user``, shaped by ``schema``."""

    def thread_usage(self) -> ModelUsage:
        """Calls and tokens spent so far by the calling thread (what one decision cost)."""


class ArgoCDReader(Protocol):
    """Argo CD's API, as the pass reads it (raises ``ArgoCDError``)."""

    def application(self, name: str) -> ArgoCDStatus:
        """Health and sync of the application ``name``."""


class DecisionMemory(Protocol):
    """Decisions remembered between passes, per rule (``namespace/name``), by ``owner/name#N``."""

    def recall(self, rule: str) -> dict[str, Remembered]:
        """What is remembered for ``rule``; empty when nothing is (never raises)."""

    def keep(self, rule: str, entries: Mapping[str, Remembered]) -> None:
        """Remember ``entries`` too (raises ``DecisionCacheError`` when it cannot)."""
