"""The GraphQL operations the GitHub client sends, built from the generated sgqlc types.

Every pull request is read through one fragment, ``PullRequestFacts``, so a search and a fresh
read fetch the same facts in one pass. Values always travel as GraphQL variables, never spliced
into a document. Operations are built once at import; only the label lookup, whose aliases depend
on the names asked for, is built per call.

This module only describes documents: it sends nothing and maps nothing.
"""

from __future__ import annotations

from typing import Any

from sgqlc.operation import Fragment, Operation
from sgqlc.types import Int, String, Variable, non_null

from jobs.clients.github import github_schema as schema

PAGE_SIZE = 50
"""Pull requests per search page: heavy nested facts keep GitHub's cost per page moderate."""

CONTEXTS_PER_COMMIT = 50
LABELS_PER_PULL_REQUEST = 50
REVIEWS_PER_PULL_REQUEST = 50
COMMENTS_PER_PULL_REQUEST = 100


def _pull_request_facts() -> Any:
    """Select every fact a pass reads about a pull request, as one fragment."""
    pr = Fragment(schema.PullRequest, "PullRequestFacts")
    pr.__fields__(
        "id", "number", "title", "body", "url", "state", "is_draft", "created_at", "updated_at",
        "additions", "deletions", "changed_files", "base_ref_name", "head_ref_name",
        "head_ref_oid", "mergeable", "merge_state_status", "review_decision",
    )  # fmt: skip
    pr.author.__fields__("login", "__typename__")
    pr.repository.name_with_owner()
    pr.labels(first=LABELS_PER_PULL_REQUEST).nodes.name()
    review = pr.latest_reviews(first=REVIEWS_PER_PULL_REQUEST).nodes
    review.author.__fields__("login", "__typename__")
    review.state()
    _select_rollup(pr.commits(last=1).nodes.commit)
    comment = pr.comments(last=COMMENTS_PER_PULL_REQUEST).nodes
    comment.body()
    comment.viewer_did_author()
    return pr


def _select_rollup(commit: Any) -> None:
    """Select the head commit's combined state, check runs and commit statuses."""
    commit.oid()
    rollup = commit.status_check_rollup
    rollup.state()
    context = rollup.contexts(first=CONTEXTS_PER_COMMIT).nodes
    check_run = context.__as__(schema.CheckRun)
    check_run.__fields__("name", "status", "conclusion")
    status = context.__as__(schema.StatusContext)
    status.__fields__("context", "state")


def _select_rate_limit(operation: Any) -> None:
    operation.rate_limit.__fields__("cost", "remaining", "reset_at")


PULL_REQUEST_FACTS = _pull_request_facts()


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
    _select_rate_limit(op)
    return op


def _pull_request_operation() -> Any:
    op = Operation(
        schema.Query,
        name="PullRequest",
        variables={"owner": non_null(String), "name": non_null(String), "number": non_null(Int)},
    )
    repository = op.repository(owner=Variable("owner"), name=Variable("name"))
    repository.pull_request(number=Variable("number")).__fragment__(PULL_REQUEST_FACTS)
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


def _comment_operation() -> Any:
    op, payload = _mutation("AddComment", "add_comment", schema.AddCommentInput)
    payload.client_mutation_id()
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


SEARCH_PULL_REQUESTS = _search_operation()
PULL_REQUEST = _pull_request_operation()
MERGE_PULL_REQUEST = _merge_operation()
CLOSE_PULL_REQUEST = _close_operation()
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
