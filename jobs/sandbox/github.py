"""A fake GitHub GraphQL API on 127.0.0.1 that executes GitHub's real schema over a test world.

    with FakeGitHub(world) as github:          # world: GitHubWorld, built by the test
        client = make_client(github.url, token="ghp-test-token")
        ...
        assert github.mutations == ["addComment"]
        assert not github.invalid_documents

Every document is validated against GitHub's pinned schema; an invalid one is answered like GitHub
(HTTP 200, ``{"errors": [...]}``) and recorded in ``invalid_documents``. Faults are the tests'
business: :meth:`FakeGitHub.plan` is where a subclass answers a request in GitHub's stead (a 5xx,
a rate limit, a dropped connection, a mutation carried out whose answer is lost); the sandbox
itself plans none, so the demo always meets a healthy GitHub. Authentication accepts
``bearer``/``token`` with the configured token, else 401 "Bad credentials". Recorded requests never
hold the token. This module is the HTTP face only: the world lives in ``github_world``, the schema
execution in ``github_graphql``, the search syntax in ``github_search``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast

from ai_operator.jobs.sandbox.github_graphql import (
    GitHubGraph,
    GraphQLAnswer,
    RateLimitBudget,
    answer,
    operation_facts,
)
from ai_operator.jobs.sandbox.github_world import (
    FakeCheck,
    FakeComment,
    FakePullRequest,
    GitHubWorld,
)
from ai_operator.jobs.sandbox.serving import LoopbackService

__all__ = [
    "FakeCheck",
    "FakeComment",
    "FakeGitHub",
    "FakePullRequest",
    "GitHubWorld",
    "PlannedAnswer",
    "RecordedRequest",
]

GRAPHQL_PATHS = ("/graphql", "/api/graphql")
DOCS = "https://docs.github.com/graphql"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received (``status`` 0 when the connection was dropped)."""

    operation_name: str | None
    query: str
    variables: dict[str, Any]
    status: int
    is_mutation: bool = False
    mutation_fields: tuple[str, ...] = ()
    errors: list[dict[str, Any]] = field(default_factory=list)
    fault: FaultKind | None = None


FaultKind = Literal["fail", "rate_limit", "drop", "lost"]


@dataclass(frozen=True)
class PlannedAnswer:
    """An answer given in GitHub's stead (see :meth:`FakeGitHub.plan`)."""

    kind: FaultKind
    """How :class:`RecordedRequest` names it."""
    status: int
    """0: the connection is closed without an answer."""
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    apply_first: bool = False
    """Carry the request out first, then answer this (a write whose answer is lost); a request
    that GitHub refuses anyway gets its refusal."""


@dataclass
class _Response:
    status: int
    body: dict[str, Any] | None  # None: drop the connection
    headers: dict[str, str] = field(default_factory=dict)


class FakeGitHub(LoopbackService):
    """GitHub's GraphQL endpoint over ``world``; start with ``with`` or ``start()``/``stop()``."""

    def __init__(
        self,
        world: GitHubWorld | None = None,
        token: str = "ghp-test-token",  # noqa: S107 - a loopback stand-in credential
    ) -> None:
        self.world = world if world is not None else GitHubWorld()
        self.requests: list[RecordedRequest] = []
        self.mutations: list[str] = []
        self.invalid_documents: list[str] = []
        self.unexpected_errors: list[dict[str, Any]] = []  # errors the fake itself caused
        self.budget = RateLimitBudget()
        self._token = token
        self._lock = threading.Lock()
        self._request_count = 0
        self._graph = GitHubGraph(self.world, self.budget, self.mutations.append)

    # Lifecycle.

    def _new_server(self) -> ThreadingHTTPServer:
        return _GitHubServer(self)

    def _closing(self, server: ThreadingHTTPServer) -> None:
        cast(_GitHubServer, server).close_connections()  # kept-alive connections end now

    @property
    def url(self) -> str:
        """The GraphQL endpoint, ``http://127.0.0.1:PORT/graphql``."""
        return f"http://127.0.0.1:{self.port}/graphql"

    # Faults and counters.

    def plan(self, payload: dict[str, Any] | None, request_id: str) -> PlannedAnswer | None:
        """The answer to give instead of GitHub's own, if any: the hook of the tests' faults.

        Called once per request to a GraphQL path, before authentication; the sandbox plans none.
        """
        return None

    def reset_counters(self) -> None:
        """Forget recorded requests, mutations, invalid documents and spent rate limit."""
        with self._lock:
            self.requests.clear()
            self.mutations.clear()
            self.invalid_documents.clear()
            self.unexpected_errors.clear()
            self.budget.used = 0

    # Requests.

    def handle(self, path: str, authorization: str | None, raw_body: bytes) -> _Response:
        """Answer one POST as GitHub would, and record it."""
        payload = _decode(raw_body)
        if path.split("?", maxsplit=1)[0] not in GRAPHQL_PATHS:
            return _Response(*self.rest("POST", path, authorization, payload))
        with self._lock:
            self._request_count += 1
            request_id = f"F4KE:{self._request_count:06X}"
        planned = self.plan(payload, request_id)
        if planned is not None and not planned.apply_first:
            response = _Response(planned.status, planned.body, dict(planned.headers))
            self._record(payload or {}, response, None, planned.kind)
            return response
        if not self._authorized(authorization):
            response = _Response(
                401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
            )
        elif payload is None:
            response = _Response(
                400, {"message": "Problems parsing JSON", "documentation_url": DOCS}
            )
        else:
            return self._execute(payload, request_id, planned)
        self._record(payload or {}, response, None, None)
        return response

    def _execute(
        self, payload: dict[str, Any], request_id: str, planned: PlannedAnswer | None
    ) -> _Response:
        with self.world.lock:
            self.budget.spend()
            result = answer(self._graph, payload)
        if planned is not None and not result.errors:  # GitHub's refusal would be the answer
            lost = _Response(planned.status, planned.body, dict(planned.headers))
            self._record(payload, lost, result, planned.kind)
            return lost
        response = _Response(200, result.body, {"x-github-request-id": request_id})
        self._record(payload, response, result, None)
        return response

    def _authorized(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").strip().partition(" ")
        return scheme.lower() in ("bearer", "token") and self.accepts(token.strip())

    def rest(
        self, method: str, path: str, authorization: str | None, payload: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        """Answer a REST request (any path but GraphQL's): the sandbox serves none (404).

        The hook where tests serve GitHub's REST endpoints on the same server (a GitHub App's).
        """
        return 404, {"message": "Not Found", "documentation_url": DOCS}

    def accepts(self, token: str) -> bool:
        """Whether ``token`` is valid now: the configured one (tests add a GitHub App's)."""
        return token == self._token

    def _record(
        self,
        payload: dict[str, Any],
        response: _Response,
        result: GraphQLAnswer | None,
        fault: FaultKind | None,
    ) -> None:
        query = payload.get("query")
        query = query if isinstance(query, str) else ""
        operation_name = payload.get("operationName")
        facts = operation_facts(query, operation_name if isinstance(operation_name, str) else None)
        variables = payload.get("variables")
        recorded = RecordedRequest(
            operation_name=facts.name,
            query=query,
            variables=dict(variables) if isinstance(variables, dict) else {},
            status=response.status,
            is_mutation=facts.is_mutation,
            mutation_fields=facts.mutation_fields,
            errors=result.errors if result else [],
            fault=fault,
        )
        with self._lock:
            self.requests.append(recorded)
            if result is not None and result.invalid:
                self.invalid_documents.append(query)
            if result is not None:
                self.unexpected_errors.extend(result.unexpected_errors)

    def response_headers(self) -> dict[str, str]:
        """Headers GitHub sends with every API answer."""
        return {
            "content-type": "application/json; charset=utf-8",
            "x-github-media-type": "github.v4; format=json",
            "x-oauth-scopes": "repo",
            **self.budget.headers(),
        }


def _decode(raw_body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(raw_body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


class _GitHubServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once (socketserver keeps 5)

    def __init__(self, fake: FakeGitHub) -> None:
        super().__init__(("127.0.0.1", 0), _GitHubHandler)
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _GitHubHandler(BaseHTTPRequestHandler):
    server_version = "GitHub.com"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each answer stalls ~40 ms (Nagle + delayed ACK)

    def version_string(self) -> str:
        return self.server_version

    @property
    def github(self) -> _GitHubServer:
        return cast(_GitHubServer, self.server)

    def setup(self) -> None:
        super().setup()
        with self.github.connections_lock:
            self.github.connections.add(self.connection)

    def finish(self) -> None:
        with self.github.connections_lock:
            self.github.connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw_body = self.rfile.read(length) if length > 0 else b""
        fake = self.github.fake
        response = fake.handle(self.path, self.headers.get("authorization"), raw_body)
        if response.body is None:
            self.close_connection = True
            return
        self._send(response.status, response.body, {**fake.response_headers(), **response.headers})

    def do_GET(self) -> None:
        fake = self.github.fake
        status, body = fake.rest("GET", self.path, self.headers.get("authorization"), None)
        self._send(status, body, fake.response_headers())

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        encoded = json.dumps(body).encode()
        self.send_response(status)
        headers.setdefault("content-type", "application/json; charset=utf-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read ``FakeGitHub.requests`` instead."""
