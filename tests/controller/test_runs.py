"""status.lastRun comes from the newest run labelled for the rule; a failed run is told once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ai_operator.pipelines.controller.kube import EVENTS, JOBS, RULES, WORKFLOWS
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import NAMESPACE, add_rule, config, running, settled

pytestmark = pytest.mark.asyncio

LABELS = {"aioperator.io/rule": "staging-automerge"}
SUMMARY = {"prsProcessed": 3, "actions": {"merge": 2, "wait": 1}, "errors": {}}


def workflow(name: str, created: str, phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": LABELS,
            "creationTimestamp": created,
        },
        "status": {"phase": phase, **status},
    }


def job(name: str, created: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": LABELS,
            "creationTimestamp": created,
        },
        "status": status,
    }


def status_of(api: ApiServer) -> dict[str, Any]:
    rule = api.stored(RULES, NAMESPACE, "staging-automerge")
    assert rule is not None
    return dict(rule["status"])


def warnings(api: ApiServer) -> list[str]:
    return [
        event["message"]
        for event in api.stored_all(EVENTS, NAMESPACE)
        if event["reason"] == "RunFailed"
    ]


async def test_last_run_is_the_newest_workflow_with_its_counts(api: ApiServer) -> None:
    """Name, phase, times and act's counts (the global output ``summary``) of the newest run."""
    api.put(WORKFLOWS, workflow("staging-automerge-100", "2026-11-30T10:00:00Z", "Failed"))
    api.put(
        WORKFLOWS,
        workflow(
            "staging-automerge-200",
            "2026-11-30T10:01:00Z",
            "Succeeded",
            startedAt="2026-11-30T10:01:00Z",
            finishedAt="2026-11-30T10:01:40Z",
            outputs={"parameters": [{"name": "summary", "value": json.dumps(SUMMARY)}]},
        ),
    )
    other = workflow("other-rule-300", "2026-11-30T10:02:00Z", "Running")
    other["metadata"]["labels"] = {"aioperator.io/rule": "other-rule"}
    api.put(WORKFLOWS, other)
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    status = status_of(api)
    assert status["lastRun"] == {
        "name": "staging-automerge-200",
        "phase": "Succeeded",
        "startedAt": "2026-11-30T10:01:00Z",
        "finishedAt": "2026-11-30T10:01:40Z",
        "pullRequests": 3,
        "actions": {"merge": 2, "wait": 1},
    }
    assert status["lastReconciliationTime"] == "2026-11-30T10:01:40Z"
    assert status["processedPRCount"] == 3
    assert warnings(api) == []


async def test_finished_runs_are_kept_in_the_status_history(api: ApiServer) -> None:
    """One entry per finished run, oldest first, counts only; writing it again changes nothing."""
    for name, finished, phase in (
        ("staging-automerge-2", "2026-11-30T10:02:30Z", "Failed"),
        ("staging-automerge-1", "2026-11-30T10:01:30Z", "Succeeded"),
    ):
        api.put(
            WORKFLOWS,
            workflow(
                name,
                finished[:-4] + "00Z",
                phase,
                finishedAt=finished,
                outputs={"parameters": [{"name": "summary", "value": json.dumps(SUMMARY)}]},
            ),
        )
    api.put(WORKFLOWS, workflow("staging-automerge-3", "2026-11-30T10:03:00Z", "Running"))
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    history = status_of(api)["history"]
    assert [(entry["workflow"], entry["succeeded"]) for entry in history] == [
        ("staging-automerge-1", True),
        ("staging-automerge-2", False),
    ]
    assert history[0]["pullRequests"] == 3
    assert history[0]["actions"] == {"merge": 2, "wait": 1}
    version = (api.stored(RULES, NAMESPACE, "staging-automerge") or {})["metadata"]
    async with running(api) as controller:
        await settled(controller)
    again = (api.stored(RULES, NAMESPACE, "staging-automerge") or {})["metadata"]
    assert again["resourceVersion"] == version["resourceVersion"]


async def test_a_failed_run_is_told_once_per_run(api: ApiServer) -> None:
    """RunFailed names the run and Argo's message, once, across resyncs and restarts."""
    api.put(
        WORKFLOWS,
        workflow(
            "staging-automerge-100",
            "2026-11-30T10:00:00Z",
            "Failed",
            message="child 'decide(0)' failed",
        ),
    )
    add_rule(api)
    async with running(api, config(resync_seconds=0.2)) as controller:  # type: ignore[arg-type]
        await settled(controller)
        await settled(controller)
    async with running(api) as controller:
        await settled(controller)
    assert warnings(api) == ["run staging-automerge-100 ended Failed: child 'decide(0)' failed"]
    assert status_of(api)["lastRun"]["phase"] == "Failed"
    api.put(WORKFLOWS, workflow("staging-automerge-200", "2026-11-30T10:05:00Z", "Error"))
    async with running(api) as controller:
        await settled(controller)
    assert len(warnings(api)) == 2


async def test_no_run_yet_means_no_last_run(api: ApiServer) -> None:
    """A rule that has not run has no lastRun (and the columns stay empty)."""
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    status = status_of(api)
    assert "lastRun" not in status
    assert "processedPRCount" not in status


@pytest.mark.parametrize(
    ("job_status", "phase", "finished"),
    [
        pytest.param(
            {
                "startTime": "2026-11-30T10:00:00Z",
                "completionTime": "2026-11-30T10:00:30Z",
                "conditions": [{"type": "Complete", "status": "True"}],
            },
            "Succeeded",
            "2026-11-30T10:00:30Z",
            id="complete",
        ),
        pytest.param(
            {
                "startTime": "2026-11-30T10:00:00Z",
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "lastTransitionTime": "2026-11-30T10:00:20Z",
                        "message": "Pod failed",
                    }
                ],
            },
            "Failed",
            "2026-11-30T10:00:20Z",
            id="failed",
        ),
        pytest.param(
            {"startTime": "2026-11-30T10:00:00Z", "active": 1}, "Running", None, id="running"
        ),
    ],
)
async def test_a_cron_job_rules_last_run_is_its_newest_job(
    api: ApiServer, job_status: dict[str, Any], phase: str, finished: str | None
) -> None:
    """For the cronjob target, the newest Job: its phase and times; its counts are unknown."""
    api.put(JOBS, job("staging-automerge-1", "2026-11-30T10:00:00Z", job_status))
    add_rule(api)
    async with running(api, config(target="cronjob")) as controller:
        await settled(controller)
    last_run = status_of(api)["lastRun"]
    assert (last_run["name"], last_run["phase"]) == ("staging-automerge-1", phase)
    assert last_run.get("finishedAt") == finished
    assert "pullRequests" not in last_run
    assert len(warnings(api)) == (1 if phase == "Failed" else 0)


async def test_the_next_run_keeps_nothing_of_the_last_one(api: ApiServer) -> None:
    """A failed dry run, then a run that is neither: lastRun has no message and no dryRun left.

    The status is a merge patch: a field absent from the new lastRun must be written as null,
    or the failed run's message would stay on the next one (and the status be written again at
    every resync, never matching).
    """
    summary = {"prsProcessed": 1, "actions": {}, "errors": {}, "dryRun": True}
    api.put(
        WORKFLOWS,
        workflow(
            "staging-automerge-100",
            "2026-11-30T10:00:00Z",
            "Failed",
            message="child 'act(0)' failed",
            outputs={"parameters": [{"name": "summary", "value": json.dumps(summary)}]},
        ),
    )
    add_rule(api)
    async with running(api) as controller:
        await settled(controller)
    first = status_of(api)["lastRun"]
    assert (first["message"], first["dryRun"]) == ("child 'act(0)' failed", True)
    api.put(WORKFLOWS, workflow("staging-automerge-200", "2026-11-30T10:05:00Z", "Running"))
    async with running(api) as controller:
        await settled(controller)
    assert status_of(api)["lastRun"] == {"name": "staging-automerge-200", "phase": "Running"}
    version = (api.stored(RULES, NAMESPACE, "staging-automerge") or {})["metadata"]
    async with running(api) as controller:
        await settled(controller)
    again = (api.stored(RULES, NAMESPACE, "staging-automerge") or {})["metadata"]
    assert again["resourceVersion"] == version["resourceVersion"]
