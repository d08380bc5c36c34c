"""A fake LLM server on loopback: Anthropic's Messages and OpenAI's Chat Completions wire formats.

``POST /v1/messages`` answers like Anthropic (a ``tool_use`` block when a tool is forced, else a
text block); ``POST /v1/chat/completions`` answers like OpenAI (the JSON answer as the content).
Answers come from ``brain(request)`` (by default :func:`default_brain`, a tiny
merge/close/wait/escalate policy over the PR facts in the prompt): a JSON answer, text, or a
:class:`Refusal`, :class:`CutOff` or :class:`Malformed` body. A wrong API key gives each vendor's
error body and status; a 401 message echoes the presented key, so tests can prove that clients
never repeat it. Faults are the tests' business: :meth:`FakeLLM.plan` is where a subclass answers
in the brain's stead (queued answers, errors, delays); the sandbox itself plans none.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast
from urllib.parse import urlsplit

Provider = Literal["anthropic", "openai"]
_PATHS: dict[str, Provider] = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai"}
_AUTH_HEADERS = {"authorization", "x-api-key"}
_PR_DATA = re.compile(r"<pull_request_data>\s*(?P<json>.*?)\s*</pull_request_data>", re.DOTALL)
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}

Reply = tuple[int, dict[str, str], dict[str, Any]]
OUTPUT_TOKENS = 40  # every answer's output tokens, in the usage both wire formats report


@dataclass(frozen=True)
class LLMRequest:
    """One request as the fake understood it (auth header values left out)."""

    provider: Provider
    model: str
    system: str
    user: str
    schema: dict[str, Any] | None
    temperature: float | None
    max_tokens: int | None
    headers: dict[str, str]
    body: dict[str, Any] = field(repr=False)

    @property
    def permitted_actions(self) -> list[str] | None:
        """The schema's ``action.enum``, or None when the request has no such schema."""
        enum = ((self.schema or {}).get("properties", {}).get("action") or {}).get("enum")
        return list(enum) if isinstance(enum, list) else None


@dataclass(frozen=True)
class Refusal:
    """An answer the model refused to give."""

    message: str = "I can't help with that."


@dataclass(frozen=True)
class Malformed:
    """A whole response body sent as is: an endpoint answering a shape the SDK does not expect."""

    body: dict[str, Any]


@dataclass(frozen=True)
class CutOff:
    """An answer cut off by the token cap."""

    partial: str = '{"action": "mer'


def pull_request_facts(user: str) -> dict[str, Any] | None:
    """The JSON object between ``<pull_request_data>`` and ``</pull_request_data>``, if any."""
    match = _PR_DATA.search(user)
    if not match:
        return None
    try:
        facts = json.loads(match.group("json"))
    except json.JSONDecodeError:
        return None
    return facts if isinstance(facts, dict) else None


def default_brain(request: LLMRequest) -> dict[str, Any]:
    """Decide like a cautious maintainer, within the schema's permitted actions.

    "[close]" in the title: close; pending CI: wait; green and mergeable: merge; else escalate.
    """
    facts = pull_request_facts(request.user)
    action, reason = _policy((facts or {}).get("pr"))
    permitted = request.permitted_actions
    if permitted is not None and action not in permitted:
        fallback = "escalate" if "escalate" in permitted else "wait"
        action, reason = fallback, f"{reason} ({action} is not permitted here)"
    comment = reason if action in {"close", "escalate"} else None
    return {"action": action, "reason": reason, "comment": comment, "labels": []}


def _policy(pr: object) -> tuple[str, str]:
    if not isinstance(pr, dict):
        return "escalate", "The prompt carries no pull request data."
    ci, mergeable = pr.get("ciStatus"), pr.get("mergeable")
    if "[close]" in str(pr.get("title", "")).lower():
        return "close", "The title asks for this pull request to be closed."
    if ci == "PENDING":
        return "wait", "CI is still running."
    if ci == "SUCCESS" and mergeable is True:
        return "merge", "CI passed and the pull request is mergeable."
    return "escalate", f"CI is {ci} and mergeable is {mergeable}: a person should decide."


class FakeLLM:
    """The server; use as a context manager. Queues apply to the next requests, in order."""

    def __init__(
        self,
        brain: Callable[[LLMRequest], object] | None = None,
        token: str = "sk-test-ai",  # noqa: S107 - a loopback stand-in credential
    ) -> None:
        self.brain: Callable[[LLMRequest], object] = brain or default_brain
        self.token = token
        self.requests: list[LLMRequest] = []
        self._lock = threading.Lock()
        self._server = _Server(self)
        self._thread: threading.Thread | None = None
        port = self._server.server_address[1]
        self.anthropic_url = f"http://127.0.0.1:{port}"
        self.openai_url = f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> FakeLLM:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def plan(self, provider: Provider, request: LLMRequest) -> Reply | object | None:
        """What to answer instead of the brain, if anything: the hook of the tests' faults.

        Called for every request that presented the right key; a :data:`Reply` (status, headers,
        body) is sent as is, any other value is answered like a brain's answer. The sandbox
        plans none.
        """
        return None

    def error(self, provider: Provider, status: int, retry_after: float | None = None) -> Reply:
        """``provider``'s error answer with ``status`` (and ``retry-after`` when given)."""
        return _error(provider, status, "the fake is failing on purpose", retry_after)

    def handle(self, provider: Provider, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        """Answer one request: record, delay, check the key, then fail or answer."""
        request = _parse(provider, body, headers)
        with self._lock:
            self.requests.append(request)
        presented = _presented_key(provider, headers)
        if presented != self.token:
            return _error(provider, 401, f"invalid API key: {presented}", None)
        planned = self.plan(provider, request)
        if isinstance(planned, tuple):
            return cast(Reply, planned)
        answer = planned if planned is not None else self.brain(request)
        if isinstance(answer, Malformed):
            return 200, {}, answer.body
        if provider == "anthropic":
            return 200, {}, _anthropic_reply(request, answer)
        return 200, {}, _openai_reply(request, answer)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # many clients connect at once (socketserver keeps 5)

    def __init__(self, fake: FakeLLM) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        fake = self.server.fake
        provider = _PATHS.get(urlsplit(self.path).path)
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        headers = {name.lower(): value for name, value in self.headers.items()}
        if provider is None:
            reply = _error("openai", 404, f"no route for {self.path}", None)
        else:
            reply = fake.handle(provider, body, headers)
        self._send(*reply)

    def _send(self, status: int, headers: dict[str, str], payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for name, value in {**headers, "content-type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


def _presented_key(provider: Provider, headers: dict[str, str]) -> str:
    bearer = headers.get("authorization", "").removeprefix("Bearer ")
    return (headers.get("x-api-key") or bearer) if provider == "anthropic" else bearer


def _parse(provider: Provider, body: dict[str, Any], headers: dict[str, str]) -> LLMRequest:
    messages = body.get("messages") or []
    if provider == "anthropic":
        system = _text(body.get("system"))
        schema = _anthropic_schema(body)
        cap = body.get("max_tokens")
    else:
        system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") != "user")
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
    return LLMRequest(
        provider=provider,
        model=str(body.get("model", "")),
        system=system,
        user="\n".join(_text(m.get("content")) for m in messages if m.get("role") == "user"),
        schema=schema,
        temperature=body.get("temperature"),
        max_tokens=cap,
        headers={k: v for k, v in headers.items() if k not in _AUTH_HEADERS},
        body=body,
    )


def _text(content: object) -> str:
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _anthropic_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    forced = _forced_tool(body)
    for tool in body.get("tools") or []:
        if tool.get("name") == forced:
            return dict(tool.get("input_schema") or {})
    return ((body.get("output_config") or {}).get("format") or {}).get("schema")


def _forced_tool(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice") or {}
    return choice.get("name") if choice.get("type") == "tool" else None


def _error(provider: Provider, status: int, message: str, retry_after: float | None) -> Reply:
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    if provider == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        return status, headers, {"type": "error", "error": {"type": kind, "message": message}}
    kind = "server_error" if status >= 500 else "invalid_request_error"
    error = {"message": message, "type": kind, "param": None, "code": _OPENAI_CODES.get(status)}
    return status, headers, {"error": error}


def _anthropic_reply(request: LLMRequest, answer: object) -> dict[str, Any]:
    tool = _forced_tool(request.body)
    if isinstance(answer, dict) and tool:
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": "toolu_fake",
            "name": tool,
            "input": answer,
        }
        stop = "tool_use"
    else:
        text, stop = _raw(answer, refusal="refusal", cut_off="max_tokens", done="end_turn")
        block = {"type": "text", "text": text}
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": len(request.user) // 4,
            "cache_read_input_tokens": cached_tokens(request),
            "output_tokens": OUTPUT_TOKENS,
        },
    }


def _openai_reply(request: LLMRequest, answer: object) -> dict[str, Any]:
    text, finish = _raw(answer, refusal="refusal", cut_off="length", done="stop")
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if finish == "refusal":
        message, finish = {"role": "assistant", "content": None, "refusal": text}, "stop"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": len(request.user) // 4 + cached_tokens(request),
            "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": len(request.user) // 4 + cached_tokens(request) + OUTPUT_TOKENS,
            "prompt_tokens_details": {"cached_tokens": cached_tokens(request)},
        },
    }


def cached_tokens(request: LLMRequest) -> int:
    """The usage's cached input tokens: as if the system prompt (shared by every PR) were cached.

    Input tokens are a quarter of the prompt's characters, the user prompt's being fresh; every
    answer spends :data:`OUTPUT_TOKENS`.
    """
    return len(request.system) // 4


def _raw(answer: object, *, refusal: str, cut_off: str, done: str) -> tuple[str, str]:
    """The answer's text and the vendor's stop reason for it."""
    if isinstance(answer, Refusal):
        return answer.message, refusal
    if isinstance(answer, CutOff):
        return answer.partial, cut_off
    return (answer if isinstance(answer, str) else json.dumps(answer)), done
