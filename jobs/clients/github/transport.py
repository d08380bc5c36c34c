"""HTTP for GitHub's GraphQL endpoint: one POST per attempt, bounded retries, rate limits honoured.

What an answer means:
- 200 with ``data`` and no ``errors``: the data.
- GraphQL ``errors``: :class:`GitHubQueryError`, except ``RATE_LIMITED``, which is a rate limit.
- 401, or 403 that is not a rate limit: :class:`GitHubAuthError`.
- 403/429 with ``retry-after`` or ``x-ratelimit-remaining: 0`` (or a 403 whose message names a
  secondary rate limit): wait (``retry-after``, else until
  ``x-ratelimit-reset``, else a minute with backoff) and retry while the wait is at most
  ``max_wait_seconds``; otherwise :class:`RateLimited`.
- 5xx, a refused or dropped connection, a timeout: exponential backoff with jitter, then
  :class:`GitHubUnavailable`.
- A host name that does not resolve, a TLS certificate that is refused: at once
  :class:`GitHubUnreachable`, not retried (:mod:`jobs.clients.network` names each failure).

Every message names the failure in plain words and the URL (without credentials); every retry is
logged at INFO with its reason and wait, so a run that is waiting says so.

A request that is not idempotent (a comment) is retried only when GitHub surely did not act on it
(a refused connection, a rate limit), never after it may have been received.

This module knows no query: it must not build documents or read their results. The token goes only
into the ``Authorization`` header, never into a message.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from email.message import Message
from importlib import metadata
from typing import Any, Protocol

from pydantic import SecretStr

from ai_operator.jobs.clients.github.errors import (
    GitHubAuthError,
    GitHubError,
    GitHubQueryError,
    GitHubUnavailable,
    GitHubUnreachable,
    RateLimited,
)
from ai_operator.jobs.clients.network import describe_failure, safe_url
from ai_operator.jobs.log import get_logger

DEFAULT_RATE_LIMIT_WAIT = 60.0


def _user_agent() -> str:
    try:
        version = metadata.version("ai-operator")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"ai-operator/{version}"


USER_AGENT = _user_agent()


class TokenSource(Protocol):
    """Where the transport gets its token: a fixed one, or a GitHub App's installation tokens."""

    def current(self) -> SecretStr:
        """The token to send now (raises GitHubError when none can be had)."""

    def refused(self, token: SecretStr) -> bool:
        """GitHub answered 401 to ``token``: whether a renewed token is worth one more try."""


class FixedToken:
    """A personal access token: the same token every time; a refusal is final."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def current(self) -> SecretStr:
        """The token."""
        return self._token

    def refused(self, token: SecretStr) -> bool:
        """Never worth another try."""
        return False


@dataclass(frozen=True)
class TransportPolicy:
    """How long and how often the transport retries."""

    max_retries: int = 4
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 60.0
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class GitHubStats:
    """What a client has spent so far."""

    requests: int = 0
    mutations: int = 0
    retries: int = 0
    rate_limit_remaining: int | None = None
    rate_limit_cost: int = 0


class _Retry(Exception):
    """One attempt failed in a way a later attempt may not.

    ``delay`` is the wait before the next attempt; it doubles per attempt when ``grows``.
    """

    def __init__(
        self, error: GitHubError, delay: float, *, grows: bool, surely_unprocessed: bool
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay
        self.grows = grows
        self.surely_unprocessed = surely_unprocessed


class GraphQLTransport:
    """Posts GraphQL documents to ``url`` and returns their ``data``."""

    def __init__(
        self,
        url: str,
        token: SecretStr | TokenSource,
        policy: TransportPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        self._url = url
        self._where = f"GitHub at {safe_url(url)}"
        self._tokens = FixedToken(token) if isinstance(token, SecretStr) else token
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._stats = GitHubStats()

    @property
    def stats(self) -> GitHubStats:
        """A copy of the counters."""
        with self._lock:
            return self._stats

    def count(self, **increments: int) -> None:
        """Add to the counters named in ``increments``."""
        with self._lock:
            values = {name: getattr(self._stats, name) + n for name, n in increments.items()}
            self._stats = replace(self._stats, **values)

    def record_rate_limit(self, remaining: int | None, cost: int) -> None:
        """Keep the latest remaining points and add ``cost`` to the total."""
        with self._lock:
            kept = self._stats.rate_limit_remaining if remaining is None else remaining
            total = self._stats.rate_limit_cost + cost
            self._stats = replace(self._stats, rate_limit_remaining=kept, rate_limit_cost=total)

    def execute(
        self, document: str, variables: Mapping[str, Any], *, idempotent: bool = True
    ) -> dict[str, Any]:
        """Run ``document`` with ``variables``; return the answer's ``data``, after retries."""
        body = json.dumps({"query": document, "variables": dict(variables)}).encode()
        attempt, renewed = 0, False
        while True:
            token = self._tokens.current()
            try:
                return self._attempt(body, token)
            except GitHubAuthError as refused:
                # An installation token refused before its time: renew it once (never a PAT).
                if renewed or refused.status != 401 or not self._tokens.refused(token):
                    raise
                renewed = True
                continue
            except _Retry as retry:
                if attempt >= self._policy.max_retries or not (
                    idempotent or retry.surely_unprocessed
                ):
                    raise retry.error from retry.__cause__
                wait = self._wait_for(retry, attempt)
                reason = str(retry.error)
            attempt += 1
            self.count(retries=1)
            get_logger("github").info(
                f"{reason}; retrying in {wait:.1f} s",
                attempt=attempt + 1,
                attempts=self._policy.max_retries + 1,
                wait_seconds=round(wait, 1),
            )
            self._sleep(wait)

    def _wait_for(self, retry: _Retry, attempt: int) -> float:
        """Choose the delay before the next attempt; RateLimited when a limit needs longer."""
        delay = retry.delay * (2**attempt if retry.grows else 1)
        if isinstance(retry.error, RateLimited):
            if delay > self._policy.max_wait_seconds:
                message = f"{self._where}: rate limit hit; retry in {delay:.0f} s"
                raise RateLimited(message, retry_after=delay) from retry.__cause__
            return delay
        jitter = random.uniform(0, self._policy.backoff_seconds)  # noqa: S311 - not cryptographic
        return min(delay + jitter, self._policy.max_wait_seconds)

    def _attempt(self, body: bytes, token: SecretStr) -> dict[str, Any]:
        """One POST; the answer's data, or a final error, or :class:`_Retry`."""
        request = urllib.request.Request(  # noqa: S310 - the URL is the configured endpoint
            self._url, data=body, method="POST", headers=self._headers(token)
        )
        self.count(requests=1)
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self._policy.timeout_seconds
            ) as response:
                headers, payload = response.headers, response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc.code, exc.headers, _drain(exc)) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self._connection_error(exc) from exc
        self._note_remaining(headers)
        return self._data(headers, payload)

    def _headers(self, token: SecretStr) -> dict[str, str]:
        return {
            "Authorization": f"bearer {token.get_secret_value()}",
            "Accept": "application/vnd.github+json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }

    def _note_remaining(self, headers: Message) -> None:
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            self.record_rate_limit(int(remaining), 0)

    def _http_error(self, status: int, headers: Message, payload: bytes) -> Exception:
        """Translate an HTTP error status into an error (or :class:`_Retry`)."""
        if status in (403, 429) and _is_rate_limit(status, headers, payload):
            return self._rate_limited(headers, f"{self._where}: rate limit hit (HTTP {status})")
        if status in (401, 403):
            return GitHubAuthError(
                f"{self._where} refused the token (HTTP {status}): {_reason(payload)}", status
            )
        if status >= 500:
            error = GitHubUnavailable(f"{self._where} answered HTTP {status}")
            return self._backoff(error, surely_unprocessed=False)
        return GitHubQueryError(f"{self._where} answered HTTP {status}: {_reason(payload)}")

    def _rate_limited(self, headers: Message, message: str) -> _Retry:
        """Wait ``retry-after``, else until ``x-ratelimit-reset``, else a minute with backoff."""
        retry_after = _number(headers.get("retry-after"))
        # The reset is that of the primary limit: it tells the wait only when that is spent.
        spent = headers.get("x-ratelimit-remaining") in (None, "0")
        reset = _number(headers.get("x-ratelimit-reset")) if spent else None
        if retry_after is not None:
            delay, grows = max(retry_after, 0.0), False
        elif reset is not None:
            delay, grows = max(reset - self._clock(), 0.0) + 1.0, False
        else:
            delay, grows = DEFAULT_RATE_LIMIT_WAIT, True
        error = RateLimited(f"{message}; retry in {delay:.0f} s", retry_after=delay)
        return _Retry(error, delay, grows=grows, surely_unprocessed=True)

    def _backoff(self, error: GitHubError, *, surely_unprocessed: bool) -> _Retry:
        return _Retry(
            error, self._policy.backoff_seconds, grows=True, surely_unprocessed=surely_unprocessed
        )

    def _connection_error(self, exc: BaseException) -> Exception:
        """A failed connection: :class:`_Retry` when a later attempt may pass, else final.

        It is resent after a write only when GitHub surely never saw it (refused, not resolved).
        """
        failure = describe_failure(exc, self._url, self._policy.timeout_seconds)
        if not failure.transient:
            return GitHubUnreachable(f"{self._where}: {failure.words}")
        error = GitHubUnavailable(f"{self._where}: {failure.words}")
        return self._backoff(error, surely_unprocessed=failure.surely_unsent)

    def _data(self, headers: Message, payload: bytes) -> dict[str, Any]:
        """Return the ``data`` of a 200 answer, or raise the error its ``errors`` mean."""
        try:
            answer = json.loads(payload)
        except ValueError as exc:
            error = GitHubUnavailable(f"{self._where} answered with a body that is not JSON")
            raise self._backoff(error, surely_unprocessed=False) from exc
        errors = answer.get("errors") or []
        if any(e.get("type") == "RATE_LIMITED" for e in errors):
            raise self._rate_limited(headers, f"{self._where}: GraphQL rate limit hit")
        if errors:
            messages = "; ".join(str(e.get("message", e)) for e in errors)
            raise GitHubQueryError(f"GitHub refused the query: {messages}", errors)
        data = answer.get("data")
        if not isinstance(data, dict):
            raise GitHubQueryError("GitHub answered without data")
        return data


def _is_rate_limit(status: int, headers: Message, payload: bytes = b"") -> bool:
    """Whether a 403/429 is a rate limit: its headers say so, or its message does.

    GitHub answers some secondary limits with a 403 and no ``retry-after``.
    """
    if headers.get("retry-after") is not None or headers.get("x-ratelimit-remaining") == "0":
        return True
    return status == 429 or "rate limit" in _reason(payload).lower()


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _drain(exc: urllib.error.HTTPError) -> bytes:
    """Read the error body; close the response either way."""
    try:
        return exc.read()
    except OSError:
        return b""
    finally:
        exc.close()


def _reason(payload: bytes) -> str:
    """GitHub's ``message`` from an error body, shortened; never request data."""
    try:
        message = json.loads(payload).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return str(message)[:200] or "no reason given"
