"""Benchmark: from a GitHub event to the merge, event-driven and scheduled.

    python -m benchmarks.events [--prs 20] [--interval 60] [--debounce 15] [--repeat 3]

A world of ``--prs`` green, covered pull requests in one repository, behind the fake GitHub and
model on loopback. The staging example rule, with ``spec.events``, is compiled as the controller
compiles it; then, on a fresh world each time:

- event: the recorded ``check_suite`` delivery for PR 7 (``tests/e2e/webhooks``) is signed,
  received and filtered by the compiled Sensor, whose trigger makes the Workflow; the project's
  Argo interpreter runs it (forked pods) until PR 7 is merged;
- schedule: the CronWorkflow's run (every covered PR) until PR 7 is merged.

Measured: the run's wall time (the interpreter starts each pod at once, as a warm cluster with
free capacity would; a real cluster adds each pod's scheduling and start-up). Waits that are
part of each path by design are added as figures, not slept: an event-started run reads GitHub
when its debounce window ends (0 to ``--debounce`` seconds after the first delivery), a scheduled
run starts at the next tick (0 to ``--interval`` seconds after the event).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ai_operator.jobs.log import configure_logging
from ai_operator.jobs.rules.files import load_rules
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.sandbox.github import FakeGitHub
from ai_operator.jobs.sandbox.github_world import GitHubWorld
from ai_operator.jobs.sandbox.llm import FakeLLM
from ai_operator.pipelines.compile import CompiledManifest, CompileOptions, compile_rule
from benchmarks.fakes import AI_TOKEN, GITHUB_TOKEN, pod_env
from tests.argo_events import Cluster, deliver, receive, sign
from tests.argo_interpreter import ForkedPods, run_cron_workflow, run_workflow

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = ROOT / "tests" / "e2e" / "webhooks" / "check_suite-completed.json"
SECRET = "benchmark-webhook-secret"
SECRETS = {
    ("ai-operator-secrets", "github-token"): GITHUB_TOKEN,
    ("ai-operator-secrets", "ai-token"): AI_TOKEN,
}
LABELS = ("auto-merge", "staging")
NAMED = 7


def event_rule(debounce: int, interval: int) -> PRReconciliationRule:
    rule = load_rules([ROOT / "examples" / "staging-automerge.yaml"])[0].rule
    document = rule.to_document()
    document["spec"]["repositories"] = ["acme/web"]
    document["spec"]["reconciliationInterval"] = interval
    document["spec"]["events"] = {"github": ["check_suite"], "debounceSeconds": debounce}
    return PRReconciliationRule.model_validate(document)


def world(prs: int) -> GitHubWorld:
    found = GitHubWorld()
    found.add_repository("acme/web", labels=list(LABELS))
    for number in range(1, prs + 1):
        found.add_pull_request("acme/web", number=number, title=f"Change {number}", labels=LABELS)
    return found


def unpaced_env(github: FakeGitHub, llm: FakeLLM) -> dict[str, str]:
    """Every pod's environment, not paced: the figure is the pipeline's latency, not GitHub's
    write limits."""
    return pod_env(github, llm) | {
        "GITHUB_WRITES_PER_PASS": "10000",
        "GITHUB_WRITES_PER_HOUR": "100000",
    }


def event_workflow(manifest: CompiledManifest) -> dict[str, Any]:
    """The Workflow the Sensor makes for the recorded delivery (its window already over)."""
    raw = PAYLOAD.read_bytes()
    headers = {"X-GitHub-Event": "check_suite", "X-Hub-Signature-256": sign(SECRET, raw)}
    data = receive(SECRET, headers, raw)
    [workflow] = deliver(manifest.sensor or {}, data, Cluster(), now=time.time() - 3600)
    return workflow


def timed(manifest: CompiledManifest, prs: int, pods: ForkedPods, path: str) -> float:
    """Seconds from the run's start to its end; PR 7 must be merged then."""
    the_world = world(prs)
    with FakeGitHub(the_world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        options: dict[str, Any] = {
            "env": unpaced_env(github, llm),
            "secrets": SECRETS,
            "pods": pods,
            "workers": 8,
            "config_maps": [manifest.config_map],
            "workflow_templates": [manifest.workflow_template],
        }
        started = time.perf_counter()
        if path == "event":
            run = run_workflow(event_workflow(manifest), **options)
        else:
            run = run_cron_workflow(manifest.document, **options)
        seconds = time.perf_counter() - started
    merged = the_world.pull_request("acme/web", NAMED).state == "MERGED"
    if run.phase != "Succeeded" or not merged:
        raise SystemExit(f"{path} run: {run.phase}, PR {NAMED} merged: {merged}: {run.message}")
    decided = json.loads(run.global_outputs["summary"]).get("prsProcessed")
    print(f"  {path} run: {seconds:.2f} s, {decided} PR(s) decided", file=sys.stderr)
    return seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prs", type=int, default=20, help="covered, green PRs (default 20)")
    parser.add_argument("--interval", type=int, default=60, help="the schedule, seconds (60)")
    parser.add_argument("--debounce", type=int, default=15, help="debounceSeconds (15)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path (3)")
    return parser.parse_args(argv)


def render(args: argparse.Namespace, event: list[float], schedule: list[float]) -> str:
    e, s = statistics.median(event), statistics.median(schedule)
    d, i = args.debounce, args.interval
    rows = [
        ("event", e, f"window end: 0-{d}", e + d / 2, e + d),
        ("schedule", s, f"next tick: 0-{i}", s + i / 2, s + i),
    ]
    lines = [
        f"Event to merge: {args.prs} covered green PRs, the event names PR {NAMED}; median of "
        f"{args.repeat} runs (interpreter, forked pods, fakes on loopback)",
        f"{'path':<10}{'run (s)':>9}  {'wait before reading GitHub (s)':<32}"
        f"{'event to merge, mean (s)':>26}{'worst (s)':>11}",
    ]
    for name, run, wait, mean, worst in rows:
        lines.append(f"{name:<10}{run:>9.2f}  {wait:<32}{mean:>26.1f}{worst:>11.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run both paths ``--repeat`` times and print the figures."""
    args = parse_args(argv)
    if args.prs < NAMED:
        raise SystemExit(f"--prs must be at least {NAMED}: the recorded delivery names PR {NAMED}")
    configure_logging(level="WARNING")
    manifest = compile_rule(
        event_rule(args.debounce, args.interval), "argo", CompileOptions(events=True)
    )
    with ForkedPods() as pods:
        event = [timed(manifest, args.prs, pods, "event") for _ in range(args.repeat)]
        schedule = [timed(manifest, args.prs, pods, "schedule") for _ in range(args.repeat)]
    print(render(args, event, schedule), file=out or sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
