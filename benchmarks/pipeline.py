"""Benchmark: what the compiled pipeline hands its pods and what Argo stores, at 100 and 1,000 PRs.

    python -m benchmarks.pipeline [--prs 100 1000] [--rules 100]

For each size, the rule is compiled as ``ai-operator compile`` does and one scheduled run is
executed by the project's Argo interpreter (``tests.argo_interpreter``: the same pods, forked) on a
world of that many open, covered PRs against the fake GitHub and model. Measured against the
platform's limits:

- the longest argument and environment value any pod got (Linux: 128 KiB each, ``E2BIG``);
- the Workflow object: its node statuses as Argo writes them (one per node of the run, Retry
  parents included; the figures of ``NodeStatus`` that the interpreter does not keep, such as
  timestamps and host names, at their usual sizes), raw and compressed as Argo compresses them
  past 1 MiB (gzip, base64), against Argo's 1 MiB and etcd's 1.5 MiB;
- the outcome index: the records the run's act pods kept (one per PR, the newest, in the rule's
  16 ConfigMaps), and at steady state, when every open PR has its record (each PR's record is
  replaced when it is decided again, so the index grows with the open PRs, not with how often
  they change): the fullest shard and as if there were one ConfigMap, against 1 MiB;
- compile time for ``--rules`` rules.

Each limit is reported with its margin; the targets ask for at least 2x.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import sys
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ai_operator.jobs.clients.outcome_index import DATA_KEY, shard_of
from ai_operator.jobs.log import configure_logging
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.sandbox.github import FakeGitHub
from ai_operator.jobs.sandbox.llm import FakeLLM
from ai_operator.pipelines.compile import CompileOptions, compile_rule, compile_rules
from benchmarks.fakes import AI_TOKEN, GITHUB_TOKEN, build_world, pod_env, repository_names
from benchmarks.reconcile import benchmark_rule
from tests.argo_interpreter import (
    CONFIG_MAP_DATA_LIMIT,
    MAX_ARG_STRLEN,
    ForkedPods,
    MemoCache,
    NodeRun,
    WorkflowRun,
    run_cron_workflow,
)

KiB, MiB = 1024, 1024 * 1024
ARGO_WORKFLOW_LIMIT = MiB  # Argo's maxWorkflowSize: past it, nodes are compressed; then refused
ETCD_OBJECT_LIMIT = 1536 * KiB
SECRETS = {
    ("ai-operator-secrets", "github-token"): GITHUB_TOKEN,
    ("ai-operator-secrets", "ai-token"): AI_TOKEN,
}
REPOSITORIES = 10


@dataclass(frozen=True)
class Again:
    """The next scheduled run on the same world, nothing changed: what it cost."""

    pods: int
    model_calls: int
    mutations: int
    summary: dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """The sizes one run produced, in bytes, and the outcome index's steady state."""

    prs: int
    decided: int
    pods: int
    seconds: float
    largest_argument: int
    largest_argument_of: str
    largest_env: int
    workflow_raw: int
    workflow_compressed: int
    record: int
    kept: int
    steady_shard: int
    steady_single: int
    again: Again


def measure(prs: int, pods: ForkedPods) -> Sizes:
    """One run over ``prs`` open covered PRs, and the outcome index's steady state."""
    rule = benchmark_rule(repository_names(REPOSITORIES), cap=prs)
    options = CompileOptions()
    manifest = compile_rule(rule, "argo", options)
    document = manifest.document
    memo = MemoCache()
    world = build_world(prs, REPOSITORIES, "open")
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:

        def scheduled_run() -> WorkflowRun:
            return run_cron_workflow(
                document,
                env=pod_env(github, llm),
                secrets=SECRETS,
                memo=memo,
                pods=pods,
                workers=8,
                config_maps=[manifest.config_map],
                workflow_templates=[manifest.workflow_template],
            )

        started = time.perf_counter()
        run = scheduled_run()
        seconds = time.perf_counter() - started
        calls, writes = len(llm.requests), len(github.mutations)
        record, kept = record_size(memo)
        again = scheduled_run()
        second = Again(
            pods=again.pods_started,
            model_calls=len(llm.requests) - calls,
            mutations=len(github.mutations) - writes,
            summary=json.loads(again.global_outputs["summary"]),
        )
    if run.phase != "Succeeded" or again.phase != "Succeeded":
        raise RuntimeError(f"a run ended {run.phase}/{again.phase}: {run.message}")
    argument, of = largest_argument(run)
    raw, compressed = workflow_size(run)
    shard, single = steady_state(world_names(prs), record)
    return Sizes(
        prs=prs,
        decided=json.loads(run.global_outputs["summary"])["decided"],
        pods=run.pods_started,
        seconds=seconds,
        largest_argument=argument,
        largest_argument_of=of,
        largest_env=largest_env(manifest.workflow_template or document),
        workflow_raw=raw,
        workflow_compressed=compressed,
        record=record,
        kept=kept,
        steady_shard=shard,
        steady_single=single,
        again=second,
    )


def largest_argument(run: WorkflowRun) -> tuple[int, str]:
    """The longest input any node was handed (each is a pod argument), and whose."""
    found = max(
        (
            (len(value.encode()), node.template)
            for node in run.nodes
            for value in node.inputs.values()
        ),
        default=(0, "-"),
    )
    return found


def largest_env(document: dict[str, Any]) -> int:
    """The longest ``NAME=value`` environment string of any container."""
    spec = document["spec"]
    templates = spec.get("workflowSpec", spec)["templates"]
    return max(
        len(f"{var['name']}={var.get('value', '')}".encode())
        for template in templates
        if "container" in template
        for var in template["container"].get("env", [])
    )


# --- the Workflow object, as Argo keeps its nodes ----------------------------------------------


def workflow_size(run: WorkflowRun) -> tuple[int, int]:
    """The node statuses' JSON (Go marshals the map sorted by node ID), raw and compressed."""
    nodes: dict[str, Any] = {}
    for node in run.nodes:
        for status in node_statuses(run.name, node):
            nodes[status["id"]] = status
    raw = json.dumps(dict(sorted(nodes.items())), separators=(",", ":")).encode()
    compressed = base64.b64encode(gzip.compress(raw))  # Argo's CompressEncodeString
    return len(raw), len(compressed)


def node_statuses(workflow: str, node: NodeRun) -> list[dict[str, Any]]:
    """Argo's ``NodeStatus`` of one node, and of its Retry parent when its template retries."""
    status: dict[str, Any] = {
        "id": _node_id(workflow, node.name),
        "name": f"{workflow}.{node.name}",
        "displayName": node.name.rsplit(".", 1)[-1],
        "type": node.kind,
        "templateName": node.template,
        "templateScope": "local/",
        "phase": node.phase,
        "boundaryID": _node_id(workflow, node.name.rpartition(".")[0] or workflow),
        "startedAt": "2026-11-30T12:00:00Z",
        "finishedAt": "2026-11-30T12:00:09Z",
        "progress": "1/1",
    }
    if node.inputs:
        status["inputs"] = {"parameters": [{"name": k, "value": v} for k, v in node.inputs.items()]}
    if node.outputs:
        parameters = [{"name": k, "value": v, "valueFrom": {"path": f"/tmp/outputs/{k}.json"}}
                      for k, v in node.outputs.items()]  # fmt: skip
        status["outputs"] = {"parameters": parameters} | (
            {"exitCode": "0"} if node.kind == "Pod" else {}
        )
    if node.kind == "Pod":
        status |= {
            "resourcesDuration": {"cpu": 1, "memory": 9},
            "hostNodeName": "ip-10-0-12-34.eu-west-1.compute.internal",
        }
    status["children"] = [_node_id(workflow, node.name + ".child")]
    retried = node.kind == "Pod" and node.template in {"fetch", "decide", "act"}
    if not retried:
        return [status]
    parent = dict(status, id=_node_id(workflow, node.name + "(retry)"), type="Retry")
    parent.pop("hostNodeName", None)
    parent.pop("resourcesDuration", None)
    return [parent, status]


def _node_id(workflow: str, name: str) -> str:
    return f"{workflow}-{zlib.crc32(name.encode()) % 10**10:010d}"


# --- the outcome index at steady state -------------------------------------------------------


def record_size(cluster: MemoCache) -> tuple[int, int]:
    """The mean bytes of one PR's record in the index's JSON, and how many the run kept."""
    sizes: list[int] = []
    for config_map in cluster.objects.values():
        text = (config_map.get("data") or {}).get(DATA_KEY)
        if not text:
            continue
        entries = json.loads(text)["entries"]
        sizes += [
            len(json.dumps({k: v}, separators=(",", ":")).encode()) for k, v in entries.items()
        ]
    return (round(sum(sizes) / len(sizes)) if sizes else 0), len(sizes)


def world_names(prs: int) -> list[str]:
    """The names of the world's open PRs, as the index keys them (``owner/name#N``)."""
    world = build_world(prs, REPOSITORIES, "open")
    return [f"{pr.repository}#{pr.number}" for pr in world.pull_requests]


def steady_state(names: Sequence[str], record: int) -> tuple[int, int]:
    """The fullest shard's bytes and one ConfigMap's bytes when every open PR has its record."""
    per_shard = Counter(shard_of(name) for name in names)
    return max(per_shard.values()) * record, len(names) * record


# --- compile time ----------------------------------------------------------------------------


def compile_seconds(rules: int) -> float:
    """Seconds to compile ``rules`` distinct rules into CronWorkflows (Argo's checks included)."""
    documents = []
    for index in range(rules):
        document = benchmark_rule([f"acme/service-{index}"], cap=100).to_document()
        document["metadata"]["name"] = f"rule-{index}"
        documents.append(PRReconciliationRule.model_validate(document))
    started = time.perf_counter()
    compile_rules(documents, "argo", CompileOptions())
    return time.perf_counter() - started


# --- the figures -----------------------------------------------------------------------------


def _margin(value: int, limit: int) -> str:
    return f"{value / KiB:.1f} KiB of {limit / KiB:.0f} KiB (margin x{limit / max(value, 1):.1f})"


def render(sizes: list[Sizes], compiled: tuple[int, float]) -> str:
    """The sizes of each run against the platform's limits."""
    lines = []
    for s in sizes:
        steady = f"steady state (a record for each of the {s.prs} open PRs)"
        lines += [
            f"{s.prs} PRs: one run decided {s.decided} (min(cap, max_decisions_per_run)), "
            f"{s.pods} pods, {s.seconds:.1f} s in the interpreter",
            f"  longest pod argument ({s.largest_argument_of}): "
            + _margin(s.largest_argument, MAX_ARG_STRLEN),
            f"  longest environment string: {_margin(s.largest_env, MAX_ARG_STRLEN)}",
            f"  Workflow nodes raw: {s.workflow_raw / KiB:.1f} KiB (Argo compresses past 1 MiB)",
            f"  Workflow nodes compressed: {_margin(s.workflow_compressed, ARGO_WORKFLOW_LIMIT)}",
            f"  outcome index: {s.kept} records kept by the run, {s.record} bytes each; {steady}:",
            f"    fullest of 16 shards: {_margin(s.steady_shard, CONFIG_MAP_DATA_LIMIT)}",
            f"    as one ConfigMap:     {_margin(s.steady_single, CONFIG_MAP_DATA_LIMIT)}",
            f"  the next run, nothing changed: {s.again.pods} pods, "
            f"{s.again.model_calls} model calls, {s.again.mutations} writes; "
            f"reused {s.again.summary['reused']}, decided {s.again.summary['decided']} "
            f"(the PRs not yet decided), deferred {s.again.summary['deferred']}",
            "",
        ]
    rules, seconds = compiled
    lines.append(f"compile: {rules} rules into CronWorkflows in {seconds:.2f} s")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--prs", type=int, nargs="+", default=[100, 1000], help="sizes")
    parser.add_argument("--rules", type=int, default=100, help="rules compiled (default 100)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    configure_logging(level="WARNING")
    with ForkedPods() as pods:
        sizes = [measure(prs, pods) for prs in args.prs]
    compiled = (args.rules, compile_seconds(args.rules))
    print(render(sizes, compiled), file=out or sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
