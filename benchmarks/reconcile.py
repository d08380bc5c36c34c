"""Benchmark: one reconciliation pass against the earlier design's naive pass, on the same world.

    python -m benchmarks.reconcile [--prs N] [--repos M] [--ai-latency-ms L] [--pushed K]

Every contender runs against an identical, freshly built world: N open pull requests spread over M
repositories, 30% of them carrying the rule's labels, with mixed CI states. Measured:

1. ai-operator: ``jobs.reconcile.run_pass`` with the real GitHub client and the real SDK decision
   client, then a second pass right after (nothing left to change).
2. naive: what the earlier design did, written here with plain GraphQL over urllib: list every
   open pull request of every repository, filter on labels client-side, read each covered pull
   request's facts in its own request, ask the model about each one in turn, then act (with
   ``jobs.reconcile.act``).
3. Scheduled executions with a memo cache: the pipeline's fetch / decide / act steps
   (``jobs.reconcile.steps``), where a dict stands in for Argo's memoize cache keyed by each
   reference's ``key``. Three executions: the first, one with nothing changed, one after pushing a
   commit to K pull requests.

GitHub requests and mutations are counted by the fake GitHub, AI calls by the decision client.
The fakes (GitHub on its real schema, the model server with a fixed latency) run in a child
process on 127.0.0.1, so that their work neither shares the measured process's interpreter nor
shows in its memory. Each pass runs twice on its own world: once timed, once under tracemalloc
(which slows allocation down) for the peak of memory allocated during the pass.

This script talks only to the fakes it starts and stops; it never reaches a real GitHub or model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TextIO

from pydantic import SecretStr

from benchmarks.fakes import (
    AI_TOKEN,
    COVERED_LABELS,
    GITHUB_TOKEN,
    covered_count,
    repository_names,
    serve_fakes,
)
from jobs.clients.ai import DecisionClient, make_decision_client
from jobs.clients.github import GitHubClient
from jobs.config import AIConfig
from jobs.log import configure_logging
from jobs.policy.decision import Decision
from jobs.policy.markers import find_markers
from jobs.policy.snapshot import Check, CiStatus, Mergeable, PullRequestSnapshot, Review
from jobs.reconcile import steps
from jobs.reconcile.act import act
from jobs.reconcile.ask import decide_pull_request
from jobs.reconcile.results import PullRequestFailure
from jobs.reconcile.run import run_pass
from jobs.rules.model import AIProvider, PRReconciliationRule

PARALLELISM = 4  # ai-operator run's default
MiB = 1024 * 1024


# --- the fakes, in a child process -------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """One world served by a fake GitHub in the child process."""

    index: int
    url: str


@dataclass(frozen=True)
class Counts:
    """What one fake GitHub has seen so far."""

    requests: int
    mutations: int


class BenchmarkError(Exception):
    """The benchmark itself went wrong (a fake rejected a document, figures do not repeat)."""


class FakeServers:
    """The fakes' child process; a context manager that starts it and stops it."""

    def __init__(self, ai_latency_seconds: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=serve_fakes, args=(child, ai_latency_seconds), name="benchmark-fakes"
        )
        self._child_end = child
        self.llm_url = ""

    def __enter__(self) -> FakeServers:
        self._process.start()
        self._child_end.close()
        self.llm_url = self._conn.recv()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):  # the child may be gone already
            self._conn.send(("stop",))
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        self._conn.close()
        self._process.close()

    def _ask(self, *message: object) -> Any:
        self._conn.send(message)
        return self._conn.recv()

    def world(self, prs: int, repos: int) -> World:
        """A new fake GitHub over a freshly built world."""
        index, url = self._ask("world", prs, repos)
        return World(index, url)

    def counts(self, world: World) -> Counts:
        """Requests and mutations ``world``'s fake has answered so far."""
        requests, mutations, problems = self._ask("counts", world.index)
        if problems:
            raise BenchmarkError(f"the fake GitHub rejected {problems} request(s)")
        return Counts(requests, mutations)

    def push_commits(self, world: World, pull_requests: Sequence[tuple[str, int]]) -> None:
        """Move the head of each pull request to a new commit."""
        self._ask("push", world.index, list(pull_requests))


# --- clients -----------------------------------------------------------------------------------


def benchmark_rule(repositories: Sequence[str]) -> PRReconciliationRule:
    """The rule under test: both covered labels, every action, a cap above any covered count."""
    return PRReconciliationRule.model_validate(
        {
            "apiVersion": "aioperator.io/v1alpha1",
            "kind": "PRReconciliationRule",
            "metadata": {"name": "staging-automerge", "namespace": "ai-operator-system"},
            "spec": {
                "repositories": list(repositories),
                "selector": {
                    "labels": {"include": list(COVERED_LABELS), "exclude": ["do-not-merge"]},
                },
                "instruction": (
                    "PR #{{pr.number}}: {{pr.title}}. CI {{pr.ciStatus}}, mergeable "
                    "{{pr.mergeable}}. Merge when green, wait while CI runs."
                ),
                "maxPullRequests": 1000,
            },
        }
    )


def github_client(world: World) -> GitHubClient:
    """The product's GitHub client, unpaced (the fake has no content-creation limit)."""
    return GitHubClient(world.url, SecretStr(GITHUB_TOKEN), mutation_interval_seconds=0)


def ai_client(llm_url: str) -> DecisionClient:
    """The product's Anthropic SDK client, pointed at the fake model."""
    config = AIConfig(
        provider=AIProvider.ANTHROPIC,
        base_url=llm_url,
        model="claude-sonnet-5",
        token=SecretStr(AI_TOKEN),
        temperature=None,
        max_tokens=1024,
        timeout_seconds=30.0,
    )
    return make_decision_client(config)


# --- the naive baseline ------------------------------------------------------------------------

LIST_OPEN_PULL_REQUESTS = """
query ListOpenPullRequests($owner: String!, $name: String!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequests(states: OPEN, first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { number labels(first: 50) { nodes { name } } }
    }
  }
}
"""

PULL_REQUEST_FACTS = """
query PullRequestFacts($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      id number title body url state isDraft createdAt updatedAt additions deletions
      changedFiles baseRefName headRefName headRefOid mergeable mergeStateStatus reviewDecision
      author { login }
      repository { nameWithOwner }
      labels(first: 50) { nodes { name } }
      latestReviews(first: 50) { nodes { author { login } state } }
      commits(last: 1) {
        nodes {
          commit {
            statusCheckRollup {
              state
              contexts(first: 50) {
                nodes {
                  __typename
                  ... on CheckRun { name status conclusion }
                  ... on StatusContext { context state }
                }
              }
            }
          }
        }
      }
      comments(last: 100) { nodes { body } }
    }
  }
}
"""


class PlainGraphQL:
    """GraphQL over urllib, one POST per query, as the earlier design sent it."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._token = token

    def query(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The ``data`` of one query; any GraphQL error raises."""
        body = json.dumps({"query": document, "variables": variables}).encode()
        headers = {"Authorization": f"bearer {self._token}", "Content-Type": "application/json"}
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise BenchmarkError(f"GraphQL errors: {payload['errors']}")
        data: dict[str, Any] = payload["data"]
        return data


def labelled_numbers(
    graphql: PlainGraphQL, repository: str, include: Sequence[str], exclude: Sequence[str]
) -> list[int]:
    """Every open pull request of ``repository``, filtered on labels here, page by page."""
    owner, name = repository.split("/")
    numbers: list[int] = []
    after: str | None = None
    while True:
        variables = {"owner": owner, "name": name, "after": after}
        page = graphql.query(LIST_OPEN_PULL_REQUESTS, variables)["repository"]["pullRequests"]
        for node in page["nodes"]:
            labels = {label["name"] for label in node["labels"]["nodes"]}
            if set(include) <= labels and not labels & set(exclude):
                numbers.append(node["number"])
        if not page["pageInfo"]["hasNextPage"]:
            return numbers
        after = page["pageInfo"]["endCursor"]


def read_facts(graphql: PlainGraphQL, repository: str, number: int) -> PullRequestSnapshot:
    """One pull request's facts, in its own request."""
    owner, name = repository.split("/")
    variables = {"owner": owner, "name": name, "number": number}
    pr = graphql.query(PULL_REQUEST_FACTS, variables)["repository"]["pullRequest"]
    return snapshot_of(pr)


def snapshot_of(pr: dict[str, Any]) -> PullRequestSnapshot:
    """Map a plain JSON pull request into the snapshot every decision reads."""
    commits = pr["commits"]["nodes"]
    rollup = commits[0]["commit"]["statusCheckRollup"] if commits else None
    ci = rollup["state"] if rollup else None
    return PullRequestSnapshot(
        id=pr["id"],
        repository=pr["repository"]["nameWithOwner"],
        number=pr["number"],
        url=pr["url"],
        title=pr["title"],
        body=pr["body"] or "",
        author=(pr["author"] or {}).get("login", "ghost"),
        labels=tuple(label["name"] for label in pr["labels"]["nodes"]),
        base_branch=pr["baseRefName"],
        head_branch=pr["headRefName"],
        head_oid=pr["headRefOid"],
        state=pr["state"],
        is_draft=pr["isDraft"],
        ci_status=CiStatus(ci) if ci in set(CiStatus) else CiStatus.UNKNOWN,
        checks=tuple(_check(c) for c in rollup["contexts"]["nodes"]) if rollup else (),
        mergeable=Mergeable(pr["mergeable"]),
        merge_state_status=pr["mergeStateStatus"],
        review_decision=pr["reviewDecision"],
        reviews=tuple(
            Review(author=(r["author"] or {}).get("login", "ghost"), state=r["state"])
            for r in pr["latestReviews"]["nodes"]
        ),
        additions=pr["additions"],
        deletions=pr["deletions"],
        changed_files=pr["changedFiles"],
        created_at=pr["createdAt"],
        updated_at=pr["updatedAt"],
        comment_markers=frozenset().union(
            *(find_markers(c["body"]) for c in pr["comments"]["nodes"])
        ),
    )


def _check(context: dict[str, Any]) -> Check:
    if context["__typename"] == "StatusContext":
        return Check(name=context["context"], status="COMPLETED", conclusion=context["state"])
    return Check(name=context["name"], status=context["status"], conclusion=context["conclusion"])


def naive_pass(
    rule: PRReconciliationRule, graphql: PlainGraphQL, writer: GitHubClient, ai: DecisionClient
) -> None:
    """List all, filter here, read each, decide each in turn, then act on each."""
    labels = rule.spec.selector.labels
    decisions: list[Decision] = []
    for repository in rule.spec.repositories:
        for number in labelled_numbers(graphql, repository, labels.include, labels.exclude):
            pr = read_facts(graphql, repository, number)
            try:
                decisions.append(decide_pull_request(rule, pr, ai))
            except PullRequestFailure:
                continue  # no decision, nothing done
    for decision in decisions:
        act(rule, decision, writer, dry_run=False)


# --- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """What one pass cost."""

    approach: str
    github_requests: int
    ai_calls: int
    wall_seconds: float
    peak_mib: float
    mutations: int


@dataclass(frozen=True)
class Contender:
    """A way to run a pass: ``prepare(world, llm_url)`` gives its AI client and the pass itself."""

    name: str
    prepare: Callable[[World, str], tuple[DecisionClient, Callable[[], object]]]


def operator_contender(rule: PRReconciliationRule) -> Contender:
    """``run_pass`` with the product's clients."""

    def prepare(world: World, llm_url: str) -> tuple[DecisionClient, Callable[[], object]]:
        github, ai = github_client(world), ai_client(llm_url)
        repositories = rule.spec.repositories
        return ai, lambda: run_pass(
            rule, repositories, github, ai, dry_run=False, parallelism=PARALLELISM
        )

    return Contender("ai-operator", prepare)


def naive_contender(rule: PRReconciliationRule) -> Contender:
    """The earlier design's pass."""

    def prepare(world: World, llm_url: str) -> tuple[DecisionClient, Callable[[], object]]:
        graphql, writer, ai = (
            PlainGraphQL(world.url, GITHUB_TOKEN),
            github_client(world),
            ai_client(llm_url),
        )
        return ai, lambda: naive_pass(rule, graphql, writer, ai)

    return Contender("naive", prepare)


def measure(
    servers: FakeServers,
    world: World,
    name: str,
    ai: DecisionClient,
    run: Callable[[], object],
    *,
    traced: bool,
) -> Figures:
    """Run one pass and count what it cost; under tracemalloc when ``traced``."""
    before, calls = servers.counts(world), ai.calls
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        run()
    finally:
        wall = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        tracemalloc.stop()
    after = servers.counts(world)
    return Figures(
        approach=name,
        github_requests=after.requests - before.requests,
        ai_calls=ai.calls - calls,
        wall_seconds=wall,
        peak_mib=peak / MiB,
        mutations=after.mutations - before.mutations,
    )


def two_passes(
    servers: FakeServers, contender: Contender, prs: int, repos: int, *, traced: bool
) -> list[Figures]:
    """A first pass and a second one right after, on a fresh world."""
    world = servers.world(prs, repos)
    ai, run = contender.prepare(world, servers.llm_url)
    return [
        measure(servers, world, f"{contender.name}, pass {n}", ai, run, traced=traced)
        for n in (1, 2)
    ]


def compare(servers: FakeServers, contender: Contender, prs: int, repos: int) -> list[Figures]:
    """Both passes: wall time from a plain run, peak memory from a traced one on a twin world."""
    timed = two_passes(servers, contender, prs, repos, traced=False)
    traced = two_passes(servers, contender, prs, repos, traced=True)
    rows = []
    for plain, memory in zip(timed, traced, strict=True):
        counts = (plain.github_requests, plain.ai_calls, plain.mutations)
        if counts != (memory.github_requests, memory.ai_calls, memory.mutations):
            raise BenchmarkError(f"{plain.approach}: the twin runs disagree: {plain} / {memory}")
        rows.append(replace(plain, peak_mib=memory.peak_mib))
    return rows


# --- the pipeline's memo cache -----------------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    """One scheduled execution of the pipeline with a memo cache."""

    label: str
    ai_calls: int
    memo_hits: int
    github_requests: int
    mutations: int


def scheduled_execution(
    rule: PRReconciliationRule,
    github: GitHubClient,
    ai: DecisionClient,
    memo: dict[str, Decision],
) -> tuple[int, list[dict[str, Any]]]:
    """fetch -> decide (skipped on a memo hit) -> act; the memo hits and the fetched references."""
    refs = [
        r for r in steps.fetch(rule, list(rule.spec.repositories), github) if not steps.is_noop(r)
    ]
    decisions, hits = [], 0
    for ref in refs:
        if ref["key"] in memo:
            hits += 1
            decisions.append(memo[ref["key"]])
            continue
        try:
            memo[ref["key"]] = decision = steps.decide(rule, ref, github, ai)
        except PullRequestFailure:
            continue  # a failed node caches nothing
        decisions.append(decision)
    steps.act_all(rule, decisions, github, dry_run=False)
    return hits, refs


class ScheduledPipeline:
    """The pipeline's executions on one world, with a dict standing in for the memo cache."""

    def __init__(self, servers: FakeServers, world: World, rule: PRReconciliationRule) -> None:
        self.servers, self.world, self.rule = servers, world, rule
        self.github, self.ai = github_client(world), ai_client(servers.llm_url)
        self.memo: dict[str, Decision] = {}
        self.last_refs: list[dict[str, Any]] = []

    def execute(self, label: str) -> Execution:
        """One scheduled execution, and what it cost."""
        before, calls = self.servers.counts(self.world), self.ai.calls
        hits, self.last_refs = scheduled_execution(self.rule, self.github, self.ai, self.memo)
        after = self.servers.counts(self.world)
        return Execution(
            label=label,
            ai_calls=self.ai.calls - calls,
            memo_hits=hits,
            github_requests=after.requests - before.requests,
            mutations=after.mutations - before.mutations,
        )

    def push_commits(self, count: int) -> int:
        """Push a new commit to ``count`` of the PRs the last execution fetched; how many."""
        chosen = [(ref["repository"], ref["number"]) for ref in self.last_refs[:count]]
        self.servers.push_commits(self.world, chosen)
        return len(chosen)


def memoized_executions(
    servers: FakeServers, rule: PRReconciliationRule, prs: int, repos: int, pushed: int
) -> list[Execution]:
    """Three executions: first, nothing changed, then after pushing a commit to ``pushed`` PRs."""
    pipeline = ScheduledPipeline(servers, servers.world(prs, repos), rule)
    first = pipeline.execute("1 first")
    unchanged = pipeline.execute("2 nothing changed")
    moved = pipeline.push_commits(pushed)
    return [first, unchanged, pipeline.execute(f"3 after a push to {moved} PRs")]


# --- the whole run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkReport:
    """Every figure of one run."""

    prs: int
    repos: int
    covered: int
    ai_latency_ms: float
    passes: list[Figures]
    executions: list[Execution]


def run_benchmark(prs: int, repos: int, ai_latency_ms: float, pushed: int) -> BenchmarkReport:
    """Start the fakes, warm up, measure every contender and the memo cache, stop the fakes."""
    rule = benchmark_rule(repository_names(repos))
    contenders = [operator_contender(rule), naive_contender(rule)]
    with FakeServers(ai_latency_ms / 1000) as servers:
        for contender in contenders:  # first-use costs (imports, caches) out of the figures
            two_passes(servers, contender, min(prs, 10), repos, traced=False)
        passes = [row for c in contenders for row in compare(servers, c, prs, repos)]
        executions = memoized_executions(servers, rule, prs, repos, pushed)
    return BenchmarkReport(prs, repos, covered_count(prs), ai_latency_ms, passes, executions)


def render(report: BenchmarkReport) -> str:
    """The figures as a compact text table, the ratios, and the memo cache's executions."""
    lines = [
        f"world: {report.prs} open PRs in {report.repos} repositories, {report.covered} covered "
        f"by the rule; model latency {report.ai_latency_ms:g} ms; parallelism {PARALLELISM}",
        "",
        f"{'approach':<20}  {'GitHub requests':>15}  {'AI calls':>8}  {'wall s':>7}  "
        f"{'peak MiB':>8}  {'mutations':>9}",
    ]
    lines += [
        f"{f.approach:<20}  {f.github_requests:>15}  {f.ai_calls:>8}  {f.wall_seconds:>7.2f}  "
        f"{f.peak_mib:>8.1f}  {f.mutations:>9}"
        for f in report.passes
    ]
    lines += ["", *_ratios(report.passes), "", *_memo_lines(report.executions)]
    return "\n".join(lines)


def _ratios(passes: list[Figures]) -> list[str]:
    by_name = {f.approach: f for f in passes}
    lines = ["naive / ai-operator:"]
    for n in (1, 2):
        ours, theirs = by_name[f"ai-operator, pass {n}"], by_name[f"naive, pass {n}"]
        lines.append(
            f"  pass {n}: GitHub requests x{_ratio(theirs.github_requests, ours.github_requests)}"
            f", AI calls x{_ratio(theirs.ai_calls, ours.ai_calls)}"
            f", wall x{_ratio(theirs.wall_seconds, ours.wall_seconds)}"
            f", peak memory x{_ratio(theirs.peak_mib, ours.peak_mib)}"
        )
    return lines


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "n/a"


def _memo_lines(executions: list[Execution]) -> list[str]:
    lines = [
        "pipeline executions with a memo cache (a dict standing in for Argo's memoize cache):",
        f"{'execution':<26}  {'AI calls':>8}  {'memo hits':>9}  {'GitHub requests':>15}  "
        f"{'mutations':>9}",
    ]
    lines += [
        f"{e.label:<26}  {e.ai_calls:>8}  {e.memo_hits:>9}  {e.github_requests:>15}  "
        f"{e.mutations:>9}"
        for e in executions
    ]
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reconcile", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--prs", type=int, default=200, help="open pull requests (default 200)")
    parser.add_argument("--repos", type=int, default=4, help="repositories (default 4)")
    parser.add_argument(
        "--ai-latency-ms", type=float, default=50.0, help="model latency per call (default 50)"
    )
    parser.add_argument(
        "--pushed", type=int, default=5, help="PRs given a new commit before execution 3"
    )
    args = parser.parse_args(argv)
    if args.prs < 1 or args.repos < 1 or args.ai_latency_ms < 0 or args.pushed < 0:
        parser.error("sizes must be positive and the latency not negative")
    return args


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    configure_logging(level="WARNING")
    report = run_benchmark(args.prs, args.repos, args.ai_latency_ms, args.pushed)
    print(render(report), file=out or sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
