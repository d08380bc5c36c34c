"""A failed connection is named at once, in plain words, with the URL; only transient ones retried.

Against servers on 127.0.0.1 (a closed port, a server that accepts and never answers, a fake that
refuses the token) and a name under ``.invalid``, which never resolves (RFC 6761). The resolver is
made to answer ``.invalid`` locally, as RFC 6761 asks of it, so no test waits on a DNS server.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from ai_operator.jobs.clients.ai import make_decision_client
from ai_operator.jobs.clients.ai.errors import AIAuthError, AIUnavailable, AIUnreachable
from ai_operator.jobs.clients.github import (
    GitHubAuthError,
    GitHubClient,
    GitHubUnavailable,
    GitHubUnreachable,
)
from ai_operator.jobs.clients.network import safe_url
from ai_operator.jobs.config import AIConfig
from ai_operator.jobs.log import configure_logging
from ai_operator.jobs.rules.model import AIProvider
from tests.conftest import AI_TOKEN, GITHUB_TOKEN
from tests.sandbox import FakeGitHub, FakeLLM

pytestmark = pytest.mark.usefixtures("restore_logging", "invalid_names_fail_locally")

UNRESOLVABLE = "http://nonexistent.invalid:8080/graphql"
PROVIDERS = [
    pytest.param(AIProvider.ANTHROPIC, id="anthropic"),
    pytest.param(AIProvider.OPENAI, id="openai"),
]


@pytest.fixture
def invalid_names_fail_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.invalid`` is NXDOMAIN without asking a DNS server; every other name as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.rstrip(".").endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self.port = int(self._socket.getsockname()[1])

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self._held.append(connection)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self._held:
            connection.close()
        self._socket.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


@pytest.fixture
def log_lines() -> Callable[[], list[dict[str, Any]]]:
    """What was logged at INFO and above, as JSON objects."""
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


class RecordedSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def github_at(url: str, sleep: RecordedSleep, **options: Any) -> GitHubClient:
    return GitHubClient(url, SecretStr(GITHUB_TOKEN), sleep=sleep, max_retries=2, **options)


# GitHub


def test_github_host_not_found_is_named_at_once_and_not_retried(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    """A name that does not resolve: one attempt, no wait, the host and URL named."""
    sleep = RecordedSleep()
    client = github_at(UNRESOLVABLE, sleep)
    with pytest.raises(GitHubUnreachable) as raised:
        client.viewer_login()
    assert str(raised.value) == (
        "GitHub at http://nonexistent.invalid:8080/graphql: host not found "
        "(nonexistent.invalid does not resolve)"
    )
    assert not raised.value.retryable
    assert (sleep.waits, client.stats.requests) == ([], 1)
    assert log_lines() == []


def test_github_refused_connection_is_retried_and_each_retry_logged(
    closed_port: int, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """A closed port: named, retried with growing waits, each retry an INFO line with its wait."""
    sleep = RecordedSleep()
    url = f"http://127.0.0.1:{closed_port}/graphql"
    with pytest.raises(GitHubUnavailable) as raised:
        github_at(url, sleep, backoff_seconds=0.5).viewer_login()
    assert str(raised.value) == f"GitHub at {url}: connection refused by 127.0.0.1"
    assert raised.value.retryable
    lines = log_lines()
    assert [(line["level"], line["attempt"], line["attempts"]) for line in lines] == [
        ("info", 2, 3),
        ("info", 3, 3),
    ]
    assert [line["wait_seconds"] for line in lines] == [round(w, 1) for w in sleep.waits]
    assert lines[0]["event"].startswith(f"GitHub at {url}: connection refused by 127.0.0.1; ")
    assert "retrying in" in lines[0]["event"]


def test_github_that_never_answers_is_a_timeout(silent: SilentServer) -> None:
    """A server that accepts and hangs: a timeout, in those words, after the retries."""
    sleep = RecordedSleep()
    url = f"http://127.0.0.1:{silent.port}/graphql"
    with pytest.raises(GitHubUnavailable) as raised:
        github_at(url, sleep, timeout_seconds=0.2).viewer_login()
    assert str(raised.value) == f"GitHub at {url}: timeout: no answer within 0.2 s"
    assert len(sleep.waits) == 2


def test_github_refusing_the_token_is_named_without_it(github: FakeGitHub) -> None:
    """A 401: the URL and the status, never the token, and no retry."""
    sleep = RecordedSleep()
    wrong = "test-github-token-that-github-refuses"
    client = GitHubClient(github.url, SecretStr(wrong), sleep=sleep, max_retries=2)
    with pytest.raises(GitHubAuthError) as raised:
        client.viewer_login()
    message = str(raised.value)
    assert message.startswith(f"GitHub at {github.url} refused the token (HTTP 401)")
    assert wrong not in message and GITHUB_TOKEN not in message
    assert sleep.waits == []


def test_credentials_in_the_url_are_never_printed() -> None:
    """User info in a configured URL stays out of every message, even when the URL is refused."""
    url = "https://x-access:s3cr3t-value@nonexistent.invalid/api?key=s3cr3t-value"
    assert safe_url(url) == "https://nonexistent.invalid/api"
    sleep = RecordedSleep()
    with pytest.raises(GitHubUnreachable) as raised:
        github_at(url, sleep).viewer_login()
    assert str(raised.value).startswith("GitHub at https://nonexistent.invalid/api: ")
    assert "s3cr3t-value" not in str(raised.value)
    assert sleep.waits == []


# The model


def model_at(url: str, provider: AIProvider, **overrides: Any) -> Any:
    settings: dict[str, Any] = {
        "provider": provider,
        "base_url": url,
        "model": "a-model",
        "token": SecretStr(AI_TOKEN),
        "temperature": None,
        "max_tokens": 64,
        "timeout_seconds": 5.0,
    }
    return make_decision_client(AIConfig(**(settings | overrides)), max_retries=2)


def ask(client: Any) -> object:
    return client.ask("system", "user", {"type": "object"})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_model_host_not_found_is_not_retried(
    provider: AIProvider, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """A name that does not resolve is named at once; the SDK does not retry it."""
    client = model_at("http://nonexistent.invalid:9/v1", provider)
    with pytest.raises(AIUnreachable) as raised:
        ask(client)
    assert [line for line in log_lines() if "Retrying" in line["event"]] == []  # no SDK retry
    assert str(raised.value) == (
        "could not reach the model endpoint at http://nonexistent.invalid:9/v1: host not found "
        "(nonexistent.invalid does not resolve)"
    )
    assert not raised.value.retryable


@pytest.mark.parametrize("provider", PROVIDERS)
def test_model_refused_connection_is_named(
    provider: AIProvider, closed_port: int, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """A closed port: retried by the SDK (each retry logged at INFO), then named with the URL."""
    url = f"http://127.0.0.1:{closed_port}/v1"
    with pytest.raises(AIUnavailable) as raised:
        ask(model_at(url, provider))
    assert str(raised.value) == (
        f"could not reach the model endpoint at {url}: connection refused by 127.0.0.1"
    )
    retries = [line for line in log_lines() if "Retrying request" in line["event"]]
    assert [line["level"] for line in retries] == ["info", "info"]
    assert all("seconds" in line["event"] for line in retries)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_model_that_never_answers_is_a_timeout(provider: AIProvider, silent: SilentServer) -> None:
    """A server that hangs: a timeout, with the URL."""
    url = f"http://127.0.0.1:{silent.port}/v1"
    with pytest.raises(AIUnavailable) as raised:
        ask(model_at(url, provider, timeout_seconds=0.2))
    assert str(raised.value) == (f"the model endpoint at {url}: timeout: no answer within 0.2 s")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_model_refusing_the_token_is_named_without_it(provider: AIProvider) -> None:
    """A 401: the endpoint's URL and the status, never the token."""
    wrong = "test-model-key-the-endpoint-refuses"
    with FakeLLM(token=AI_TOKEN) as llm:
        url = llm.anthropic_url if provider is AIProvider.ANTHROPIC else llm.openai_url
        with pytest.raises(AIAuthError) as raised:
            ask(model_at(url, provider, token=SecretStr(wrong)))
    message = str(raised.value)
    assert message.startswith(f"the model endpoint at {url} refused the token (HTTP 401)")
    assert wrong not in message


@pytest.mark.parametrize("provider", PROVIDERS)
def test_model_requests_still_go_through_the_environments_proxy(
    provider: AIProvider, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY still applies: the proxy (a closed port here) is tried, not the endpoint's name."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port}")
    with pytest.raises(AIUnavailable) as raised:
        ask(model_at("http://nonexistent.invalid:9/v1", provider))
    assert not isinstance(raised.value, AIUnreachable)


def test_run_stops_at_once_when_githubs_name_does_not_resolve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` says in one line that GitHub's host is not found, at once (no 40 s of retries)."""
    from ai_operator.jobs.cli import run_app
    from ai_operator.pipelines.cli import app

    for name, value in {
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_GRAPHQL_URL": "https://nonexistent.invalid/graphql",
        "AI_TOKEN": AI_TOKEN,
        "AI_ENDPOINT": "http://127.0.0.1:9",
        "AI_PROVIDER": "anthropic",
        "AI_MODEL": "claude-sonnet-5",
        "LOG_FORMAT": "json",
        "XDG_CACHE_HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    code = run_app(app, ["run", "examples/staging-automerge.yaml"])
    assert code == 1
    # One line and nothing else: no retry was logged (each retry is an INFO line on stderr).
    assert capsys.readouterr().err.splitlines() == [
        "error: GitHub at https://nonexistent.invalid/graphql: host not found "
        "(nonexistent.invalid does not resolve)"
    ]


@pytest.fixture
def untrusted_tls(tmp_path: Any) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 whose certificate (self-signed) no client trusts."""
    import http.server
    import shutil
    import ssl
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_github_with_a_refused_certificate_is_named_and_not_retried(untrusted_tls: int) -> None:
    """A certificate the client does not trust: 'TLS failed', once, no retry."""
    sleep = RecordedSleep()
    url = f"https://127.0.0.1:{untrusted_tls}/graphql"
    with pytest.raises(GitHubUnreachable) as raised:
        github_at(url, sleep).viewer_login()
    assert str(raised.value).startswith(
        f"GitHub at {url}: TLS failed: 127.0.0.1's certificate is refused ("
    )
    assert "self-signed" in str(raised.value)
    assert sleep.waits == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_model_with_a_refused_certificate_is_named_and_not_retried(
    provider: AIProvider, untrusted_tls: int, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """The same for the model's endpoint: named at once, and the SDK does not retry it."""
    url = f"https://127.0.0.1:{untrusted_tls}/v1"
    with pytest.raises(AIUnreachable) as raised:
        ask(model_at(url, provider))
    assert str(raised.value).startswith(
        f"could not reach the model endpoint at {url}: TLS failed: 127.0.0.1's certificate is "
        "refused ("
    )
    assert [line for line in log_lines() if "Retrying" in line["event"]] == []
