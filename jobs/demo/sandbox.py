"""The sandbox for the commands that try things without credentials (``backtest``, ``explain``).

:func:`sandbox_github` serves a :class:`~jobs.sandbox.github_world.GitHubWorld` on 127.0.0.1 and
yields the product's real GitHub client pointed at it, with a token made up for the occasion
(registered with the log redactor, like every token); :func:`stand_in` serves the stand-in model
the same way. :func:`on_sandbox` points a rule at the sandbox's repositories, as the demo does.
Every server started here stops when its ``with`` block ends.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydantic import SecretStr

from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.config import AIConfig, Settings
from ai_operator.jobs.log import configure_logging
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.sandbox import standin
from ai_operator.jobs.sandbox.github import FakeGitHub
from ai_operator.jobs.sandbox.github_world import GitHubWorld
from ai_operator.jobs.sandbox.llm import FakeLLM, LLMRequest
from ai_operator.jobs.sandbox.samples import REPOSITORIES

Brain = Callable[[LLMRequest], object]

SANDBOX_GITHUB = "the sandbox GitHub on 127.0.0.1 (sample pull requests, not yours)"


@contextmanager
def sandbox_github(world: GitHubWorld, settings: Settings) -> Iterator[GitHubClient]:
    """The GitHub client of a sandbox serving ``world``, for the ``with`` block's duration."""
    token = secrets.token_urlsafe(24)
    _redact(settings, token)
    with FakeGitHub(world, token=token) as server:
        yield GitHubClient(
            server.url,
            SecretStr(token),
            max_retries=2,
            backoff_seconds=0.05,
            mutation_interval_seconds=0.0,
            timeout_seconds=10.0,
        )


@contextmanager
def stand_in(
    settings: Settings, brain: Brain = standin.standin_brain, model: str = standin.MODEL_NAME
) -> Iterator[AIConfig]:
    """How to reach a model server of the sandbox answering with ``brain`` (the stand-in's)."""
    token = secrets.token_urlsafe(24)
    _redact(settings, token)
    with FakeLLM(brain=brain, token=token) as server:
        yield standin.model_config(server.anthropic_url, token, model)


def on_sandbox(rule: PRReconciliationRule) -> tuple[str, ...]:
    """The sandbox repositories ``rule`` runs on: its own when they are the sandbox's, else all."""
    named = tuple(rule.spec.repositories)
    if named and all(name in REPOSITORIES for name in named):
        return named
    return REPOSITORIES


def _redact(settings: Settings, token: str) -> None:
    configure_logging(settings.log_level, settings.log_format, secrets=(*settings.secrets(), token))
