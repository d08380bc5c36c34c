"""The fake GitHub answers like GitHub: real schema, search syntax, mutations, auth and faults."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from tests.sandbox import FakeCheck, FakeComment, FakeGitHub, GitHubWorld

TOKEN = "ghp-test-token"

SEARCH = """
query Search($q: String!, $first: Int, $after: String) {
  search(query: $q, type: ISSUE, first: $first, after: $after) {
    issueCount
    pageInfo { hasNextPage endCursor }
    edges { cursor }
    nodes { ... on PullRequest { number repository { nameWithOwner } } }
  }
}
"""

PULL_REQUEST = """
query PullRequest($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      id number title state isDraft merged closed createdAt updatedAt
      author { login __typename }
      baseRefName headRefName headRefOid
      baseRepository { nameWithOwner }
      labels(first: 10) { nodes { id name } totalCount }
      mergeable mergeStateStatus reviewDecision
      reviews(last: 10) { nodes { author { login } state submittedAt } }
      latestReviews(first: 10) { nodes { author { login } state } }
      commits(last: 1) { nodes { commit { oid statusCheckRollup { state contexts(first: 10) {
        nodes { __typename
          ... on CheckRun { name status conclusion }
          ... on StatusContext { context state } } } } } } }
      comments(last: 10) { nodes { author { login } body } totalCount }
      additions deletions changedFiles
    }
  }
}
"""

MERGE = """
mutation Merge($id: ID!, $oid: GitObjectID, $method: PullRequestMergeMethod) {
  mergePullRequest(input: {pullRequestId: $id, expectedHeadOid: $oid, mergeMethod: $method,
                           commitHeadline: "Merge", commitBody: "by rule"}) {
    pullRequest { id state merged }
  }
}
"""


@pytest.fixture
def world() -> GitHubWorld:
    return GitHubWorld()


@pytest.fixture
def github(world: GitHubWorld) -> Iterator[FakeGitHub]:
    with FakeGitHub(world, token=TOKEN) as fake:
        yield fake
    assert fake.unexpected_errors == []


def post(
    github: FakeGitHub,
    query: str,
    variables: dict[str, Any] | None = None,
    authorization: str | None = f"bearer {TOKEN}",
) -> tuple[int, dict[str, Any], Message]:
    """POST one GraphQL request; (status, JSON body, headers), errors included."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(github.url, body, {"Content-Type": "application/json"})
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response), response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error), error.headers


def data(github: FakeGitHub, query: str, **variables: Any) -> dict[str, Any]:
    """The data of a request that must succeed without errors."""
    status, body, _ = post(github, query, variables)
    assert status == 200
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


def errors(github: FakeGitHub, query: str, **variables: Any) -> list[str]:
    """The error messages of a request GitHub answers with 200 and errors."""
    status, body, _ = post(github, query, variables)
    assert status == 200
    return [error["message"] for error in body["errors"]]


def found(github: FakeGitHub, query: str) -> list[str]:
    """``owner/name#number`` of every pull request the search finds, in order."""
    nodes = data(github, SEARCH, q=query, first=100)["search"]["nodes"]
    return [f"{node['repository']['nameWithOwner']}#{node['number']}" for node in nodes]


# Search.


@pytest.fixture
def searchable(world: GitHubWorld) -> GitHubWorld:
    world.add_pull_request("acme/api", labels=["deps", "automerge"], author="dependabot[bot]")
    world.add_pull_request("acme/api", labels=["deps"], is_draft=True)
    world.add_pull_request("acme/api", labels=["needs review"], base_ref="release", state="CLOSED")
    world.add_pull_request("acme/web", labels=["automerge"], author="renovate[bot]", state="MERGED")
    world.add_pull_request("acme/web", author="alice")
    return world


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            "is:pr is:open repo:acme/api", ["acme/api#1", "acme/api#2"], id="open-in-one-repo"
        ),
        pytest.param(
            "is:pr is:open repo:acme/api repo:acme/web",
            ["acme/api#1", "acme/api#2", "acme/web#2"],
            id="repeated-repo-is-or",
        ),
        pytest.param("label:deps label:automerge", ["acme/api#1"], id="repeated-label-is-and"),
        pytest.param(
            "label:deps,automerge",
            ["acme/api#1", "acme/api#2", "acme/web#1"],
            id="comma-label-is-or",
        ),
        pytest.param(
            "repo:acme/api -label:automerge", ["acme/api#2", "acme/api#3"], id="minus-excludes"
        ),
        pytest.param('label:"needs review"', ["acme/api#3"], id="quoted-label"),
        pytest.param("LABEL:DEPS is:open", ["acme/api#1", "acme/api#2"], id="case-insensitive"),
        pytest.param("author:app/dependabot", ["acme/api#1"], id="bot-as-app"),
        pytest.param("author:dependabot[bot]", ["acme/api#1"], id="bot-as-login"),
        pytest.param("author:dependabot", [], id="bot-is-not-a-user"),
        pytest.param(
            "author:app/dependabot author:alice", ["acme/api#1", "acme/web#2"], id="authors-or"
        ),
        pytest.param("base:release", ["acme/api#3"], id="base-branch"),
        pytest.param("is:open draft:false", ["acme/api#1", "acme/web#2"], id="not-draft"),
        pytest.param("draft:true", ["acme/api#2"], id="draft"),
        pytest.param("is:merged", ["acme/web#1"], id="merged"),
        pytest.param("is:closed", ["acme/api#3", "acme/web#1"], id="closed-includes-merged"),
        pytest.param("repo:acme/web archived:false", ["acme/web#1", "acme/web#2"], id="archived"),
        pytest.param(
            "repo:acme/web frobnicate:yes", ["acme/web#1", "acme/web#2"], id="unknown-ignored"
        ),
        pytest.param("label:deps AND is:open", ["acme/api#1", "acme/api#2"], id="and-word"),
        pytest.param("is:issue", [], id="issues-are-not-pull-requests"),
        pytest.param(
            "repo:acme/web sort:created-desc", ["acme/web#2", "acme/web#1"], id="created-desc"
        ),
    ],
)
def test_search_qualifiers(
    searchable: GitHubWorld, github: FakeGitHub, query: str, expected: list[str]
) -> None:
    """Search follows GitHub's qualifier semantics; results come created ascending."""
    assert found(github, query) == expected


def test_search_sorts_by_update(world: GitHubWorld, github: FakeGitHub) -> None:
    """sort:updated-asc orders by the last change."""
    first = world.add_pull_request("acme/api")
    world.add_pull_request("acme/api")
    world.push_commit("acme/api", first.number)
    assert found(github, "repo:acme/api sort:updated-asc") == ["acme/api#2", "acme/api#1"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param(
            "is:pr " + "x" * 251, "The search is longer than 256 characters.", id="too-long"
        ),
        pytest.param(
            "a OR b OR c OR d OR e OR f AND g",
            "The search contains more than 5 AND / OR / NOT operators.",
            id="too-many-operators",
        ),
    ],
)
def test_search_limits(github: FakeGitHub, query: str, message: str) -> None:
    """GitHub refuses searches beyond 256 characters or 5 operators."""
    assert errors(github, SEARCH, q=query, first=10) == [message]


def test_search_at_the_limits_is_accepted(github: FakeGitHub) -> None:
    """256 characters and 5 operators are still fine."""
    assert found(github, "is:pr " + "x" * 250) == []
    assert found(github, "a OR b OR c OR d OR e AND f") == []


def test_search_paginates_with_cursors(world: GitHubWorld, github: FakeGitHub) -> None:
    """first/after walk the results; pageInfo says when to stop."""
    for _ in range(5):
        world.add_pull_request("acme/api")
    numbers: list[int] = []
    after = None
    pages = 0
    while True:
        search = data(github, SEARCH, q="repo:acme/api", first=2, after=after)["search"]
        assert search["issueCount"] == 5
        numbers += [node["number"] for node in search["nodes"]]
        pages += 1
        if not search["pageInfo"]["hasNextPage"]:
            break
        after = search["pageInfo"]["endCursor"]
        assert search["edges"][-1]["cursor"] == after
    assert (numbers, pages) == ([1, 2, 3, 4, 5], 3)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param(
            {"first": None},
            "You must provide a `first` or `last` value to properly paginate the `search` "
            "connection.",
            id="first-missing",
        ),
        pytest.param(
            {"first": 101},
            "Requesting 101 records on the `search` connection exceeds the `first` limit of 100 "
            "records.",
            id="first-too-large",
        ),
        pytest.param(
            {"first": 0}, "`first` on the `search` connection cannot be less than one.", id="zero"
        ),
        pytest.param(
            {"first": 10, "after": "bm90LWEtY3Vyc29y"},
            "`bm90LWEtY3Vyc29y` does not appear to be a valid cursor.",
            id="bad-cursor",
        ),
    ],
)
def test_connections_need_bounded_pages(
    github: FakeGitHub, variables: dict[str, Any], message: str
) -> None:
    """Connections require first or last in 1..100 and real cursors, as on GitHub."""
    assert errors(github, SEARCH, q="is:pr", **variables) == [message]
    assert github.invalid_documents == []


def test_nested_connections_need_bounds_too(github: FakeGitHub) -> None:
    """Even connections the fake does not model require first or last."""
    query = "{ viewer { repositories { totalCount } } }"
    assert errors(github, query) == [
        "You must provide a `first` or `last` value to properly paginate the `repositories` "
        "connection."
    ]


# Documents.


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param("{ viewer { lgin } }", {}, id="unknown-field"),
        pytest.param("{ viewer { login }", {}, id="syntax-error"),
        pytest.param("query($n: Int!) { viewer { login } }", {"n": 1}, id="unused-variable"),
        pytest.param(SEARCH, {"q": 42, "first": 1}, id="variable-of-wrong-type"),
        pytest.param(MERGE, {"oid": "a" * 40}, id="missing-required-variable"),
        pytest.param("{ search(query: 1, type: PR, first: 1) { issueCount } }", {}, id="bad-enum"),
    ],
)
def test_invalid_documents_are_recorded(
    github: FakeGitHub, query: str, variables: dict[str, Any]
) -> None:
    """A document GitHub's schema rejects is answered 200 with errors, and recorded."""
    status, body, _ = post(github, query, variables)
    assert status == 200
    assert body["errors"]
    assert "data" not in body
    assert github.invalid_documents == [query]


def test_valid_documents_are_not_recorded_as_invalid(github: FakeGitHub) -> None:
    """The documents of this suite all follow GitHub's schema."""
    data(github, "{ viewer { login } rateLimit { limit cost remaining resetAt used nodeCount } }")
    assert github.invalid_documents == []
    assert github.requests[-1].status == 200


def test_unmodelled_fields_follow_the_schema(world: GitHubWorld, github: FakeGitHub) -> None:
    """Fields the fake does not model are null when nullable, plain values otherwise."""
    world.add_pull_request("acme/api")
    query = """{ repository(owner: "acme", name: "api") { pullRequest(number: 1) {
        mergeCommit { oid } viewerCanUpdate activeLockReason
        assignees(first: 5) { totalCount nodes { login } } } } }"""
    pull_request = data(github, query)["repository"]["pullRequest"]
    assert pull_request == {
        "mergeCommit": None,
        "viewerCanUpdate": False,
        "activeLockReason": None,
        "assignees": {"totalCount": 0, "nodes": []},
    }


# Reads.


def test_pull_request_fields(world: GitHubWorld, github: FakeGitHub) -> None:
    """A pull request is served with its facts, its head commit's rollup and its discussion."""
    pr = world.add_pull_request(
        "acme/api",
        author="dependabot[bot]",
        labels=["deps"],
        checks=[
            FakeCheck("ci"),
            FakeCheck("lint", conclusion=None, status="IN_PROGRESS"),
            FakeCheck("legacy", conclusion="FAILURE", kind="status"),
        ],
        rollup_state="PENDING",
        reviews=[("alice", "CHANGES_REQUESTED"), ("alice", "APPROVED"), ("bob", "COMMENTED")],
        review_decision="APPROVED",
        comments=[FakeComment("carol", "LGTM")],
    )
    got = data(github, PULL_REQUEST, owner="acme", name="api", number=pr.number)
    served = got["repository"]["pullRequest"]
    assert served["author"] == {"login": "dependabot", "__typename": "Bot"}
    assert served["headRefOid"] == pr.head_oid
    assert served["labels"]["nodes"] == [{"id": served["labels"]["nodes"][0]["id"], "name": "deps"}]
    commit = served["commits"]["nodes"][0]["commit"]
    assert commit["oid"] == pr.head_oid
    assert commit["statusCheckRollup"]["state"] == "PENDING"
    assert commit["statusCheckRollup"]["contexts"]["nodes"] == [
        {"__typename": "CheckRun", "name": "ci", "status": "COMPLETED", "conclusion": "SUCCESS"},
        {"__typename": "CheckRun", "name": "lint", "status": "IN_PROGRESS", "conclusion": None},
        {"__typename": "StatusContext", "context": "legacy", "state": "FAILURE"},
    ]
    assert [r["state"] for r in served["reviews"]["nodes"]] == [
        "CHANGES_REQUESTED",
        "APPROVED",
        "COMMENTED",
    ]
    assert served["latestReviews"]["nodes"] == [
        {"author": {"login": "alice"}, "state": "APPROVED"},
        {"author": {"login": "bob"}, "state": "COMMENTED"},
    ]
    assert served["comments"] == {
        "nodes": [{"author": {"login": "carol"}, "body": "LGTM"}],
        "totalCount": 1,
    }
    assert served["createdAt"].endswith("Z")


def test_rollup_can_be_absent(world: GitHubWorld, github: FakeGitHub) -> None:
    """A head commit without checks has a null statusCheckRollup."""
    pr = world.add_pull_request("acme/api", rollup_state=None, checks=[])
    got = data(github, PULL_REQUEST, owner="acme", name="api", number=pr.number)
    commit = got["repository"]["pullRequest"]["commits"]["nodes"][0]["commit"]
    assert commit["statusCheckRollup"] is None


def test_unknown_repository_is_not_found(github: FakeGitHub) -> None:
    """GitHub answers NOT_FOUND and a null repository."""
    status, body, _ = post(github, '{ repository(owner: "acme", name: "nope") { id } }')
    assert status == 200
    assert body["data"] == {"repository": None}
    assert body["errors"] == [
        {
            "type": "NOT_FOUND",
            "path": ["repository"],
            "locations": [{"line": 1, "column": 3}],
            "message": "Could not resolve to a Repository with the name 'acme/nope'.",
        }
    ]


def test_repository_labels(world: GitHubWorld, github: FakeGitHub) -> None:
    """Labels are found by name (case-insensitive) and listed with a query filter."""
    world.add_repository("acme/api", labels=["needs-human", "deps", "ai-escalated"])
    query = """query { repository(owner: "acme", name: "api") { id nameWithOwner
        label(name: "DEPS") { id name } missing: label(name: "nope") { id }
        labels(first: 10, query: "ai") { nodes { id name } } } }"""
    repository = data(github, query)["repository"]
    assert repository["nameWithOwner"] == "acme/api"
    assert repository["label"]["name"] == "deps"
    assert repository["missing"] is None
    assert [label["name"] for label in repository["labels"]["nodes"]] == ["ai-escalated"]


def test_node_and_nodes(world: GitHubWorld, github: FakeGitHub) -> None:
    """Pull requests are found by node id; an unknown id is null with a NOT_FOUND error."""
    pr = world.add_pull_request("acme/api")
    query = """query($id: ID!, $ids: [ID!]!) {
        node(id: $id) { __typename ... on PullRequest { number } }
        nodes(ids: $ids) { ... on PullRequest { number } } }"""
    status, body, _ = post(github, query, {"id": pr.id, "ids": [pr.id, "PR_nope"]})
    assert status == 200
    assert body["data"] == {
        "node": {"__typename": "PullRequest", "number": 1},
        "nodes": [{"number": 1}, None],
    }
    assert [(e["type"], e["path"]) for e in body["errors"]] == [("NOT_FOUND", ["nodes", 1])]


# Mutations.


def test_merge(world: GitHubWorld, github: FakeGitHub) -> None:
    """A mergeable open pull request merges with the asked method."""
    pr = world.add_pull_request("acme/api")
    got = data(github, MERGE, id=pr.id, oid=pr.head_oid, method="SQUASH")
    assert got["mergePullRequest"]["pullRequest"] == {
        "id": pr.id,
        "state": "MERGED",
        "merged": True,
    }
    assert (pr.state, pr.merge_method) == ("MERGED", "SQUASH")
    assert github.mutations == ["mergePullRequest"]
    assert github.requests[-1].is_mutation
    assert github.requests[-1].operation_name == "Merge"
    assert github.requests[-1].mutation_fields == ("mergePullRequest",)


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        pytest.param({"state": "MERGED"}, "Pull Request is already merged", id="merged"),
        pytest.param({"state": "CLOSED"}, "Pull Request is closed", id="closed"),
        pytest.param({"is_draft": True}, "Pull request is in draft state", id="draft"),
        pytest.param({"mergeable": "CONFLICTING"}, "Pull Request is not mergeable", id="conflict"),
        pytest.param({"mergeable": "UNKNOWN"}, "Pull Request is not mergeable", id="unknown"),
    ],
)
def test_merge_refusals(
    world: GitHubWorld, github: FakeGitHub, facts: dict[str, Any], message: str
) -> None:
    """GitHub refuses to merge what is not open, ready and mergeable."""
    pr = world.add_pull_request("acme/api", **facts)
    state = pr.state
    assert errors(github, MERGE, id=pr.id, oid=pr.head_oid) == [message]
    assert pr.state == state
    assert github.mutations == []


def test_merge_refused_when_the_head_moved(world: GitHubWorld, github: FakeGitHub) -> None:
    """expectedHeadOid protects against a push between decision and merge."""
    pr = world.add_pull_request("acme/api")
    decided_on = pr.head_oid
    assert world.push_commit("acme/api", pr.number) == pr.head_oid != decided_on
    assert errors(github, MERGE, id=pr.id, oid=decided_on) == [
        "Head branch was modified. Review and try the merge again."
    ]
    assert pr.state == "OPEN"


def test_merge_without_expected_head_does_not_check_it(
    world: GitHubWorld, github: FakeGitHub
) -> None:
    """Without expectedHeadOid GitHub does not check the head."""
    pr = world.add_pull_request("acme/api")
    world.push_commit("acme/api", pr.number)
    data(github, MERGE, id=pr.id)
    assert (pr.state, pr.merge_method) == ("MERGED", "MERGE")


def test_close(world: GitHubWorld, github: FakeGitHub) -> None:
    """closePullRequest closes."""
    pr = world.add_pull_request("acme/api")
    query = """mutation($id: ID!) { closePullRequest(input: {pullRequestId: $id}) {
        pullRequest { state closed } } }"""
    got = data(github, query, id=pr.id)
    assert got["closePullRequest"]["pullRequest"] == {"state": "CLOSED", "closed": True}
    assert pr.state == "CLOSED"
    assert github.mutations == ["closePullRequest"]


def test_add_comment(world: GitHubWorld, github: FakeGitHub) -> None:
    """addComment appends a comment by the viewer."""
    pr = world.add_pull_request("acme/api")
    query = """mutation($id: ID!, $body: String!) {
        addComment(input: {subjectId: $id, body: $body}) {
        commentEdge { node { id } } subject { id } } }"""
    got = data(github, query, id=pr.id, body="Escalated: needs a human.")
    assert got["addComment"]["subject"] == {"id": pr.id}
    assert got["addComment"]["commentEdge"]["node"]["id"]
    assert [(c.author, c.body) for c in pr.comments] == [
        ("ai-operator-bot", "Escalated: needs a human.")
    ]
    assert github.mutations == ["addComment"]


LABEL_ID = """query($name: String!) {
  repository(owner: "acme", name: "api") { id label(name: $name) { id } } }"""
ADD_LABELS = """mutation($id: ID!, $labels: [ID!]!) {
  addLabelsToLabelable(input: {labelableId: $id, labelIds: $labels}) {
    labelable { ... on PullRequest { labels(first: 10) { nodes { name } } } } } }"""
REMOVE_LABELS = """mutation($id: ID!, $labels: [ID!]!) {
  removeLabelsFromLabelable(input: {labelableId: $id, labelIds: $labels}) { clientMutationId } }"""
CREATE_LABEL = """mutation($repo: ID!, $name: String!) {
  createLabel(input: {repositoryId: $repo, name: $name, color: "d93f0b", description: "AI"}) {
    label { id name } } }"""


def test_add_and_remove_labels(world: GitHubWorld, github: FakeGitHub) -> None:
    """Labels are added and removed by the ids of the repository's labels."""
    world.add_repository("acme/api", labels=["needs-human"])
    pr = world.add_pull_request("acme/api", labels=["deps"])
    label_id = data(github, LABEL_ID, name="needs-human")["repository"]["label"]["id"]
    got = data(github, ADD_LABELS, id=pr.id, labels=[label_id])
    names = [n["name"] for n in got["addLabelsToLabelable"]["labelable"]["labels"]["nodes"]]
    assert names == pr.labels == ["deps", "needs-human"]
    data(github, REMOVE_LABELS, id=pr.id, labels=[label_id])
    assert pr.labels == ["deps"]
    assert github.mutations == ["addLabelsToLabelable", "removeLabelsFromLabelable"]


def test_labels_of_another_repository_are_refused(world: GitHubWorld, github: FakeGitHub) -> None:
    """A label id must belong to the pull request's repository."""
    world.add_repository("acme/api", labels=["needs-human"])
    pr = world.add_pull_request("acme/web")
    label_id = data(github, LABEL_ID, name="needs-human")["repository"]["label"]["id"]
    assert errors(github, ADD_LABELS, id=pr.id, labels=[label_id]) == [
        f"Could not resolve to a node with the global id of '{label_id}'"
    ]
    assert pr.labels == []
    assert github.mutations == []


def test_create_label(world: GitHubWorld, github: FakeGitHub) -> None:
    """createLabel adds a label to the repository, once."""
    world.add_repository("acme/api")
    repository_id = data(github, LABEL_ID, name="x")["repository"]["id"]
    created = data(github, CREATE_LABEL, repo=repository_id, name="ai-escalated")["createLabel"]
    assert created["label"]["name"] == "ai-escalated"
    assert world.labels("acme/api") == {"ai-escalated"}
    found_id = data(github, LABEL_ID, name="ai-escalated")["repository"]["label"]["id"]
    assert found_id == created["label"]["id"]
    assert errors(github, CREATE_LABEL, repo=repository_id, name="AI-Escalated") == [
        "Name has already been taken"
    ]
    assert github.mutations == ["createLabel"]


# Authentication and rate limit headers.


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        pytest.param(f"bearer {TOKEN}", 200, id="bearer"),
        pytest.param(f"Bearer {TOKEN}", 200, id="bearer-capitalised"),
        pytest.param(f"token {TOKEN}", 200, id="token"),
        pytest.param(None, 401, id="missing"),
        pytest.param("bearer ghp-wrong", 401, id="wrong-token"),
        pytest.param(f"Basic {TOKEN}", 401, id="wrong-scheme"),
    ],
)
def test_authentication(github: FakeGitHub, authorization: str | None, status: int) -> None:
    """Only the configured token is accepted, as bearer or token."""
    answered, body, _ = post(github, "{ viewer { login } }", authorization=authorization)
    assert answered == status
    if status == 401:
        assert body["message"] == "Bad credentials"
    else:
        assert body == {"data": {"viewer": {"login": "ai-operator-bot"}}}
    assert all(TOKEN not in repr(request) for request in github.requests)


def test_answers_carry_rate_limit_headers(github: FakeGitHub) -> None:
    """Every answer says the GraphQL budget, spent one point a query."""
    _, _, first = post(github, "{ viewer { login } }")
    _, body, second = post(github, "{ rateLimit { limit remaining used } }")
    assert first["x-ratelimit-resource"] == "graphql"
    assert (first["x-ratelimit-limit"], first["x-ratelimit-remaining"]) == ("5000", "4999")
    assert (second["x-ratelimit-remaining"], second["x-ratelimit-used"]) == ("4998", "2")
    assert int(first["x-ratelimit-reset"]) > time.time()
    assert body["data"]["rateLimit"] == {"limit": 5000, "remaining": 4998, "used": 2}


# Faults.


def test_fail_next(github: FakeGitHub) -> None:
    """Queued failures answer 5xx, then GitHub recovers."""
    github.fail_next(2, status=503)
    statuses = [post(github, "{ viewer { login } }")[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [r.fault for r in github.requests] == ["fail", "fail", None]


def test_secondary_rate_limit(github: FakeGitHub) -> None:
    """A secondary limit is a 403 with retry-after and GitHub's message."""
    github.rate_limit_next(retry_after=7)
    status, body, headers = post(github, "{ viewer { login } }")
    assert status == 403
    assert headers["retry-after"] == "7"
    assert body["message"].startswith("You have exceeded a secondary rate limit.")


def test_primary_rate_limit(github: FakeGitHub) -> None:
    """A primary limit has no points left and says when the window resets."""
    github.rate_limit_next(retry_after=None, reset_in=120)
    status, body, headers = post(github, "{ viewer { login } }")
    assert status == 403
    assert "retry-after" not in headers
    assert headers["x-ratelimit-remaining"] == "0"
    assert 100 < int(headers["x-ratelimit-reset"]) - time.time() <= 121
    assert body["message"].startswith("API rate limit exceeded")


def test_drop_next(github: FakeGitHub) -> None:
    """A dropped request gets no answer at all."""
    github.drop_next()
    with pytest.raises(http.client.RemoteDisconnected):
        post(github, "{ viewer { login } }")
    assert post(github, "{ viewer { login } }")[0] == 200
    assert [(r.status, r.fault) for r in github.requests] == [(0, "drop"), (200, None)]


def test_faults_apply_in_order(github: FakeGitHub) -> None:
    """Queued faults of every kind are served to the next requests in order."""
    github.rate_limit_next()
    github.fail_next()
    assert [post(github, "{ viewer { login } }")[0] for _ in range(3)] == [403, 502, 200]


def test_reset_counters(world: GitHubWorld, github: FakeGitHub) -> None:
    """reset_counters forgets what was recorded."""
    pr = world.add_pull_request("acme/api")
    data(github, MERGE, id=pr.id)
    post(github, "{ viewer { lgin } }")
    github.reset_counters()
    assert (github.requests, github.mutations, github.invalid_documents) == ([], [], [])
    assert post(github, "{ viewer { login } }")[2]["x-ratelimit-used"] == "1"


def test_concurrent_reads(world: GitHubWorld, github: FakeGitHub) -> None:
    """Concurrent requests are all answered."""
    for _ in range(3):
        world.add_pull_request("acme/api")
    statuses: list[int] = []

    def read() -> None:
        for _ in range(5):
            statuses.append(post(github, SEARCH, {"q": "is:pr", "first": 10})[0])

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 30
    assert len(github.requests) == 30
