"""Search strings: a rule's selector as GitHub searches, within GitHub's query limits."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ai_operator.jobs.clients.github.search_query import (
    MAX_OPERATORS,
    MAX_QUERY_LENGTH,
    SearchQueryError,
    build_search_queries,
)
from ai_operator.jobs.rules.model import LabelSelector, Selector

OPEN = "is:pr is:open archived:false"
SORT = "sort:created-asc"


def selector(
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    base: str | None = None,
    author: str | None = None,
) -> Selector:
    return Selector(
        labels=LabelSelector(include=include or [], exclude=exclude or []),
        baseBranch=base,
        author=author,
        matchAll=not (include or base or author),
    )


def operators(query: str) -> int:
    """The conservative count: each repo: after the first is an OR, each -label: a NOT."""
    terms = query.split(" ")
    repos = sum(term.startswith("repo:") for term in terms)
    return max(repos - 1, 0) + sum(term.startswith("-label:") for term in terms)


@pytest.mark.parametrize(
    ("repositories", "rule_selector", "expected"),
    [
        pytest.param(
            ["acme/app"],
            selector(),
            [f"{OPEN} repo:acme/app {SORT}"],
            id="open-prs-of-one-repository",
        ),
        pytest.param(
            ["acme/app"],
            selector(include=["auto-merge", "deps"]),
            [f'{OPEN} label:"auto-merge" label:"deps" repo:acme/app {SORT}'],
            id="each-included-label-is-required",
        ),
        pytest.param(
            ["acme/app"],
            selector(exclude=["do not merge"]),
            [f'{OPEN} -label:"do not merge" repo:acme/app {SORT}'],
            id="excluded-label-quoted",
        ),
        pytest.param(
            ["acme/app"],
            selector(base="main", author="octocat"),
            [f'{OPEN} base:"main" author:octocat repo:acme/app {SORT}'],
            id="base-and-author",
        ),
        pytest.param(
            ["acme/app"],
            selector(author="dependabot[bot]"),
            [f"{OPEN} author:app/dependabot repo:acme/app {SORT}"],
            id="bot-author-searched-as-app",
        ),
        pytest.param(
            ["acme/app"],
            selector(author="app/dependabot"),
            [f"{OPEN} author:app/dependabot repo:acme/app {SORT}"],
            id="bot-author-in-searchs-own-form",
        ),
        pytest.param(
            ["acme/app", "acme/api", "acme/app"],
            selector(),
            [f"{OPEN} repo:acme/app repo:acme/api {SORT}"],
            id="repositories-or-together-once-each",
        ),
        pytest.param(
            [],
            selector(include=["x"]),
            [],
            id="no-repository-no-search",
        ),
    ],
)
def test_selector_becomes_search_strings(
    repositories: list[str], rule_selector: Selector, expected: list[str]
) -> None:
    """Every selector condition GitHub can search on is in the query, values quoted."""
    assert build_search_queries(repositories, rule_selector) == expected


@pytest.mark.parametrize(
    ("repositories", "rule_selector", "query_count"),
    [
        pytest.param([f"acme/r{i}" for i in range(6)], selector(), 1, id="six-repos-five-ors"),
        pytest.param([f"acme/r{i}" for i in range(7)], selector(), 2, id="seven-repos-split"),
        pytest.param(
            [f"acme/r{i}" for i in range(4)],
            selector(exclude=["a", "b", "c"]),
            2,
            id="nots-leave-fewer-ors",
        ),
        pytest.param(
            [f"acme-corporation/repository-number-{i:02}" for i in range(20)],
            selector(include=["auto-merge"], base="main"),
            5,
            id="long-names-split-by-length",
        ),
    ],
)
def test_repositories_split_to_respect_limits(
    repositories: list[str], rule_selector: Selector, query_count: int
) -> None:
    """Queries stay within 256 characters and 5 operators; each repository is searched once."""
    queries = build_search_queries(repositories, rule_selector)
    assert len(queries) == query_count
    for query in queries:
        assert len(query) <= MAX_QUERY_LENGTH
        assert operators(query) <= MAX_OPERATORS
    searched = [t.removeprefix("repo:") for q in queries for t in q.split(" ") if "repo:" in t]
    assert searched == repositories


def test_exclusions_dropped_when_nothing_else_fits() -> None:
    """Exclusions that leave no room for a repository are left out; inclusions never are."""
    long_labels = [f"excluded-label-{'x' * 30}-{i}" for i in range(5)]
    rule_selector = selector(include=["auto-merge"], exclude=long_labels)
    queries = build_search_queries(["acme/app"], rule_selector)
    (query,) = queries
    assert 'label:"auto-merge"' in query
    assert '-label:"excluded-label-' in query
    assert query.count("-label:") < len(long_labels)
    assert len(query) <= MAX_QUERY_LENGTH


def test_more_than_five_exclusions_keep_five() -> None:
    """Six NOTs exceed GitHub's operator limit: the query keeps the first five."""
    queries = build_search_queries(["acme/app", "acme/api"], selector(exclude=list("abcdef")))
    assert queries == [
        f'{OPEN} -label:"a" -label:"b" -label:"c" -label:"d" -label:"e" repo:{repo} {SORT}'
        for repo in ("acme/app", "acme/api")
    ]


def test_a_selector_too_long_to_search_is_an_error() -> None:
    """A selector that cannot become a search string is an error, never a wider search."""
    with pytest.raises(SearchQueryError):
        build_search_queries(["acme/app"], selector(include=[f"{i}{'x' * 99}" for i in range(3)]))


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"include": ['say "hi"']}, id="double-quote-in-label"),
        pytest.param({"exclude": ["a\nb"]}, id="line-break-in-label"),
        pytest.param({"include": [" "]}, id="blank-label"),
        pytest.param({"base": 'release"1'}, id="double-quote-in-base"),
        pytest.param({"author": "not a login"}, id="author-not-a-login"),
        pytest.param({"author": "app/"}, id="app-without-name"),
    ],
)
def test_values_github_cannot_search_are_refused_with_the_rule(values: dict[str, Any]) -> None:
    """A value the search cannot express fails when the rule is read, not on every pass."""
    with pytest.raises(ValidationError):
        selector(**values)
