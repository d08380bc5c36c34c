"""A GitHub webhook, through the EventSource and the rule's compiled Sensor, to a merged PR.

A recorded ``check_suite`` ``completed`` delivery (``webhooks/check_suite-completed.json``, in
GitHub's documented shape) is signed, received as the installation's EventSource receives it,
filtered by the compiled Sensor's own dependency filters and turned into a Workflow by its own
trigger (:mod:`tests.argo_events`); the Workflow then runs pod by pod in the interpreter
(:mod:`tests.argo_interpreter`) against the fake GitHub and model.
"""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ai_operator.jobs.rules.files import load_rules
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.compile import CompiledManifest, CompileOptions, compile_rule
from benchmarks.events import main as events_benchmark
from tests.argo_events import Cluster, SignatureRefused, deliver, receive, sign
from tests.argo_interpreter import WorkflowRun, run_workflow
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, ROOT, cli_env
from tests.sandbox import FakeGitHub, FakeLLM, GitHubWorld

pytestmark = pytest.mark.e2e

WEBHOOK_SECRET = "whsec-" + "7" * 32
SECRETS = {
    ("ai-operator-secrets", "github-token"): GITHUB_TOKEN,
    ("ai-operator-secrets", "ai-token"): AI_TOKEN,
}
STAGING = ("auto-merge", "staging")
PAYLOAD = Path(__file__).parent / "webhooks" / "check_suite-completed.json"
EVENTS = {"github": ["check_suite", "pull_request"], "debounceSeconds": 15}


def event_rule() -> PRReconciliationRule:
    """The staging example, event-driven."""
    rule = load_rules([ROOT / "examples" / "staging-automerge.yaml"])[0].rule
    document = rule.to_document()
    document["spec"]["events"] = EVENTS
    return PRReconciliationRule.model_validate(document)


def compiled() -> CompiledManifest:
    manifest = compile_rule(event_rule(), "argo", CompileOptions(events=True))
    assert manifest.sensor is not None and manifest.workflow_template is not None
    return manifest


def world_of_two(world: GitHubWorld) -> None:
    """PR 7 (the webhook's, green) and PR 8 (also covered and green, but not named)."""
    world.add_repository("acme/web", labels=[*STAGING])
    world.add_pull_request("acme/web", number=7, title="Raise replicas", labels=[*STAGING])
    world.add_pull_request("acme/web", number=8, title="Tune pool", labels=[*STAGING])


def delivery(body: dict[str, Any], event: str = "check_suite") -> dict[str, Any]:
    """The event data the EventSource emits for one signed delivery of ``body``."""
    raw = json.dumps(body).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "5b3f8e2a-94c1-11ef-8d6e-2f1a0c7b9e31",
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, raw),
        "Content-Type": "application/json",
    }
    return receive(WEBHOOK_SECRET, headers, raw)


def check_suite() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(PAYLOAD.read_text())
    return body


@contextmanager
def fakes() -> Iterator[tuple[GitHubWorld, FakeGitHub, FakeLLM]]:
    world = GitHubWorld()
    world_of_two(world)
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        yield world, github, llm
    assert github.invalid_documents == [] and github.unexpected_errors == []


def run(manifest: CompiledManifest, workflow: dict[str, Any], env: dict[str, str]) -> WorkflowRun:
    return run_workflow(
        workflow,
        workflow_templates=[manifest.workflow_template],
        env=env,
        secrets=SECRETS,
        config_maps=[manifest.config_map],
    )


def pod_env(github: FakeGitHub, llm: FakeLLM) -> dict[str, str]:
    env = cli_env(github, llm, "anthropic")
    del env["GITHUB_TOKEN"], env["AI_TOKEN"]
    return env


def test_a_check_suite_webhook_starts_a_run_for_its_one_pull_request_which_is_merged() -> None:
    """The Sensor's filters pass the delivery; its trigger makes one Workflow naming PR 7; the
    run reads only PR 7 (one request, no search) and merges it; PR 8 is not touched."""
    manifest = compiled()
    cluster = Cluster()
    sent = time.time() - 60  # the debounce window has ended: fetch does not wait
    [workflow] = deliver(manifest.sensor or {}, delivery(check_suite()), cluster, now=sent)
    assert workflow["metadata"]["labels"]["aioperator.io/trigger"] == "event"
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "staging-automerge"}
    arguments = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    window = int(sent) // 15
    assert arguments == {
        "pull-requests": "[7]",
        "repository": "acme/web",
        "not-before": str((window + 1) * 15),
    }
    assert workflow["metadata"]["name"] == f"staging-automerge-e-4f1c7a2e9b3d-{window}"
    with fakes() as (world, github, llm):
        result = run(manifest, workflow, pod_env(github, llm))
        assert result.phase == "Succeeded", result.message
        assert world.pull_request("acme/web", 7).state == "MERGED"
        assert world.pull_request("acme/web", 8).state == "OPEN"
        reads = [r.operation_name for r in github.requests if r.operation_name != "Viewer"]
        assert "SearchPullRequests" not in reads
        assert reads.count("PullRequestsByNumber") == 1
    summary = json.loads(result.global_outputs["summary"])
    assert summary["prsProcessed"] == 1


def test_a_burst_of_twenty_deliveries_for_one_pull_request_makes_one_run() -> None:
    """Twenty deliveries within one debounce window: one Workflow; the API server refuses the
    other nineteen creates (AlreadyExists), so nothing runs twice."""
    manifest = compiled()
    cluster = Cluster()
    start = (int(time.time()) // 15 - 10) * 15  # the start of a window, in the past
    created = [
        workflow
        for second in range(20)
        for workflow in deliver(
            manifest.sensor or {}, delivery(check_suite()), cluster, now=start + second * 0.7
        )
    ]
    assert len(created) == 1 and len(cluster.refused) == 19
    assert set(cluster.refused) == {created[0]["metadata"]["name"]}


def test_deliveries_the_rule_does_not_cover_start_nothing() -> None:
    """A repository outside the rule, a suite still running, a suite without a PR, a bad
    signature: no Workflow."""
    manifest = compiled()
    sensor = manifest.sensor or {}
    foreign = check_suite()
    foreign["repository"] |= {"full_name": "acme/web-fork", "name": "web-fork"}
    running = copy.deepcopy(check_suite())
    running["action"] = "requested"
    no_pr = copy.deepcopy(check_suite())
    no_pr["check_suite"]["pull_requests"] = []
    cluster = Cluster()
    for body in (foreign, running, no_pr):
        assert deliver(sensor, delivery(body), cluster, now=time.time()) == []
    assert deliver(sensor, delivery(check_suite(), event="push"), cluster, now=time.time()) == []
    raw = json.dumps(check_suite()).encode()
    with pytest.raises(SignatureRefused):
        receive(WEBHOOK_SECRET, {"X-Hub-Signature-256": sign("another", raw)}, raw)
    assert cluster.workflows == {}


def test_an_event_run_refuses_a_repository_outside_the_rule() -> None:
    """Payloads are untrusted: fetch refuses, on one line, a repository the rule does not name
    (a Workflow made by hand, say) and reads nothing."""
    manifest = compiled()
    cluster = Cluster()
    [workflow] = deliver(
        manifest.sensor or {}, delivery(check_suite()), cluster, now=time.time() - 60
    )
    workflow["spec"]["arguments"]["parameters"][1]["value"] = "evil/elsewhere"
    with fakes() as (world, github, llm):
        result = run(manifest, workflow, pod_env(github, llm))
        assert github.requests == [] and world.pull_request("acme/web", 7).state == "OPEN"
    [fetch] = [node for node in result.nodes if node.template == "fetch"]
    assert fetch.phase == "Failed"
    assert "'evil/elsewhere' is not one of the rule's repositories" in fetch.stderr
    assert "Traceback" not in fetch.stderr


@pytest.mark.usefixtures("restore_logging")
def test_the_latency_benchmark_prints_both_paths() -> None:
    """benchmarks/events.py runs both paths and prints one row each (figures, no timing check)."""
    out = io.StringIO()
    assert events_benchmark(["--prs", "7", "--repeat", "1"], out) == 0
    rows = [line.split()[0] for line in out.getvalue().splitlines()[2:]]
    assert rows == ["event", "schedule"]
