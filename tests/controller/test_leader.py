"""Leader election: two controllers, one Lease, one of them serving at a time.

Short durations stand in for client-go's defaults (15 s lease, 10 s renew deadline, 2 s retry):
the lease here lasts 0.6 s, the renew deadline is 0.4 s and candidates try every 0.05 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
import pytest

from ai_operator.pipelines.controller.config import LeaderElection
from ai_operator.pipelines.controller.kube import CRON_WORKFLOWS, LEASES, RULES
from ai_operator.pipelines.controller.runner import Controller
from ai_operator.pipelines.controller.server import HealthServer
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import NAMESPACE, add_rule, config, eventually, running, settled

pytestmark = pytest.mark.asyncio

LEASE = "ai-operator-controller"


def election(*, release_on_stop: bool = True) -> LeaderElection:
    return LeaderElection(
        enabled=True,
        namespace=NAMESPACE,
        lease_name=LEASE,
        lease_seconds=0.6,
        renew_seconds=0.4,
        retry_seconds=0.05,
        release_on_stop=release_on_stop,
    )


def holder(api: ApiServer) -> str | None:
    lease = api.stored(LEASES, NAMESPACE, LEASE) or {}
    return (lease.get("spec") or {}).get("holderIdentity")


@asynccontextmanager
async def replica(
    api: ApiServer, identity: str, *, release_on_stop: bool = True
) -> AsyncIterator[Controller]:
    settings = config(leader_election=election(release_on_stop=release_on_stop))
    async with running(api, settings, identity=identity) as controller:
        yield controller


async def test_two_controllers_elect_one_leader(api: ApiServer) -> None:
    """Exactly one leads and applies; the other holds back and writes nothing."""
    add_rule(api)
    async with replica(api, "a") as a, replica(api, "b") as b:
        await eventually(lambda: a.leading or b.leading)
        await asyncio.sleep(0.5)  # several retry periods: nobody steals a renewed lease
        assert [a.leading, b.leading].count(True) == 1
        leader = a if a.leading else b
        assert holder(api) == leader.identity
        await eventually(lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge"))
        await settled(leader)
        follower = b if leader is a else a
        assert follower.reconciled == {}
    lease = api.stored(LEASES, NAMESPACE, LEASE)
    assert lease is not None
    assert lease["spec"]["leaseDurationSeconds"] >= 1


async def test_the_other_takes_over_when_the_lease_expires(api: ApiServer) -> None:
    """The leader stops without releasing (a crash): the other waits the lease out, then leads
    and serves the rules."""
    add_rule(api)
    async with AsyncExitStack() as first, AsyncExitStack() as second:
        a = await first.enter_async_context(replica(api, "a", release_on_stop=False))
        await eventually(lambda: a.leading)
        b = await second.enter_async_context(replica(api, "b"))
        await asyncio.sleep(0.2)
        assert not b.leading
        await first.aclose()
        stopped = asyncio.get_running_loop().time()
        assert holder(api) == "a"
        await eventually(lambda: b.leading, timeout=5.0)
        waited = asyncio.get_running_loop().time() - stopped
        assert waited >= 0.4  # not before the lease had expired (0.6 s since b last saw it)
        assert holder(api) == "b"
        add_rule(api, "later")
        await eventually(lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, "later") is not None)


async def test_a_graceful_stop_hands_over_at_once(api: ApiServer) -> None:
    """The leader releases the Lease when it stops: the other leads within a few retries."""
    async with AsyncExitStack() as first, AsyncExitStack() as second:
        a = await first.enter_async_context(replica(api, "a"))
        await eventually(lambda: a.leading)
        b = await second.enter_async_context(replica(api, "b"))
        await first.aclose()
        stopped = asyncio.get_running_loop().time()
        await eventually(lambda: b.leading)
        assert asyncio.get_running_loop().time() - stopped < 0.4


async def test_a_waiting_replica_answers_its_probes(api: ApiServer) -> None:
    """The replica that does not lead is alive and ready (it is ready to take over)."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(replica(api, "a"))
        await eventually(lambda: a.leading)
        b = await stack.enter_async_context(replica(api, "b"))
        server = HealthServer(b, "127.0.0.1", 0)
        await server.start()
        stack.push_async_callback(server.close)
        async with aiohttp.ClientSession() as session:
            for path in ("/healthz", "/ready"):
                async with session.get(f"http://127.0.0.1:{server.port}{path}") as answer:
                    assert answer.status == 200
        assert not b.leading


async def test_a_leader_that_cannot_renew_stops_serving(api: ApiServer) -> None:
    """Renewals refused past the renew deadline: the leader stops serving before the lease
    could pass to another replica."""
    async with replica(api, "a") as a:
        await eventually(lambda: a.leading)
        api.fail("PUT", "leases", 500, times=1000)
        await eventually(lambda: not a.leading, timeout=3.0)
        assert RULES  # the rules are left alone while nobody leads
