"""The global pause in the rule's status: the installation's value, the namespace's annotation."""

from __future__ import annotations

from typing import Any

import pytest

from ai_operator.jobs.clients.kube import NAMESPACES
from ai_operator.pipelines.controller.kube import RULES
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import NAMESPACE, add_rule, config, eventually, running

pytestmark = pytest.mark.asyncio


def conditions(api: ApiServer) -> dict[str, dict[str, Any]]:
    rule = api.stored(RULES, NAMESPACE, "staging-automerge") or {}
    return {c["type"]: c for c in (rule.get("status") or {}).get("conditions", [])}


def annotate(api: ApiServer, annotations: dict[str, str]) -> None:
    metadata = {"name": NAMESPACE, "annotations": annotations}  # cluster-scoped
    api.put(NAMESPACES, {"metadata": metadata})


@pytest.mark.parametrize(
    ("installation", "annotations", "message"),
    [
        pytest.param(True, {}, "for the installation", id="chart-value"),
        pytest.param(
            False, {"aioperator.io/paused": "true"}, f"in namespace {NAMESPACE}", id="annotation"
        ),
    ],
)
async def test_a_paused_rule_says_so_in_its_status(
    api: ApiServer, installation: bool, annotations: dict[str, str], message: str
) -> None:
    """The condition Paused (True, reason Paused) names who paused; Ready is unchanged."""
    annotate(api, annotations)
    add_rule(api)
    async with running(api, config(paused=installation)):
        await eventually(lambda: "Paused" in conditions(api))
    found = conditions(api)
    assert (found["Paused"]["status"], found["Paused"]["reason"]) == ("True", "Paused")
    assert message in found["Paused"]["message"]
    assert found["Ready"]["status"] == "True"


async def test_a_rule_never_paused_has_no_paused_condition(api: ApiServer) -> None:
    """Without the value or the annotation, the status keeps its three conditions."""
    annotate(api, {"aioperator.io/paused": "false"})
    add_rule(api)
    async with running(api):
        await eventually(lambda: "Ready" in conditions(api))
    assert sorted(conditions(api)) == ["ApplyFailed", "Invalid", "Ready"]
