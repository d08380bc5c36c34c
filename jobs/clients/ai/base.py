"""What every decision client shares: the protocol, HTTP status mapping, JSON decoding, redaction.

The protocol is what the rest of the product codes against; the two SDK-specific modules
implement it. This module imports no SDK and makes no request.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Protocol

from ai_operator.jobs.clients.ai.errors import (
    AIAuthError,
    AIError,
    AIRequestRejected,
    AIResponseInvalid,
    AIUnavailable,
    AIUnreachable,
)
from ai_operator.jobs.clients.ai.fail_fast import NotRetried, fail_fast_client
from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.clients.network import describe_failure, safe_url
from ai_operator.jobs.config import AIConfig
from ai_operator.jobs.rules.model import AIProvider

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
    def usage(self) -> ModelUsage:
        """Calls and tokens of every :meth:`ask` so far."""
        ...

    def thread_usage(self) -> ModelUsage:
        """Calls and tokens of the :meth:`ask` calls made by the calling thread so far."""
        ...

    def ask(self, system: str, user: str, schema: dict[str, Any]) -> object:
        """Return the decoded JSON answer; raise only :class:`AIError` subclasses."""
        ...


class CallCounter:
    """A thread-safe count of requests and tokens, in total and per calling thread.

    Per thread, because a pass decides pull requests in parallel through one client and each
    decision is one thread's work: the difference of :meth:`thread_usage` around a decision is
    what that decision cost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage = ModelUsage()
        self._by_thread: dict[int, ModelUsage] = {}

    @property
    def calls(self) -> int:
        """Requests made through ``ask`` so far."""
        return self._usage.calls

    @property
    def usage(self) -> ModelUsage:
        """Calls and tokens so far."""
        return self._usage

    def thread_usage(self) -> ModelUsage:
        """Calls and tokens of the calling thread so far."""
        with self._lock:
            return self._by_thread.get(threading.get_ident(), ModelUsage())

    def _count_call(self) -> None:
        self._record(ModelUsage(calls=1))

    def _record(self, usage: ModelUsage) -> None:
        """Add ``usage`` to the totals and to the calling thread's."""
        thread = threading.get_ident()
        with self._lock:
            self._usage = self._usage + usage
            self._by_thread[thread] = self._by_thread.get(thread, ModelUsage()) + usage


@dataclass(frozen=True)
class SDKErrors:
    """One SDK's exception classes, named so :func:`translate_sdk_error` is written once.

    Both SDKs (anthropic 2.x, openai 3.x) share this shape: ``APIStatusError`` (with
    ``status_code`` and ``body``), ``APITimeoutError`` (a subclass of ``APIConnectionError``),
    ``APIConnectionError`` and ``APIResponseValidationError``.
    """

    sdk: str
    """The SDK's name in messages, e.g. ``Anthropic``."""
    api: str
    """The wire format's name in messages, e.g. ``Messages API``."""
    status: type[Exception]
    timeout: type[Exception]
    connection: type[Exception]
    response_validation: type[Exception]
    base: type[Exception] = Exception
    """The SDK's root error, which it never retries when raised inside its HTTP client."""

    @classmethod
    def of(cls, sdk_module: ModuleType, sdk: str, api: str) -> SDKErrors:
        """The exception classes of an imported SDK module (``anthropic`` or ``openai``)."""
        return cls(
            sdk=sdk,
            api=api,
            status=sdk_module.APIStatusError,
            timeout=sdk_module.APITimeoutError,
            connection=sdk_module.APIConnectionError,
            response_validation=sdk_module.APIResponseValidationError,
            base=getattr(sdk_module, f"{sdk}Error"),
        )


class SDKDecisionClient(CallCounter):
    """What both SDK clients share: their settings, the call count and the error translation."""

    errors: ClassVar[SDKErrors]

    def __init__(self, config: AIConfig) -> None:
        super().__init__()
        self.model = config.model
        self._config = config

    def sdk_options(self, max_retries: int) -> dict[str, Any]:
        """The keyword arguments both SDKs' client constructors take."""
        return {
            "api_key": self._config.token.get_secret_value(),
            "base_url": self._config.base_url,
            "max_retries": max_retries,
            "timeout": self._config.timeout_seconds,
            "http_client": fail_fast_client(self.errors.base, self._config.timeout_seconds),
        }

    def failure(self, exc: Exception) -> AIError:
        """Our error for the SDK's exception ``exc`` (see :func:`translate_sdk_error`)."""
        token = self._config.token.get_secret_value()
        timeout = self._config.timeout_seconds
        url = self._config.base_url or _default_url(exc)
        return translate_sdk_error(exc, self.errors, token=token, timeout_seconds=timeout, url=url)


def _default_url(exc: Exception) -> str:
    """The URL of the failed request, when the SDK's exception carries it."""
    request = getattr(exc, "request", None)
    return str(getattr(request, "url", "") or "")


def translate_sdk_error(
    exc: Exception, errors: SDKErrors, *, token: str, timeout_seconds: float, url: str = ""
) -> AIError:
    """Our :class:`AIError` for an SDK exception, with the token redacted from its text.

    A failed connection is named in plain words (:mod:`jobs.clients.network`) with the
    endpoint's URL; a host that does not resolve or a refused certificate was not retried.
    """
    where = f"the model endpoint at {safe_url(url)}" if url else "the model endpoint"
    if isinstance(exc, errors.status):
        status = getattr(exc, "status_code", 0)
        return status_error(status, getattr(exc, "body", None), token, where=where)
    if isinstance(exc, errors.timeout):
        return AIUnavailable(f"{where}: timeout: no answer within {timeout_seconds:g} s")
    if isinstance(exc, NotRetried):
        return AIUnreachable(f"could not reach {where}: {exc.words}")
    if isinstance(exc, errors.connection):
        failure = describe_failure(exc, url, timeout_seconds)
        return AIUnavailable(f"could not reach {where}: {redact(failure.words, token)}")
    if isinstance(exc, errors.response_validation):
        return AIResponseInvalid(f"the endpoint's answer is not a {errors.api} response")
    return AIUnavailable(f"the {errors.sdk} SDK failed: {type(exc).__name__}")


def status_error(
    status: int, body: object, token: str, *, where: str = "the model endpoint"
) -> AIError:
    """Map an HTTP status the SDK gave up on (after retrying 408/409/429/5xx) to our error."""
    detail = redact(error_detail(body), token)
    suffix = f": {detail}" if detail else ""
    if status in {401, 403}:
        return AIAuthError(f"{where} refused the token (HTTP {status}){suffix}")
    message = f"{where} answered HTTP {status}{suffix}"
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
