"""Errors of the GitHub boundary. Every GitHub client call raises only these.

    GitHubError              base; ``retryable`` says whether a later attempt may succeed
    ├── GitHubUnavailable    5xx or connection failure, after the client's retries (retryable)
    │   └── GitHubUnreachable  host not found or TLS refused: not retried, a setting to fix
    ├── RateLimited          primary or secondary rate limit; ``retry_after`` seconds (retryable)
    ├── GitHubAuthError      401, or a 403 that is not a rate limit: token wrong or lacking scopes
    ├── GitHubQueryError     GraphQL ``errors`` in the answer (NOT_FOUND, invalid document, ...)
    │   └── MergeRejected    GitHub refused a merge (head moved, not mergeable, checks required)
    └── LabelMissing         escalation labels that do not exist and may not be created

The library's exception is chained (``raise ... from exc``). Messages are for operators and never
contain a token.
"""

from __future__ import annotations


class GitHubError(Exception):
    """Base of every GitHub boundary error."""

    retryable: bool = False


class GitHubUnavailable(GitHubError):
    """GitHub answered 5xx or could not be reached, after the client's retries."""

    retryable = True


class GitHubUnreachable(GitHubUnavailable):
    """GitHub's host name does not resolve, its TLS certificate is refused, or its URL is invalid.

    Retrying does not help until the URL, DNS or CA settings change, so it is not retried.
    """

    retryable = False


class RateLimited(GitHubError):
    """A primary or secondary rate limit was hit."""

    retryable = True

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GitHubAuthError(GitHubError):
    """The token was refused or lacks a permission; ``status`` is the HTTP status (None: none)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GitHubQueryError(GitHubError):
    """GitHub answered with GraphQL errors."""

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class MergeRejected(GitHubQueryError):
    """GitHub refused to merge (e.g. the head moved since the decision)."""


class LabelMissing(GitHubError):
    """Labels to add do not exist in the repository and creating them is off."""

    def __init__(self, repository: str, names: list[str]) -> None:
        super().__init__(f"labels {', '.join(names)} do not exist in {repository}")
        self.repository = repository
        self.names = names
