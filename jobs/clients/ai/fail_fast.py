"""An HTTP client for the SDKs that does not retry what no retry can fix.

Both SDKs retry every failed connection. A host name that does not resolve, a certificate that is
refused or a URL that is not valid stays so until a setting changes, so :meth:`FailFastClient.send`
turns those into the SDK's own base error, which both SDKs pass on without retrying (anthropic 2.x
and openai 3.x propagate their own errors raised while sending as they are). Everything else,
including the proxies of the environment, is left to httpx and the SDK.
"""

from __future__ import annotations

from typing import Any

import httpx2

from ai_operator.jobs.clients.network import describe_failure


class NotRetried(Exception):
    """Mixed into the SDK's base error: a failure the SDK must not retry; ``words`` names it."""

    words: str = ""


class FailFastClient(httpx2.Client):
    """``httpx2.Client`` whose permanent connection failures raise the SDK's error at once."""

    def __init__(self, final: type[Exception], timeout_seconds: float) -> None:
        super().__init__(follow_redirects=True)
        self._final = final
        self._timeout_seconds = timeout_seconds

    def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        """Send as usual; a host not found or a refused certificate is final."""
        try:
            return super().send(request, **kwargs)
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
    return FailFastClient(final, timeout_seconds)
