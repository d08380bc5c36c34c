"""GitHub search strings for a rule's selector: which open pull requests a pass fetches.

GitHub caps a search string at 256 characters and 5 AND/OR/NOT operators, and a search at 1,000
results. The builder counts conservatively: every ``repo:`` after the first in a query is an OR,
every ``-label:`` a NOT. Repositories are spread over as many queries as needed. When the
selector's other conditions leave no room for even one repository, exclusions are left out of the
query (never an inclusion): callers re-check every selector condition on the results anyway,
because the search index lags behind the pull requests.

Pure: no I/O. Raises only :class:`SearchQueryError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ai_operator.jobs.rules.matching import parse_login, search_value_problem
from ai_operator.jobs.rules.model import Selector

MAX_QUERY_LENGTH = 256
MAX_OPERATORS = 5


class SearchQueryError(ValueError):
    """The selector cannot be written as a GitHub search string."""


def build_search_queries(repositories: Sequence[str], selector: Selector) -> list[str]:
    """Search strings that together cover ``selector`` in every one of ``repositories``.

    No repository means no query: a search never spans all of GitHub.
    """
    return _queries(repositories, selector, ["is:open"])


def build_settled_queries(
    repositories: Sequence[str], selector: Selector, since: datetime, until: datetime
) -> list[str]:
    """Search strings for the pull requests of ``selector`` merged or closed in the window.

    GitHub counts a merged pull request as closed (``closedAt`` is its merge time), so one
    ``is:closed closed:SINCE..UNTIL`` finds both; the window is written to the second, in UTC.
    """
    window = f"closed:{_instant(since)}..{_instant(until)}"
    return _queries(repositories, selector, ["is:closed", window])


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _queries(repositories: Sequence[str], selector: Selector, state: list[str]) -> list[str]:
    repo_terms = [f"repo:{name}" for name in dict.fromkeys(repositories)]
    if not repo_terms:
        return []
    required = _required_terms(selector, state)
    closing = ["sort:created-asc"]
    widest_repo = max(repo_terms, key=len)
    exclusions = _fitting_exclusions(required, _exclusion_terms(selector), closing, widest_repo)
    return _pack(required + exclusions, closing, repo_terms, len(exclusions))


def _required_terms(selector: Selector, state: list[str]) -> list[str]:
    """Terms no query may lose: the state, inclusions, base branch and author."""
    terms = ["is:pr", *state, "archived:false"]
    terms += [f"label:{_quote(name)}" for name in selector.labels.include]
    if selector.baseBranch is not None:
        terms.append(f"base:{_quote(selector.baseBranch)}")
    if selector.author is not None:
        terms.append(f"author:{_author(selector.author)}")
    return terms


def _exclusion_terms(selector: Selector) -> list[str]:
    """One ``-label:`` (a NOT) per excluded label."""
    return [f"-label:{_quote(name)}" for name in selector.labels.exclude]


def _fitting_exclusions(
    required: list[str], exclusions: list[str], closing: list[str], widest_repo: str
) -> list[str]:
    """Keep the leading exclusions that still leave room for any one repository."""
    kept = list(exclusions)
    while kept and not _fits([*required, *kept, widest_repo, *closing], len(kept)):
        kept.pop()
    if not _fits([*required, widest_repo, *closing], 0):
        raise SearchQueryError(
            f"the selector needs more than {MAX_QUERY_LENGTH} characters in a search query"
        )
    return kept


def _pack(fixed: list[str], closing: list[str], repo_terms: list[str], nots: int) -> list[str]:
    """Fill each query with as many repositories (ORs) as the limits allow."""
    queries: list[str] = []
    batch: list[str] = []
    for term in repo_terms:
        candidate = [*batch, term]
        if batch and not _fits([*fixed, *candidate, *closing], nots + len(candidate) - 1):
            queries.append(" ".join([*fixed, *batch, *closing]))
            candidate = [term]
        batch = candidate
    queries.append(" ".join([*fixed, *batch, *closing]))
    return queries


def _fits(terms: list[str], operators: int) -> bool:
    return len(" ".join(terms)) <= MAX_QUERY_LENGTH and operators <= MAX_OPERATORS


def _quote(value: str) -> str:
    problem = search_value_problem(value)
    if problem is not None:
        raise SearchQueryError(f"the search value {value!r} {problem}")
    return f'"{value}"'


def _author(login: str) -> str:
    """A bot (``dependabot[bot]`` or ``app/dependabot``) is searched as ``app/dependabot``."""
    try:
        return parse_login(login).search_term
    except ValueError as exc:
        raise SearchQueryError(str(exc)) from exc
