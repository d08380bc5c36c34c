"""The steps' Kubernetes API client: the few objects a pipeline pod reads and writes.

The fetch and act steps read and write the rule's outcome index (ConfigMaps,
:mod:`jobs.clients.outcome_index`), act takes the rule's Lease (:mod:`jobs.clients.rule_lease`),
and the exit handler reads its own Workflow (:mod:`jobs.clients.argo_workflow`).

Where the API is: inside a pod, the service account's (``KUBERNETES_SERVICE_HOST``/``_PORT``,
its token and CA); else ``AI_OPERATOR_KUBERNETES_API`` (a URL such as ``kubectl proxy``'s
``http://127.0.0.1:8001``, sent no credentials).

Errors: :class:`APIUnreadable` (an object could not be read) and its subclass
:class:`APIRequestError` (the API unreachable, or refusing, chained). Every caller goes on
without what it wanted, which costs savings, never safety. The token is sent only in the
``Authorization`` header, is registered with the log redactor, and never appears in a message.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jobs.log import add_secrets

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API_URL_VARIABLE = "AI_OPERATOR_KUBERNETES_API"
TIMEOUT_SECONDS = 10.0


class APIUnreadable(Exception):
    """An object could not be read from the API; the message says why (never a credential)."""


class APIRequestError(APIUnreadable):
    """A request failed: the API unreachable, or refusing (never a credential in the message)."""


class KubernetesAPI:
    """The steps' requests: the outcome index's ConfigMaps, the rule's Lease, the run's Workflow."""

    def __init__(self, url: str, *, token: str | None = None, ca_file: str | None = None) -> None:
        if urlsplit(url).scheme not in {"http", "https"}:
            raise APIRequestError(f"{API_URL_VARIABLE} must be an http(s) URL, not {url!r}")
        self.url = url.rstrip("/")
        self._token = token
        self._context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> KubernetesAPI | None:
        """The API of the pod's service account, else ``AI_OPERATOR_KUBERNETES_API``; or None."""
        override = env.get(API_URL_VARIABLE, "").strip()
        if override:
            return cls(override)
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
        token_file = SERVICE_ACCOUNT / "token"
        if not (host and port and token_file.is_file()):
            return None
        server = f"[{host}]" if ":" in host else host
        token = token_file.read_text(encoding="utf-8").strip()
        add_secrets(token)  # never logged, whatever a message quotes
        return cls(f"https://{server}:{port}", token=token, ca_file=str(SERVICE_ACCOUNT / "ca.crt"))

    def get(self, path: str, what: str) -> dict[str, Any] | None:
        """The JSON object at ``path``; None when it does not exist (raises APIUnreadable)."""
        try:
            document = self._send("GET", path)[1]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise APIUnreadable(f"reading {what} answered HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise APIUnreadable(f"reading {what} failed: {exc}") from exc
        return document if isinstance(document, dict) else {}

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One request: ``(status, JSON body)``; 404 and 409 are answers, not errors.

        Raises APIRequestError when the API cannot be reached or refuses otherwise.
        """
        try:
            status, document = self._send(method, path, body)
            return status, document if isinstance(document, dict) else {}
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 409):
                return exc.code, {}
            raise APIRequestError(f"{method} {path} answered HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise APIRequestError(f"{method} {path} failed: {exc}") from exc

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """``(status, decoded JSON)`` of one request; urllib's errors propagate to the caller."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - http(s) only
            self.url + path, data=data, method=method, headers=headers
        )
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        with urllib.request.urlopen(  # noqa: S310 - the API server's URL, http(s) only
            request, timeout=TIMEOUT_SECONDS, context=self._context
        ) as answer:
            return answer.status, json.load(answer)
