"""Benchmark: what the compiled pipeline hands its pods and what Argo stores, at 100 and 1,000 PRs.

    python -m benchmarks.pipeline [--prs 100 1000] [--changed 0.1] [--hours 48] [--rules 100]

For each size, the rule is compiled as ``ai-operator compile`` does and one scheduled run is
executed by the project's Argo interpreter (``tests.argo_interpreter``: the same pods, forked) on a
world of that many open, covered PRs against the fake GitHub and model. Measured against the
platform's limits:

- the longest argument and environment value any pod got (Linux: 128 KiB each, ``E2BIG``);
- the Workflow object: its node statuses as Argo writes them (one per node of the run, Retry
  parents included; the figures of ``NodeStatus`` that the interpreter does not keep, such as
  timestamps and host names, at their usual sizes), raw and compressed as Argo compresses them
  past 1 MiB (gzip, base64), against Argo's 1 MiB and etcd's 1.5 MiB;
- the memo: Argo's entries as the run saved them, and the entries alive at steady state (every
  hour ``--changed`` of the PRs change, so their branch gets a new key; entries live for the
  memo's max age), per ConfigMap shard and as if there were one ConfigMap, against 1 MiB;
- compile time for ``--rules`` rules.

Each limit is reported with its margin; the targets ask for at least 2x.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import random
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from benchmarks.fakes import AI_TOKEN, GITHUB_TOKEN, build_world, repository_names
from benchmarks.reconcile import benchmark_rule
from jobs.log import configure_logging
from jobs.policy.reuse import MEMO_SHARDS
from jobs.rules.model import PRReconciliationRule
from jobs.sandbox.github import FakeGitHub
from jobs.sandbox.llm import FakeLLM
from pipelines.compile import CompileOptions, compile_rule, compile_rules
from tests.argo_interpreter import (
    CONFIG_MAP_DATA_LIMIT,
    MAX_ARG_STRLEN,
    ForkedPods,
    MemoCache,
    NodeRun,
    WorkflowRun,
    parse_go_duration,
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
class Sizes:
    """The sizes one run produced, in bytes, and the memo's steady state."""

    prs: int
    decided: int
    pods: int
    seconds: float
    largest_argument: int
    largest_argument_of: str
    largest_env: int
    workflow_raw: int
    workflow_compressed: int
    memo_entry: int
    steady_entries: int
    steady_shard: int
    steady_single: int


def pod_env(github: FakeGitHub, llm: FakeLLM) -> dict[str, str]:
    """What the settings ConfigMap gives every pod (tokens come from the Secret, per step)."""
    return {
        "GITHUB_GRAPHQL_URL": github.url,
        "GITHUB_MUTATION_INTERVAL_SECONDS": "0",
        "AI_ENDPOINT": llm.anthropic_url,
        "AI_PROVIDER": "anthropic",
        "AI_MODEL": "claude-sonnet-5",
        "LOG_FORMAT": "json",
    }


def measure(prs: int, changed: float, hours: int, pods: ForkedPods) -> Sizes:
    """One run over ``prs`` open covered PRs, and the memo's steady state."""
    rule = benchmark_rule(repository_names(REPOSITORIES), cap=prs)
    options = CompileOptions()
    manifest = compile_rule(rule, "argo", options)
    document = manifest.document
    memo = MemoCache()
    world = build_world(prs, REPOSITORIES, "open")
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        started = time.perf_counter()
        run = run_cron_workflow(
            document,
            env=pod_env(github, llm),
            secrets=SECRETS,
            memo=memo,
            pods=pods,
            workers=8,
            config_maps=[manifest.config_map],
        )
        seconds = time.perf_counter() - started
    if run.phase != "Succeeded":
        raise RuntimeError(f"the run ended {run.phase}: {run.message}")
    argument, of = largest_argument(run)
    raw, compressed = workflow_size(run)
    entry = memo_entry_size(memo)
    entries, shard, single = steady_state(prs, changed, hours, options.memo_max_age, entry)
    return Sizes(
        prs=prs,
        decided=json.loads(run.global_outputs["summary"])["decided"],
        pods=run.pods_started,
        seconds=seconds,
        largest_argument=argument,
        largest_argument_of=of,
        largest_env=largest_env(document),
        workflow_raw=raw,
        workflow_compressed=compressed,
        memo_entry=entry,
        steady_entries=entries,
        steady_shard=shard,
        steady_single=single,
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
    templates = document["spec"]["workflowSpec"]["templates"]
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
    if node.memoized or (node.template == "pull-request" and node.kind == "DAG"):
        cache = "ai-operator-memo-staging-automerge-0"
        status["memoizationStatus"] = {
            "hit": node.memoized,
            "key": "d-" + "0" * 24,
            "cacheName": cache,
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


# --- the memo at steady state ----------------------------------------------------------------


def memo_entry_size(memo: MemoCache) -> int:
    """The mean size of a branch's entry (key and Argo's entry JSON), from the run's memo."""
    sizes = [
        len(key.encode()) + len(raw.encode())
        for data in memo.config_maps.values()
        for key, raw in data.items()
        if not key.startswith("noop-")
    ]
    return round(sum(sizes) / len(sizes)) if sizes else 0


def steady_state(
    prs: int, changed: float, hours: int, max_age: str, entry: int
) -> tuple[int, int, int]:
    """Entries alive after ``hours`` hourly runs, the fullest shard's bytes, one ConfigMap's bytes.

    Every hour a share ``changed`` of the PRs gets new facts, hence a new key; each key's entry
    lives ``max_age`` (Argo replaces an expired entry under the same key, and garbage-collects
    entries not hit for ``CACHE_GC_AFTER_NOT_HIT_DURATION``, here taken as the max age).
    """
    age_hours = parse_go_duration(max_age) / 3600
    rng = random.Random(7)
    version = dict.fromkeys(range(prs), 0)
    created: dict[str, float] = {}
    for hour in range(hours + 1):
        if hour:
            for pr in rng.sample(range(prs), round(changed * prs)):
                version[pr] += 1
        for pr in range(prs):
            key = hashlib.sha256(f"{pr}/{version[pr]}".encode()).hexdigest()[:24]
            if key not in created or hour - created[key] > age_hours:
                created[key] = hour
        created = {k: at for k, at in created.items() if hour - at <= age_hours}
    per_shard = {shard: 0 for shard in MEMO_SHARDS}
    for key in created:
        per_shard[key[0]] += 1
    return len(created), max(per_shard.values()) * entry, len(created) * entry


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


def render(sizes: list[Sizes], changed: float, hours: int, compiled: tuple[int, float]) -> str:
    """The sizes of each run against the platform's limits."""
    lines = []
    for s in sizes:
        steady = (
            f"memo, steady state ({changed:.0%}/h changed, {hours} h, {s.steady_entries} entries)"
        )
        lines += [
            f"{s.prs} PRs: one run decided {s.decided} (min(cap, max_decisions_per_run)), "
            f"{s.pods} pods, {s.seconds:.1f} s in the interpreter",
            f"  longest pod argument ({s.largest_argument_of}): "
            + _margin(s.largest_argument, MAX_ARG_STRLEN),
            f"  longest environment string: {_margin(s.largest_env, MAX_ARG_STRLEN)}",
            f"  Workflow nodes raw: {s.workflow_raw / KiB:.1f} KiB (Argo compresses past 1 MiB)",
            f"  Workflow nodes compressed: {_margin(s.workflow_compressed, ARGO_WORKFLOW_LIMIT)}",
            f"  memo entry: {s.memo_entry} bytes; {steady}:",
            f"    fullest of 16 shards: {_margin(s.steady_shard, CONFIG_MAP_DATA_LIMIT)}",
            f"    as one ConfigMap:     {_margin(s.steady_single, CONFIG_MAP_DATA_LIMIT)}",
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
    parser.add_argument("--changed", type=float, default=0.1, help="share changed each hour")
    parser.add_argument("--hours", type=int, default=48, help="hours simulated for the memo")
    parser.add_argument("--rules", type=int, default=100, help="rules compiled (default 100)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    configure_logging(level="WARNING")
    with ForkedPods() as pods:
        sizes = [measure(prs, args.changed, args.hours, pods) for prs in args.prs]
    compiled = (args.rules, compile_seconds(args.rules))
    print(render(sizes, args.changed, args.hours, compiled), file=out or sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
