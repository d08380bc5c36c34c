"""The GraphQL operations the GitHub client sends, built from the generated sgqlc types.

Every pull request is read through one fragment, ``PullRequestFacts``, so a search and a fresh
read fetch the same facts in one pass (a fresh read also asks which checks are required, which a
search cannot: ``isRequired`` needs the pull request's number). Each nested connection (labels,
reviews, comments, timeline events, checks) selects its page info: the ``*_PAGE`` operations read
the pages after the first, so no fact stops at one page. Values always travel as GraphQL
variables, never spliced into a document. Operations are built once at import; only the label
lookup, whose aliases depend on the names asked for, is built per call.

This module only describes documents: it sends nothing and maps nothing.
"""

from __future__ import annotations

from typing import Any

from sgqlc.operation import Fragment, Operation
from sgqlc.types import ID, Int, String, Variable, non_null

from ai_operator.jobs.clients.github import github_schema as schema

PAGE_SIZE = 100
"""Pull requests per search page, GitHub's maximum: a pass reads N matching PRs in ceil(N/100)
requests. The rate-limit cost is the same as with smaller pages (it counts the nodes asked for)."""

CONTEXTS_PER_COMMIT = 50
LABELS_PER_PULL_REQUEST = 50
REVIEWS_PER_PULL_REQUEST = 50
COMMENTS_PER_PULL_REQUEST = 100
EVENTS_PER_PULL_REQUEST = 50
PAGE_OF_NESTED = 100
"""Items per follow-up page of a nested connection (GitHub's maximum)."""

TIMELINE_EVENTS = [
    "CLOSED_EVENT",
    "REOPENED_EVENT",
    "LABELED_EVENT",
    "UNLABELED_EVENT",
    "COMMENT_DELETED_EVENT",
    "PULL_REQUEST_COMMIT",
    "HEAD_REF_FORCE_PUSHED_EVENT",
    "AUTO_MERGE_ENABLED_EVENT",
    "AUTO_MERGE_DISABLED_EVENT",
    "ADDED_TO_MERGE_QUEUE_EVENT",
    "REMOVED_FROM_MERGE_QUEUE_EVENT",
]
"""The timeline events that tell who closed, reopened, labelled or unlabelled a pull request,
who deleted whose comment, who enabled or disabled auto-merge, who added it to or removed it
from the merge queue, and when the current head commit arrived (a commit or a force push):
what happened after it happened at this head."""


def _pull_request_facts(name: str, *, required_by_number: bool) -> Any:
    """Select every fact a pass reads about a pull request, as one fragment."""
    pr = Fragment(schema.PullRequest, name)
    pr.__fields__(
        "id", "number", "title", "body", "url", "state", "is_draft", "created_at", "updated_at",
        "additions", "deletions", "changed_files", "base_ref_name", "head_ref_name",
        "head_ref_oid", "mergeable", "merge_state_status", "review_decision",
        "is_in_merge_queue", "is_merge_queue_enabled",
    )  # fmt: skip
    # Who armed what: people win here too, and the operator disarms only its own.
    pr.merge_queue_entry.enqueuer.__fields__("login", "__typename__")
    pr.merge_queue_entry.head_commit.oid()
    pr.auto_merge_request.enabled_by.__fields__("login", "__typename__")
    pr.auto_merge_request.enabled_at()
    pr.author.__fields__("login", "__typename__")
    pr.repository.__fields__(
        "name_with_owner", "merge_commit_allowed", "squash_merge_allowed", "rebase_merge_allowed"
    )
    _select_labels(pr.labels(first=LABELS_PER_PULL_REQUEST))
    _select_reviews(pr.latest_reviews(first=REVIEWS_PER_PULL_REQUEST))
    commit = pr.commits(last=1).nodes.commit
    commit.__fields__("id", "oid", "committed_date")
    contexts = commit.status_check_rollup.contexts(first=CONTEXTS_PER_COMMIT)
    commit.status_check_rollup.state()
    required = {"pull_request_number": Variable("number")} if required_by_number else None
    _select_contexts(contexts, required)
    _select_comments(pr.comments(last=COMMENTS_PER_PULL_REQUEST))
    _select_events(pr.timeline_items(last=EVENTS_PER_PULL_REQUEST, item_types=TIMELINE_EVENTS))
    return pr


def _forward(connection: Any) -> None:
    connection.page_info.__fields__("has_next_page", "end_cursor")


def _backward(connection: Any) -> None:
    connection.page_info.__fields__("has_previous_page", "start_cursor")


def _select_labels(connection: Any) -> None:
    _forward(connection)
    connection.nodes.name()


def _select_reviews(connection: Any) -> None:
    _forward(connection)
    review = connection.nodes
    review.author.__fields__("login", "__typename__")
    review.state()


def _select_comments(connection: Any) -> None:
    """The newest comments first come last: earlier pages are read backwards."""
    _backward(connection)
    connection.nodes.__fields__("body", "viewer_did_author")


def _select_events(connection: Any) -> None:
    _backward(connection)
    event = connection.nodes
    for kind in (schema.ClosedEvent, schema.ReopenedEvent):
        happened = event.__as__(kind)
        happened.actor.__fields__("login", "__typename__")
        happened.created_at()
    for kind in (schema.LabeledEvent, schema.UnlabeledEvent):
        labelled = event.__as__(kind)
        labelled.actor.__fields__("login", "__typename__")
        labelled.created_at()
        labelled.label.name()
    for kind in (
        schema.AutoMergeEnabledEvent,
        schema.AutoMergeDisabledEvent,
        schema.AddedToMergeQueueEvent,
        schema.RemovedFromMergeQueueEvent,
    ):
        armed = event.__as__(kind)
        armed.actor.__fields__("login", "__typename__")
        armed.created_at()
    deleted = event.__as__(schema.CommentDeletedEvent)
    deleted.actor.__fields__("login", "__typename__")
    deleted.deleted_comment_author.__fields__("login", "__typename__")
    deleted.created_at()
    event.__as__(schema.PullRequestCommit).commit.oid()
    pushed = event.__as__(schema.HeadRefForcePushedEvent)
    pushed.after_commit.oid()
    pushed.created_at()


def _select_contexts(connection: Any, required: dict[str, Any] | None) -> None:
    """Check runs and commit statuses, with whether branch protection requires each."""
    _forward(connection)
    context = connection.nodes
    check_run = context.__as__(schema.CheckRun)
    check_run.__fields__("name", "status", "conclusion", "started_at", "completed_at")
    status = context.__as__(schema.StatusContext)
    status.__fields__("context", "state", "created_at")
    if required is not None:
        check_run.is_required(**required)
        status.is_required(**required)


def _select_rate_limit(operation: Any) -> None:
    operation.rate_limit.__fields__("cost", "remaining", "reset_at")


PULL_REQUEST_FACTS = _pull_request_facts("PullRequestFacts", required_by_number=False)
FRESH_PULL_REQUEST_FACTS = _pull_request_facts("FreshPullRequestFacts", required_by_number=True)


def _search_operation() -> Any:
    op = Operation(
        schema.Query,
        name="SearchPullRequests",
        variables={"query": non_null(String), "first": non_null(Int), "after": String},
    )
    search = op.search(
        query=Variable("query"), type="ISSUE", first=Variable("first"), after=Variable("after")
    )
    search.page_info.__fields__("has_next_page", "end_cursor")
    search.nodes.__fragment__(PULL_REQUEST_FACTS)
    op.viewer.login()
    _select_rate_limit(op)
    return op


def _settled_search_operation() -> Any:
    """A search page of settled pull requests: the same facts, and when and how each was settled."""
    op = Operation(
        schema.Query,
        name="SearchSettledPullRequests",
        variables={"query": non_null(String), "first": non_null(Int), "after": String},
    )
    search = op.search(
        query=Variable("query"), type="ISSUE", first=Variable("first"), after=Variable("after")
    )
    search.page_info.__fields__("has_next_page", "end_cursor")
    search.nodes.__fragment__(PULL_REQUEST_FACTS)
    search.nodes.__as__(schema.PullRequest).__fields__("merged_at", "closed_at")
    op.viewer.login()
    _select_rate_limit(op)
    return op


def _pull_request_operation() -> Any:
    op = Operation(
        schema.Query,
        name="PullRequest",
        variables={"owner": non_null(String), "name": non_null(String), "number": non_null(Int)},
    )
    repository = op.repository(owner=Variable("owner"), name=Variable("name"))
    repository.pull_request(number=Variable("number")).__fragment__(FRESH_PULL_REQUEST_FACTS)
    op.viewer.login()
    _select_rate_limit(op)
    return op


HISTORY_EVENTS = [
    "MERGED_EVENT",
    "CLOSED_EVENT",
    "LABELED_EVENT",
    "ISSUE_COMMENT",
    "PULL_REQUEST_REVIEW",
    "PULL_REQUEST_COMMIT",
    "HEAD_REF_FORCE_PUSHED_EVENT",
]
"""The timeline items that settle a shadow decision (:mod:`jobs.policy.shadow`): merged, closed,
a person's label, comment or review, a new head."""
HISTORY_ITEMS = 100
"""The newest items read of a pull request's history, in one request."""


def _history_operation() -> Any:
    """A pull request's state, head and newest timeline items that settle shadow decisions."""
    op = Operation(
        schema.Query,
        name="PullRequestHistory",
        variables={"owner": non_null(String), "name": non_null(String), "number": non_null(Int)},
    )
    repository = op.repository(owner=Variable("owner"), name=Variable("name"))
    pr = repository.pull_request(number=Variable("number"))
    pr.__fields__("state", "head_ref_oid")
    items = pr.timeline_items(last=HISTORY_ITEMS, item_types=HISTORY_EVENTS).nodes
    for kind in (schema.MergedEvent, schema.ClosedEvent, schema.LabeledEvent):
        happened = items.__as__(kind)
        happened.actor.__fields__("login", "__typename__")
        happened.created_at()
    comment = items.__as__(schema.IssueComment)
    comment.author.__fields__("login", "__typename__")
    comment.created_at()
    review = items.__as__(schema.PullRequestReview)
    review.author.__fields__("login", "__typename__")
    review.created_at()
    commit = items.__as__(schema.PullRequestCommit).commit
    commit.__fields__("oid", "committed_date")
    pushed = items.__as__(schema.HeadRefForcePushedEvent)
    pushed.after_commit.oid()
    pushed.created_at()
    op.viewer.login()
    _select_rate_limit(op)
    return op


def _viewer_operation() -> Any:
    op = Operation(schema.Query, name="Viewer")
    op.viewer.login()
    _select_rate_limit(op)
    return op


def _pull_request_page(name: str, select: Any) -> Any:
    """A follow-up page of one of a pull request's nested connections, from ``$cursor``."""
    op = Operation(schema.Query, name=name, variables={"id": non_null(ID), "cursor": String})
    select(op.node(id=Variable("id")).__as__(schema.PullRequest))
    _select_rate_limit(op)
    return op


def _contexts_page() -> Any:
    """A follow-up page of the head commit's checks, with whether the pull request requires each."""
    op = Operation(
        schema.Query,
        name="CheckContextsPage",
        variables={"commit": non_null(ID), "pr": non_null(ID), "cursor": String},
    )
    rollup = op.node(id=Variable("commit")).__as__(schema.Commit).status_check_rollup
    connection = rollup.contexts(first=PAGE_OF_NESTED, after=Variable("cursor"))
    _select_contexts(connection, {"pull_request_id": Variable("pr")})
    _select_rate_limit(op)
    return op


def _mutation(name: str, field: str, input_type: Any) -> tuple[Any, Any]:
    """Build a mutation ``field(input: $input)``; return it and its payload selector."""
    op = Operation(schema.Mutation, name=name, variables={"input": non_null(input_type)})
    payload = getattr(op, field)(input=Variable("input"))
    return op, payload


def _merge_operation() -> Any:
    op, payload = _mutation("MergePullRequest", "merge_pull_request", schema.MergePullRequestInput)
    payload.pull_request.__fields__("id", "state")
    return op


def _close_operation() -> Any:
    op, payload = _mutation("ClosePullRequest", "close_pull_request", schema.ClosePullRequestInput)
    payload.pull_request.__fields__("id", "state")
    return op


def _enqueue_operation() -> Any:
    op, payload = _mutation(
        "EnqueuePullRequest", "enqueue_pull_request", schema.EnqueuePullRequestInput
    )
    payload.merge_queue_entry.__fields__("id", "position")
    return op


def _dequeue_operation() -> Any:
    op, payload = _mutation(
        "DequeuePullRequest", "dequeue_pull_request", schema.DequeuePullRequestInput
    )
    payload.client_mutation_id()
    return op


def _enable_auto_merge_operation() -> Any:
    op, payload = _mutation(
        "EnableAutoMerge", "enable_pull_request_auto_merge", schema.EnablePullRequestAutoMergeInput
    )
    payload.pull_request.id()
    payload.pull_request.auto_merge_request.enabled_at()
    return op


def _disable_auto_merge_operation() -> Any:
    op, payload = _mutation(
        "DisableAutoMerge",
        "disable_pull_request_auto_merge",
        schema.DisablePullRequestAutoMergeInput,
    )
    payload.pull_request.id()
    return op


def _update_branch_operation() -> Any:
    op, payload = _mutation(
        "UpdatePullRequestBranch", "update_pull_request_branch", schema.UpdatePullRequestBranchInput
    )
    payload.pull_request.__fields__("id", "head_ref_oid")
    return op


def _comment_operation() -> Any:
    op, payload = _mutation("AddComment", "add_comment", schema.AddCommentInput)
    payload.comment_edge.node.__fields__("id")
    return op


def _add_labels_operation() -> Any:
    op, payload = _mutation(
        "AddLabels", "add_labels_to_labelable", schema.AddLabelsToLabelableInput
    )
    payload.client_mutation_id()
    return op


def _create_label_operation() -> Any:
    op, payload = _mutation("CreateLabel", "create_label", schema.CreateLabelInput)
    payload.label.__fields__("id", "name")
    return op


_CURSOR = Variable("cursor")
SEARCH_PULL_REQUESTS = _search_operation()
SEARCH_SETTLED_PULL_REQUESTS = _settled_search_operation()
PULL_REQUEST = _pull_request_operation()
VIEWER = _viewer_operation()
PULL_REQUEST_HISTORY = _history_operation()
LABELS_PAGE = _pull_request_page(
    "LabelsPage", lambda pr: _select_labels(pr.labels(first=PAGE_OF_NESTED, after=_CURSOR))
)
REVIEWS_PAGE = _pull_request_page(
    "ReviewsPage",
    lambda pr: _select_reviews(pr.latest_reviews(first=PAGE_OF_NESTED, after=_CURSOR)),
)
COMMENTS_PAGE = _pull_request_page(
    "CommentsPage",
    lambda pr: _select_comments(pr.comments(last=PAGE_OF_NESTED, before=_CURSOR)),
)
EVENTS_PAGE = _pull_request_page(
    "EventsPage",
    lambda pr: _select_events(
        pr.timeline_items(last=PAGE_OF_NESTED, before=_CURSOR, item_types=TIMELINE_EVENTS)
    ),
)
CONTEXTS_PAGE = _contexts_page()
MERGE_PULL_REQUEST = _merge_operation()
CLOSE_PULL_REQUEST = _close_operation()
ENQUEUE_PULL_REQUEST = _enqueue_operation()
DEQUEUE_PULL_REQUEST = _dequeue_operation()
ENABLE_AUTO_MERGE = _enable_auto_merge_operation()
DISABLE_AUTO_MERGE = _disable_auto_merge_operation()
UPDATE_PULL_REQUEST_BRANCH = _update_branch_operation()
ADD_COMMENT = _comment_operation()
ADD_LABELS = _add_labels_operation()
CREATE_LABEL = _create_label_operation()


def label_alias(index: int) -> str:
    """Name the alias under which :func:`labels_operation` answers the ``index``-th name."""
    return f"label{index}"


def labels_operation(count: int) -> Any:
    """Read the repository's id and ``count`` labels by name (``$name0``...), aliased."""
    variables: dict[str, Any] = {"owner": non_null(String), "name": non_null(String)}
    variables |= {f"name{i}": non_null(String) for i in range(count)}
    op = Operation(schema.Query, name="RepositoryLabels", variables=variables)
    repository = op.repository(owner=Variable("owner"), name=Variable("name"))
    repository.id()
    for i in range(count):
        label = repository.label(name=Variable(f"name{i}"), __alias__=label_alias(i))
        label.__fields__("id", "name")
    _select_rate_limit(op)
    return op


def pull_request_alias(index: int) -> str:
    """Name the alias under which :func:`pull_requests_operation` answers the ``index``-th PR."""
    return f"pr{index}"


def pull_requests_operation(count: int) -> Any:
    """Read ``count`` pull requests of one repository by number (``$number0``...), aliased.

    The facts are the search's (:data:`PULL_REQUEST_FACTS`): an event-started run reads the pull
    requests it was told about in one request, as a scheduled run reads a search page.
    """
    variables: dict[str, Any] = {"owner": non_null(String), "name": non_null(String)}
    variables |= {f"number{i}": non_null(Int) for i in range(count)}
    op = Operation(schema.Query, name="PullRequestsByNumber", variables=variables)
    repository = op.repository(owner=Variable("owner"), name=Variable("name"))
    for i in range(count):
        found = repository.pull_request(
            number=Variable(f"number{i}"), __alias__=pull_request_alias(i)
        )
        found.__fragment__(PULL_REQUEST_FACTS)
    op.viewer.login()
    _select_rate_limit(op)
    return op
