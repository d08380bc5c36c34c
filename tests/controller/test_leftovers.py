"""Drift is put back, and deleted rules leave nothing behind (issue cases 5 and 6).

A hand edit of a generated CronWorkflow is repaired at the next resync even though its hash
annotation is unchanged; the start-up sweep removes the CronWorkflows, memo ConfigMaps and
Pushgateway groups of rules deleted while no controller ran; a rule re-created under the same name
adopts the old CronWorkflow at once; a retry waiting for a deleted rule is cancelled.
"""

from __future__ import annotations

import json
from typing import Any

import kmock
import pytest

from ai_operator.pipelines.controller.kube import CONFIG_MAPS, CRON_WORKFLOWS, EVENTS, RULES
from ai_operator.pipelines.controller.objects import RuleKey
from ai_operator.pipelines.controller.reconcile import MANIFEST_HASH_ANNOTATION, memo_prefix
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

RULE = "staging-automerge"
CACHE_LABEL = {"aioperator.io/outcome-index": "true"}


def events_of(api: ApiServer, rule: str = RULE) -> list[tuple[str, str]]:
    return [
        (event["type"], event["reason"])
        for event in api.stored_all(EVENTS, NAMESPACE)
        if event["involvedObject"]["name"] == rule
    ]


def memo(api: ApiServer, rule: str, shard: str = "0") -> str:
    name = f"{memo_prefix(rule)}-{shard}"
    api.put(
        CONFIG_MAPS,
        {"metadata": {"name": name, "namespace": NAMESPACE, "labels": CACHE_LABEL}, "data": {}},
    )
    return name


def orphan(api: ApiServer, rule: str) -> None:
    """A CronWorkflow and the rule's ConfigMap generated for ``rule``, whose rule was deleted
    while nothing watched."""
    for resource, name in ((CRON_WORKFLOWS, rule), (CONFIG_MAPS, f"ai-operator-rule-{rule}")):
        _orphan(api, resource, name, rule)


def _orphan(api: ApiServer, resource: Any, name: str, rule: str) -> None:
    api.put(
        resource,
        {
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "labels": {
                    "app.kubernetes.io/managed-by": "ai-operator",
                    "aioperator.io/rule": rule,
                },
                "ownerReferences": [
                    {
                        "apiVersion": "aioperator.io/v1alpha1",
                        "kind": "PRReconciliationRule",
                        "name": rule,
                        "uid": "a-rule-that-is-gone",
                        "controller": True,
                    }
                ],
            },
            "spec": {"schedules": ["* * * * *"]},
        },
    )


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda spec: spec | {"suspend": True}, id="suspended-by-hand"),
        pytest.param(lambda spec: spec | {"schedules": ["* * * * *"]}, id="schedule-changed"),
        pytest.param(lambda spec: {k: v for k, v in spec.items() if k != "timezone"}, id="removed"),
    ],
)
async def test_a_hand_edit_is_put_back_at_the_next_resync(api: ApiServer, edit: Any) -> None:
    """Same hash annotation, another spec: the next resync applies the rule's spec again and
    tells it with a DriftRepaired event."""
    add_rule(api, schedule="*/5 * * * *", timezone="Europe/Paris")
    async with running(api, config(resync_seconds=0.3)) as controller:  # type: ignore[arg-type]
        await settled(controller)
        wanted = api.stored(CRON_WORKFLOWS, NAMESPACE, RULE)
        assert wanted is not None
        edited = json.loads(json.dumps(wanted))
        edited["spec"] = edit(edited["spec"])
        assert edited["spec"] != wanted["spec"]
        api.put(CRON_WORKFLOWS, edited)
        await eventually(
            lambda: (
                (api.stored(CRON_WORKFLOWS, NAMESPACE, RULE) or {}).get("spec") == wanted["spec"]
            )
        )
        await settled(controller)
    live = api.stored(CRON_WORKFLOWS, NAMESPACE, RULE)
    assert live is not None
    assert (
        live["metadata"]["annotations"][MANIFEST_HASH_ANNOTATION]
        == (wanted["metadata"]["annotations"][MANIFEST_HASH_ANNOTATION])
    )
    assert ("Warning", "DriftRepaired") in events_of(api)


async def test_an_unchanged_object_is_not_written_at_a_resync(api: ApiServer) -> None:
    """Fields the API server adds (defaults) are no drift: nothing is written."""
    add_rule(api)
    async with running(api, config(resync_seconds=0.3)) as controller:  # type: ignore[arg-type]
        await settled(controller)
        live = api.stored(CRON_WORKFLOWS, NAMESPACE, RULE)
        assert live is not None
        live["spec"]["concurrencyPolicy"] = live["spec"].get("concurrencyPolicy", "Allow")
        live["spec"]["defaultedByTheServer"] = True
        api.put(CRON_WORKFLOWS, live)
        patches = len([c for c in api.calls if c.resource == "cronworkflows" and c.verb == "patch"])
        await eventually(lambda: controller.reconciled[RuleKey(NAMESPACE, RULE)] >= 3)
    after = len([c for c in api.calls if c.resource == "cronworkflows" and c.verb == "patch"])
    assert after == patches
    assert ("Warning", "DriftRepaired") not in events_of(api)


async def test_the_start_up_sweep_removes_what_deleted_rules_left(api: ApiServer) -> None:
    """Started after rules were deleted: their CronWorkflow, rule ConfigMap and memo ConfigMaps
    go; the living rule's stay."""
    api.garbage_collection = False
    add_rule(api, "alive")
    orphan(api, "gone")
    kept = memo(api, "alive")
    gone = [memo(api, "gone", shard) for shard in "0f"]
    unrelated = "someone-elses-cache"
    api.put(
        CONFIG_MAPS,
        {"metadata": {"name": unrelated, "namespace": NAMESPACE, "labels": CACHE_LABEL}},
    )
    async with running(api) as controller:
        await settled(controller)
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "gone") is None
    assert api.stored(CONFIG_MAPS, NAMESPACE, "ai-operator-rule-gone") is None
    assert api.stored(CRON_WORKFLOWS, NAMESPACE, "alive") is not None
    assert api.stored(CONFIG_MAPS, NAMESPACE, "ai-operator-rule-alive") is not None
    assert [name for name in gone if api.stored(CONFIG_MAPS, NAMESPACE, name)] == []
    assert api.stored(CONFIG_MAPS, NAMESPACE, kept) is not None
    assert api.stored(CONFIG_MAPS, NAMESPACE, unrelated) is not None


async def test_the_sweep_deletes_pushgateway_groups_of_rules_that_are_gone(api: ApiServer) -> None:
    """A group of a rule deleted while the controller was down goes (no alert for a rule that
    no longer exists); the living rule's group and other jobs' groups stay."""
    groups = [
        {"labels": {"job": "ai-operator", "namespace": NAMESPACE, "rule": "gone"}},
        {"labels": {"job": "ai-operator", "namespace": NAMESPACE, "rule": RULE}},
        {"labels": {"job": "ai-operator", "rule": f"{NAMESPACE}/old-design"}},
        {"labels": {"job": "ai-operator", "namespace": "not-served", "rule": "other"}},
        {"labels": {"job": "something-else", "namespace": NAMESPACE, "rule": "gone"}},
    ]
    async with kmock.RawHandler() as gateway, kmock.Server(gateway):
        gateway["get /api/v1/metrics"] << {"status": "success", "data": groups}
        gateway.fallback << 202
        add_rule(api)
        settings = config(pushgateway_url=str(gateway.url).rstrip("/"))
        async with running(api, settings) as controller:
            await settled(controller)
            await eventually(lambda: len([r for r in gateway if r.method.value == "DELETE"]) >= 6)
        deleted = {r.url.path for r in gateway if r.method.value == "DELETE"}
    assert f"/metrics/job/ai-operator/namespace/{NAMESPACE}/rule/gone" in deleted
    assert f"/metrics/job/ai-operator/namespace/{NAMESPACE}/rule/old-design" in deleted
    assert not any(RULE in path or "not-served" in path for path in deleted)


async def test_a_rule_created_again_under_its_name_adopts_the_old_workflow_at_once(
    api: ApiServer,
) -> None:
    """Deleted and created again (another uid) while the old CronWorkflow still exists: it is
    adopted, never NotOwned."""
    api.garbage_collection = False  # the old CronWorkflow outlives its rule for a while
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    api.remove(RULES, NAMESPACE, RULE)
    new = add_rule(api, schedule="*/10 * * * *")
    async with running(api) as controller:
        await settled(controller)
    live = api.stored(CRON_WORKFLOWS, NAMESPACE, RULE)
    assert live is not None
    assert [ref["uid"] for ref in live["metadata"]["ownerReferences"]] == [new["metadata"]["uid"]]
    assert live["spec"]["schedules"] == ["*/10 * * * *"]
    rule = api.stored(RULES, NAMESPACE, RULE)
    assert rule is not None
    ready = next(c for c in rule["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert ("Normal", "Adopted") in events_of(api)
    assert ("Warning", "ApplyFailed") not in events_of(api)


async def test_a_retry_waiting_for_a_deleted_rule_is_cancelled(api: ApiServer) -> None:
    """Apply kept failing: a retry waits; the rule is deleted: the retry is gone with it."""
    api.fail("PATCH", "cronworkflows", 500, times=1000)
    add_rule(api)
    async with running(api, first_retry_seconds=30.0) as controller:
        await eventually(lambda: controller.pending_retries == 1)
        api.remove(RULES, NAMESPACE, RULE)
        await eventually(lambda: controller.pending_retries == 0)
        await settled(controller)


async def test_outcome_index_config_maps_are_owned_by_their_rule(api: ApiServer) -> None:
    """An act step that does not know its rule's uid creates the outcome index without an owner:
    the controller makes the rule its owner, so that Kubernetes deletes it with the rule; a
    ConfigMap that has an owner is left alone."""
    rule = add_rule(api)
    ours = memo(api, RULE)
    api.put(
        CONFIG_MAPS,
        {
            "metadata": {
                "name": f"{memo_prefix(RULE)}-1",
                "namespace": NAMESPACE,
                "labels": CACHE_LABEL,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "u"}],
            }
        },
    )
    async with running(api) as controller:
        await settled(controller)
    owned = api.stored(CONFIG_MAPS, NAMESPACE, ours)
    assert owned is not None
    assert owned["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "aioperator.io/v1alpha1",
            "kind": "PRReconciliationRule",
            "name": RULE,
            "uid": rule["metadata"]["uid"],
        }
    ]
    other = api.stored(CONFIG_MAPS, NAMESPACE, f"{memo_prefix(RULE)}-1")
    assert other is not None
    assert other["metadata"]["ownerReferences"][0]["kind"] == "Other"
    api.remove(RULES, NAMESPACE, RULE)  # the garbage collector follows the reference
    assert api.stored(CONFIG_MAPS, NAMESPACE, ours) is None
