"""The controller owns each event-driven rule's WorkflowTemplate and Sensor like its CronWorkflow.

Created and updated with the rule, put back after a hand edit, deleted when the rule stops using
events or is deleted; the rule's status and ``kubectl get prrules`` say what starts its passes.
"""

from __future__ import annotations

import pytest

from ai_operator.pipelines.controller.kube import (
    CRON_WORKFLOWS,
    RULES,
    SENSORS,
    WORKFLOW_TEMPLATES,
)
from ai_operator.pipelines.options import CompileOptions
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import NAMESPACE, add_rule, config, eventually, running, settled

pytestmark = pytest.mark.asyncio

EVENTS_ON = config(compile=CompileOptions(events=True))
EVENTS = {"github": ["pull_request", "check_suite"], "debounceSeconds": 10}


def status(api: ApiServer, name: str = "staging-automerge") -> dict[str, object]:
    rule = api.stored(RULES, NAMESPACE, name)
    assert rule is not None
    found: dict[str, object] = rule.get("status") or {}
    return found


async def test_the_sensor_lives_and_dies_with_the_rule_and_its_events(api: ApiServer) -> None:
    """Applied with the rule; a hand edit is put back; dropping events or the rule deletes it."""
    rule = add_rule(api, events=EVENTS)
    async with running(api, EVENTS_ON) as controller:
        await settled(controller)
        sensor = api.stored(SENSORS, NAMESPACE, "staging-automerge")
        template = api.stored(WORKFLOW_TEMPLATES, NAMESPACE, "staging-automerge")
        cron = api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge")
        assert sensor is not None and template is not None and cron is not None
        for owned in (sensor, template, cron):
            [owner] = owned["metadata"]["ownerReferences"]
            assert owner["uid"] == rule["metadata"]["uid"] and owner["controller"] is True
        assert cron["spec"]["workflowSpec"] == {
            "workflowTemplateRef": {"name": "staging-automerge"}
        }
        assert [d["name"] for d in sensor["spec"]["dependencies"]] == [
            "pull-request",
            "check-suite",
        ]
        assert status(api)["triggers"] == "schedule+events"
        assert status(api)["sensor"] == "staging-automerge"

        edited = sensor | {"spec": sensor["spec"] | {"dependencies": []}}
        api.put(SENSORS, edited)
        add_rule(api, events=EVENTS | {"debounceSeconds": 11})  # a change: reconciled at once
        await settled(controller)
        repaired = api.stored(SENSORS, NAMESPACE, "staging-automerge")
        assert repaired is not None and len(repaired["spec"]["dependencies"]) == 2

        add_rule(api, events=None)
        await eventually(lambda: api.stored(SENSORS, NAMESPACE, "staging-automerge") is None)
        await settled(controller)
        assert status(api)["triggers"] == "schedule"
        assert status(api).get("sensor") is None
        assert api.stored(WORKFLOW_TEMPLATES, NAMESPACE, "staging-automerge") is not None

        add_rule(api, events=EVENTS)
        await eventually(lambda: api.stored(SENSORS, NAMESPACE, "staging-automerge") is not None)
        api.garbage_collection = False  # the controller itself deletes what the rule generated
        api.remove(RULES, NAMESPACE, "staging-automerge")
        await eventually(lambda: api.stored(SENSORS, NAMESPACE, "staging-automerge") is None)
        await eventually(
            lambda: api.stored(WORKFLOW_TEMPLATES, NAMESPACE, "staging-automerge") is None
        )


async def test_events_off_in_the_installation_leaves_the_schedule_and_says_so(
    api: ApiServer,
) -> None:
    """A rule asking for events where the chart's events.enabled is off runs on its schedule."""
    add_rule(api, events=EVENTS)
    async with running(api, config()) as controller:
        await settled(controller)
    assert api.stored(SENSORS, NAMESPACE, "staging-automerge") is None
    assert api.stored(WORKFLOW_TEMPLATES, NAMESPACE, "staging-automerge") is not None
    assert status(api)["triggers"] == "schedule (events off)"


async def test_a_rule_outside_the_event_buses_namespace_gets_no_sensor_and_says_so(
    api: ApiServer,
) -> None:
    """A Sensor hears only its own namespace's EventBus: elsewhere, the schedule, and the reason."""
    add_rule(api, events=EVENTS)
    elsewhere = config(compile=CompileOptions(events=True, events_namespace="ai-operator"))
    async with running(api, elsewhere) as controller:
        await settled(controller)
    assert api.stored(SENSORS, NAMESPACE, "staging-automerge") is None
    assert status(api)["triggers"] == "schedule (events only in namespace ai-operator)"
