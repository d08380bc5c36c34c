"""An HTTP client for the SDKs that does not retry what no retry can fix.

Both SDKs retry every failed connection. A host name that does not resolve or a certificate that
is refused stays so until a setting changes, so the transport below turns those two into the SDK's
own base error, which both SDKs pass on without retrying (anthropic 2.x and openai 3.x propagate
their own errors raised inside the transport as they are). Everything else is left to the SDK.
"""

from __future__ import annotations

import httpx2

from jobs.clients.network import describe_failure


class NotRetried(Exception):
    """Mixed into the SDK's base error: a failure the SDK must not retry; ``words`` names it."""

    words: str


class _FailFastTransport(httpx2.HTTPTransport):
    def __init__(self, final: type[Exception], timeout_seconds: float) -> None:
        super().__init__()
        self._final = final
        self._timeout_seconds = timeout_seconds

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return super().handle_request(request)
        except httpx2.ConnectError as exc:
            failure = describe_failure(exc, str(request.url), self._timeout_seconds)
            if failure.transient:
                raise
            final = self._final(failure.words)
            final.words = failure.words  # type: ignore[attr-defined]
            raise final from exc


def fail_fast_client(sdk_error: type[Exception], timeout_seconds: float) -> httpx2.Client:
    """An HTTP client whose non-transient connection failures raise ``sdk_error`` subclassed."""
    final = type(f"{sdk_error.__name__}NotRetried", (NotRetried, sdk_error), {})
    transport = _FailFastTransport(final, timeout_seconds)
    return httpx2.Client(transport=transport, follow_redirects=True)
