"""Errors of the AI boundary. A decision client raises only these.

    AIError                  base; ``retryable`` says whether a later attempt may succeed
    ├── AIUnavailable        timeout, connection, 429 or 5xx after the SDK's retries (retryable)
    │   └── AIUnreachable    host not found or certificate refused: not retried, a setting to fix
    ├── AIAuthError          the endpoint refused the token (401/403)
    ├── AIRequestRejected    the endpoint refused the request (400/404/422: model, parameters)
    └── AIResponseInvalid    an answer came, but it is not the JSON object that was asked for

Callers turn every AIError into the rule's safe fallback; none of them is ever a guessed action.
The SDK's exception is chained. Messages never contain a token.
"""

from __future__ import annotations


class AIError(Exception):
    """Base of every AI boundary error."""

    retryable: bool = False


class AIUnavailable(AIError):
    """The model could not be reached or was overloaded."""

    retryable = True


class AIUnreachable(AIUnavailable):
    """The endpoint's host does not resolve, or its TLS certificate is refused (not retried)."""

    retryable = False


class AIAuthError(AIError):
    """The endpoint refused the credentials."""


class AIRequestRejected(AIError):
    """The endpoint refused the request itself."""


class AIResponseInvalid(AIError):
    """The answer was not a JSON object of the requested shape."""
