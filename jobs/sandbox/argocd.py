"""A fake Argo CD API server on 127.0.0.1: ``GET /api/v1/applications/{name}``, as Argo CD answers.

    with FakeArgoCD({"web-staging": ("Healthy", "Synced")}, token="argocd-test-token") as argocd:
        ...  # ARGOCD_URL=argocd.url
        argocd.set("web-staging", "Degraded")   # the application's health changes
        assert argocd.requests == ["web-staging"]

Answers: an application's object with ``status.health.status`` and ``status.sync.status``; 401
without ``Authorization: Bearer <token>`` (when a token is set); 404 for an unknown application,
with Argo CD's error body. Requests are recorded by application name; the token is never
recorded. This module is test and demo scaffolding: the product talks to it over HTTP only.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from ai_operator.jobs.sandbox.serving import LoopbackService

PREFIX = "/api/v1/applications/"


class FakeArgoCD(LoopbackService):
    """Argo CD's application API over ``applications`` (name -> (health, sync))."""

    def __init__(
        self,
        applications: Mapping[str, tuple[str, str]] | None = None,
        token: str | None = None,
    ) -> None:
        self.applications: dict[str, tuple[str, str]] = dict(applications or {})
        self.requests: list[str] = []
        self.status_override: int | None = None
        """Answer every request with this HTTP status (a 5xx, a 403) instead."""
        self._token = token
        self._lock = threading.Lock()

    def set(self, name: str, health: str, sync: str = "Synced") -> None:
        """Give application ``name`` this health and sync status (creating it)."""
        with self._lock:
            self.applications[name] = (health, sync)

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT`` (what ``ARGOCD_URL`` names)."""
        return f"http://127.0.0.1:{self.port}"

    def _new_server(self) -> ThreadingHTTPServer:
        return _Server(self)

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        """The status and body Argo CD would answer ``GET path`` with."""
        if not path.startswith(PREFIX):
            return 404, {"error": "Not Found", "code": 5, "message": "Not Found"}
        name = urllib.parse.unquote(path[len(PREFIX) :].split("?", 1)[0])
        with self._lock:
            self.requests.append(name)
            found = self.applications.get(name)
            override = self.status_override
        if override is not None:
            return override, {"error": "injected", "code": 2, "message": "injected"}
        if self._token is not None and authorization != f"Bearer {self._token}":
            message = "no session information"
            return 401, {"error": message, "code": 16, "message": message}
        if found is None:
            message = f'applications.argoproj.io "{name}" not found'
            return 404, {"error": message, "code": 5, "message": message}
        health, sync = found
        return 200, {
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "default"},
            "status": {"health": {"status": health}, "sync": {"status": sync}},
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeArgoCD) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        fake = cast(_Server, self.server).fake
        status, body = fake.answer(self.path, self.headers.get("authorization"))
        encoded = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read ``FakeArgoCD.requests``."""
