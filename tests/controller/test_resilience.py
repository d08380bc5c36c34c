"""The controller is level-triggered and idempotent: API errors are retried, restarts and resyncs
write nothing that is already there, and a lost watch costs nothing."""

from __future__ import annotations

from typing import Any

import pytest

from ai_operator.pipelines.controller.kube import CRON_WORKFLOWS, EVENTS, RULES, WORKFLOWS
from ai_operator.pipelines.controller.objects import RuleKey
from tests.controller.apiserver import ApiServer, Call
from tests.controller.conftest import NAMESPACE, add_rule, config, eventually, running, settled

pytestmark = pytest.mark.asyncio


def writes(api: ApiServer) -> list[Call]:
    return [call for call in api.calls if call.verb in {"create", "patch", "update", "delete"}]


def ready(api: ApiServer, name: str = "staging-automerge") -> bool:
    rule = api.stored(RULES, NAMESPACE, name) or {}
    conditions = (rule.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.mark.parametrize(
    ("method", "plural", "subresource", "status"),
    [
        pytest.param("PATCH", "cronworkflows", "", 500, id="apply-500"),
        pytest.param("PATCH", "cronworkflows", "", 503, id="apply-503"),
        pytest.param("PATCH", "cronworkflows", "", 409, id="apply-409"),
        pytest.param("GET", "cronworkflows", "", 500, id="get-500"),
        pytest.param("PATCH", "prreconciliationrules", "status", 409, id="status-409"),
        pytest.param("PATCH", "prreconciliationrules", "status", 500, id="status-500"),
        pytest.param("GET", "prreconciliationrules", "", 500, id="list-500"),
    ],
)
async def test_server_errors_and_conflicts_are_retried(
    api: ApiServer, method: str, plural: str, subresource: str, status: int
) -> None:
    """Two failed answers in a row, then success: the rule ends Ready, with no other effect."""
    api.fail(method, plural, status, times=2, subresource=subresource)
    add_rule(api)
    async with running(api) as controller:
        await eventually(lambda: ready(api))
        await settled(controller)
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge") is not None
    assert [c.verb for c in writes(api) if c.resource == "cronworkflows"] == ["patch"] * (
        3 if (method, plural) == ("PATCH", "cronworkflows") else 1
    )


async def test_a_rule_that_keeps_failing_is_reported_and_tried_again(api: ApiServer) -> None:
    """Retries exhausted: ApplyFailed with the API's message; a later attempt succeeds."""
    api.fail("PATCH", "cronworkflows", 500, times=4)
    add_rule(api)
    async with running(api) as controller:
        await eventually(lambda: ready(api))
        await settled(controller)
    rule = api.stored(RULES, NAMESPACE, "staging-automerge")
    assert rule is not None
    reasons = [(e["type"], e["reason"]) for e in api.stored_all(EVENTS, NAMESPACE)]
    assert reasons == [("Warning", "ApplyFailed"), ("Normal", "Applied")]
    failed = next(c for c in rule["status"]["conditions"] if c["type"] == "ApplyFailed")
    assert failed["status"] == "False"


async def test_a_refused_rule_does_not_hold_up_the_others(api: ApiServer) -> None:
    """403 for one rule's object: that rule is ApplyFailed and tried again; the other is Ready."""
    add_rule(api, "first")
    add_rule(api, "second")
    api.fail("PATCH", "cronworkflows", 403, times=1)
    async with running(api) as controller:
        await eventually(lambda: ready(api, "first") and ready(api, "second"))
        await settled(controller)
    refused = [
        event["involvedObject"]["name"]
        for event in api.stored_all(EVENTS, NAMESPACE)
        if event["reason"] == "ApplyFailed"
    ]
    assert len(refused) == 1
    patches = [c for c in writes(api) if c.resource == "cronworkflows"]
    assert len(patches) == 3  # the refused one, its later attempt, the other rule's


async def test_a_restart_applies_nothing_twice(api: ApiServer) -> None:
    """A new controller finds everything in place: no apply, no status write, no event."""
    add_rule(api, "first")
    add_rule(api, "second", instruction="{{ nope }}")
    async with running(api) as controller:
        await settled(controller)
    before = len(writes(api))
    versions = {
        item["metadata"]["name"]: item["metadata"]["resourceVersion"] for item in rules(api)
    }
    async with running(api) as controller:
        await settled(controller)
        assert controller.reconciled == {
            RuleKey(NAMESPACE, "first"): 1,
            RuleKey(NAMESPACE, "second"): 1,
        }
    assert writes(api)[before:] == []
    assert {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in rules(api)} == versions


async def test_a_resync_reconciles_every_rule_again(api: ApiServer) -> None:
    """After resyncSeconds every rule is reconciled once more, without any event about it."""
    add_rule(api)
    async with running(api, config(resync_seconds=0.3)) as controller:  # type: ignore[arg-type]
        await settled(controller)
        before = len(writes(api))
        await eventually(
            lambda: controller.reconciled[RuleKey(NAMESPACE, "staging-automerge")] >= 3
        )
    assert writes(api)[before:] == []


async def test_a_resync_sees_a_run_that_no_rule_event_announced(api: ApiServer) -> None:
    """A run that finished after the last change shows in the status at the next resync."""
    add_rule(api)
    async with running(api, config(resync_seconds=0.3)) as controller:  # type: ignore[arg-type]
        await settled(controller)
        api.put(WORKFLOWS, workflow("staging-automerge-1", "Succeeded"))
        await eventually(
            lambda: (
                (api.stored(RULES, NAMESPACE, "staging-automerge") or {})
                .get("status", {})
                .get("lastRun", {})
                .get("name")
                == "staging-automerge-1"
            )
        )


async def test_a_watch_too_old_to_resume_lists_again(api: ApiServer) -> None:
    """410 Gone: the controller lists again and misses nothing."""
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
        api.end_watches()
        add_rule(api, "later")
        api.compact()  # the watch cannot resume from before "later"
        await eventually(lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, "later") is not None)
    lists = [c for c in api.calls if c == Call("list", "aioperator.io", RULES.plural, "")]
    assert len(lists) == 2


def rules(api: ApiServer) -> list[dict[str, Any]]:
    return api.stored_all(RULES, NAMESPACE)


def workflow(name: str, phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"aioperator.io/rule": "staging-automerge"},
        },
        "status": {"phase": phase, "startedAt": "2026-11-30T10:00:00Z", **status},
    }
