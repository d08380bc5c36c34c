"""Argo CD's API: ``GET {ARGOCD_URL}/api/v1/applications/{name}``, read for health and sync.

The token goes only into the ``Authorization: Bearer`` header, only to ``ARGOCD_URL`` (an
absolute http(s) URL without credentials, checked by :mod:`jobs.config`): an application name is
checked against Kubernetes' naming rules and quoted as one path segment, so a name derived from
pull request text (``{{ pr.headBranch }}-preview``) can never lead the request, and the token,
elsewhere. No retry: a pass that cannot read Argo CD carries on with ``Unknown`` and the next
pass asks again.

Errors (each with ``kind``, the label it is counted under in ``ai_operator_argocd_errors_total``;
none retryable within the pass, none fatal to it):

    ArgoCDError
    ├── ArgoCDUnreachable       kind "unreachable": host not found, refused, TLS, timeout
    ├── ArgoCDAuthError         kind "auth": HTTP 401 or 403 (the token refused)
    ├── ApplicationMissing      kind "missing": HTTP 404
    ├── ArgoCDUnavailable       kind "unavailable": 5xx, or an answer that is not an application
    └── InvalidApplicationName  kind "name": not a Kubernetes object name (never sent)

Messages name the URL without credentials, never the token.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pydantic import SecretStr

from ai_operator.jobs.clients.argocd.errors import (
    ApplicationMissing,
    ArgoCDAuthError,
    ArgoCDError,
    ArgoCDUnavailable,
    ArgoCDUnreachable,
    InvalidApplicationName,
)
from ai_operator.jobs.clients.network import describe_failure, safe_url
from ai_operator.jobs.policy.argocd import ArgoCDStatus

APPLICATION_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
"""An Argo CD application is a Kubernetes object: a DNS subdomain name, at most 253 characters."""
API_PATH = "/api/v1/applications/"


class ArgoCDClient:
    """Reads applications from one Argo CD API server."""

    def __init__(
        self, base_url: str, token: SecretStr | None, *, timeout_seconds: float = 10.0
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout_seconds
        self.requests = 0

    def application(self, name: str) -> ArgoCDStatus:
        """Health and sync of application ``name`` (raises :class:`ArgoCDError`)."""
        if not APPLICATION_NAME.match(name):
            raise InvalidApplicationName(f"{name[:80]!r} is not an Argo CD application name")
        url = self._base + API_PATH + urllib.parse.quote(name, safe="")
        where = f"Argo CD at {safe_url(url)}"
        request = urllib.request.Request(url, headers=self._headers())  # noqa: S310 - configured
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _http_error(exc.code, where) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            failure = describe_failure(exc, url, self._timeout)
            raise ArgoCDUnreachable(f"{where}: {failure.words}") from exc
        return _status(payload, where)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "ai-operator"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return headers


def _http_error(status: int, where: str) -> ArgoCDError:
    if status in (401, 403):
        return ArgoCDAuthError(f"{where} refused the token (HTTP {status})")
    if status == 404:
        return ApplicationMissing(f"{where}: no such application (HTTP 404)")
    return ArgoCDUnavailable(f"{where} answered HTTP {status}")


def _status(payload: bytes, where: str) -> ArgoCDStatus:
    try:
        application: Any = json.loads(payload)
    except ValueError as exc:
        raise ArgoCDUnavailable(f"{where} answered with a body that is not JSON") from exc
    status = application.get("status") if isinstance(application, dict) else None
    if not isinstance(status, dict):
        raise ArgoCDUnavailable(f"{where} answered without an application's status")
    return ArgoCDStatus(health=_text(status, "health"), sync=_text(status, "sync"))


def _text(status: dict[str, Any], part: str) -> str:
    value = status.get(part)
    found = value.get("status") if isinstance(value, dict) else None
    return found if isinstance(found, str) else "Unknown"
