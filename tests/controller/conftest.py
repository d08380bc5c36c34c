"""Fixtures of the controller's tests: the emulated API server and a controller running on it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import kmock
import pytest
import pytest_asyncio

from ai_operator.pipelines.controller.config import ControllerConfig
from ai_operator.pipelines.controller.kube import RULES, Connection, KubeClient, RetryPolicy
from ai_operator.pipelines.controller.runner import Controller
from tests.controller.apiserver import ApiServer
from tests.controller.rbac_expectations import CONTROLLER_REQUESTS
from tests.factories import make_rule

NAMESPACE = "ai-operator-system"
FAST_RETRY = RetryPolicy(attempts=4, backoff_seconds=0.01, max_backoff_seconds=0.05)


@pytest_asyncio.fixture
async def api() -> AsyncIterator[ApiServer]:
    """An emulated API server; afterwards, every request it got is one the chart permits."""
    async with ApiServer() as handler, kmock.Server(handler):
        yield handler
        # A watch still open would hold the server's shutdown for aiohttp's 60 s grace period.
        handler.end_watches()
    unexpected = {call.as_tuple for call in handler.calls} - CONTROLLER_REQUESTS
    assert not unexpected, f"requests outside CONTROLLER_REQUESTS: {sorted(unexpected)}"


def config(**changes: Any) -> ControllerConfig:
    """The chart's defaults for one namespace, changed by ``changes``."""
    base = ControllerConfig(namespaces=(NAMESPACE,), resync_seconds=300)
    return dataclasses.replace(base, **changes)


@asynccontextmanager
async def running(
    api: ApiServer,
    settings: ControllerConfig | None = None,
    token: str | None = None,
    **options: Any,
) -> AsyncIterator[Controller]:
    """A controller serving ``api`` until the block ends (``options``: the Controller's)."""
    connection = Connection(server=str(api.url).rstrip("/"), token=token)
    async with KubeClient(connection, retry=FAST_RETRY) as client:
        options.setdefault("first_retry_seconds", 0.05)
        controller = Controller(settings or config(), client, **options)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop))
        try:
            await eventually(lambda: controller.idle or task.done())
            yield controller
        finally:
            stop.set()
            await task


async def eventually(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``check()`` is true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"still not true after {timeout} s: {getattr(check, '__doc__', None)}")
        await asyncio.sleep(0.01)


async def settled(controller: Controller) -> None:
    """Wait until the controller has nothing left to do (a moment to let watch events in)."""
    for _ in range(3):
        await asyncio.sleep(0.05)
        await eventually(lambda: controller.idle)


def rule_document(name: str = "staging-automerge", **spec: Any) -> dict[str, Any]:
    """A valid rule as ``kubectl apply`` would send it, in the served namespace."""
    return make_rule(name, **spec).to_document()


def add_rule(api: ApiServer, name: str = "staging-automerge", **spec: Any) -> dict[str, Any]:
    """Create (or replace the spec of) a rule, as a user would."""
    document = rule_document(name, **spec)
    current = api.stored(RULES, NAMESPACE, name)
    if current is not None:
        document = current | {"spec": document["spec"]}
    return api.put(RULES, document)
