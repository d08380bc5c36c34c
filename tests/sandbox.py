"""The sandbox's fakes with the faults tests inject: test code, outside the installed package.

The package's sandbox (``jobs.sandbox``) is a healthy GitHub and model on loopback, as the demo
needs them. Here each fake gains queues of planned answers, served in order to the next requests
through the fakes' ``plan`` hook:

- :class:`FakeGitHub`: ``fail_next`` (5xx), ``rate_limit_next`` (primary or secondary limit),
  ``drop_next`` (connection closed without an answer); ``lose_answer_of(field)`` carries out the
  next mutation ``field`` and then loses its answer (5xx, or a dropped connection): a write
  GitHub applied although the client saw it fail; ``fail_mutation(field)`` refuses it with a 5xx
  without applying it; ``limit_writes`` allows that many content-creating requests (mutations),
  then answers each further one 403 with ``retry-after`` (GitHub's secondary limit), applying
  nothing, until ``restore_writes`` (the time a limit lasts, passed).
- :class:`FakeLLM`: ``answer_next`` (raw answers: a dict, a str, Refusal, CutOff or Malformed),
  ``fail_next`` (each vendor's error body; default status Anthropic 529, OpenAI 500, optional
  ``retry-after``), ``delay_next`` (hold an answer this long).

Everything else the tests use from the sandbox is re-exported, under the same names.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from ai_operator.jobs.sandbox import github as sandbox_github
from ai_operator.jobs.sandbox import llm as sandbox_llm
from ai_operator.jobs.sandbox.github import (
    FakeCheck,
    FakeComment,
    FakePullRequest,
    GitHubWorld,
    PlannedAnswer,
    RecordedRequest,
)
from ai_operator.jobs.sandbox.github_graphql import operation_facts
from ai_operator.jobs.sandbox.llm import (
    OUTPUT_TOKENS,
    CutOff,
    LLMRequest,
    Malformed,
    Provider,
    Refusal,
    cached_tokens,
    default_brain,
    pull_request_facts,
)

__all__ = [
    "OUTPUT_TOKENS",
    "CutOff",
    "FakeCheck",
    "FakeComment",
    "FakeGitHub",
    "FakeLLM",
    "FakePullRequest",
    "GitHubWorld",
    "LLMRequest",
    "Malformed",
    "RecordedRequest",
    "Refusal",
    "cached_tokens",
    "default_brain",
    "pull_request_facts",
]

DOCS = "https://docs.github.com/graphql"
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)
PRIMARY_LIMIT_MESSAGE = "API rate limit exceeded for user ID 1."
SERVER_ERROR_MESSAGE = (
    "Something went wrong while executing your query. This may be the result of a timeout, or it "
    "could be a GitHub bug. Please include `{request_id}` when reporting this issue."
)


@dataclass(frozen=True)
class _Fault:
    kind: Literal["fail", "rate_limit", "drop"]
    status: int = 0
    retry_after: int | None = None
    reset_in: int | None = None


class FakeGitHub(sandbox_github.FakeGitHub):
    """The sandbox's GitHub, with faults queued for the next requests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._faults: deque[_Fault] = deque()
        # mutation field -> (status to answer, whether the mutation is applied first), in order
        self._lost_answers: dict[str, list[tuple[int, bool]]] = {}
        self._fault_lock = threading.Lock()
        self._writes_left: int | None = None
        self._write_retry_after = 120
        self.writes_refused = 0

    def fail_next(self, count: int = 1, status: int = 502) -> None:
        """Answer the next ``count`` requests with ``status`` (5xx) and a GitHub-like body."""
        self._queue(count, _Fault("fail", status))

    def rate_limit_next(
        self,
        count: int = 1,
        retry_after: int | None = 1,
        reset_in: int | None = None,
        status: int = 403,
    ) -> None:
        """Rate-limit the next ``count`` requests.

        With ``reset_in`` the primary limit is exhausted (``x-ratelimit-remaining: 0`` and
        ``x-ratelimit-reset``), else it is a secondary limit; ``retry-after`` is sent unless None.
        """
        self._queue(count, _Fault("rate_limit", status, retry_after, reset_in))

    def drop_next(self, count: int = 1) -> None:
        """Close the connection of the next ``count`` requests without answering."""
        self._queue(count, _Fault("drop"))

    def lose_answer_of(self, mutation: str, status: int = 502, count: int = 1) -> None:
        """Apply the next ``count`` mutations ``mutation``, then answer ``status`` (0: drop)."""
        with self._fault_lock:
            self._lost_answers.setdefault(mutation, []).extend([(status, True)] * count)

    def fail_mutation(self, mutation: str, status: int = 502, count: int = 1) -> None:
        """Answer the next ``count`` mutations ``mutation`` with ``status``, applying nothing."""
        with self._fault_lock:
            self._lost_answers.setdefault(mutation, []).extend([(status, False)] * count)

    def limit_writes(self, allowed: int, retry_after: int = 120) -> None:
        """Allow ``allowed`` more mutations; refuse the rest (403, ``retry-after``) until restored."""
        with self._fault_lock:
            self._writes_left, self._write_retry_after = allowed, retry_after

    def restore_writes(self, allowed: int | None = None) -> None:
        """The limit's window passed: ``allowed`` more mutations (None: no limit any more)."""
        with self._fault_lock:
            self._writes_left = allowed

    def _over_write_limit(self, payload: dict[str, Any]) -> bool:
        query, name = payload.get("query"), payload.get("operationName")
        facts = operation_facts(
            query if isinstance(query, str) else "", name if isinstance(name, str) else None
        )
        if not facts.is_mutation:
            return False
        with self._fault_lock:
            if self._writes_left is None:
                return False
            if self._writes_left > 0:
                self._writes_left -= 1
                return False
            self.writes_refused += 1
            return True

    def _queue(self, count: int, fault: _Fault) -> None:
        with self._fault_lock:
            self._faults.extend([fault] * count)

    def plan(self, payload: dict[str, Any] | None, request_id: str) -> PlannedAnswer | None:
        with self._fault_lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            return self._fault_answer(fault, request_id)
        if payload is not None and self._over_write_limit(payload):
            limit = _Fault("rate_limit", 403, retry_after=self._write_retry_after)
            return self._rate_limited(limit, request_id)
        return self._lost_answer(payload, request_id) if payload is not None else None

    def _lost_answer(self, payload: dict[str, Any], request_id: str) -> PlannedAnswer | None:
        query, name = payload.get("query"), payload.get("operationName")
        facts = operation_facts(
            query if isinstance(query, str) else "", name if isinstance(name, str) else None
        )
        with self._fault_lock:
            for field_name in facts.mutation_fields:
                planned = self._lost_answers.get(field_name)
                if planned:
                    status, applied = planned.pop(0)
                    message = SERVER_ERROR_MESSAGE.format(request_id=request_id)
                    body = {"data": None, "errors": [{"message": message}]} if status else None
                    kind: Literal["lost", "fail"] = "lost" if applied else "fail"
                    return PlannedAnswer(kind, status, body, apply_first=applied)
        return None

    def _fault_answer(self, fault: _Fault, request_id: str) -> PlannedAnswer:
        if fault.kind == "drop":
            return PlannedAnswer("drop", 0)
        if fault.kind == "fail":
            message = SERVER_ERROR_MESSAGE.format(request_id=request_id)
            return PlannedAnswer(
                "fail", fault.status, {"data": None, "errors": [{"message": message}]}
            )
        return self._rate_limited(fault, request_id)

    def _rate_limited(self, fault: _Fault, request_id: str) -> PlannedAnswer:
        headers = self.budget.headers()
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        if fault.reset_in is not None:
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-used"] = str(self.budget.limit)
            headers["x-ratelimit-reset"] = str(int(time.time()) + fault.reset_in)
            message, anchor = PRIMARY_LIMIT_MESSAGE, "#primary-rate-limit"
        else:
            message, anchor = (
                SECONDARY_LIMIT_MESSAGE.format(request_id=request_id),
                "#secondary-rate-limits",
            )
        if fault.status == 200:
            body: dict[str, Any] = {"errors": [{"type": "RATE_LIMITED", "message": message}]}
        else:
            docs = f"{DOCS}/overview/rate-limits-and-node-limits-for-the-graphql-api{anchor}"
            body = {"message": message, "documentation_url": docs}
        return PlannedAnswer("rate_limit", fault.status, body, headers)


class FakeLLM(sandbox_llm.FakeLLM):
    """The sandbox's model server, with answers, failures and delays queued for the next requests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answers: deque[object] = deque()
        self._failures: deque[tuple[int | None, float | None]] = deque()
        self._delays: deque[float] = deque()
        self._queue_lock = threading.Lock()

    def fail_next(
        self, count: int = 1, status: int | None = None, retry_after: float | None = None
    ) -> None:
        """Fail the next ``count`` requests (default status: Anthropic 529, OpenAI 500)."""
        with self._queue_lock:
            self._failures.extend([(status, retry_after)] * count)

    def answer_next(self, *answers: object) -> None:
        """Queue raw answers: a dict (the JSON answer), a str, Refusal, CutOff or Malformed."""
        with self._queue_lock:
            self._answers.extend(answers)

    def delay_next(self, seconds: float) -> None:
        """Hold the next request this long before answering it."""
        with self._queue_lock:
            self._delays.append(seconds)

    def plan(self, provider: Provider, request: LLMRequest) -> object | None:
        with self._queue_lock:
            delay = self._delays.popleft() if self._delays else 0.0
            failure = self._failures.popleft() if self._failures else None
            queued = self._answers.popleft() if self._answers and failure is None else None
        time.sleep(delay)
        if failure is not None:
            status = failure[0] or (529 if provider == "anthropic" else 500)
            return self.error(provider, status, failure[1])
        return queued
