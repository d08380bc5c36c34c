"""/healthz, /ready and /metrics; a deleted rule's Pushgateway groups; no token in any log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import kmock
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ai_operator.pipelines.controller.kube import RULES, Connection, KubeClient
from ai_operator.pipelines.controller.runner import Controller
from ai_operator.pipelines.controller.server import HealthServer
from ai_operator.pipelines.controller.status import RuleState, State
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import (
    NAMESPACE,
    add_rule,
    config,
    eventually,
    running,
    settled,
)

pytestmark = pytest.mark.asyncio


@asynccontextmanager
async def serving(controller: Controller) -> AsyncIterator[str]:
    server = HealthServer(controller, "127.0.0.1", 0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_probes_follow_the_controllers_loops(api: ApiServer) -> None:
    """Before the loops run: 503 on both; once every scope is listed: 200 on both."""
    async with KubeClient(Connection(server=str(api.url))) as client:
        idle = Controller(config(), client)
        async with serving(idle) as base:
            assert (await fetch(f"{base}/healthz"))[0] == 503
            assert (await fetch(f"{base}/ready"))[0] == 503
    async with running(api) as controller, serving(controller) as base:
        assert await fetch(f"{base}/healthz") == (200, "ok\n")
        assert await fetch(f"{base}/ready") == (200, "ready\n")


async def test_metrics_count_rules_per_namespace_and_state(api: ApiServer) -> None:
    """ai_operator_rules_total{namespace, state}: every state shown, 0 when none."""
    add_rule(api, "good")
    add_rule(api, "bad", instruction="{{ nope }}")
    async with running(api) as controller, serving(controller) as base:
        await settled(controller)
        status, text = await fetch(f"{base}/metrics")
    assert status == 200
    (family,) = [f for f in text_string_to_metric_families(text) if f.name.startswith("ai_op")]
    assert family.type == "gauge"
    values = {(s.labels["namespace"], s.labels["state"]): s.value for s in family.samples}
    assert values == {
        (NAMESPACE, "ready"): 1.0,
        (NAMESPACE, "invalid"): 1.0,
        (NAMESPACE, "apply_failed"): 0.0,
    }


def deletes(gateway: kmock.RawHandler) -> list[kmock.Request]:
    """The DELETE requests the gateway received (the start-up sweep reads its groups too)."""
    return [request for request in gateway if request.method.value == "DELETE"]


async def test_a_deleted_rules_pushgateway_groups_are_deleted(api: ApiServer) -> None:
    """The group {job, namespace, rule} and the earlier design's two groups go with the rule."""
    async with kmock.RawHandler() as gateway, kmock.Server(gateway):
        gateway.fallback << 202
        add_rule(api)
        settings = config(pushgateway_url=str(gateway.url).rstrip("/"))
        async with running(api, settings) as controller:
            await settled(controller)
            api.remove(RULES, NAMESPACE, "staging-automerge")
            await eventually(lambda: len(deletes(gateway)) == 3)
        paths = [(request.method.value, request.url.path) for request in deletes(gateway)]
    assert paths == [
        ("DELETE", f"/metrics/job/ai-operator/namespace/{NAMESPACE}/rule/staging-automerge"),
        (
            "DELETE",
            "/metrics/job/ai-operator/rule@base64/YWktb3BlcmF0b3Itc3lzdGVtL3N0YWdpbmctYXV0b21lcmdl",
        ),
        (
            "DELETE",
            "/metrics/job/ai-operator/outcome/succeeded/rule@base64/YWktb3BlcmF0b3Itc3lzdGVtL3N0YWdpbmctYXV0b21lcmdl",
        ),
    ]


async def test_the_token_authenticates_and_is_never_logged(
    api: ApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every request carries the bearer token; no log line contains it, even on errors."""
    token = "k8s-sa-token-0123456789abcdef"
    api.fail("PATCH", "cronworkflows", 401, times=1)
    add_rule(api)
    async with running(api, token=token) as controller:
        await settled(controller)
        await eventually(lambda: controller.rule_states() == [RuleState(NAMESPACE, State.READY)])
    assert {request.headers.get("Authorization") for request in api.received} == {f"Bearer {token}"}
    out = capsys.readouterr()
    assert "401" in out.out + out.err
    assert token not in out.out + out.err
    assert token not in str(api.stored_all(RULES))
