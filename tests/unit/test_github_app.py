"""GitHub App authentication: a JWT signed with the App's key, installation tokens renewed before
they expire and once on a 401, the App's bot as the operator. Against the sandbox GitHub serving
an App's REST endpoints (tests/github_app.py), with a key generated here."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import structlog
from pydantic import SecretStr

from ai_operator.jobs.clients.github import GitHubAuthError, GitHubClient
from ai_operator.jobs.clients.github.app_auth import InstallationTokens
from ai_operator.jobs.log import redact
from ai_operator.jobs.rules.model import Selector
from tests.github_app import AppKey, FakeGitHubApp, rsa_key
from tests.sandbox import GitHubWorld

KEY = rsa_key()
BOT = "ai-operator-app[bot]"


@pytest.fixture
def app_world() -> GitHubWorld:
    world = GitHubWorld(viewer_login=BOT)
    world.add_repository("acme/web", labels=["auto-merge", "staging"])
    world.add_pull_request("acme/web", number=1, labels=["auto-merge", "staging"])
    return world


@pytest.fixture
def server(app_world: GitHubWorld) -> Iterator[FakeGitHubApp]:
    with FakeGitHubApp(app_world, public_pem=KEY.public_pem) as fake:
        yield fake
    assert fake.invalid_documents == [] and fake.unexpected_errors == []


def tokens(server: FakeGitHubApp, key: AppKey = KEY, **overrides: object) -> InstallationTokens:
    options: dict[str, object] = {"installation_id": 77} | overrides
    return InstallationTokens(
        server.api_url,
        "4242",
        SecretStr(key.private_pem),
        **options,  # type: ignore[arg-type]
    )


def client(server: FakeGitHubApp, source: InstallationTokens) -> GitHubClient:
    return GitHubClient(
        server.url, source, identity=source.identity, mutation_interval_seconds=0, max_retries=0
    )


def test_the_jwt_is_what_github_asks_for(server: FakeGitHubApp) -> None:
    """RS256 with the App's key (verified with its public key): iss the App's id, iat 60 s back,
    exp under 10 minutes ahead."""
    tokens(server).current()
    [claims] = server.record.jwts
    now = time.time()
    assert claims["iss"] == "4242"
    assert now - 62 <= claims["iat"] <= now - 58
    assert claims["exp"] - now <= 600 and claims["exp"] - claims["iat"] <= 600


def test_an_installation_token_is_cached_while_it_is_valid(server: FakeGitHubApp) -> None:
    """Many requests, one token."""
    github = client(server, tokens(server))
    for _ in range(3):
        github.pull_request("acme/web", 1)
    assert len(server.record.issued) == 1


def test_a_token_is_renewed_before_it_expires(server: FakeGitHubApp) -> None:
    """Tokens that live one second are renewed at half their life: no request meets an expired
    one, and GitHub never answers 401."""
    server.token_lifetime = 1.0
    github = client(server, tokens(server))
    deadline = time.monotonic() + 2.6
    while time.monotonic() < deadline:
        github.pull_request("acme/web", 1)
        time.sleep(0.2)
    assert len(server.record.issued) >= 3
    assert server.record.expired_uses == 0
    assert all(r.status == 200 for r in server.requests)


def test_a_token_refused_early_is_renewed_once(server: FakeGitHubApp) -> None:
    """GitHub answers 401 to a token that should still be valid: one new token, the request
    succeeds."""
    github = client(server, tokens(server))
    github.pull_request("acme/web", 1)
    server.revoke_all()
    assert github.pull_request("acme/web", 1).number == 1
    assert len(server.record.issued) == 2


def test_a_token_refused_again_is_an_auth_error_not_a_loop(server: FakeGitHubApp) -> None:
    """Refused, renewed, refused again: GitHubAuthError after one renewal."""
    github = client(server, tokens(server))
    server.accepts = lambda token: False  # type: ignore[method-assign]
    with pytest.raises(GitHubAuthError, match="HTTP 401"):
        github.pull_request("acme/web", 1)
    assert len(server.record.issued) == 2


@pytest.mark.parametrize(
    ("where", "found"),
    [
        pytest.param({"organization": "acme"}, True, id="organization"),
        pytest.param({"repositories": ["acme/web"]}, True, id="first-repository"),
        pytest.param({"organization": "globex"}, False, id="not-installed"),
    ],
)
def test_the_installation_is_found_when_not_given(
    server: FakeGitHubApp, where: dict[str, object], found: bool
) -> None:
    """GET /orgs/{org}/installation, else /repos/{owner}/{repo}/installation."""
    source = tokens(server, installation_id=None, **where)
    if found:
        assert source.current().get_secret_value() == server.record.issued[-1]
    else:
        with pytest.raises(GitHubAuthError, match="the GitHub App is not installed there"):
            source.current()


def test_a_key_github_does_not_know_is_refused_in_one_line(server: FakeGitHubApp) -> None:
    """Another key: GitHub refuses the JWT (401); the message names the URL, never the key."""
    other = rsa_key()
    with pytest.raises(GitHubAuthError) as refused:
        tokens(server, key=other).current()
    assert "refused the GitHub App (HTTP 401)" in str(refused.value)
    assert other.private_pem.splitlines()[1] not in str(refused.value)


def test_text_that_is_no_key_is_a_clear_error() -> None:
    """Not PEM: said in one line, with no part of the text."""
    source = InstallationTokens(
        "http://127.0.0.1:9", "4242", SecretStr("not a key"), installation_id=77
    )
    with pytest.raises(GitHubAuthError, match="not an RSA private key in PEM form"):
        source.current()


def test_the_operator_is_the_apps_bot_found_once(server: FakeGitHubApp) -> None:
    """The identity for people win and the operator's labels: <slug>[bot], one GET /app."""
    github = client(server, tokens(server))
    github.search_pull_requests(["acme/web"], _selector(), 10)
    github.pull_request("acme/web", 1)
    assert github.viewer_login() == BOT
    assert server.record.app_reads == 1


def test_neither_the_key_nor_a_token_reaches_a_log_line(server: FakeGitHubApp) -> None:
    """The key (whole or one line of it), each JWT and each installation token are redacted."""
    github = client(server, tokens(server))
    with structlog.testing.capture_logs() as logs:
        github.pull_request("acme/web", 1)
    token = server.record.issued[0]
    line = f"{token} {KEY.private_pem.splitlines()[2]} {KEY.private_pem}"
    assert token not in redact(line) and KEY.private_pem.splitlines()[2] not in redact(line)
    assert token not in str(logs)


def _selector() -> Selector:
    return Selector.model_validate({"labels": {"include": ["auto-merge"]}})
