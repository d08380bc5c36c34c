"""Network failures in plain words: what went wrong on the way to an endpoint, and whether to retry.

Both boundaries (GitHub's transport and the model's SDKs) name a failed connection the same way,
from the exception and its causes (``__cause__``, ``__context__``, ``URLError.reason``):

    host not found      the name does not resolve (not retried; "temporarily" when DNS says so)
    connection refused  nothing listens there, or a proxy said no (retried; surely never sent)
    TLS failed          certificate refused (not retried) or the handshake broke (retried)
    timeout             no answer in time (retried)
    connection failed   anything else on the socket (reset, unreachable network: retried)
    the URL is not valid  (never quoted: it may hold credentials; not retried)

A URL in a message never carries credentials: :func:`safe_url` drops user info and the query.
This module makes no request and imports no SDK.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkFailure:
    """What went wrong, in words, and what a retry can hope for."""

    words: str
    """E.g. ``host not found (api.example.invalid does not resolve)``."""
    transient: bool
    """A later attempt may succeed without anyone changing a setting."""
    surely_unsent: bool = False
    """The request never reached the server (safe to resend even when not idempotent)."""


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to print."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def describe_failure(exc: BaseException, url: str, timeout_seconds: float) -> NetworkFailure:
    """Name the network failure behind ``exc`` (a library's wrapper or the socket error itself)."""
    host = urllib.parse.urlsplit(url).hostname or url
    for cause in _causes(exc):
        failure = _known(cause, host, timeout_seconds)
        if failure is not None:
            return failure
    return NetworkFailure(f"connection failed ({type(exc).__name__})", transient=True)


def _known(cause: BaseException, host: str, timeout_seconds: float) -> NetworkFailure | None:
    if isinstance(cause, http.client.InvalidURL):
        return NetworkFailure("the URL is not valid", transient=False, surely_unsent=True)
    if isinstance(cause, socket.gaierror):
        if cause.errno == socket.EAI_AGAIN:
            return NetworkFailure(f"host not found ({host} did not resolve this time)", True, True)
        return NetworkFailure(f"host not found ({host} does not resolve)", False, True)
    if isinstance(cause, ConnectionRefusedError):
        return NetworkFailure(f"connection refused by {host}", transient=True, surely_unsent=True)
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or cause.reason or "certificate refused"
        return NetworkFailure(f"TLS failed: {host}'s certificate is refused ({reason})", False)
    if isinstance(cause, ssl.SSLError):
        return NetworkFailure(f"TLS failed ({cause.reason or type(cause).__name__})", True)
    if isinstance(cause, TimeoutError):
        return NetworkFailure(f"timeout: no answer within {timeout_seconds:g} s", True)
    if isinstance(cause, OSError) and cause.strerror:
        return NetworkFailure(f"connection failed ({cause.strerror.lower()})", True)
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps, outermost first, each once."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, urllib.error.URLError) and isinstance(current.reason, BaseException):
            pending.append(current.reason)
        pending.extend(c for c in (current.__cause__, current.__context__) if c is not None)
        pending.extend(a for a in current.args if isinstance(a, BaseException))
