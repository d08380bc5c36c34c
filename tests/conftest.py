"""Shared fixtures: the fake GitHub (real schema), the fake model server, and the CLI runner."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests import forks, services
from tests.sandbox import FakeGitHub, FakeLLM, GitHubWorld

ROOT = Path(__file__).resolve().parents[1]
_CACHES = tempfile.TemporaryDirectory(prefix="ai-operator-test-caches-")  # removed at exit
GITHUB_TOKEN = "ghp-test-token-0123456789"
AI_TOKEN = "sk-ant-test-token"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``services`` skip where Prometheus' binaries are missing, except in CI."""
    if item.get_closest_marker("services") is None:
        return
    reason = services.unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run every services test: {reason}")
    pytest.skip(reason)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Leave the root logger and structlog as the test found them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    decisions = logging.getLogger("decision")  # ai_operator.jobs.log gives it a handler of its own
    for handler in list(decisions.handlers):
        decisions.removeHandler(handler)
    decisions.propagate = True
    structlog.reset_defaults()


@pytest.fixture
def world() -> GitHubWorld:
    return GitHubWorld()


@pytest.fixture
def github(world: GitHubWorld) -> Iterator[FakeGitHub]:
    with FakeGitHub(world, token=GITHUB_TOKEN) as server:
        yield server
    assert server.invalid_documents == [], "the product sent documents GitHub's schema rejects"
    assert server.unexpected_errors == [], "the fake GitHub itself failed"


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(token=AI_TOKEN) as server:
        yield server


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def rows(self) -> dict[int, dict[str, Any]]:
        return {row["number"]: row for row in self.json()["results"]}


def cli_env(
    github: FakeGitHub, llm: FakeLLM, provider: str = "anthropic", **extra: str
) -> dict[str, str]:
    """A clean environment pointing the product at the fakes (no variable of the host leaks in).

    Each environment has its own, empty cache directory: runs with the same environment share
    their remembered decisions, as two runs on one machine do, and never see the host's.
    """
    endpoint = llm.anthropic_url if provider == "anthropic" else llm.openai_url
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_GRAPHQL_URL": github.url,
        "GITHUB_MUTATION_INTERVAL_SECONDS": "0",
        "AI_TOKEN": AI_TOKEN,
        "AI_ENDPOINT": endpoint,
        "AI_PROVIDER": provider,
        "AI_MODEL": "claude-sonnet-5" if provider == "anthropic" else "gpt-4.1-mini",
        "LOG_FORMAT": "json",
        "XDG_CACHE_HOME": tempfile.mkdtemp(dir=_CACHES.name),
        # No write budget unless a test sets one: the tests of write pacing do.
        "GITHUB_WRITES_PER_PASS": "10000",
        "GITHUB_WRITES_PER_HOUR": "100000",
    }
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: Mapping[str, str], timeout: float = 60, stdin: str | None = None
) -> CliResult:
    """Run ``ai-operator ARGS`` as a user would (``stdin``: its input).

    A process of its own with exactly ``env``, forked from one that imported the product
    (:mod:`tests.forks`; ``AI_OPERATOR_TEST_SUBPROCESS=1``: a subprocess, started from scratch).
    """
    done = forks.run_command(args, env, ROOT, timeout=timeout, stdin=stdin)
    return CliResult(done.code, done.stdout or "", done.stderr)


@pytest.fixture(scope="session", autouse=True)
def _fork_server() -> Iterator[None]:
    """The worker's fork server (started by the first command) is stopped with the session."""
    yield
    forks.close_shared()
