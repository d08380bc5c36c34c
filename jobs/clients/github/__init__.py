"""GitHub: the client that reads pull requests into snapshots and changes them, and its errors."""

from ai_operator.jobs.clients.github.client import LABEL_COLOR, GitHubClient
from ai_operator.jobs.clients.github.errors import (
    GitHubAuthError,
    GitHubError,
    GitHubQueryError,
    GitHubUnavailable,
    GitHubUnreachable,
    LabelMissing,
    MergeRejected,
    RateLimited,
)
from ai_operator.jobs.clients.github.search_query import SearchQueryError, build_search_queries
from ai_operator.jobs.clients.github.transport import GitHubStats

__all__ = [
    "LABEL_COLOR",
    "GitHubAuthError",
    "GitHubClient",
    "GitHubError",
    "GitHubQueryError",
    "GitHubStats",
    "GitHubUnavailable",
    "GitHubUnreachable",
    "LabelMissing",
    "MergeRejected",
    "RateLimited",
    "SearchQueryError",
    "build_search_queries",
]
