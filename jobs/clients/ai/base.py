"""What every decision client shares: the protocol, HTTP status mapping, JSON decoding, redaction.

The protocol is what the rest of the product codes against; the two SDK-specific modules
implement it. This module imports no SDK and makes no request.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Protocol

from jobs.clients.ai.errors import (
    AIAuthError,
    AIError,
    AIRequestRejected,
    AIResponseInvalid,
    AIUnavailable,
)
from jobs.model import AIProvider

TOOL_NAME = "record_decision"
SCHEMA_NAME = "decision"
_MAX_DETAIL = 300
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?```$", re.DOTALL)


class DecisionClient(Protocol):
    """Asks a model for one JSON answer that fits a schema."""

    provider: AIProvider
    model: str

    @property
    def calls(self) -> int:
        """Requests made through :meth:`ask` (the SDK's own retries not counted)."""
        ...

    @property
    def temperature_applied(self) -> bool:
        """Whether the configured temperature reaches the model (never for Anthropic)."""
        ...

    def ask(self, system: str, user: str, schema: dict[str, Any]) -> object:
        """Return the decoded JSON answer; raise only :class:`AIError` subclasses."""
        ...


class CallCounter:
    """A thread-safe count of requests, read as :attr:`calls`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0

    @property
    def calls(self) -> int:
        """Requests made through ``ask`` so far."""
        return self._calls

    def _count_call(self) -> None:
        with self._lock:
            self._calls += 1


def status_error(status: int, body: object, token: str) -> AIError:
    """Map an HTTP status the SDK gave up on (after retrying 408/409/429/5xx) to our error."""
    detail = redact(error_detail(body), token)
    message = f"the model endpoint answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in {401, 403}:
        return AIAuthError(message)
    if status in {408, 409, 429} or status >= 500:
        return AIUnavailable(message)
    return AIRequestRejected(message)


def error_detail(body: object) -> str:
    """Extract the vendor's error type and message from an Anthropic or OpenAI error body."""
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        kind, text = error.get("type"), error.get("message")
        detail = " ".join(str(part) for part in (kind, text) if part)
    else:
        detail = str(error) if error else ""
    return detail[:_MAX_DETAIL]


def redact(text: str, token: str) -> str:
    """Replace every occurrence of the token in the text."""
    return text.replace(token, "[redacted]") if token else text


def decode_json_object(text: str | None) -> dict[str, Any]:
    """Decode a JSON object from an answer's text, tolerating a Markdown code fence around it."""
    stripped = (text or "").strip()
    if not stripped:
        raise AIResponseInvalid("the answer is empty")
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group("body").strip()
    try:
        decoded = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise AIResponseInvalid(f"the answer is not JSON ({exc.msg} at char {exc.pos})") from exc
    return require_object(decoded)


def require_object(decoded: object) -> dict[str, Any]:
    """Return the decoded answer if it is a JSON object, else raise :class:`AIResponseInvalid`."""
    if not isinstance(decoded, dict):
        raise AIResponseInvalid(f"the answer is a JSON {type(decoded).__name__}, not an object")
    return decoded
