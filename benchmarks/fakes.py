"""The world and fake servers the benchmarks run against.

The fakes (GitHub on its real schema, a model server with a fixed latency) run in a child process
started with ``serve_fakes`` as its target: their work then neither shares the measured process's
interpreter nor shows in its memory. This module is what that child imports, so it imports the
fakes and the rule model only, never the product's clients or SDKs (the child starts in a fraction
of a second). It sends nothing anywhere but loopback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ai_operator.jobs.rules.model import DEFAULT_ESCALATION_LABEL
from ai_operator.jobs.sandbox.github import FakeCheck, FakeGitHub, GitHubWorld
from ai_operator.jobs.sandbox.llm import FakeLLM, LLMRequest, default_brain

GITHUB_TOKEN = "ghp-benchmark-token-0123456789"  # the fakes' own tokens
AI_TOKEN = "sk-ant-bench-token"
COVERED_LABELS = ("auto-merge", "staging")
COVERED_SLOTS = frozenset({0, 3, 6})  # of every ten pull requests: 30% covered
PARTLY_LABELLED_SLOTS = frozenset({1, 4})  # "auto-merge" alone: listed by the naive pass, skipped


# --- the world ---------------------------------------------------------------------------------


def _situation(name: str) -> dict[str, Any]:
    """The facts of one kind of pull request (fresh objects: the world mutates them)."""
    situations: dict[str, dict[str, Any]] = {
        "green": {},
        "pending": {
            "rollup_state": "PENDING",
            "checks": [FakeCheck("ci", conclusion=None, status="IN_PROGRESS")],
        },
        "failing": {"rollup_state": "FAILURE", "checks": [FakeCheck("ci", conclusion="FAILURE")]},
        "conflicting": {"mergeable": "CONFLICTING", "merge_state_status": "DIRTY"},
        "obsolete": {"title": "[close] Obsolete experiment"},
    }
    return situations[name]


# Ten in a row: 40% green, 20% CI running, 20% CI failing, 10% conflicting, 10% to be closed.
SITUATIONS = (
    "green", "pending", "failing", "conflicting", "green",
    "obsolete", "pending", "green", "failing", "green",
)  # fmt: skip


def repository_names(count: int) -> list[str]:
    """``acme/service-1`` ... ``acme/service-<count>``."""
    return [f"acme/service-{i + 1}" for i in range(count)]


def labels_of(index: int) -> list[str]:
    """The labels of the ``index``-th pull request."""
    slot = index % 10
    if slot in COVERED_SLOTS:
        return list(COVERED_LABELS)
    return ["auto-merge"] if slot in PARTLY_LABELLED_SLOTS else []


def covered_count(prs: int, kind: str = "mixed") -> int:
    """How many of ``prs`` pull requests the rule covers."""
    return prs if kind == "open" else sum(1 for i in range(prs) if i % 10 in COVERED_SLOTS)


OPEN_SITUATIONS = ("pending", "failing", "pending", "conflicting", "pending")
"""The ``open`` world: every PR covered, and none a pass would merge or close."""


def build_world(prs: int, repos: int, kind: str = "mixed") -> GitHubWorld:
    """The same world for the same sizes: ``prs`` open pull requests over ``repos`` repositories.

    ``mixed``: 30% covered, of every situation (passes merge, close, escalate and wait).
    ``open``: every PR covered and left open by a pass (CI running, failing, or a conflict), so
    that each pass sees them all.
    """
    world = GitHubWorld()
    names = repository_names(repos)
    for name in names:
        world.add_repository(name, labels=[*COVERED_LABELS, DEFAULT_ESCALATION_LABEL])
    for i in range(prs):
        if kind == "open":
            situation, labels = OPEN_SITUATIONS[i % len(OPEN_SITUATIONS)], list(COVERED_LABELS)
        else:
            # Shifted every ten PRs, so that the covered slots meet every situation in turn.
            situation, labels = SITUATIONS[(i + i // 10) % len(SITUATIONS)], labels_of(i)
        facts = {"title": f"Change {i}", "labels": labels, **_situation(situation)}
        world.add_pull_request(names[i % repos], **facts)
    return world


# --- the fakes, in a child process -------------------------------------------------------------


def _slow_brain(latency_seconds: float) -> Callable[[LLMRequest], object]:
    def brain(request: LLMRequest) -> object:
        time.sleep(latency_seconds)  # the model thinking
        return default_brain(request)

    return brain


def serve_fakes(conn: Connection, latency_seconds: float) -> None:
    """The child process's loop: one fake model, and one fake GitHub per world asked for.

    Requests on ``conn``: ``("world", prs, repos, kind)`` -> ``(index, url)``; ``("counts",
    index)`` -> ``(requests, mutations, problems)``; ``("push", index, [(repository, number),
    ...])``; ``("open", index)`` -> the covered PRs still open, ``[(repository, number), ...]``;
    ``("stop",)``.
    """
    llm = FakeLLM(brain=_slow_brain(latency_seconds), token=AI_TOKEN)
    worlds: list[FakeGitHub] = []
    llm.start()
    try:
        conn.send(llm.anthropic_url)
        while (message := conn.recv())[0] != "stop":
            conn.send(_serve_one(message, worlds))
    finally:
        for fake in worlds:
            fake.stop()
        llm.stop()
        conn.close()


def _serve_one(message: tuple[Any, ...], worlds: list[FakeGitHub]) -> object:
    command, *args = message
    if command == "world":
        fake = FakeGitHub(build_world(*args), token=GITHUB_TOKEN).start()
        worlds.append(fake)
        return len(worlds) - 1, fake.url
    fake = worlds[args[0]]
    if command == "counts":
        problems = len(fake.invalid_documents) + len(fake.unexpected_errors)
        return len(fake.requests), len(fake.mutations), problems
    if command == "push":
        for repository, number in args[1]:
            fake.world.push_commit(repository, number)
        return None
    if command == "open":
        return [
            (pr.repository, pr.number)
            for pr in fake.world.pull_requests
            if pr.state == "OPEN" and set(COVERED_LABELS) <= set(pr.labels)
        ]
    raise ValueError(f"unknown command {command!r}")


def pod_env(github: FakeGitHub, llm: FakeLLM) -> dict[str, str]:
    """What the settings ConfigMap gives every pod (tokens come from the Secret, per step)."""
    return {
        "GITHUB_GRAPHQL_URL": github.url,
        "GITHUB_MUTATION_INTERVAL_SECONDS": "0",
        "AI_ENDPOINT": llm.anthropic_url,
        "AI_PROVIDER": "anthropic",
        "AI_MODEL": "claude-sonnet-5",
        "LOG_FORMAT": "json",
    }
