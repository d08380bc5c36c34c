"""GitHub's real GraphQL schema executed over the fake world (``GitHubWorld``).

``answer(graph, payload)`` takes a decoded ``{"query", "variables", "operationName"}`` body,
validates the document against GitHub's pinned schema (shipped with the package and built once
per process: :mod:`jobs.sandbox.schema`) and executes it with graphql-core's default resolvers
over dicts whose callables are called as ``fn(info, **args)``. Errors are shaped like GitHub's
(``type``, ``path``, ``locations``, ``message``). ``GitHubGraph`` maps the world into such dicts
and holds the mutations.
Unmodelled fields resolve to null when nullable and to a plain value of their type otherwise;
connections require ``first`` or ``last`` (1..100) like GitHub. This module must not know HTTP.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLAbstractType,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    OperationType,
    execute,
    get_named_type,
    get_operation_ast,
    parse,
    validate,
)

from ai_operator.jobs.sandbox.github_search import SearchRejected, parse_search
from ai_operator.jobs.sandbox.github_world import (
    FakeCheck,
    FakeComment,
    FakeEvent,
    FakeLabel,
    FakePullRequest,
    FakeRepository,
    GitHubWorld,
    label_id,
    stable_digest,
    utc_now,
)
from ai_operator.jobs.sandbox.schema import github_schema

MAX_PAGE = 100
MAX_SEARCH_RESULTS = 1000

Node = dict[str, Any]
Args = dict[str, Any]


class GitHubFailure(Exception):
    """An error GitHub itself would answer (NOT_FOUND, UNPROCESSABLE, pagination, ...)."""

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type


def unknown_node(node_id: str) -> GitHubFailure:
    """GitHub's answer to an id that names nothing (or nothing of the expected kind)."""
    return GitHubFailure(
        f"Could not resolve to a node with the global id of '{node_id}'", "NOT_FOUND"
    )


# ---------------------------------------------------------------------------------------------
# Documents: parse and validate once per distinct text.


@dataclass(frozen=True)
class PreparedDocument:
    """A parsed document and its validation errors (empty when valid)."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]


@functools.lru_cache(maxsize=512)
def prepare(query: str) -> PreparedDocument:
    """Parse and validate ``query`` against GitHub's schema."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return PreparedDocument(None, (error,))
    return PreparedDocument(document, tuple(validate(github_schema(), document)))


@dataclass(frozen=True)
class OperationFacts:
    """What a request asked for: its operation's name and, for a mutation, its root fields."""

    name: str | None = None
    is_mutation: bool = False
    mutation_fields: tuple[str, ...] = ()


def operation_facts(query: str, operation_name: str | None) -> OperationFacts:
    """The facts of the operation ``operation_name`` in ``query`` (empty when unparsable)."""
    document = prepare(query).document if query else None
    operation = get_operation_ast(document, operation_name) if document else None
    if operation is None:
        return OperationFacts(operation_name)
    name = operation.name.value if operation.name else operation_name
    if operation.operation != OperationType.MUTATION:
        return OperationFacts(name)
    fields = tuple(
        selection.name.value
        for selection in operation.selection_set.selections
        if isinstance(selection, FieldNode)
    )
    return OperationFacts(name, True, fields)


# ---------------------------------------------------------------------------------------------
# Answers.


@dataclass
class GraphQLAnswer:
    """The JSON body to send, and what it tells the tests."""

    body: dict[str, Any]
    invalid: bool = False
    unexpected_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The GraphQL errors of the body."""
        errors: list[dict[str, Any]] = self.body.get("errors", [])
        return errors


def answer(graph: GitHubGraph, payload: Mapping[str, Any]) -> GraphQLAnswer:
    """Validate and execute one decoded GraphQL request body."""
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        message = "A query attribute must be specified and must be a string."
        return GraphQLAnswer({"errors": [{"message": message}]}, invalid=True)
    prepared = prepare(query)
    if prepared.document is None or prepared.errors:
        return GraphQLAnswer({"errors": [format_error(e) for e in prepared.errors]}, invalid=True)
    result = _execute(graph, prepared.document, payload)
    return _shape(result)


def _execute(
    graph: GitHubGraph, document: DocumentNode, payload: Mapping[str, Any]
) -> ExecutionResult:
    operation_name = payload.get("operationName") or None
    operation = get_operation_ast(document, operation_name)
    is_mutation = operation is not None and operation.operation == OperationType.MUTATION
    result = execute(
        github_schema(),
        document,
        root_value=graph.mutation_root() if is_mutation else graph.query_root(),
        variable_values=payload.get("variables") or {},
        operation_name=operation_name,
        field_resolver=resolve_field,
        type_resolver=resolve_type,
    )
    if isinstance(result, ExecutionResult):
        return result
    raise TypeError("the fake GitHub resolves synchronously")  # pragma: no cover


def _shape(result: ExecutionResult) -> GraphQLAnswer:
    errors = result.errors or []
    if result.data is None and errors and all(error.path is None for error in errors):
        # Variables that do not coerce or an unknown operation: the request never ran.
        return GraphQLAnswer({"errors": [format_error(e) for e in errors]}, invalid=True)
    body: dict[str, Any] = {"data": result.data}
    if errors:
        body["errors"] = [format_error(error) for error in errors]
    unexpected = [
        format_error(error)
        for error in errors
        if not isinstance(error.original_error, GitHubFailure)
    ]
    return GraphQLAnswer(body, unexpected_errors=unexpected)


def format_error(error: GraphQLError) -> dict[str, Any]:
    """``error`` in GitHub's shape: type, path, locations, message."""
    formatted: dict[str, Any] = {}
    if isinstance(error.original_error, GitHubFailure) and error.original_error.error_type:
        formatted["type"] = error.original_error.error_type
    if error.path is not None:
        formatted["path"] = list(error.path)
    if error.extensions:
        formatted["extensions"] = dict(error.extensions)
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    formatted["message"] = error.message
    return formatted


# ---------------------------------------------------------------------------------------------
# Resolution: dicts and callables, plain values for what the fake does not model.


def resolve_field(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    """graphql-core's default resolution, GitHub's pagination rules, defaults for the rest."""
    field_def = info.parent_type.fields[info.field_name]
    if _is_connection(field_def):
        _check_page_bounds(info.field_name, args)
    if isinstance(source, Mapping) and info.field_name in source:
        value = source[info.field_name]
        return value(info, **args) if callable(value) else value
    return _plain_value(info.return_type)


def resolve_type(
    value: Any, info: GraphQLResolveInfo, abstract_type: GraphQLAbstractType
) -> str | None:
    """Every union/interface member the fake serves says its ``__typename``."""
    if isinstance(value, Mapping):
        typename = value.get("__typename")
        return typename if isinstance(typename, str) else None
    return None


def _is_connection(field_def: GraphQLField) -> bool:
    named = get_named_type(field_def.type)
    return (
        named.name.endswith("Connection") and "first" in field_def.args and "last" in field_def.args
    )


def _check_page_bounds(connection: str, args: Args) -> None:
    bounds = {name: args[name] for name in ("first", "last") if args.get(name) is not None}
    if not bounds:
        raise GitHubFailure(
            "You must provide a `first` or `last` value to properly paginate the "
            f"`{connection}` connection.",
            "MISSING_PAGINATION_BOUNDARIES",
        )
    for name, value in bounds.items():
        if value > MAX_PAGE:
            raise GitHubFailure(
                f"Requesting {value} records on the `{connection}` connection exceeds the "
                f"`{name}` limit of {MAX_PAGE} records.",
                "EXCESSIVE_PAGINATION",
            )
        if value < 1:
            raise GitHubFailure(
                f"`{name}` on the `{connection}` connection cannot be less than one."
            )


def _plain_value(return_type: GraphQLOutputType) -> Any:
    """Null where nullable, else an ordinary value of the type (the fake does not model it)."""
    if not isinstance(return_type, GraphQLNonNull):
        return None
    inner = return_type.of_type
    if isinstance(inner, GraphQLList):
        return []
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    if isinstance(inner, GraphQLScalarType):
        return _PLAIN_SCALARS.get(inner.name, "")
    if isinstance(inner, GraphQLObjectType):
        return connection([], {}) if inner.name.endswith("Connection") else {}
    possible = github_schema().get_possible_types(inner)
    return {"__typename": possible[0].name} if possible else None


_PLAIN_SCALARS: dict[str, Any] = {
    "Int": 0,
    "Float": 0.0,
    "Boolean": False,
    "ID": "X_0",
    "DateTime": "1970-01-01T00:00:00Z",
    "PreciseDateTime": "1970-01-01T00:00:00.000Z",
    "GitTimestamp": "1970-01-01T00:00:00Z",
    "Date": "1970-01-01",
    "URI": "https://github.com/",
    "GitObjectID": "0" * 40,
    "BigInt": "0",
}


# ---------------------------------------------------------------------------------------------
# Connections and cursors.


def cursor(index: int) -> str:
    """GitHub's cursor of the item at ``index`` (base64 of ``cursor:N``, one-based)."""
    return base64.b64encode(f"cursor:{index + 1}".encode()).decode()


def _cursor_position(value: str) -> int:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
        prefix, _, number = decoded.partition(":")
        if prefix == "cursor" and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise GitHubFailure(f"`{value}` does not appear to be a valid cursor.")


def connection(items: Sequence[Any], args: Args, **extra: Any) -> Node:
    """A Relay connection over ``items`` honouring first/last/after/before."""
    start, end = 0, len(items)
    if args.get("after"):
        start = min(_cursor_position(args["after"]), end)
    if args.get("before"):
        end = max(start, min(_cursor_position(args["before"]) - 1, end))
    if args.get("first") is not None:
        end = min(end, start + args["first"])
    if args.get("last") is not None:
        start = max(start, end - args["last"])
    page = list(items[start:end])
    edges = [{"cursor": cursor(start + i), "node": node} for i, node in enumerate(page)]
    return {
        "totalCount": len(items),
        "nodes": page,
        "edges": edges,
        "pageInfo": {
            "hasNextPage": end < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
        **extra,
    }


def iso(moment: datetime) -> str:
    """A DateTime the way GitHub writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Rate limit budget.


@dataclass
class RateLimitBudget:
    """GitHub's primary GraphQL budget: points per hour, spent one per query."""

    limit: int = 5000
    used: int = 0
    reset_at: datetime = field(default_factory=lambda: utc_now() + timedelta(hours=1))

    @property
    def remaining(self) -> int:
        """Points left in this window."""
        return max(self.limit - self.used, 0)

    def spend(self, cost: int = 1) -> None:
        """Spend ``cost`` points."""
        self.used += cost

    def headers(self) -> dict[str, str]:
        """GitHub's ``x-ratelimit-*`` answer headers."""
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(int(self.reset_at.timestamp())),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": "graphql",
        }


# ---------------------------------------------------------------------------------------------
# The world as GraphQL objects.


_CHECK_STATE_FROM_CONCLUSION = {
    "SUCCESS": "SUCCESS",
    "NEUTRAL": "SUCCESS",
    "SKIPPED": "SUCCESS",
    "ERROR": "ERROR",
    "EXPECTED": "EXPECTED",
    "PENDING": "PENDING",
}


def status_state(check: FakeCheck) -> str:
    """The ``StatusState`` of a commit status given as a check."""
    if check.conclusion is None or check.status != "COMPLETED":
        return "PENDING"
    return _CHECK_STATE_FROM_CONCLUSION.get(check.conclusion, "FAILURE")


def actor(login: str) -> Node:
    """A User, or a Bot for ``name[bot]`` (whose login GitHub reports as ``name``)."""
    if login.endswith("[bot]"):
        name = login.removesuffix("[bot]")
        path, typename, node_id = f"/apps/{name}", "Bot", "BOT_" + stable_digest("bot", name)[:12]
    else:
        name = login
        path, typename, node_id = f"/{name}", "User", "U_" + stable_digest("user", name)[:12]
    return {
        "__typename": typename,
        "id": node_id,
        "login": name,
        "url": f"https://github.com{path}",
        "resourcePath": path,
        "avatarUrl": f"https://avatars.githubusercontent.com/{name}",
    }


def label_node(repository: FakeRepository, label: FakeLabel) -> Node:
    """A Label."""
    return {
        "__typename": "Label",
        "id": label.id,
        "name": label.name,
        "color": label.color,
        "description": label.description,
        "isDefault": False,
        "url": f"https://github.com/{repository.full_name}/labels/{label.name}",
        "resourcePath": f"/{repository.full_name}/labels/{label.name}",
    }


class GitHubGraph:
    """The world seen through GitHub's schema: root values for queries and mutations."""

    def __init__(
        self,
        world: GitHubWorld,
        budget: RateLimitBudget,
        on_mutation: Callable[[str], None],
    ) -> None:
        self.world = world
        self.budget = budget
        self.on_mutation = on_mutation

    # Roots.

    def query_root(self) -> Node:
        """The Query root value."""
        return {
            "search": self._search,
            "repository": self._repository,
            "node": lambda info, id: self._node(id),
            "nodes": self._nodes,
            "viewer": actor(self.world.viewer_login),
            "rateLimit": self._rate_limit,
        }

    def mutation_root(self) -> Node:
        """The Mutation root value; each successful field is reported to ``on_mutation``."""
        actions: dict[str, Callable[[Args], Node]] = {
            "mergePullRequest": self._merge,
            "closePullRequest": self._close,
            "reopenPullRequest": self._reopen,
            "addComment": self._add_comment,
            "addLabelsToLabelable": self._add_labels,
            "removeLabelsFromLabelable": self._remove_labels,
            "createLabel": self._create_label,
            "enqueuePullRequest": self._enqueue,
            "dequeuePullRequest": self._dequeue,
            "enablePullRequestAutoMerge": self._enable_auto_merge,
            "disablePullRequestAutoMerge": self._disable_auto_merge,
            "updatePullRequestBranch": self._update_branch,
        }
        return {name: self._mutation(name, action) for name, action in actions.items()}

    def _mutation(self, name: str, action: Callable[[Args], Node]) -> Callable[..., Node]:
        def run(info: GraphQLResolveInfo, input: Args) -> Node:
            payload = action(input)
            self.on_mutation(name)
            return {"clientMutationId": input.get("clientMutationId"), **payload}

        return run

    # Queries.

    def _search(self, info: GraphQLResolveInfo, query: str, type: str, **args: Any) -> Node:
        if type not in ("ISSUE", "ISSUE_ADVANCED"):
            return connection([], args, issueCount=0)
        try:
            search = parse_search(query)
        except SearchRejected as error:
            raise GitHubFailure(str(error)) from error
        found = search.run(self.world.pull_requests)
        nodes = [self.pull_request(pr) for pr in found[:MAX_SEARCH_RESULTS]]
        return connection(nodes, args, issueCount=len(found))

    def _repository(self, info: GraphQLResolveInfo, owner: str, name: str, **_: Any) -> Node:
        repository = self.world.find_repository(f"{owner}/{name}")
        if repository is None:
            raise GitHubFailure(
                f"Could not resolve to a Repository with the name '{owner}/{name}'.", "NOT_FOUND"
            )
        return self.repository(repository)

    def _node(self, node_id: str) -> Node:
        pr = self.world.pull_request_by_id(node_id)
        if pr is not None:
            return self.pull_request(pr)
        repository = self.world.repository_by_id(node_id)
        if repository is not None:
            return self.repository(repository)
        found = self.world.label_by_id(node_id)
        if found is not None:
            return label_node(*found)
        with_head = [pr for pr in self.world.pull_requests if _commit_id(pr) == node_id]
        if with_head:
            return self._commit(with_head[0])
        raise unknown_node(node_id)

    def _nodes(self, info: GraphQLResolveInfo, ids: list[str]) -> list[Node | GitHubFailure]:
        if len(ids) > MAX_PAGE:
            raise GitHubFailure(f"You may not request more than {MAX_PAGE} ids at once.")
        answers: list[Node | GitHubFailure] = []
        for node_id in ids:
            try:
                answers.append(self._node(node_id))
            except GitHubFailure as error:
                answers.append(error)  # graphql-core reports it at nodes[i] and answers null
        return answers

    def _rate_limit(self, info: GraphQLResolveInfo, **_: Any) -> Node:
        return {
            "limit": self.budget.limit,
            "cost": 1,
            "remaining": self.budget.remaining,
            "resetAt": iso(self.budget.reset_at),
            "used": self.budget.used,
            "nodeCount": 0,
        }

    # Objects.

    def repository(self, repository: FakeRepository) -> Node:
        """A Repository."""
        owner, _, name = repository.full_name.partition("/")
        return {
            "__typename": "Repository",
            "id": repository.id,
            "name": name,
            "nameWithOwner": repository.full_name,
            "owner": {**actor(owner), "__typename": "Organization"},
            "url": f"{self.world.web_url}/{repository.full_name}",
            "resourcePath": f"/{repository.full_name}",
            "isArchived": False,
            "isPrivate": False,
            "isFork": False,
            "viewerPermission": "WRITE",
            "mergeCommitAllowed": "MERGE" in repository.merge_methods,
            "squashMergeAllowed": "SQUASH" in repository.merge_methods,
            "rebaseMergeAllowed": "REBASE" in repository.merge_methods,
            "defaultBranchRef": {"__typename": "Ref", "name": "main", "prefix": "refs/heads/"},
            "pullRequest": lambda info, number: self._pull_request_by_number(repository, number),
            "pullRequests": lambda info, **args: self._pull_requests(repository, args),
            "label": lambda info, name: self._label_by_name(repository, name),
            "labels": lambda info, **args: self._labels(repository, args),
            "autoMergeAllowed": repository.auto_merge_allowed,
            "mergeQueue": lambda info, branch=None: self._merge_queue(repository, branch),
        }

    def _pull_request_by_number(self, repository: FakeRepository, number: int) -> Node:
        try:
            return self.pull_request(self.world.pull_request(repository.full_name, number))
        except KeyError:
            message = f"Could not resolve to a PullRequest with the number of {number}."
            raise GitHubFailure(message, "NOT_FOUND") from None

    def _pull_requests(self, repository: FakeRepository, args: Args) -> Node:
        states = set(args.get("states") or ())
        labels = {name.lower() for name in args.get("labels") or ()}
        found = [
            pr
            for pr in self.world.pull_requests
            if pr.repository == repository.full_name
            and (not states or pr.state in states)
            and (not labels or any(label.lower() in labels for label in pr.labels))
            and args.get("baseRefName") in (None, pr.base_ref)
            and args.get("headRefName") in (None, pr.head_ref)
        ]
        return connection([self.pull_request(pr) for pr in found], args)

    def _label_by_name(self, repository: FakeRepository, name: str) -> Node | None:
        label = repository.labels.get(name.lower())
        return label_node(repository, label) if label else None

    def _labels(self, repository: FakeRepository, args: Args) -> Node:
        needle = (args.get("query") or "").lower()
        labels = sorted(repository.labels.values(), key=lambda label: label.name.lower())
        found = [label_node(repository, label) for label in labels if needle in label.name.lower()]
        return connection(found, args)

    def _pr_url(self, pr: FakePullRequest) -> str:
        """The PR's page, on the world's host (GitHub.com or a GitHub Enterprise Server)."""
        return f"{self.world.web_url}/{pr.repository}/pull/{pr.number}"

    def pull_request(self, pr: FakePullRequest) -> Node:
        """A PullRequest."""
        url = f"{self.world.web_url}/{pr.repository}/pull/{pr.number}"
        return {
            "__typename": "PullRequest",
            "id": pr.id,
            "number": pr.number,
            "title": pr.title,
            "body": pr.body,
            "bodyText": pr.body,
            "url": url,
            "permalink": url,
            "resourcePath": f"/{pr.repository}/pull/{pr.number}",
            "state": pr.state,
            "isDraft": pr.is_draft,
            "merged": pr.state == "MERGED",
            "closed": pr.state != "OPEN",
            "mergedAt": iso(pr.merged_at) if pr.merged_at else None,
            "closedAt": iso(pr.closed_at) if pr.closed_at else None,
            "createdAt": iso(pr.created_at),
            "updatedAt": iso(pr.updated_at),
            "publishedAt": iso(pr.created_at),
            "additions": pr.additions,
            "deletions": pr.deletions,
            "changedFiles": pr.changed_files,
            "author": actor(pr.author),
            "baseRefName": pr.base_ref,
            "headRefName": pr.head_ref,
            "headRefOid": pr.head_oid,
            "baseRefOid": stable_digest("base", pr.repository.lower(), pr.base_ref),
            "headRef": self._head_ref(pr) if pr.state == "OPEN" else None,
            "baseRepository": lambda info: self._repository_of(pr),
            "headRepository": lambda info: self._repository_of(pr),
            "repository": lambda info: self._repository_of(pr),
            "isCrossRepository": False,
            "locked": False,
            "mergeable": pr.mergeable,
            "mergeStateStatus": pr.merge_state_status,
            "reviewDecision": pr.review_decision,
            "labels": lambda info, **args: self._pr_labels(pr, args),
            "reviews": lambda info, **args: self._reviews(pr, args),
            "latestReviews": lambda info, **args: self._latest_reviews(pr, args, opinionated=False),
            "latestOpinionatedReviews": lambda info, **args: self._latest_reviews(
                pr, args, opinionated=True
            ),
            "commits": lambda info, **args: connection([self._pull_request_commit(pr)], args),
            "comments": lambda info, **args: self._comments(pr, args),
            "totalCommentsCount": len(pr.comments),
            "timelineItems": lambda info, **args: self._timeline(pr, args),
            **self._handover_fields(pr),
        }

    def _repository_of(self, pr: FakePullRequest) -> Node:
        return self.repository(self.world.repository(pr.repository))

    def _head_ref(self, pr: FakePullRequest) -> Node:
        return {
            "__typename": "Ref",
            "id": "REF_" + stable_digest("ref", pr.id, pr.head_ref)[:12],
            "name": pr.head_ref,
            "prefix": "refs/heads/",
            "target": self._commit(pr),
        }

    def _pr_labels(self, pr: FakePullRequest, args: Args) -> Node:
        repository = self.world.repository(pr.repository)
        labels = [
            repository.labels.get(name.lower()) or FakeLabel(label_id(pr.repository, name), name)
            for name in pr.labels
        ]
        return connection([label_node(repository, label) for label in labels], args)

    def _reviews(self, pr: FakePullRequest, args: Args) -> Node:
        reviews = [self._review(pr, index) for index in range(len(pr.reviews))]
        if args.get("states"):
            reviews = [review for review in reviews if review["state"] in args["states"]]
        if args.get("author"):
            reviews = [review for review in reviews if review["author"]["login"] == args["author"]]
        return connection(reviews, args)

    def _latest_reviews(self, pr: FakePullRequest, args: Args, *, opinionated: bool) -> Node:
        latest: dict[str, int] = {}
        for index, (author, state) in enumerate(pr.reviews):
            if not (opinionated and state == "COMMENTED"):
                latest.pop(author, None)
                latest[author] = index
        return connection([self._review(pr, index) for index in latest.values()], args)

    def _review(self, pr: FakePullRequest, index: int) -> Node:
        author, state = pr.reviews[index]
        submitted = iso(pr.created_at + timedelta(minutes=index + 1))
        return {
            "__typename": "PullRequestReview",
            "id": f"PRR_{pr.id[3:]}_{index}",
            "author": actor(author),
            "state": state,
            "body": "",
            "submittedAt": submitted,
            "createdAt": submitted,
            "authorAssociation": "MEMBER",
            "url": f"{self._pr_url(pr)}#pullrequestreview-{index}",
        }

    def _pull_request_commit(self, pr: FakePullRequest) -> Node:
        return {
            "__typename": "PullRequestCommit",
            "id": "PURC_" + pr.head_oid[:16],
            "commit": self._commit(pr),
            "url": f"{self.world.web_url}/{pr.repository}/pull/{pr.number}/commits/{pr.head_oid}",
        }

    def _commit(self, pr: FakePullRequest) -> Node:
        return {
            "__typename": "Commit",
            "id": _commit_id(pr),
            "oid": pr.head_oid,
            "abbreviatedOid": pr.head_oid[:7],
            "message": pr.title,
            "messageHeadline": pr.title,
            "messageBody": "",
            "committedDate": iso(pr.committed_at or pr.created_at),
            "authoredDate": iso(pr.committed_at or pr.created_at),
            "url": f"{self.world.web_url}/{pr.repository}/commit/{pr.head_oid}",
            "statusCheckRollup": self._rollup(pr) if pr.rollup_state is not None else None,
        }

    def _commit_node(self, oid: str, moment: datetime) -> Node:
        """A Commit named by ``oid`` (an earlier head or the current one), as events give it."""
        return {
            "__typename": "Commit",
            "id": "C_" + oid[:16],
            "oid": oid,
            "abbreviatedOid": oid[:7],
            "committedDate": iso(moment),
            "authoredDate": iso(moment),
        }

    def _rollup(self, pr: FakePullRequest) -> Node:
        return {
            "__typename": "StatusCheckRollup",
            "id": "SCR_" + pr.head_oid[:16],
            "state": pr.rollup_state,
            "contexts": lambda info, **args: self._contexts(pr, args),
        }

    def _contexts(self, pr: FakePullRequest, args: Args) -> Node:
        contexts = [self._context(pr, index, check) for index, check in enumerate(pr.checks)]
        runs = [c for c in contexts if c["__typename"] == "CheckRun"]
        statuses = [c for c in contexts if c["__typename"] == "StatusContext"]
        return connection(
            contexts,
            args,
            checkRunCount=len(runs),
            statusContextCount=len(statuses),
            checkRunCountsByState=_counts(run["conclusion"] or run["status"] for run in runs),
            statusContextCountsByState=_counts(status["state"] for status in statuses),
        )

    def _context(self, pr: FakePullRequest, index: int, check: FakeCheck) -> Node:
        node_id = stable_digest("context", pr.head_oid, str(index))[:12]
        # Checks start in list order unless a test says when: a later run of a check is newer.
        started = iso(check.started_at or pr.updated_at + timedelta(seconds=index))
        required = check.required
        if check.kind == "status":
            return {
                "__typename": "StatusContext",
                "id": "SC_" + node_id,
                "context": check.name,
                "state": status_state(check),
                "description": None,
                "targetUrl": None,
                "createdAt": started,
                "isRequired": lambda info, **_: required,
            }
        url = f"{self.world.web_url}/{pr.repository}/runs/{index + 1}"
        return {
            "__typename": "CheckRun",
            "id": "CR_" + node_id,
            "name": check.name,
            "status": check.status,
            "conclusion": check.conclusion,
            "detailsUrl": url,
            "url": url,
            "permalink": url,
            "startedAt": started,
            "completedAt": started if check.status == "COMPLETED" else None,
            "isRequired": lambda info, **_: required,
        }

    def _comments(self, pr: FakePullRequest, args: Args) -> Node:
        nodes = [self._comment(pr, index, comment) for index, comment in enumerate(pr.comments)]
        return connection(nodes, args)

    def _timeline(self, pr: FakePullRequest, args: Args) -> Node:
        wanted = {_EVENT_TYPES.get(kind, kind) for kind in args.get("itemTypes") or ()}
        events = [e for e in pr.events if not wanted or e.kind in wanted]
        nodes = [self._event(pr, index, event) for index, event in enumerate(events)]
        return connection(nodes, args, filteredCount=len(nodes), updatedAt=iso(pr.updated_at))

    def _event(self, pr: FakePullRequest, index: int, event: FakeEvent) -> Node:
        node: Node = {
            "__typename": event.kind,
            "id": f"EV_{pr.id[3:]}_{index}",
            "actor": actor(event.actor),
            "createdAt": iso(event.created_at),
        }
        if event.kind == "PullRequestCommit":
            return {
                "__typename": event.kind,
                "id": node["id"],
                "commit": self._commit_node(event.oid or pr.head_oid, event.created_at),
                "url": f"{self.world.web_url}/{pr.repository}/pull/{pr.number}/commits/{event.oid}",
                "resourcePath": f"/{pr.repository}/pull/{pr.number}/commits/{event.oid}",
            }
        if event.kind == "IssueComment":
            return {
                "__typename": event.kind,
                "id": f"IC_{pr.id[3:]}_e{index}",
                "author": actor(event.actor),
                "body": event.body or "",
                "bodyText": event.body or "",
                "createdAt": node["createdAt"],
                "updatedAt": node["createdAt"],
                "url": f"https://github.com/{pr.repository}/pull/{pr.number}#issuecomment-e{index}",
                "viewerDidAuthor": event.actor == self.world.viewer_login,
                "isMinimized": False,
            }
        if event.kind == "PullRequestReview":
            return {
                "__typename": event.kind,
                "id": f"PRR_{pr.id[3:]}_e{index}",
                "author": actor(event.actor),
                "state": event.state or "COMMENTED",
                "body": "",
                "submittedAt": node["createdAt"],
                "createdAt": node["createdAt"],
                "authorAssociation": "MEMBER",
                "url": f"https://github.com/{pr.repository}/pull/{pr.number}#pullrequestreview-e{index}",
            }
        if event.kind == "MergedEvent":
            node["commit"] = self._commit_node(event.oid or pr.head_oid, event.created_at)
            node["mergeRefName"] = pr.base_ref
        if event.kind == "HeadRefForcePushedEvent":
            node["afterCommit"] = self._commit_node(event.oid or pr.head_oid, event.created_at)
            node["beforeCommit"] = None
        if event.kind == "AddedToMergeQueueEvent":
            node["enqueuer"] = actor(event.actor) if not event.actor.endswith("[bot]") else None
        if event.kind in {"AutoMergeEnabledEvent", "AutoMergeDisabledEvent"}:
            key = "enabler" if event.kind == "AutoMergeEnabledEvent" else "disabler"
            node[key] = actor(event.actor) if not event.actor.endswith("[bot]") else None
        if event.kind == "CommentDeletedEvent":
            node["deletedCommentAuthor"] = actor(event.deleted_author or "ghost")
            node["databaseId"] = index
        if event.label is not None:
            repository = self.world.repository(pr.repository)
            label = repository.labels.get(event.label.lower()) or FakeLabel(
                label_id(pr.repository, event.label), event.label
            )
            node["label"] = label_node(repository, label)
        return node

    def _comment(self, pr: FakePullRequest, index: int, comment: FakeComment) -> Node:
        return {
            "__typename": "IssueComment",
            "id": f"IC_{pr.id[3:]}_{index}",
            "author": actor(comment.author),
            "body": comment.body,
            "bodyText": comment.body,
            "createdAt": iso(comment.created_at),
            "updatedAt": iso(comment.created_at),
            "url": f"{self.world.web_url}/{pr.repository}/pull/{pr.number}#issuecomment-{index}",
            "viewerDidAuthor": comment.author == self.world.viewer_login,
            "isMinimized": False,
        }

    # Mutations.

    def _target_pull_request(self, node_id: str) -> FakePullRequest:
        pr = self.world.pull_request_by_id(node_id)
        if pr is None:
            raise unknown_node(node_id)
        return pr

    def _merge(self, given: Args) -> Node:
        pr = self._target_pull_request(given["pullRequestId"])
        method = given.get("mergeMethod") or "MERGE"
        refusal = (
            merge_refusal(pr, given.get("expectedHeadOid"))
            or self._method_refusal(pr, method)
            or self._queue_refusal(pr)
        )
        if refusal:
            raise GitHubFailure(refusal, "UNPROCESSABLE")
        self.world.merge(pr.repository, pr.number, self.world.viewer_login, method)
        return {"pullRequest": self.pull_request(pr), "actor": actor(self.world.viewer_login)}

    # Merge queue, auto-merge, branch updates.

    def _handover_fields(self, pr: FakePullRequest) -> Node:
        """What a PullRequest says about its merge queue entry and its auto-merge."""
        queue_required = pr.base_ref in self.world.repository(pr.repository).merge_queue_branches
        viewer_may = pr.state == "OPEN"
        return {
            "isInMergeQueue": pr.queue_entry is not None,
            "isMergeQueueEnabled": queue_required,
            "mergeQueue": self._merge_queue_node(pr.repository, pr.base_ref)
            if queue_required
            else None,
            "mergeQueueEntry": self._queue_entry(pr) if pr.queue_entry else None,
            "autoMergeRequest": self._auto_merge_request(pr) if pr.auto_merge else None,
            "viewerCanEnableAutoMerge": viewer_may and pr.auto_merge is None,
            "viewerCanDisableAutoMerge": viewer_may and pr.auto_merge is not None,
            "viewerCanUpdateBranch": viewer_may and pr.merge_state_status == "BEHIND",
        }

    def _merge_queue(self, repository: FakeRepository, branch: str | None) -> Node | None:
        branch = branch or "main"
        if branch not in repository.merge_queue_branches:
            return None
        return self._merge_queue_node(repository.full_name, branch)

    def _merge_queue_node(self, repository: str, branch: str) -> Node:
        def entries(info: GraphQLResolveInfo, **args: Any) -> Node:
            queued = [
                pr
                for pr in self.world.pull_requests
                if pr.repository == repository and pr.base_ref == branch and pr.queue_entry
            ]
            queued.sort(
                key=lambda pr: pr.queue_entry.enqueued_at if pr.queue_entry else pr.created_at
            )
            return connection([self._queue_entry(pr) for pr in queued], args)

        return {
            "__typename": "MergeQueue",
            "id": "MQ_" + stable_digest("merge-queue", repository.lower(), branch)[:12],
            "url": f"https://github.com/{repository}/queue/{branch}",
            "resourcePath": f"/{repository}/queue/{branch}",
            "entries": entries,
        }

    def _queue_entry(self, pr: FakePullRequest) -> Node:
        entry = pr.queue_entry
        assert entry is not None  # only called for a queued pull request
        return {
            "__typename": "MergeQueueEntry",
            "id": "MQE_" + stable_digest("entry", pr.id, entry.head_oid)[:12],
            "enqueuer": actor(entry.enqueuer),
            "enqueuedAt": iso(entry.enqueued_at),
            "headCommit": self._commit_node(entry.head_oid, entry.enqueued_at),
            "position": 1,
            "jump": False,
            "solo": False,
            "state": "QUEUED",
            "pullRequest": lambda info: self.pull_request(pr),
        }

    def _auto_merge_request(self, pr: FakePullRequest) -> Node:
        armed = pr.auto_merge
        assert armed is not None  # only called for an armed pull request
        return {
            "__typename": "AutoMergeRequest",
            "enabledBy": actor(armed.enabled_by),
            "enabledAt": iso(armed.enabled_at),
            "mergeMethod": armed.merge_method,
            "commitHeadline": armed.commit_headline,
            "pullRequest": lambda info: self.pull_request(pr),
        }

    def _queue_refusal(self, pr: FakePullRequest) -> str | None:
        if pr.base_ref in self.world.repository(pr.repository).merge_queue_branches:
            return "Changes must be made through the merge queue"
        return None

    def _open_refusal(self, pr: FakePullRequest, expected_head_oid: str | None) -> str | None:
        """GitHub's refusal of a change to a PR that is not open, is a draft, or moved on."""
        if pr.state != "OPEN":
            return f"Pull request is {pr.state.lower()}"
        if pr.is_draft:
            return "Pull request is in draft state"
        if expected_head_oid is not None and expected_head_oid != pr.head_oid:
            return "Head branch was modified. Review and try the merge again."
        return None

    def _enqueue(self, given: Args) -> Node:
        pr = self._target_pull_request(given["pullRequestId"])
        refusal = self._open_refusal(pr, given.get("expectedHeadOid"))
        if refusal is None and not self._queue_refusal(pr):
            refusal = f"The merge queue is not enabled for the branch {pr.base_ref}"
        if refusal is None and pr.queue_entry is not None:
            refusal = "Pull request is already in the merge queue"
        if refusal is None and pr.mergeable != "MERGEABLE":
            refusal = "Pull Request is not mergeable"
        if refusal:
            raise GitHubFailure(refusal, "UNPROCESSABLE")
        self.world.enqueue(pr.repository, pr.number, self.world.viewer_login)
        return {"mergeQueueEntry": self._queue_entry(pr)}

    def _dequeue(self, given: Args) -> Node:
        pr = self._target_pull_request(given["id"])
        if pr.queue_entry is None:
            raise GitHubFailure("Pull request is not in the merge queue", "UNPROCESSABLE")
        entry = self._queue_entry(pr)
        self.world.dequeue(pr.repository, pr.number, self.world.viewer_login)
        return {"mergeQueueEntry": entry}

    def _enable_auto_merge(self, given: Args) -> Node:
        pr = self._target_pull_request(given["pullRequestId"])
        method = given.get("mergeMethod") or "MERGE"
        refusal = self._open_refusal(pr, given.get("expectedHeadOid")) or self._method_refusal(
            pr, method
        )
        if refusal is None and not self.world.repository(pr.repository).auto_merge_allowed:
            refusal = "Auto merge is not allowed for this repository"
        if refusal is None and pr.auto_merge is not None:
            refusal = "Auto merge is already enabled for this pull request"
        if refusal is None and pr.merge_state_status == "CLEAN":
            refusal = "Pull request is in clean status"
        if refusal:
            raise GitHubFailure(refusal, "UNPROCESSABLE")
        self.world.enable_auto_merge(pr.repository, pr.number, self.world.viewer_login, method)
        if pr.auto_merge is not None:
            pr.auto_merge.commit_headline = given.get("commitHeadline")
        return {"pullRequest": self.pull_request(pr), "actor": actor(self.world.viewer_login)}

    def _disable_auto_merge(self, given: Args) -> Node:
        pr = self._target_pull_request(given["pullRequestId"])
        if pr.auto_merge is None:
            raise GitHubFailure("Auto merge is not enabled for this pull request", "UNPROCESSABLE")
        self.world.disable_auto_merge(pr.repository, pr.number, self.world.viewer_login)
        return {"pullRequest": self.pull_request(pr), "actor": actor(self.world.viewer_login)}

    def _update_branch(self, given: Args) -> Node:
        pr = self._target_pull_request(given["pullRequestId"])
        refusal = self._open_refusal(pr, None)
        expected = given.get("expectedHeadOid")
        if refusal is None and expected is not None and expected != pr.head_oid:
            refusal = "expected head sha didn't match current head ref."
        if refusal is None and pr.merge_state_status != "BEHIND":
            refusal = "There are no new commits on the base branch."
        if refusal:
            raise GitHubFailure(refusal, "UNPROCESSABLE")
        self.world.update_branch(pr.repository, pr.number, self.world.viewer_login)
        return {"pullRequest": self.pull_request(pr)}

    def _method_refusal(self, pr: FakePullRequest, method: str) -> str | None:
        if method in self.world.repository(pr.repository).merge_methods:
            return None
        return f"{_METHOD_NAMES.get(method, method)} are not allowed on this repository."

    def _close(self, given: Args) -> Node:
        pr = self._target_pull_request(given["pullRequestId"])
        if pr.state == "MERGED":
            raise GitHubFailure("Pull Request is already merged", "UNPROCESSABLE")
        self.world.close(pr.repository, pr.number, self.world.viewer_login)
        return {"pullRequest": self.pull_request(pr)}

    def _reopen(self, given: Args) -> Node:
        pr = self._target_pull_request(given["pullRequestId"])
        if pr.state == "MERGED":
            raise GitHubFailure("Pull Request is already merged", "UNPROCESSABLE")
        self.world.reopen(pr.repository, pr.number, self.world.viewer_login)
        return {"pullRequest": self.pull_request(pr)}

    def _add_comment(self, given: Args) -> Node:
        pr = self._target_pull_request(given["subjectId"])
        if not given["body"].strip():
            raise GitHubFailure("Body can't be blank", "UNPROCESSABLE")
        comment = self.world.comment(
            pr.repository, pr.number, self.world.viewer_login, given["body"]
        )
        index = len(pr.comments) - 1
        return {
            "commentEdge": {"cursor": cursor(index), "node": self._comment(pr, index, comment)},
            "subject": self.pull_request(pr),
            "timelineEdge": None,
        }

    def _add_labels(self, given: Args) -> Node:
        pr = self._target_pull_request(given["labelableId"])
        for name in self._labels_of_repository(pr, given["labelIds"]):
            self.world.add_label(pr.repository, pr.number, name, self.world.viewer_login)
        self.world.touch(pr)
        return {"labelable": self.pull_request(pr)}

    def _remove_labels(self, given: Args) -> Node:
        pr = self._target_pull_request(given["labelableId"])
        for name in self._labels_of_repository(pr, given["labelIds"]):
            self.world.remove_label(pr.repository, pr.number, name, self.world.viewer_login)
        self.world.touch(pr)
        return {"labelable": self.pull_request(pr)}

    def _labels_of_repository(self, pr: FakePullRequest, label_ids: list[str]) -> list[str]:
        repository = self.world.repository(pr.repository)
        by_id = {label.id: label.name for label in repository.labels.values()}
        missing = [label_id for label_id in label_ids if label_id not in by_id]
        if missing:
            raise unknown_node(missing[0])
        return [by_id[label_id] for label_id in label_ids]

    def _create_label(self, given: Args) -> Node:
        repository = self.world.repository_by_id(given["repositoryId"])
        if repository is None:
            raise unknown_node(given["repositoryId"])
        if given["name"].lower() in repository.labels:
            raise GitHubFailure("Name has already been taken", "UNPROCESSABLE")
        color = given["color"].lower()
        if len(color) != 6 or any(c not in "0123456789abcdef" for c in color):
            raise GitHubFailure("Color is invalid", "UNPROCESSABLE")
        label = repository.ensure_label(given["name"], color, given.get("description"))
        return {"label": label_node(repository, label)}


_EVENT_TYPES = {
    "CLOSED_EVENT": "ClosedEvent",
    "REOPENED_EVENT": "ReopenedEvent",
    "LABELED_EVENT": "LabeledEvent",
    "UNLABELED_EVENT": "UnlabeledEvent",
    "COMMENT_DELETED_EVENT": "CommentDeletedEvent",
    "PULL_REQUEST_COMMIT": "PullRequestCommit",
    "HEAD_REF_FORCE_PUSHED_EVENT": "HeadRefForcePushedEvent",
    "MERGED_EVENT": "MergedEvent",
    "ISSUE_COMMENT": "IssueComment",
    "PULL_REQUEST_REVIEW": "PullRequestReview",
    "AUTO_MERGE_ENABLED_EVENT": "AutoMergeEnabledEvent",
    "AUTO_MERGE_DISABLED_EVENT": "AutoMergeDisabledEvent",
    "ADDED_TO_MERGE_QUEUE_EVENT": "AddedToMergeQueueEvent",
    "REMOVED_FROM_MERGE_QUEUE_EVENT": "RemovedFromMergeQueueEvent",
}
_METHOD_NAMES = {"MERGE": "Merge commits", "SQUASH": "Squash merges", "REBASE": "Rebase merges"}


def _commit_id(pr: FakePullRequest) -> str:
    return "C_" + pr.head_oid[:16]


def merge_refusal(pr: FakePullRequest, expected_head_oid: str | None) -> str | None:
    """GitHub's reason to refuse merging ``pr`` now, or None."""
    if pr.state == "MERGED":
        return "Pull Request is already merged"
    if pr.state == "CLOSED":
        return "Pull Request is closed"
    if pr.is_draft:
        return "Pull request is in draft state"
    if expected_head_oid is not None and expected_head_oid != pr.head_oid:
        return "Head branch was modified. Review and try the merge again."
    if pr.mergeable != "MERGEABLE":
        return "Pull Request is not mergeable"
    if pr.merge_state_status == "BLOCKED":
        return "Pull Request is not mergeable: the base branch policy prohibits the merge."
    return None


def _counts(states: Any) -> list[Node]:
    counted: dict[str, int] = {}
    for state in states:
        counted[state] = counted.get(state, 0) + 1
    return [{"state": state, "count": count} for state, count in counted.items()]
