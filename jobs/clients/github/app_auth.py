"""GitHub App authentication: a JWT signed with the App's key, exchanged for installation tokens.

    jwt = RS256({iss: app id, iat: now - 60 s, exp: now + 9 min}, private key)      (PyJWT)
    POST {GITHUB_API_URL}/app/installations/{id}/access_tokens   (Bearer jwt) -> token, expires_at
    GET  {GITHUB_API_URL}/orgs/{org}/installation | /repos/{owner}/{repo}/installation -> id
    GET  {GITHUB_API_URL}/app                                    (Bearer jwt) -> slug

:class:`InstallationTokens` is the GraphQL transport's token source: it keeps the installation
token, renews it before ``expires_at`` (a margin of at most a minute, less for short-lived
tokens), and once more when GitHub refuses it (401) although it should still be valid. The
operator's identity is the App's bot, ``<slug>[bot]``, read once (:meth:`identity`).

The private key, each JWT and each installation token are registered with the log redactor the
moment they exist, go only into an ``Authorization`` header to ``GITHUB_API_URL`` (and the
installation token to ``GITHUB_GRAPHQL_URL``, on the same server), and never into a message.

Errors are the GitHub boundary's (:mod:`jobs.clients.github.errors`): the App's id or key refused
(401/403) is :class:`GitHubAuthError`; no installation found is :class:`GitHubAuthError` naming
where it looked; the host unreachable is :class:`GitHubUnreachable` or :class:`GitHubUnavailable`.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import jwt
from pydantic import SecretStr

from ai_operator.jobs.clients.github.errors import (
    GitHubAuthError,
    GitHubError,
    GitHubUnavailable,
    GitHubUnreachable,
)
from ai_operator.jobs.clients.network import describe_failure, safe_url
from ai_operator.jobs.log import add_secrets, get_logger

JWT_BACKDATE_SECONDS = 60
"""``iat`` is set this far in the past, for clocks that run behind GitHub's (GitHub's advice)."""
JWT_LIFETIME_SECONDS = 540
"""``exp`` after now: under GitHub's 10-minute maximum, with room for a clock ahead of GitHub's."""
RENEW_MARGIN_SECONDS = 60.0
"""An installation token is renewed this long before it expires (at most half its lifetime)."""
API_VERSION = "2022-11-28"


class InstallationTokens:
    """A GitHub App's installation tokens, renewed as they near expiry; thread-safe."""

    def __init__(
        self,
        api_url: str,
        app_id: str,
        private_key: SecretStr,
        *,
        installation_id: int | None = None,
        organization: str | None = None,
        repositories: Sequence[str] = (),
        timeout_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api_url.rstrip("/")
        self._app_id = app_id
        self._key = private_key
        self._installation_id = installation_id
        self._organization = organization
        self._repositories = tuple(repositories)
        self._timeout = timeout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._issued_at = 0.0
        self._expires_at = 0.0
        self._slug: str | None = None
        self.issued = 0
        """Installation tokens obtained so far."""
        key = private_key.get_secret_value()
        add_secrets(key, *key.splitlines())  # a line of it quoted alone is redacted too

    def current(self) -> SecretStr:
        """A token valid for at least the renewal margin (raises GitHubError)."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at():
                self._token = self._issue()
            return self._token

    def refused(self, token: SecretStr) -> bool:
        """GitHub refused ``token`` (401): renew once; True when a new token is to be tried."""
        with self._lock:
            if self._token is None or token.get_secret_value() != self._token.get_secret_value():
                return True  # another thread renewed it meanwhile: try the new one
            self._token = self._issue()
            return True

    def identity(self) -> str:
        """The App's bot login, ``<slug>[bot]``: the operator's identity (read once)."""
        with self._lock:
            if self._slug is None:
                app = self._request("GET", "/app", self._jwt())
                slug = app.get("slug") if isinstance(app, dict) else None
                if not isinstance(slug, str) or not slug:
                    raise GitHubUnavailable(
                        f"{self._where('/app')} answered without the App's slug"
                    )
                self._slug = slug
            return f"{self._slug}[bot]"

    def _renew_at(self) -> float:
        margin = min(RENEW_MARGIN_SECONDS, (self._expires_at - self._issued_at) / 2)
        return self._expires_at - margin

    def _issue(self) -> SecretStr:
        app_jwt = self._jwt()
        installation = self._installation(app_jwt)
        path = f"/app/installations/{installation}/access_tokens"
        answer = self._request("POST", path, app_jwt)
        token = answer.get("token") if isinstance(answer, dict) else None
        expires = answer.get("expires_at") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token or not isinstance(expires, str):
            raise GitHubUnavailable(f"{self._where(path)} answered without a token")
        add_secrets(token)
        self._issued_at = self._clock()
        self._expires_at = _timestamp(expires, self._where(path))
        self.issued += 1
        get_logger("github").info(
            "GitHub App installation token issued",
            installation=installation,
            expires_at=expires,
        )
        return SecretStr(token)

    def _installation(self, app_jwt: str) -> int:
        if self._installation_id is None:
            self._installation_id = self._discover(app_jwt)
        return self._installation_id

    def _discover(self, app_jwt: str) -> int:
        """The installation on the organization, else on the first repository."""
        if self._organization:
            places = [f"/orgs/{_segment(self._organization)}/installation"]
        else:
            places = [
                f"/repos/{_segment(owner)}/{_segment(name)}/installation"
                for owner, _, name in (r.partition("/") for r in self._repositories[:1])
            ]
        if not places:
            raise GitHubAuthError(
                "GITHUB_APP_INSTALLATION_ID is not set and there is no GITHUB_ORGANIZATION or "
                "repository to find the App's installation by"
            )
        try:
            answer = self._request("GET", places[0], app_jwt)
        except GitHubAuthError as exc:
            raise GitHubAuthError(f"the GitHub App is not installed there: {exc}") from exc
        found = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(found, int):
            raise GitHubUnavailable(f"{self._where(places[0])} answered without an installation id")
        return found

    def _jwt(self) -> str:
        now = int(self._clock())
        claims = {
            "iat": now - JWT_BACKDATE_SECONDS,
            "exp": now + JWT_LIFETIME_SECONDS,
            "iss": self._app_id,
        }
        try:
            token = jwt.encode(claims, self._key.get_secret_value(), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            # The key's text is never part of the message.
            raise GitHubAuthError(
                "the GitHub App's private key is not an RSA private key in PEM form "
                f"({type(exc).__name__})"
            ) from None
        add_secrets(token)
        return token

    def _where(self, path: str) -> str:
        return f"GitHub at {safe_url(self._api + path)}"

    def _request(self, method: str, path: str, app_jwt: str) -> Any:
        url = self._api + path
        request = urllib.request.Request(  # noqa: S310 - the configured GITHUB_API_URL
            url,
            method=method,
            headers={
                "Authorization": f"Bearer {app_jwt}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "ai-operator",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, self._where(path)) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            failure = describe_failure(exc, url, self._timeout)
            kind = GitHubUnavailable if failure.transient else GitHubUnreachable
            raise kind(f"{self._where(path)}: {failure.words}") from exc
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise GitHubUnavailable(
                f"{self._where(path)} answered with a body that is not JSON"
            ) from exc


def _http_error(exc: urllib.error.HTTPError, where: str) -> GitHubError:
    try:
        body = json.loads(exc.read() or b"{}")
        reason = str(body.get("message", ""))[:200] if isinstance(body, dict) else ""
    except (ValueError, OSError):
        reason = ""
    finally:
        exc.close()
    reason = reason or "no reason given"
    if exc.code in (401, 403, 404):
        return GitHubAuthError(f"{where} refused the GitHub App (HTTP {exc.code}): {reason}")
    return GitHubUnavailable(f"{where} answered HTTP {exc.code}: {reason}")


def _segment(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _timestamp(text: str, where: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise GitHubUnavailable(f"{where} answered an expiry that is not a time") from None
