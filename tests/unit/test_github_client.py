"""The GitHub client against a fake GitHub that executes GitHub's real GraphQL schema."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from ai_operator.jobs.clients.github import (
    GitHubAuthError,
    GitHubClient,
    GitHubQueryError,
    GitHubUnavailable,
    LabelMissing,
    MergeRejected,
    RateLimited,
)
from ai_operator.jobs.clients.github.queries import PAGE_SIZE
from ai_operator.jobs.policy.markers import make_marker, render_marker
from ai_operator.jobs.policy.shadow import HistoryKind
from ai_operator.jobs.policy.snapshot import CiStatus, Mergeable, PullRequestState, Review
from ai_operator.jobs.rules.model import LabelSelector, MergeMethod, Selector
from tests.conftest import GITHUB_TOKEN
from tests.sandbox import FakeCheck, FakeComment, FakeGitHub, GitHubWorld

TOKEN = GITHUB_TOKEN


class RecordedSleep:
    """An injected ``sleep`` that records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(autouse=True)
def _documents_follow_githubs_schema(github: FakeGitHub) -> Iterator[None]:
    """Every document the client sent is valid against GitHub's schema."""
    yield
    assert github.invalid_documents == []
    assert github.unexpected_errors == []


@pytest.fixture
def sleep() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def client(github: FakeGitHub, sleep: RecordedSleep) -> GitHubClient:
    return make_client(github, sleep)


def make_client(github: FakeGitHub, sleep: RecordedSleep, **overrides: Any) -> GitHubClient:
    options: dict[str, Any] = {"sleep": sleep, "backoff_seconds": 0.5, **overrides}
    token = SecretStr(options.pop("token", TOKEN))
    return GitHubClient(github.url, token, **options)


def selector(**fields: Any) -> Selector:
    labels = LabelSelector(include=fields.pop("include", []), exclude=fields.pop("exclude", []))
    narrowed = labels.include or any(
        fields.get(k) for k in ("baseBranch", "author", "titlePattern")
    )
    return Selector(labels=labels, matchAll=not narrowed, **fields)


def found(snapshots: list[Any]) -> list[str]:
    return [pr.display for pr in snapshots]


# Reads


def test_search_combines_labels_across_repositories(
    world: GitHubWorld, client: GitHubClient
) -> None:
    """Included labels are all required, excluded ones rule a PR out, repositories add up."""
    world.add_pull_request("acme/app", labels=["auto-merge", "deps"])
    world.add_pull_request("acme/app", labels=["auto-merge"])
    world.add_pull_request("acme/app", labels=["auto-merge", "deps", "hold"])
    world.add_pull_request("acme/api", labels=["deps", "auto-merge"])
    world.add_pull_request("acme/other", labels=["auto-merge", "deps"])
    rule_selector = selector(include=["auto-merge", "deps"], exclude=["hold"])

    result = client.search_pull_requests(["acme/app", "acme/api"], rule_selector, limit=100)

    assert found(result) == ["acme/api#1", "acme/app#1"]


def test_search_finds_bot_authors(world: GitHubWorld, client: GitHubClient) -> None:
    """A bot selected as name[bot] is found and reported with GitHub's UI spelling."""
    world.add_pull_request("acme/app", author="dependabot[bot]")
    world.add_pull_request("acme/app", author="octocat")

    result = client.search_pull_requests(["acme/app"], selector(author="dependabot[bot]"), 10)

    assert [(pr.display, pr.author) for pr in result] == [("acme/app#1", "dependabot[bot]")]


def test_search_paginates_up_to_the_limit(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """Pages (of PAGE_SIZE) are followed until the limit; the oldest pull requests come first."""
    for _ in range(PAGE_SIZE + 20):
        world.add_pull_request("acme/app")

    result = client.search_pull_requests(["acme/app"], selector(), limit=PAGE_SIZE + 10)

    assert [pr.number for pr in result] == list(range(1, PAGE_SIZE + 11))
    assert len(github.requests) == 2


def test_search_spreads_many_repositories_over_queries(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """More repositories than one query may OR are searched in several queries."""
    repositories = [f"acme/r{i}" for i in range(8)]
    for repository in repositories:
        world.add_pull_request(repository)

    result = client.search_pull_requests(repositories, selector(), limit=100)

    assert found(result) == [f"{repository}#1" for repository in repositories]
    assert len(github.requests) == 2


def test_search_without_repositories_asks_nothing(github: FakeGitHub, client: GitHubClient) -> None:
    """No repository, no request: a search never spans all of GitHub."""
    assert client.search_pull_requests([], selector(), limit=10) == []
    assert github.requests == []


def test_pull_request_reads_every_fact(world: GitHubWorld, client: GitHubClient) -> None:
    """One request returns the snapshot with checks, reviews, labels and comment markers."""
    marker = make_marker("default/deps", "escalate", "abc")
    pr = world.add_pull_request(
        "acme/app",
        title="Bump lodash",
        body="Bumps lodash.",
        labels=["deps"],
        checks=[
            FakeCheck("build", conclusion="SUCCESS", required=True),
            FakeCheck("lint", conclusion=None, status="IN_PROGRESS"),
            FakeCheck("ci/legacy", conclusion="FAILURE", kind="status"),
        ],
        rollup_state="PENDING",
        reviews=[("alice", "APPROVED")],
        review_decision="APPROVED",
        comments=[FakeComment("ai-operator-bot", f"Escalated.\n{render_marker(marker)}")],
        is_draft=True,
        additions=3,
        deletions=2,
        changed_files=1,
    )

    snapshot = client.pull_request("acme/app", pr.number)

    assert snapshot.id == pr.id
    assert (snapshot.title, snapshot.body, snapshot.labels) == ("Bump lodash", pr.body, ("deps",))
    assert (snapshot.base_branch, snapshot.head_branch) == (pr.base_ref, pr.head_ref)
    assert snapshot.head_oid == pr.head_oid
    assert snapshot.is_draft
    assert snapshot.ci_status is CiStatus.PENDING
    assert [(c.name, c.status, c.conclusion, c.required) for c in snapshot.checks] == [
        ("build", "COMPLETED", "SUCCESS", True),
        ("lint", "IN_PROGRESS", None, False),
        ("ci/legacy", "COMPLETED", "FAILURE", False),
    ]
    assert snapshot.merge_methods == set(MergeMethod)
    assert snapshot.reviews == (Review(author="alice", state="APPROVED"),)
    assert snapshot.review_decision == "APPROVED"
    assert snapshot.mergeable is Mergeable.MERGEABLE
    assert (snapshot.additions, snapshot.deletions, snapshot.changed_files) == (3, 2, 1)
    assert snapshot.comment_markers == {marker}


MANY = 130  # more than one page of every nested connection (at most 100 a page)


@pytest.mark.parametrize("read", ["search", "fresh"])
def test_every_page_of_a_pull_requests_facts_is_read(
    world: GitHubWorld, client: GitHubClient, read: str
) -> None:
    """Labels, checks, reviews and the marker of an old comment beyond the first pages all count."""
    marker = make_marker("default/deps", "escalate", "abc")
    comments = [FakeComment("ai-operator-bot", f"Escalated.\n{render_marker(marker)}")]
    comments += [FakeComment("alice", f"ping {i}") for i in range(MANY)]
    pr = world.add_pull_request(
        "acme/app",
        labels=[f"label-{i:03}" for i in range(MANY)] + ["deps"],
        checks=[FakeCheck(f"check-{i:03}") for i in range(MANY)]
        + [FakeCheck("late", conclusion="FAILURE")],
        reviews=[(f"reviewer-{i:03}", "APPROVED") for i in range(MANY)]
        + [("zed", "CHANGES_REQUESTED")],
        comments=comments,
    )

    if read == "search":
        [snapshot] = client.search_pull_requests(["acme/app"], selector(include=["deps"]), 10)
    else:
        snapshot = client.pull_request("acme/app", pr.number)

    assert len(snapshot.labels) == MANY + 1 and "deps" in snapshot.labels
    assert len(snapshot.checks) == MANY + 1 and snapshot.checks[-1].conclusion == "FAILURE"
    assert len(snapshot.reviews) == MANY + 1 and snapshot.changes_requested
    assert snapshot.comment_markers == {marker}


def test_who_reopened_or_unlabelled_after_this_token_is_read(
    world: GitHubWorld, client: GitHubClient
) -> None:
    """Timeline events say who undid what this token did: a reopen, a removed label."""
    pr = world.add_pull_request("acme/app", labels=["deps"])
    world.add_label("acme/app", pr.number, "needs-human-approval", actor=world.viewer_login)
    world.add_label("acme/app", pr.number, "ci-failed", actor=world.viewer_login)
    world.remove_label("acme/app", pr.number, "needs-human-approval", actor="alice")
    world.remove_label("acme/app", pr.number, "ci-failed", actor=world.viewer_login)
    world.close("acme/app", pr.number, actor=world.viewer_login)
    world.reopen("acme/app", pr.number, actor="alice")

    snapshot = client.pull_request("acme/app", pr.number)

    assert snapshot.reopened_by == "alice"
    assert snapshot.labels_removed_by_people == {"needs-human-approval"}


def test_a_reopen_after_a_persons_close_is_nobodys_undoing(
    world: GitHubWorld, client: GitHubClient
) -> None:
    """Only a reopen after this token's own close counts."""
    pr = world.add_pull_request("acme/app")
    world.close("acme/app", pr.number, actor="alice")
    world.reopen("acme/app", pr.number, actor="bob")
    assert client.pull_request("acme/app", pr.number).reopened_by is None


def test_the_repositorys_merge_methods_are_read(world: GitHubWorld, client: GitHubClient) -> None:
    """A repository that allows only merge commits says so."""
    pr = world.add_pull_request("acme/app")
    world.repository("acme/app").merge_methods = {"MERGE"}
    assert client.pull_request("acme/app", pr.number).merge_methods == {MergeMethod.MERGE}


def test_the_viewer_login_checks_the_token(github: FakeGitHub, client: GitHubClient) -> None:
    """The token's own login; a refused token is an auth error."""
    assert client.viewer_login() == github.world.viewer_login
    with pytest.raises(GitHubAuthError):
        make_client(github, RecordedSleep(), token="ghp-wrong-token-000000").viewer_login()


def test_pull_request_sees_a_new_head(world: GitHubWorld, client: GitHubClient) -> None:
    """A fresh read reports the commit pushed since the search."""
    pr = world.add_pull_request("acme/app")
    before = client.pull_request("acme/app", pr.number).head_oid
    pushed = world.push_commit("acme/app", pr.number)

    assert client.pull_request("acme/app", pr.number).head_oid == pushed != before


@pytest.mark.parametrize(
    ("rollup_state", "ci_status"),
    [
        pytest.param("SUCCESS", CiStatus.SUCCESS, id="success"),
        pytest.param("FAILURE", CiStatus.FAILURE, id="failure"),
        pytest.param("ERROR", CiStatus.ERROR, id="error"),
        pytest.param("PENDING", CiStatus.PENDING, id="pending"),
        pytest.param("EXPECTED", CiStatus.PENDING, id="expected-is-pending"),
        pytest.param(None, CiStatus.UNKNOWN, id="no-checks-unknown"),
    ],
)
def test_ci_status_follows_the_rollup(
    world: GitHubWorld, client: GitHubClient, rollup_state: str | None, ci_status: CiStatus
) -> None:
    """The head commit's rollup state becomes the snapshot's CI status."""
    checks = [] if rollup_state is None else [FakeCheck("ci")]
    pr = world.add_pull_request("acme/app", rollup_state=rollup_state, checks=checks)

    assert client.pull_request("acme/app", pr.number).ci_status is ci_status


def test_unknown_pull_request_is_a_query_error(world: GitHubWorld, client: GitHubClient) -> None:
    """Reading a pull request that does not exist raises GitHubQueryError."""
    world.add_repository("acme/app")

    with pytest.raises(GitHubQueryError):
        client.pull_request("acme/app", 404)


# Changes


def test_merge_with_the_expected_head(world: GitHubWorld, client: GitHubClient) -> None:
    """A merge names the head it was decided for and the rule's method."""
    pr = world.add_pull_request("acme/app")

    client.merge_pull_request(pr.id, pr.head_oid, MergeMethod.SQUASH, "Bump lodash (#1)")

    assert (pr.state, pr.merge_method) == ("MERGED", "SQUASH")


def test_merge_refused_when_the_head_moved(world: GitHubWorld, client: GitHubClient) -> None:
    """A push after the decision makes GitHub refuse the merge: MergeRejected."""
    pr = world.add_pull_request("acme/app")
    decided_for = pr.head_oid
    world.push_commit("acme/app", pr.number)

    with pytest.raises(MergeRejected):
        client.merge_pull_request(pr.id, decided_for, MergeMethod.MERGE)
    assert pr.state == "OPEN"


def test_close(world: GitHubWorld, client: GitHubClient) -> None:
    """Closing leaves the pull request closed, not merged."""
    pr = world.add_pull_request("acme/app")

    client.close_pull_request(pr.id)

    assert pr.state == "CLOSED"


def test_comment(world: GitHubWorld, client: GitHubClient) -> None:
    """A comment is posted once, with its body as given."""
    pr = world.add_pull_request("acme/app")

    client.add_comment(pr.id, "Needs a human.")

    assert [comment.body for comment in pr.comments] == ["Needs a human."]


def test_labels_created_when_missing_then_added(world: GitHubWorld, client: GitHubClient) -> None:
    """Missing labels are created when allowed; existing ones are reused; then added."""
    world.add_repository("acme/app", labels=["needs-human-approval"])
    pr = world.add_pull_request("acme/app")

    ids = client.label_ids(
        "acme/app", ["needs-human-approval", "ai-escalated"], create_missing=True
    )
    client.add_labels(pr.id, ids)

    assert world.labels("acme/app") == {"needs-human-approval", "ai-escalated"}
    assert sorted(pr.labels) == ["ai-escalated", "needs-human-approval"]


def test_missing_labels_not_created_when_forbidden(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """Without permission to create labels, missing ones raise LabelMissing and change nothing."""
    world.add_repository("acme/app", labels=["needs-human-approval"])

    with pytest.raises(LabelMissing) as raised:
        client.label_ids("acme/app", ["needs-human-approval", "ai-escalated"], create_missing=False)

    assert raised.value.names == ["ai-escalated"]
    assert github.mutations == []


def test_mutations_are_paced(world: GitHubWorld, github: FakeGitHub, sleep: RecordedSleep) -> None:
    """Two mutations in a row are at least the mutation interval apart."""
    paced = make_client(github, sleep, mutation_interval_seconds=2.0, clock=lambda: 1000.0)
    pr = world.add_pull_request("acme/app")

    paced.add_comment(pr.id, "one")
    paced.close_pull_request(pr.id)

    assert sleep.waits == [2.0]
    assert paced.stats.mutations == 2


# Failures


def test_server_errors_retried_with_backoff(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient, sleep: RecordedSleep
) -> None:
    """502s are retried with growing waits, then the answer counts."""
    pr = world.add_pull_request("acme/app")
    github.fail_next(2, status=502)

    assert client.pull_request("acme/app", pr.number).id == pr.id
    assert client.stats.retries == 2
    assert len(sleep.waits) == 2
    assert 0.5 <= sleep.waits[0] <= 1.0 <= sleep.waits[1] <= 1.5


def test_server_errors_past_the_retries_unavailable(
    github: FakeGitHub, sleep: RecordedSleep
) -> None:
    """When 5xx outlast the retries, GitHubUnavailable says so."""
    github.fail_next(3, status=503)
    client = make_client(github, sleep, max_retries=2)

    with pytest.raises(GitHubUnavailable):
        client.pull_request("acme/app", 1)
    assert len(sleep.waits) == 2


@pytest.mark.parametrize(
    ("fault", "expected_wait"),
    [
        pytest.param({"retry_after": 7}, 7.0, id="secondary-limit-retry-after"),
        pytest.param({"retry_after": 7, "status": 429}, 7.0, id="429-retry-after"),
        pytest.param({"retry_after": None, "reset_in": 30}, 31.0, id="primary-limit-until-reset"),
        pytest.param(
            {"retry_after": None, "reset_in": 30, "status": 200}, 31.0, id="graphql-rate-limited"
        ),
        pytest.param({"retry_after": None}, 60.0, id="secondary-limit-without-retry-after"),
    ],
)
def test_rate_limit_waited_out_then_retried(
    world: GitHubWorld,
    github: FakeGitHub,
    client: GitHubClient,
    sleep: RecordedSleep,
    fault: dict[str, Any],
    expected_wait: float,
) -> None:
    """A rate limit is waited out (retry-after, else until x-ratelimit-reset), then retried."""
    pr = world.add_pull_request("acme/app")
    github.rate_limit_next(1, **fault)

    assert client.pull_request("acme/app", pr.number).id == pr.id
    (wait,) = sleep.waits
    assert wait == pytest.approx(expected_wait, abs=2)


def test_rate_limit_too_long_raises(github: FakeGitHub, sleep: RecordedSleep) -> None:
    """A wait longer than allowed is not slept: RateLimited carries it to the caller."""
    github.rate_limit_next(1, retry_after=600)
    client = make_client(github, sleep, max_wait_seconds=60)

    with pytest.raises(RateLimited) as raised:
        client.pull_request("acme/app", 1)
    assert raised.value.retry_after == 600
    assert sleep.waits == []


def test_dropped_connection_retried_for_reads(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """A read whose connection dropped is simply asked again."""
    pr = world.add_pull_request("acme/app")
    github.drop_next(1)

    assert client.pull_request("acme/app", pr.number).id == pr.id
    assert client.stats.retries == 1


def test_comment_never_resent_after_a_dropped_connection(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """A comment that may have been received is not posted again: no double comments."""
    pr = world.add_pull_request("acme/app")
    github.drop_next(1)

    with pytest.raises(GitHubUnavailable):
        client.add_comment(pr.id, "Needs a human.")
    assert client.stats.requests == 1


def test_comment_not_resent_after_a_server_error(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """A 502 may hide a posted comment: the client reports it instead of posting again."""
    pr = world.add_pull_request("acme/app")
    github.fail_next(1, status=502)

    with pytest.raises(GitHubUnavailable):
        client.add_comment(pr.id, "Needs a human.")
    assert client.stats.requests == 1


def test_refused_token_is_an_auth_error_without_the_token(
    github: FakeGitHub, sleep: RecordedSleep
) -> None:
    """A wrong token raises GitHubAuthError; no message names the token."""
    wrong = "ghp-wrong-token-1234"
    client = make_client(github, sleep, token=wrong)

    with pytest.raises(GitHubAuthError) as raised:
        client.pull_request("acme/app", 1)

    chain = [raised.value, raised.value.__cause__]
    assert all(wrong not in str(error) and TOKEN not in str(error) for error in chain)
    assert sleep.waits == []


def test_stats_count_requests_and_points(world: GitHubWorld, client: GitHubClient) -> None:
    """Requests and GitHub's rate-limit points are counted."""
    pr = world.add_pull_request("acme/app")

    client.pull_request("acme/app", pr.number)
    client.close_pull_request(pr.id)

    stats = client.stats
    assert (stats.requests, stats.mutations, stats.retries) == (2, 1, 0)
    assert stats.rate_limit_cost >= 1
    assert stats.rate_limit_remaining is not None


def test_requests_are_fast(world: GitHubWorld, client: GitHubClient) -> None:
    """A fresh read takes milliseconds against the fake (no stalls per request)."""
    pr = world.add_pull_request("acme/app")
    client.pull_request("acme/app", pr.number)
    started = time.perf_counter()
    for _ in range(5):
        client.pull_request("acme/app", pr.number)
    assert (time.perf_counter() - started) / 5 < 0.2


# --- what settles a shadow decision ----------------------------------------------------------


def test_a_pull_requests_history_is_read_from_its_timeline(
    world: GitHubWorld, client: GitHubClient
) -> None:
    """Merged, a person's label, comment and review, a new head; the token's own items left out."""
    world.add_pull_request("acme/web", number=1)
    first_head = world.pull_request("acme/web", 1).head_oid
    world.add_label("acme/web", 1, "needs-review", actor="alice")
    world.add_label("acme/web", 1, "escalated", actor=world.viewer_login)
    world.comment("acme/web", 1, "bob", "Looking at it.")
    world.comment("acme/web", 1, world.viewer_login, "The operator's own comment.")
    world.review("acme/web", 1, "carol", "APPROVED")
    new_head = world.push_commit("acme/web", 1, actor="octocat")
    world.merge("acme/web", 1, actor="alice")

    history = client.pull_request_history("acme/web", 1)

    assert history.state is PullRequestState.MERGED and history.head_oid == new_head != first_head
    assert [(e.kind, e.oid) for e in history.events] == [
        (HistoryKind.PERSON, None),
        (HistoryKind.PERSON, None),
        (HistoryKind.PERSON, None),
        (HistoryKind.HEAD, new_head),
        (HistoryKind.MERGED, None),
    ]
    assert [e.at for e in history.events] == sorted(e.at for e in history.events)


def test_a_closed_pull_requests_history(world: GitHubWorld, client: GitHubClient) -> None:
    """Closed unmerged by a person: its state and its ClosedEvent."""
    world.add_pull_request("acme/web", number=1)
    world.close("acme/web", 1, actor="alice")

    history = client.pull_request_history("acme/web", 1)

    assert history.state is PullRequestState.CLOSED
    assert [e.kind for e in history.events] == [HistoryKind.CLOSED]


def test_the_pull_requests_an_event_names_are_read_in_one_request(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """Open ones only, each once, sorted; a closed one is left out; one request for all."""
    for number in (3, 5, 9):
        world.add_pull_request("acme/app", number=number, title=f"Change {number}")
    world.add_pull_request("acme/app", number=4, title="Closed", state="CLOSED")
    read = client.pull_requests("acme/app", [9, 3, 4, 9])
    assert [pr.number for pr in read] == [3, 9]
    assert [r.operation_name for r in github.requests] == ["PullRequestsByNumber"]
    assert client.pull_requests("acme/app", []) == []
    assert len(github.requests) == 1


def test_a_number_naming_no_pull_request_is_left_out(
    world: GitHubWorld, github: FakeGitHub, client: GitHubClient
) -> None:
    """GitHub answers NOT_FOUND for it: the others are read again, once; none left: nothing."""
    world.add_pull_request("acme/app", number=3, title="Change 3")
    assert [pr.number for pr in client.pull_requests("acme/app", [99, 3])] == [3]
    assert client.pull_requests("acme/app", [98]) == []
    assert len(github.requests) == 3
