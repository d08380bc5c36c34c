"""The requests the controller sends are exactly CONTROLLER_REQUESTS: nothing more, nothing missing.

Every test of this package checks "nothing more" (the ``api`` fixture); this one runs each kind
of work once (both targets, a switch each way, an invalid rule, runs, a deletion) and checks that
each listed request was really needed.
"""

from __future__ import annotations

import pytest

from ai_operator.pipelines.controller.config import LeaderElection
from ai_operator.pipelines.controller.kube import (
    CONFIG_MAPS,
    CRON_JOBS,
    CRON_WORKFLOWS,
    RULES,
    WORKFLOWS,
)
from ai_operator.pipelines.controller.reconcile import memo_prefix
from ai_operator.pipelines.options import CompileOptions
from tests.controller.apiserver import ApiServer, calls_of
from tests.controller.conftest import NAMESPACE, add_rule, config, eventually, running, settled
from tests.controller.rbac_expectations import CONTROLLER_REQUESTS

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    "namespaces",
    [pytest.param((NAMESPACE,), id="listed-namespaces"), pytest.param((), id="all-namespaces")],
)
async def test_every_kind_of_work_sends_exactly_the_expected_requests(
    api: ApiServer, namespaces: tuple[str, ...]
) -> None:
    """The recorded (verb, group, resource, subresource) set equals CONTROLLER_REQUESTS."""
    api.garbage_collection = False  # the controller deletes what a deleted rule generated
    add_rule(api, "kept")
    add_rule(api, "broken", instruction="{{ nope }}")
    add_rule(api, "evented", events={"github": ["check_suite"]})
    api.put(
        WORKFLOWS,
        {
            "metadata": {
                "name": "kept-1",
                "namespace": NAMESPACE,
                "labels": {"aioperator.io/rule": "kept"},
            },
            "status": {"phase": "Failed"},
        },
    )
    cache = {"aioperator.io/outcome-index": "true"}
    api.put(  # the outcome index of "kept": the controller makes the rule its owner
        CONFIG_MAPS,
        {"metadata": {"name": f"{memo_prefix('kept')}-1", "namespace": NAMESPACE, "labels": cache}},
    )
    events = CompileOptions(events=True)
    for target in ("argo", "cronjob", "argo"):
        settings = config(namespaces=namespaces, target=target, compile=events)
        async with running(api, settings) as controller:
            await settled(controller)
    assert api.stored(CRON_JOBS, NAMESPACE, "kept") is None
    election = LeaderElection(enabled=True, namespace=NAMESPACE, retry_seconds=0.05)
    settings = config(namespaces=namespaces, leader_election=election)
    async with running(api, settings) as controller:
        await eventually(lambda: controller.leading)
        await settled(controller)
    async with running(api, settings) as controller:  # takes the released lease over, renews it
        await eventually(lambda: controller.leading)
        await settled(controller)
        memo = f"{memo_prefix('kept')}-0"
        api.put(CONFIG_MAPS, {"metadata": {"name": memo, "namespace": NAMESPACE}})
        api.remove(RULES, NAMESPACE, "kept")
        await eventually(lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, "kept") is None)
        await eventually(lambda: api.stored(CONFIG_MAPS, NAMESPACE, memo) is None)
    assert calls_of([api]) == CONTROLLER_REQUESTS
