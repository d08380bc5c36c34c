"""Retries by verb, over HTTP against the emulated API server.

Reads are tried again; a create only when it cannot have been applied, or when its object is
named so that a repeat answers 409 (read as "exists"); a watch that keeps breaking is opened
again after waits that double up to a cap. Waits are recorded by an injected ``sleep`` and
compared with the schedule, never timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ai_operator.jobs.clients.kube_retry import Backoff
from ai_operator.pipelines.controller.kube import (
    EVENTS,
    LEASES,
    RULES,
    Connection,
    KubeClient,
    KubeError,
    Unavailable,
)
from ai_operator.pipelines.controller.objects import RuleKey
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import FAST_RETRY, NAMESPACE, add_rule, eventually, running, settled

pytestmark = pytest.mark.asyncio
RULE = "staging-automerge"


class Sleeps:
    """An injectable ``sleep`` that records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@asynccontextmanager
async def client(api: ApiServer, sleeps: Sleeps) -> AsyncIterator[KubeClient]:
    connection = Connection(server=str(api.url).rstrip("/"))
    async with KubeClient(connection, retry=FAST_RETRY, sleep=sleeps, jitter=lambda: 0.0) as kube:
        yield kube


def requests(api: ApiServer, verb: str, plural: str) -> int:
    return sum(1 for call in api.calls if call.verb == verb and call.resource == plural)


def event(**metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": NAMESPACE, **metadata},
        "reason": "Applied",
        "message": "compiled",
        "type": "Normal",
    }


async def test_no_duplicate_event_when_a_create_is_repeated(api: ApiServer) -> None:
    """An event whose create was applied but whose answer was lost is posted once."""
    add_rule(api)
    api.fail("POST", "events", 504, after_applying=True)
    async with running(api) as controller:
        await settled(controller)
    applied = [e for e in api.stored_all(EVENTS, NAMESPACE) if e["reason"] == "Applied"]
    assert len(applied) == 1
    assert requests(api, "create", "events") == 2  # the repeat answered 409: it exists


async def test_a_named_create_repeated_after_a_lost_answer_reads_as_exists(
    api: ApiServer,
) -> None:
    """504 after the object was made, then 409 on the repeat: one object, no error."""
    api.fail("POST", "events", 504, after_applying=True)
    sleeps = Sleeps()
    async with client(api, sleeps) as kube:
        created = await kube.create(EVENTS, NAMESPACE, event(name="r.0123456789abcdef"))
    assert created.exists
    assert len(api.stored_all(EVENTS, NAMESPACE)) == 1
    assert sleeps.waits == [0.01]


async def test_a_create_with_generate_name_is_not_repeated_after_a_lost_answer(
    api: ApiServer,
) -> None:
    """It may have been applied, and a repeat would make a second object: an error instead."""
    api.fail("POST", "events", 504, after_applying=True)
    async with client(api, Sleeps()) as kube:
        with pytest.raises(KubeError, match="504"):
            await kube.create(EVENTS, NAMESPACE, event(generateName="r."))
    assert len(api.stored_all(EVENTS, NAMESPACE)) == 1
    assert requests(api, "create", "events") == 1


@pytest.mark.parametrize(
    ("status", "repeated"),
    [(429, True), (500, False), (503, False), (504, False)],
    ids=["429 too many requests", "500", "503 without Retry-After", "504"],
)
async def test_a_create_with_generate_name_is_repeated_only_when_not_applied(
    api: ApiServer, status: int, repeated: bool
) -> None:
    """429 proves the request was not processed; a 5xx does not."""
    api.fail("POST", "events", status)
    async with client(api, Sleeps()) as kube:
        if repeated:
            created = await kube.create(EVENTS, NAMESPACE, event(generateName="r."))
            assert not created.exists
        else:
            with pytest.raises(KubeError, match=str(status)):
                await kube.create(EVENTS, NAMESPACE, event(generateName="r."))
    assert requests(api, "create", "events") == (2 if repeated else 1)
    assert len(api.stored_all(EVENTS, NAMESPACE)) == (1 if repeated else 0)


async def test_a_create_answered_409_reads_as_exists_and_is_not_repeated(api: ApiServer) -> None:
    """The object exists: that is the answer, not an error."""
    api.put(EVENTS, event(name="r.1"))
    async with client(api, Sleeps()) as kube:
        created = await kube.create(EVENTS, NAMESPACE, event(name="r.1"))
    assert created.exists and created.object is None
    assert requests(api, "create", "events") == 1


async def test_a_read_is_repeated_with_growing_waits(api: ApiServer) -> None:
    """GET answered 503 twice, then the object: three requests, waits 0.01 then 0.02 s."""
    api.put(LEASES, {"metadata": {"name": "ai-operator", "namespace": NAMESPACE}, "spec": {}})
    api.fail("GET", "leases", 503, times=2)
    sleeps = Sleeps()
    async with client(api, sleeps) as kube:
        found = await kube.get(LEASES, NAMESPACE, "ai-operator")
    assert found is not None
    assert requests(api, "get", "leases") == 3
    assert sleeps.waits == [0.01, 0.02]


async def test_a_read_that_keeps_failing_gives_up_after_the_attempts(api: ApiServer) -> None:
    """Four attempts (FAST_RETRY), the waits capped at 0.05 s, then Unavailable."""
    api.fail("GET", "prreconciliationrules", 500, times=10, verb="list")
    sleeps = Sleeps()
    async with client(api, sleeps) as kube:
        with pytest.raises(Unavailable, match="gave up after 4 attempts"):
            await kube.list(RULES, NAMESPACE)
    assert sleeps.waits == [0.01, 0.02, 0.04]


async def test_a_watch_that_keeps_breaking_backs_off(api: ApiServer) -> None:
    """Six broken watches in a row: waits 1, 2, 4, 8, 8, 8 s (capped), then a watch that holds."""
    add_rule(api)
    api.fail("GET", "prreconciliationrules", 500, times=6, verb="watch")
    sleeps = Sleeps()
    async with running(
        api, watch_backoff=Backoff(first=1.0, cap=8.0), sleep=sleeps, jitter=lambda: 0.0
    ) as controller:
        await eventually(lambda: requests(api, "watch", "prreconciliationrules") >= 7)
        await settled(controller)
        assert sleeps.waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
        assert requests(api, "watch", "prreconciliationrules") == 7


async def test_jitter_shortens_a_watch_wait_by_at_most_half(api: ApiServer) -> None:
    """With the largest jitter each wait is half its base: clients that failed together spread."""
    api.fail("GET", "prreconciliationrules", 500, times=3, verb="watch")
    sleeps = Sleeps()
    async with running(
        api, watch_backoff=Backoff(first=1.0, cap=8.0), sleep=sleeps, jitter=lambda: 0.999
    ) as controller:
        await eventually(lambda: requests(api, "watch", "prreconciliationrules") >= 4)
        await settled(controller)
    assert [round(wait, 2) for wait in sleeps.waits] == [0.5, 1.0, 2.0]


async def test_a_watch_that_worked_starts_the_backoff_over(api: ApiServer) -> None:
    """Three breaks (1, 2, 4 s), a watch that delivers a change, then two breaks: 1 s, 2 s."""
    api.fail("GET", "prreconciliationrules", 500, times=3, verb="watch")
    sleeps = Sleeps()
    async with running(
        api, watch_backoff=Backoff(first=1.0, cap=8.0), sleep=sleeps, jitter=lambda: 0.0
    ) as controller:
        await eventually(lambda: requests(api, "watch", "prreconciliationrules") >= 4)
        add_rule(api)  # the open watch delivers it: the watch worked
        await eventually(lambda: controller.reconciled.get(RuleKey(NAMESPACE, RULE), 0) >= 1)
        api.fail("GET", "prreconciliationrules", 500, times=2, verb="watch")
        api.end_watches("prreconciliationrules")
        await eventually(lambda: requests(api, "watch", "prreconciliationrules") >= 7)
        await settled(controller)
    assert sleeps.waits == [1.0, 2.0, 4.0, 1.0, 2.0]
