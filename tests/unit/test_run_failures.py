"""The exit handler's view of a run's failures: read from its Workflow, counted, bounded."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from ai_operator.jobs.clients.argo_workflow import FailedNode, failed_nodes
from ai_operator.jobs.clients.kube import APIUnreadable, KubernetesAPI
from ai_operator.jobs.reconcile.failures import FIRST_FAILURES, MESSAGE_CHARS, summarize_failures
from ai_operator.jobs.reconcile.steps import tally, termination_message
from ai_operator.jobs.rules.encoding import RULE_ENV, encode_rule
from tests.argo_interpreter import MemoCache
from tests.conftest import ROOT, run_cli
from tests.factories import make_rule

NAMESPACE = "team-a"


def pod(name: str, kind: str = "ai", message: str | None = None) -> FailedNode:
    text = message if message is not None else termination_message(kind, f"{name} failed")
    return FailedNode(name, "Pod", "decide", f"Error (exit code 1): {text}")


@pytest.mark.parametrize(
    ("nodes", "count", "errors", "shown"),
    [
        pytest.param([], 0, {}, 0, id="nothing-failed"),
        pytest.param(
            [pod("a"), pod("b", "github"), pod("c", "ai")], 3, {"ai": 2, "github": 1}, 3,
            id="counted-by-type",
        ),
        pytest.param(
            [pod("a", message="OOMKilled"), FailedNode("settle", "TaskGroup", "", "child failed")],
            2, {}, 1, id="untyped-and-non-pod-nodes-count-without-a-type",
        ),
        pytest.param(
            [pod("a"), FailedNode("a-retry", "Retry", "decide", pod("a").message)],
            2, {"ai": 1}, 1, id="a-retry-node-repeating-its-pods-message-counts-once",
        ),
        pytest.param(
            [pod(f"n{i}") for i in range(1000)], 1000, {"ai": 1000}, FIRST_FAILURES,
            id="a-thousand-keep-ten",
        ),
    ],
)  # fmt: skip
def test_failures_are_counted_in_full_and_shown_in_part(
    nodes: list[FailedNode], count: int, errors: dict[str, int], shown: int
) -> None:
    """Every failed node counts; only the first few are kept to show, their messages cut short."""
    summary = summarize_failures(nodes)
    assert (summary.nodes, summary.errors, len(summary.first)) == (count, errors, shown)
    assert all(len(node.message) <= MESSAGE_CHARS for node in summary.first)


def workflow(nodes: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "run-1"}, "status": {"nodes": nodes, **status}}


def read(document: dict[str, Any] | None, name: str = "run-1") -> list[FailedNode]:
    with MemoCache().serve(NAMESPACE, lambda asked: document if asked == "run-1" else None) as url:
        return failed_nodes(KubernetesAPI(url), NAMESPACE, name)


def test_the_failed_nodes_are_read_from_the_workflow() -> None:
    """Failed and errored nodes, by name; the others are left out."""
    document = workflow(
        {
            "2": {"displayName": "b", "type": "Pod", "templateName": "act", "phase": "Error"},
            "1": {"displayName": "a", "type": "Pod", "templateName": "decide", "phase": "Failed",
                  "message": "Error (exit code 1)"},
            "3": {"displayName": "c", "type": "Pod", "templateName": "fetch", "phase": "Succeeded"},
        }
    )  # fmt: skip
    assert read(document) == [
        FailedNode("a", "Pod", "decide", "Error (exit code 1)"),
        FailedNode("b", "Pod", "act", ""),
    ]


@pytest.mark.parametrize(
    ("document", "name", "problem"),
    [
        pytest.param(None, "run-1", "Workflow run-1 does not exist", id="gone"),
        pytest.param(
            workflow({}, offloadNodeStatusVersion="abc"), "run-1", "offloaded", id="offloaded"
        ),
    ],
)
def test_a_workflow_whose_nodes_cannot_be_read_says_why(
    document: dict[str, Any] | None, name: str, problem: str
) -> None:
    """No guess: the report then counts the tally's failed branches instead."""
    with pytest.raises(APIUnreadable, match=problem):
        read(document, name)


def test_the_tally_counts_branches_that_handed_no_outcome() -> None:
    """Fetch listed three; one outcome came back: two branches failed."""
    outcomes = '[{"pr": "acme/web#1", "run": "r"}]'
    assert tally(outcomes, '{"toDecide": 3, "matched": 3}', "r").branches_failed == 2
    assert tally("[]", "{}", "r").branches_failed == 0


def test_without_the_api_the_report_counts_the_tallys_failed_branches() -> None:
    """No API to read the Workflow from: a warning, and the failed branches count as step errors."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        RULE_ENV: encode_rule(make_rule()),
        "LOG_FORMAT": "json",
    }
    summary = '{"branchesFailed": 2, "matched": 2}'
    args = ["step", "report", "--summary", summary, "--status", "Succeeded", "--workflow", "r-1"]
    result = run_cli(args, env)
    assert result.code == 0
    [warning] = [json.loads(line) for line in result.stderr.splitlines() if "not read" in line]
    assert warning["error"] == "no Kubernetes API in this pod"
