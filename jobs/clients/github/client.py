"""The GitHub client: reads pull requests into snapshots and performs the few changes a pass makes.

Reads: :meth:`GitHubClient.search_pull_requests` (one search per group of repositories, paginated)
and :meth:`GitHubClient.pull_request` (fresh facts, one request). Either reads every page of a
pull request's labels, reviews, checks, comments and timeline events: a fact on a later page is
read with one more request per page, never dropped. Changes: merge, enqueue, auto-merge and
branch update (each guarded by the expected head commit), dequeue, disarming auto-merge, close,
comment, labels. Mutations are serialized and paced, as GitHub asks
of clients (no concurrent mutations; at most 80 content-creating requests a minute).

Every call raises only the errors of :mod:`jobs.clients.github.errors`. No sgqlc type leaves this
package: results become :class:`PullRequestSnapshot`, ids and ``None``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from ai_operator.jobs.clients.github import queries
from ai_operator.jobs.clients.github.errors import (
    GitHubQueryError,
    GitHubUnavailable,
    LabelMissing,
    MergeRejected,
)
from ai_operator.jobs.clients.github.mapping import (
    Connections,
    first_pages,
    head_commit,
    to_history,
    to_snapshot,
)
from ai_operator.jobs.clients.github.search_query import (
    SearchQueryError,
    build_search_queries,
    build_settled_queries,
)
from ai_operator.jobs.clients.github.transport import (
    GitHubStats,
    GraphQLTransport,
    TokenSource,
    TransportPolicy,
)
from ai_operator.jobs.policy.backtest import Happened, Settled
from ai_operator.jobs.policy.shadow import PullRequestHistory
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.rules.model import MergeMethod, Selector

__all__ = ["LABEL_COLOR", "GitHubClient", "GitHubStats"]

LABEL_COLOR = "d93f0b"
"""The color of labels this tool creates."""

MAX_NESTED_PAGES = 50
"""Pages read of one nested connection (5,000 items); a pull request beyond it is an error."""


class GitHubClient:
    """Typed access to GitHub's GraphQL API for one token."""

    def __init__(
        self,
        url: str,
        token: SecretStr | TokenSource,
        *,
        max_retries: int = 4,
        backoff_seconds: float = 1.0,
        max_wait_seconds: float = 60.0,
        mutation_interval_seconds: float = 1.0,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        identity: Callable[[], str] | None = None,
    ) -> None:
        """A client for ``url`` with ``token``: a fixed token, or a source of renewed ones.

        A GitHub App's token source comes with its ``identity``, the App's bot login, which then
        replaces the viewer's login as the operator's.
        """
        policy = TransportPolicy(max_retries, backoff_seconds, max_wait_seconds, timeout_seconds)
        self._transport = GraphQLTransport(url, token, policy, sleep, clock)
        self._mutation_interval = mutation_interval_seconds
        self._mutation_lock = threading.Lock()
        self._last_mutation: float | None = None
        self._sleep = sleep
        self._clock = clock
        self._viewer: str | None = None
        self._identity = identity

    @property
    def stats(self) -> GitHubStats:
        """Requests, mutations, retries and rate-limit points spent so far."""
        return self._transport.stats

    # Reads

    def search_pull_requests(
        self, repositories: Sequence[str], selector: Selector, limit: int
    ) -> list[PullRequestSnapshot]:
        """Open pull requests of ``repositories`` that GitHub's search says match ``selector``.

        At most ``limit``, oldest first per search, then sorted by repository and number. The
        search index lags: callers re-check the selector on the snapshots.
        """
        try:
            search_strings = build_search_queries(repositories, selector)
        except SearchQueryError as exc:
            raise GitHubQueryError(f"cannot search for the selector: {exc}") from exc
        found: dict[str, PullRequestSnapshot] = {}
        for search_string in search_strings:
            if len(found) >= limit:
                break
            self._search_into(found, search_string, limit)
        return sorted(found.values(), key=lambda pr: (pr.repository, pr.number))

    def _search_into(self, found: dict[str, PullRequestSnapshot], query: str, limit: int) -> None:
        """Add the results of one search string to ``found``, page by page, up to ``limit``."""
        after: str | None = None
        while len(found) < limit:
            first = min(queries.PAGE_SIZE, limit - len(found))
            variables = {"query": query, "first": first, "after": after}
            result = self._query(queries.SEARCH_PULL_REQUESTS, variables)
            search, viewer = result.search, self._operator(result.viewer.login)
            self._viewer = viewer
            for node in search.nodes:
                fresh = node.__typename__ == "PullRequest" and node.id not in found
                if fresh and len(found) < limit:
                    found[node.id] = to_snapshot(node, viewer, self._connections(node))
            if not search.page_info.has_next_page:
                return
            after = search.page_info.end_cursor

    def search_settled_pull_requests(
        self,
        repositories: Sequence[str],
        selector: Selector,
        since: datetime,
        until: datetime,
        limit: int,
    ) -> list[Settled]:
        """Pull requests of ``repositories`` merged or closed between ``since`` and ``until``.

        Read in search pages of 100, with their facts as GitHub keeps them (the last head
        commit's checks, the reviews, the labels now); at most ``limit``, by repository and
        number. Callers re-check the selector and the window.
        """
        try:
            search_strings = build_settled_queries(repositories, selector, since, until)
        except SearchQueryError as exc:
            raise GitHubQueryError(f"cannot search for the selector: {exc}") from exc
        found: dict[str, Settled] = {}
        for search_string in search_strings:
            after: str | None = None
            while len(found) < limit:
                first = min(queries.PAGE_SIZE, limit - len(found))
                variables = {"query": search_string, "first": first, "after": after}
                result = self._query(queries.SEARCH_SETTLED_PULL_REQUESTS, variables)
                search, self._viewer = result.search, result.viewer.login
                for node in search.nodes:
                    settled = node.__typename__ == "PullRequest" and node.closed_at
                    if settled and node.id not in found and len(found) < limit:
                        found[node.id] = self._settled(node, result.viewer.login)
                if not search.page_info.has_next_page:
                    break
                after = search.page_info.end_cursor
        return sorted(found.values(), key=lambda s: (s.pr.repository, s.pr.number))

    def _settled(self, node: Any, viewer: str) -> Settled:
        happened = Happened.MERGED if node.merged_at else Happened.CLOSED
        settled_at = node.merged_at or node.closed_at
        snapshot = to_snapshot(node, viewer, self._connections(node), read_at=settled_at)
        return Settled(pr=snapshot, happened=happened, settled_at=settled_at)

    def pull_request(self, repository: str, number: int) -> PullRequestSnapshot:
        """Read the current facts of ``repository#number`` in one request."""
        owner, name = _split(repository)
        variables = {"owner": owner, "name": name, "number": number}
        result = self._query(queries.PULL_REQUEST, variables)
        if not result.repository or not result.repository.pull_request:
            raise GitHubQueryError(f"{repository}#{number} was not found")
        pr = result.repository.pull_request
        self._viewer = self._operator(result.viewer.login)
        return to_snapshot(pr, self._viewer, self._connections(pr))

    def pull_request_history(self, repository: str, number: int) -> PullRequestHistory:
        """The state, head and newest timeline items of ``repository#number``, in one request.

        What settles a shadow decision (:mod:`jobs.policy.shadow`); the newest
        :data:`~jobs.clients.github.queries.HISTORY_ITEMS` items are read, and the state and
        head settle a decision whose settling item is older.
        """
        owner, name = _split(repository)
        variables = {"owner": owner, "name": name, "number": number}
        result = self._query(queries.PULL_REQUEST_HISTORY, variables)
        if not result.repository or not result.repository.pull_request:
            raise GitHubQueryError(f"{repository}#{number} was not found")
        self._viewer = result.viewer.login
        return to_history(result.repository.pull_request, result.viewer.login)

    def pull_requests(self, repository: str, numbers: Sequence[int]) -> list[PullRequestSnapshot]:
        """The open pull requests among ``repository``'s ``numbers``, read in one request.

        A closed one is left out; numbers that name no pull request (GitHub answers NOT_FOUND
        for them) are left out too, and the others read again, once.
        """
        unique = list(dict.fromkeys(numbers))
        if not unique:
            return []
        try:
            result = self._named(repository, unique)
        except GitHubQueryError as exc:
            missing = _not_found(exc, unique)
            if not missing:
                raise
            unique = [number for number in unique if number not in missing]
            if not unique:
                return []
            result = self._named(repository, unique)
        if not result.repository:
            raise GitHubQueryError(f"{repository} was not found")
        viewer = self._viewer = result.viewer.login
        found: list[PullRequestSnapshot] = []
        for i in range(len(unique)):
            pr = getattr(result.repository, queries.pull_request_alias(i), None)
            if pr and pr.state == "OPEN":
                found.append(to_snapshot(pr, viewer, self._connections(pr)))
        return sorted(found, key=lambda pr: pr.number)

    def _named(self, repository: str, numbers: Sequence[int]) -> Any:
        owner, name = _split(repository)
        variables: dict[str, Any] = {"owner": owner, "name": name}
        variables |= {f"number{i}": number for i, number in enumerate(numbers)}
        return self._query(queries.pull_requests_operation(len(numbers)), variables)

    def viewer_login(self) -> str:
        """The login of the token's account; GitHubAuthError when GitHub refuses the token.

        The operator's identity (people win by it). Every read asks for it along the way, so
        after a search or a read this costs no request.
        """
        if self._viewer is None:
            self._viewer = self._operator(str(self._query(queries.VIEWER, {}).viewer.login))
        return self._viewer

    def _operator(self, viewer: str) -> str:
        """The operator's login: the App's bot when the token is an App's, else the viewer."""
        return self._identity() if self._identity is not None else viewer

    def _connections(self, pr: Any) -> Connections:
        """All nodes of ``pr``'s nested connections: the fragment's first pages, then the rest."""
        nodes = first_pages(pr)
        where = f"{pr.repository.name_with_owner}#{pr.number}"
        ids = {"id": pr.id}
        nodes.labels += self._pages(queries.LABELS_PAGE, ids, pr.labels, f"{where} labels")
        nodes.reviews += self._pages(
            queries.REVIEWS_PAGE, ids, pr.latest_reviews, f"{where} reviews"
        )
        nodes.comments[:0] = self._pages(
            queries.COMMENTS_PAGE, ids, pr.comments, f"{where} comments", forward=False
        )
        nodes.events[:0] = self._pages(
            queries.EVENTS_PAGE, ids, pr.timeline_items, f"{where} events", forward=False
        )
        commit = head_commit(pr)
        if commit and commit.status_check_rollup:
            nodes.contexts += self._pages(
                queries.CONTEXTS_PAGE,
                {"commit": commit.id, "pr": pr.id},
                commit.status_check_rollup.contexts,
                f"{where} checks",
            )
        return nodes

    def _pages(
        self,
        operation: Any,
        variables: Mapping[str, Any],
        first: Any,
        what: str,
        *,
        forward: bool = True,
    ) -> list[Any]:
        """The nodes of the pages after ``first`` (or before it, backwards), in their order."""
        info = first.page_info
        more = info.has_next_page if forward else info.has_previous_page
        cursor = info.end_cursor if forward else info.start_cursor
        nodes: list[Any] = []
        for _ in range(MAX_NESTED_PAGES):
            if not more:
                return nodes
            page = _connection_of(self._query(operation, {**variables, "cursor": cursor}))
            if forward:
                nodes += page.nodes
                more, cursor = page.page_info.has_next_page, page.page_info.end_cursor
            else:
                nodes[:0] = page.nodes
                more, cursor = page.page_info.has_previous_page, page.page_info.start_cursor
        raise GitHubQueryError(
            f"{what}: more than {MAX_NESTED_PAGES} pages; this pull request is left alone"
        )

    def label_ids(
        self, repository: str, names: Sequence[str], *, create_missing: bool
    ) -> list[str]:
        """Resolve labels ``names`` to ids (each once, in order), creating missing ones if allowed.

        Raises :class:`LabelMissing` when labels are missing and ``create_missing`` is off.
        """
        unique = list(dict.fromkeys(names))
        if not unique:
            return []
        owner, name = _split(repository)
        variables = {"owner": owner, "name": name}
        variables |= {f"name{i}": label for i, label in enumerate(unique)}
        result = self._query(queries.labels_operation(len(unique)), variables)
        if not result.repository:
            raise GitHubQueryError(f"repository {repository} was not found")
        found = [getattr(result.repository, queries.label_alias(i)) for i in range(len(unique))]
        missing = [label for label, node in zip(unique, found, strict=True) if not node]
        if missing and not create_missing:
            raise LabelMissing(repository, missing)
        return [
            str(node.id) if node else self._create_label(repository, result.repository.id, label)
            for label, node in zip(unique, found, strict=True)
        ]

    # Changes

    def merge_pull_request(
        self,
        pr_id: str,
        expected_head_oid: str,
        method: MergeMethod,
        commit_headline: str | None = None,
    ) -> None:
        """Merge ``pr_id`` if its head is still ``expected_head_oid``; else MergeRejected."""
        merge_input = _merge_input(pr_id, expected_head_oid, method, commit_headline)
        try:
            result = self._mutate(queries.MERGE_PULL_REQUEST, merge_input)
        except GitHubQueryError as exc:
            raise MergeRejected(f"GitHub refused to merge {pr_id}: {exc}", exc.errors) from exc
        state = result.merge_pull_request.pull_request.state
        if state != "MERGED":
            raise MergeRejected(f"GitHub left {pr_id} {state} after merging")

    def close_pull_request(self, pr_id: str) -> None:
        """Close ``pr_id`` without merging."""
        self._mutate(queries.CLOSE_PULL_REQUEST, {"pullRequestId": pr_id})

    def enqueue_pull_request(self, pr_id: str, expected_head_oid: str) -> None:
        """Add ``pr_id`` to its base branch's merge queue if its head is ``expected_head_oid``.

        GitHub's refusal (head moved, no merge queue, not mergeable) is MergeRejected.
        """
        enqueue_input = {"pullRequestId": pr_id, "expectedHeadOid": expected_head_oid}
        try:
            self._mutate(queries.ENQUEUE_PULL_REQUEST, enqueue_input)
        except GitHubQueryError as exc:
            raise MergeRejected(f"GitHub refused to enqueue {pr_id}: {exc}", exc.errors) from exc

    def dequeue_pull_request(self, pr_id: str) -> None:
        """Take ``pr_id`` out of the merge queue."""
        self._mutate(queries.DEQUEUE_PULL_REQUEST, {"id": pr_id})

    def enable_auto_merge(
        self,
        pr_id: str,
        expected_head_oid: str,
        method: MergeMethod,
        commit_headline: str | None = None,
    ) -> None:
        """Arm auto-merge of ``pr_id`` at ``expected_head_oid``; a refusal is MergeRejected."""
        arm_input = _merge_input(pr_id, expected_head_oid, method, commit_headline)
        try:
            self._mutate(queries.ENABLE_AUTO_MERGE, arm_input)
        except GitHubQueryError as exc:
            message = f"GitHub refused to enable auto-merge of {pr_id}: {exc}"
            raise MergeRejected(message, exc.errors) from exc

    def disable_auto_merge(self, pr_id: str) -> None:
        """Disarm auto-merge of ``pr_id``."""
        self._mutate(queries.DISABLE_AUTO_MERGE, {"pullRequestId": pr_id})

    def update_branch(self, pr_id: str, expected_head_oid: str) -> None:
        """Merge the base branch into ``pr_id``'s branch if its head is ``expected_head_oid``."""
        update_input = {"pullRequestId": pr_id, "expectedHeadOid": expected_head_oid}
        self._mutate(queries.UPDATE_PULL_REQUEST_BRANCH, update_input)

    def add_comment(self, subject_id: str, body: str) -> str | None:
        """Comment on ``subject_id``; never retried once GitHub may have received it.

        Returns the new comment's id (None when GitHub's answer names none).
        """
        comment_input = {"subjectId": subject_id, "body": body}
        result = self._mutate(queries.ADD_COMMENT, comment_input, idempotent=False)
        edge = result.add_comment.comment_edge if result.add_comment else None
        node = edge.node if edge else None
        return str(node.id) if node and node.id else None

    def add_labels(self, labelable_id: str, label_ids: Sequence[str]) -> None:
        """Add labels (by id) to a pull request or issue."""
        labels_input = {"labelableId": labelable_id, "labelIds": list(label_ids)}
        self._mutate(queries.ADD_LABELS, labels_input)

    def _create_label(self, repository: str, repository_id: str, name: str) -> str:
        """Create label ``name``; when its answer is lost or the name is taken, read it back.

        "Name has already been taken" means the label exists (an earlier try whose answer was
        lost, or someone else just created it): its id is read, nothing is written twice.
        """
        label_input = {"repositoryId": repository_id, "name": name, "color": LABEL_COLOR}
        try:
            result = self._mutate(queries.CREATE_LABEL, label_input)
        except (GitHubQueryError, GitHubUnavailable) as exc:
            taken = isinstance(exc, GitHubQueryError) and _name_taken(exc)
            if not (taken or exc.retryable):
                raise
            existing = self._label_id(repository, name)
            if existing is None:
                raise
            return existing
        return str(result.create_label.label.id)

    def _label_id(self, repository: str, name: str) -> str | None:
        """The id of label ``name`` in ``repository``, or None when it does not exist."""
        owner, repo = _split(repository)
        result = self._query(
            queries.labels_operation(1), {"owner": owner, "name": repo, "name0": name}
        )
        label = getattr(result.repository, queries.label_alias(0)) if result.repository else None
        return str(label.id) if label else None

    # Plumbing

    def _query(self, operation: Any, variables: Mapping[str, Any]) -> Any:
        """Run a query operation; the typed result. Rate-limit points are counted."""
        data = self._transport.execute(str(operation), variables)
        result = operation + {"data": data}
        if result.rate_limit:
            self._transport.record_rate_limit(result.rate_limit.remaining, result.rate_limit.cost)
        return result

    def _mutate(
        self, operation: Any, mutation_input: Mapping[str, Any], *, idempotent: bool = False
    ) -> Any:
        """Run a mutation, one at a time and at least the mutation interval apart.

        A mutation is retried only when GitHub surely did not receive it: after an answer that
        may have been lost, the caller reads the pull request back instead
        (:mod:`jobs.reconcile.apply`), so nothing is written twice.
        """
        with self._mutation_lock:
            self._pace()
            try:
                data = self._transport.execute(
                    str(operation), {"input": mutation_input}, idempotent=idempotent
                )
            finally:
                self._last_mutation = self._clock()
                self._transport.count(mutations=1)
        return operation + {"data": data}

    def _pace(self) -> None:
        if self._last_mutation is None:
            return
        wait = self._mutation_interval - (self._clock() - self._last_mutation)
        if wait > 0:
            self._sleep(wait)


def _connection_of(result: Any) -> Any:
    """The one connection a ``*_PAGE`` operation reads (under ``node``)."""
    node = result.node
    if not node:
        raise GitHubQueryError("the pull request or commit disappeared while it was being read")
    for name in ("labels", "latest_reviews", "comments", "timeline_items"):
        if name in node:
            return getattr(node, name)
    return node.status_check_rollup.contexts


def _not_found(exc: GitHubQueryError, numbers: Sequence[int]) -> set[int]:
    """The numbers GitHub says name no pull request, when that is all it says; else empty."""
    missing: set[int] = set()
    for error in exc.errors:
        path = error.get("path")
        alias = path[-1] if isinstance(path, list) and path else None
        index = str(alias).removeprefix("pr") if isinstance(alias, str) else ""
        if error.get("type") != "NOT_FOUND" or not index.isdigit() or int(index) >= len(numbers):
            return set()
        missing.add(numbers[int(index)])
    return missing


def _name_taken(exc: GitHubQueryError) -> bool:
    """Whether GitHub refused a label because its name exists already."""
    messages = [str(error.get("message", "")) for error in exc.errors] + [str(exc)]
    return any("already been taken" in message for message in messages)


def _split(repository: str) -> tuple[str, str]:
    owner, _, name = repository.partition("/")
    if not owner or not name:
        raise GitHubQueryError(f"a repository is named owner/name, not {repository!r}")
    return owner, name


def _merge_input(
    pr_id: str, expected_head_oid: str, method: MergeMethod, commit_headline: str | None
) -> dict[str, Any]:
    """The input merging and arming auto-merge share: the PR, its pinned head, the method."""
    found: dict[str, Any] = {
        "pullRequestId": pr_id,
        "expectedHeadOid": expected_head_oid,
        "mergeMethod": method.value,
    }
    if commit_headline is not None:
        found["commitHeadline"] = commit_headline
    return found
