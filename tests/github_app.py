"""GitHub App authentication on the sandbox GitHub: GitHub's REST endpoints for an App, test code.

:class:`FakeGitHubApp` is the tests' sandbox GitHub (GraphQL on GitHub's real schema) that also
serves, on the same server as GitHub.com and GitHub Enterprise do, the REST endpoints an App
authenticates with:

    POST /app/installations/{id}/access_tokens   verifies the JWT (RS256, with the App's public
                                                 key; iss, iat, exp within 10 minutes) and issues
                                                 an installation token valid ``token_lifetime``
    GET  /app                                    the App (its slug), for a valid JWT
    GET  /orgs/{org}/installation                the installation of an owner the App is on
    GET  /repos/{owner}/{repo}/installation

GraphQL then accepts exactly the installation tokens not yet expired (401 "Bad credentials"
otherwise), so a token that expires during a pass proves the client renews it. :func:`rsa_key`
generates the App's key pair with ``cryptography``.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.sandbox import FakeGitHub

DOCS = "https://docs.github.com/rest"
_ACCESS_TOKENS = re.compile(r"^/app/installations/(?P<id>\d+)/access_tokens$")
_ORG = re.compile(r"^/orgs/(?P<owner>[^/]+)/installation$")
_REPO = re.compile(r"^/repos/(?P<owner>[^/]+)/[^/]+/installation$")


@dataclass(frozen=True)
class AppKey:
    """An App's private key (PEM text, what ``GITHUB_APP_PRIVATE_KEY`` holds) and public key."""

    private_pem: str
    public_pem: str


def rsa_key() -> AppKey:
    """A fresh 2048-bit RSA key pair, as GitHub generates an App's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return AppKey(private, public)


@dataclass
class AppRecord:
    """What the fake saw of the App's authentication."""

    issued: list[str] = field(default_factory=list)
    """Installation tokens issued, in order."""
    refused_jwts: list[str] = field(default_factory=list)
    """Why each refused JWT was refused."""
    expired_uses: int = 0
    """GraphQL requests refused because their installation token had expired."""
    paths: list[str] = field(default_factory=list)
    """Every REST path requested, as sent."""
    app_reads: int = 0
    """Requests for the App itself (``GET /app``: its slug)."""
    jwts: list[dict[str, Any]] = field(default_factory=list)
    """The claims of every JWT that verified."""


class FakeGitHubApp(FakeGitHub):
    """The sandbox GitHub, with a GitHub App's REST endpoints and its installation tokens."""

    def __init__(
        self,
        *args: Any,
        app_id: str = "4242",
        slug: str = "ai-operator-app",
        public_pem: str,
        installation_id: int = 77,
        installed_on: tuple[str, ...] = ("acme",),
        token_lifetime: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.app_id = app_id
        self.slug = slug
        self.installation_id = installation_id
        self.installed_on = {owner.casefold() for owner in installed_on}
        self.token_lifetime = token_lifetime
        self.record = AppRecord()
        self._public = public_pem
        self._expiry: dict[str, float] = {}
        self._app_lock = threading.Lock()

    @property
    def api_url(self) -> str:
        """The REST API's base URL (what ``GITHUB_API_URL`` names)."""
        return self.url.removesuffix("/graphql")

    def accepts(self, token: str) -> bool:
        """An installation token not yet expired (the configured token too)."""
        with self._app_lock:
            expires = self._expiry.get(token)
            if expires is not None and time.time() >= expires:
                self.record.expired_uses += 1
                return False
        return expires is not None or super().accepts(token)

    def rest(
        self, method: str, path: str, authorization: str | None, payload: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        """GitHub's App endpoints (under ``/api/v3`` too: GitHub Enterprise Server's REST base);
        401 for a JWT that does not verify."""
        path = path.split("?", 1)[0]
        with self._app_lock:
            self.record.paths.append(path)
        path = path.removeprefix("/api/v3")
        problem = self._jwt_problem(authorization)
        if problem is not None:
            with self._app_lock:
                self.record.refused_jwts.append(problem)
            return 401, {"message": problem, "documentation_url": DOCS, "status": "401"}
        tokens = _ACCESS_TOKENS.match(path)
        if method == "POST" and tokens:
            if int(tokens["id"]) != self.installation_id:
                return 404, {"message": "Not Found", "documentation_url": DOCS}
            return 201, self._issue()
        if method == "GET" and path == "/app":
            with self._app_lock:
                self.record.app_reads += 1
            return 200, {"id": int(self.app_id), "slug": self.slug, "name": self.slug}
        owner = _ORG.match(path) or _REPO.match(path)
        if method == "GET" and owner and owner["owner"].casefold() in self.installed_on:
            return 200, {"id": self.installation_id, "app_id": int(self.app_id)}
        return 404, {"message": "Not Found", "documentation_url": DOCS}

    def _issue(self) -> dict[str, Any]:
        token = "ghs_" + secrets.token_hex(18)
        expires = time.time() + self.token_lifetime
        with self._app_lock:
            self._expiry[token] = expires
            self.record.issued.append(token)
        stamp = datetime.fromtimestamp(expires, UTC).isoformat(timespec="milliseconds")
        return {
            "token": token,
            "expires_at": stamp.replace("+00:00", "Z"),
            "permissions": {"pull_requests": "write", "issues": "write"},
        }

    def _jwt_problem(self, authorization: str | None) -> str | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "A JSON web token could not be decoded"
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
                leeway=1,
            )
        except jwt.PyJWTError as exc:
            return f"A JSON web token could not be decoded ({type(exc).__name__})"
        if str(claims["iss"]) != self.app_id:
            return "Integration not found"
        if claims["exp"] - time.time() > 600 or claims["exp"] - claims["iat"] > 660:
            return "'Expiration time' claim ('exp') is too far in the future"
        if claims["iat"] > time.time() + 1:
            return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        with self._app_lock:
            self.record.jwts.append(claims)
        return None

    def revoke_all(self) -> None:
        """Revoke every installation token issued so far (GitHub answers 401 to them)."""
        with self._app_lock:
            for token in self._expiry:
                self._expiry[token] = 0.0
