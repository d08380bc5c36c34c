"""Benchmark: passes of ``ai-operator run`` beside a naive pass, on the same worlds.

    python -m benchmarks.reconcile [--prs N] [--repos M] [--ai-latency-ms L] [--changed S]
                                   [--world mixed|open] [--cap C] [--parallelism P]
                                   [--passes 1|2|3] [--no-trace]

Each contender runs three passes on its own, identical, freshly built world: a first pass; a
second right after it, with nothing changed; a third after a share ``S`` of the open covered pull
requests got a new commit. Measured per pass: GitHub reads and mutations (counted by the fake
GitHub), model calls and tokens by kind (counted by the decision client), wall time, and memory.

1. ai-operator: ``jobs.reconcile.run.run_pass`` with the real GitHub client, the real Anthropic
   SDK client, ``run``'s default parallelism and its decision cache (in a fresh directory).
2. naive, the earlier design: one listing query per repository, labels filtered client-side, each
   covered pull request's facts read in its own request, one model call per pull request, one at
   a time, no memory between passes; then the same ``act`` as ai-operator.
3. naive-parallel: the same naive design, reading and deciding ``--parallelism`` pull requests at
   once (ai-operator's), so that what parallelism alone gains is visible: the rest of the gap to
   ai-operator is the search (pass 1) and the reuse of decisions (passes 2 and 3).

Each contender runs in a process of its own (so that its peak resident memory is its own), twice:
once for the wall time, once under tracemalloc (for the peak of Python allocations of each pass),
on twin worlds; the two must agree on every count. The fakes (GitHub on its real schema, the model
with a fixed latency) run in a third process on 127.0.0.1. This script talks only to them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import resource
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from pydantic import SecretStr

from ai_operator.jobs.clients.ai import DecisionClient, make_decision_client
from ai_operator.jobs.clients.decision_cache import DecisionFile
from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.config import AIConfig
from ai_operator.jobs.log import configure_logging
from ai_operator.jobs.policy.decision import Decision
from ai_operator.jobs.policy.markers import find_markers
from ai_operator.jobs.policy.snapshot import Check, CiStatus, Mergeable, PullRequestSnapshot, Review
from ai_operator.jobs.reconcile.act import act
from ai_operator.jobs.reconcile.ask import decide_pull_request
from ai_operator.jobs.reconcile.results import PullRequestFailure
from ai_operator.jobs.reconcile.run import DEFAULT_PARALLELISM, Reuse, run_pass
from ai_operator.jobs.rules.model import AIProvider, PRReconciliationRule
from benchmarks.fakes import (
    AI_TOKEN,
    COVERED_LABELS,
    GITHUB_TOKEN,
    covered_count,
    repository_names,
    serve_fakes,
)

MiB = 1024 * 1024
MODEL = "claude-sonnet-5"
PASSES = ("1 first", "2 nothing changed", "3 after changes")
CONTENDERS = ("ai-operator", "naive", "naive-parallel")


# --- the fakes, in a child process -------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """One world served by a fake GitHub in the fakes' process."""

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

    def world(self, prs: int, repos: int, kind: str) -> World:
        """A new fake GitHub over a freshly built world."""
        index, url = self._ask("world", prs, repos, kind)
        return World(index, url)

    def counts(self, world: World) -> Counts:
        """Requests and mutations ``world``'s fake has answered so far."""
        requests, mutations, problems = self._ask("counts", world.index)
        if problems:
            raise BenchmarkError(f"the fake GitHub rejected {problems} request(s)")
        return Counts(requests, mutations)

    def open_covered(self, world: World) -> list[tuple[str, int]]:
        """The covered pull requests still open."""
        return [
            (str(repository), int(number)) for repository, number in self._ask("open", world.index)
        ]

    def push_commits(self, world: World, pull_requests: Sequence[tuple[str, int]]) -> None:
        """Move the head of each pull request to a new commit."""
        self._ask("push", world.index, list(pull_requests))


# --- clients -----------------------------------------------------------------------------------


def benchmark_rule(repositories: Sequence[str], cap: int) -> PRReconciliationRule:
    """The rule under test: both covered labels, every action, ``maxPullRequests`` = ``cap``."""
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
                "maxPullRequests": cap,
            },
        }
    )


def github_client(url: str) -> GitHubClient:
    """The product's GitHub client, unpaced (the fake has no content-creation limit)."""
    return GitHubClient(url, SecretStr(GITHUB_TOKEN), mutation_interval_seconds=0)


def ai_client(llm_url: str) -> DecisionClient:
    """The product's Anthropic SDK client, pointed at the fake model."""
    config = AIConfig(
        provider=AIProvider.ANTHROPIC,
        base_url=llm_url,
        model=MODEL,
        token=SecretStr(AI_TOKEN),
        temperature=None,
        max_tokens=1024,
        timeout_seconds=60.0,
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


def naive_parallel_pass(
    rule: PRReconciliationRule,
    graphql: PlainGraphQL,
    writer: GitHubClient,
    ai: DecisionClient,
    parallelism: int,
) -> None:
    """The naive pass with ``parallelism`` reads and decisions at once: nothing else changes."""
    labels = rule.spec.selector.labels
    covered = [
        (repository, number)
        for repository in rule.spec.repositories
        for number in labelled_numbers(graphql, repository, labels.include, labels.exclude)
    ]

    def read_and_decide(item: tuple[str, int]) -> Decision | None:
        pr = read_facts(graphql, *item)
        try:
            return decide_pull_request(rule, pr, ai)
        except PullRequestFailure:
            return None  # no decision, nothing done

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        decisions = [d for d in pool.map(read_and_decide, covered) if d is not None]
    for decision in decisions:
        act(rule, decision, writer, dry_run=False)


# --- the contenders, each in a process of its own ----------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What a contender's process needs: the world, the model, the rule and its options."""

    name: str
    world_url: str
    llm_url: str
    rule: dict[str, Any]
    parallelism: int
    traced: bool


def contender_pass(setup: Setup) -> tuple[Callable[[], int], DecisionClient]:
    """The pass of ``setup.name`` (it returns how many PRs reused a decision), and its model."""
    rule = PRReconciliationRule.model_validate(setup.rule)
    github, ai = github_client(setup.world_url), ai_client(setup.llm_url)
    if setup.name == "naive":
        graphql = PlainGraphQL(setup.world_url, GITHUB_TOKEN)

        def naive() -> int:
            naive_pass(rule, graphql, github, ai)
            return 0  # no memory: nothing is ever reused

        return naive, ai
    if setup.name == "naive-parallel":
        plain = PlainGraphQL(setup.world_url, GITHUB_TOKEN)

        def naive_parallel() -> int:
            naive_parallel_pass(rule, plain, github, ai, setup.parallelism)
            return 0

        return naive_parallel, ai
    cache = DecisionFile(Path(tempfile.mkdtemp(prefix="ai-operator-bench-")), max_age_seconds=86400)
    reuse = Reuse(cache, f"anthropic/{MODEL}", 86400)

    def ours() -> int:
        report = run_pass(
            rule, rule.spec.repositories, github, ai, dry_run=False,
            parallelism=setup.parallelism, reuse=reuse,
        )  # fmt: skip
        return report.reused

    return ours, ai


def contender_main(conn: Connection, setup: Setup) -> None:
    """A contender's process: one pass per ``"pass"`` message, answered with its figures."""
    configure_logging(level="WARNING")
    run, ai = contender_pass(setup)
    while conn.recv() == "pass":
        before = ai.usage
        if setup.traced:
            tracemalloc.start()
        started = time.perf_counter()
        reused = run()
        wall = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / MiB if setup.traced else 0.0
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        conn.send((wall, peak, rss, reused, asdict(ai.usage - before)))
    conn.close()


@dataclass(frozen=True)
class Figures:
    """What one pass cost."""

    approach: str
    label: str
    github_reads: int
    mutations: int
    model_calls: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reused: int
    wall_seconds: float
    peak_mib: float
    rss_mib: float


class Contender:
    """One contender's process on one world."""

    def __init__(self, servers: FakeServers, setup: Setup, world: World) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=contender_main, args=(child, setup))
        self._process.start()
        child.close()
        self.servers, self.setup, self.world = servers, setup, world

    def run_pass(self, label: str) -> Figures:
        """One pass, and what it cost."""
        before = self.servers.counts(self.world)
        self._conn.send("pass")
        wall, peak, rss, reused, usage = self._conn.recv()
        after = self.servers.counts(self.world)
        mutations = after.mutations - before.mutations
        return Figures(
            approach=self.setup.name,
            label=label,
            github_reads=after.requests - before.requests - mutations,
            mutations=mutations,
            model_calls=usage["calls"],
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            cached_tokens=usage["cached_tokens"],
            reused=reused,
            wall_seconds=wall,
            peak_mib=peak,
            rss_mib=rss,
        )

    def close(self) -> None:
        """Stop the process."""
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(timeout=30)
        self._conn.close()


@dataclass(frozen=True)
class Options:
    """The benchmark's parameters."""

    prs: int
    repos: int
    ai_latency_ms: float
    changed: float
    world: str
    cap: int
    parallelism: int
    passes: int = 3
    trace: bool = True


def three_passes(
    servers: FakeServers, name: str, options: Options, *, traced: bool
) -> list[Figures]:
    """First pass, nothing changed, then after a share of the open covered PRs changed."""
    world = servers.world(options.prs, options.repos, options.world)
    rule = benchmark_rule(repository_names(options.repos), options.cap)
    setup = Setup(name, world.url, servers.llm_url, rule.to_document(), options.parallelism, traced)
    contender = Contender(servers, setup, world)
    try:
        figures = [contender.run_pass(label) for label in PASSES[: min(options.passes, 2)]]
        if options.passes >= 3:
            still_open = servers.open_covered(world)
            changed = still_open[: round(options.changed * len(still_open))]
            servers.push_commits(world, changed)
            figures.append(contender.run_pass(f"3 after {len(changed)} changed"))
    finally:
        contender.close()
    return figures


def compare(servers: FakeServers, name: str, options: Options) -> list[Figures]:
    """The passes timed, with the peak Python memory of a traced run on a twin world."""
    timed = three_passes(servers, name, options, traced=False)
    if not options.trace:
        return timed
    traced = three_passes(servers, name, options, traced=True)
    rows = []
    for plain, memory in zip(timed, traced, strict=True):
        counts = (plain.github_reads, plain.mutations, plain.model_calls, plain.reused)
        if counts != (memory.github_reads, memory.mutations, memory.model_calls, memory.reused):
            raise BenchmarkError(f"{name}: the twin runs disagree: {plain} / {memory}")
        rows.append(replace(plain, peak_mib=memory.peak_mib))
    return rows


def run_benchmark(options: Options) -> list[Figures]:
    """Start the fakes, measure the three contenders, stop the fakes."""
    with FakeServers(options.ai_latency_ms / 1000) as servers:
        return [row for name in CONTENDERS for row in compare(servers, name, options)]


# --- the figures ---------------------------------------------------------------------------------

COLUMNS = (
    ("pass", 22), ("GitHub reads", 12), ("mutations", 9), ("model calls", 11), ("reused", 6),
    ("input tok", 9), ("output tok", 10), ("cached tok", 10), ("wall s", 7), ("peak MiB", 8),
    ("RSS MiB", 7),
)  # fmt: skip


def render(options: Options, rows: list[Figures]) -> str:
    """The figures as a compact table per contender, then the ratios pass by pass."""
    covered = covered_count(options.prs, options.world)
    lines = [
        f"world: {options.prs} open PRs ({options.world}) in {options.repos} repositories, "
        f"{covered} covered by the rule; model latency {options.ai_latency_ms:g} ms; cap "
        f"{options.cap}; ai-operator parallelism {options.parallelism}, naive 1, naive-parallel "
        f"{options.parallelism}",
    ]
    for name in CONTENDERS:
        lines += ["", name, "  ".join(f"{title:>{width}}" for title, width in COLUMNS)]
        for f in (row for row in rows if row.approach == name):
            cells = (f.label, f.github_reads, f.mutations, f.model_calls, f.reused,
                     f.input_tokens, f.output_tokens, f.cached_tokens, f"{f.wall_seconds:.2f}",
                     f"{f.peak_mib:.1f}", f"{f.rss_mib:.0f}")  # fmt: skip
            lines.append(
                "  ".join(
                    f"{cell!s:>{width}}" for cell, (_, width) in zip(cells, COLUMNS, strict=True)
                )
            )
    lines += ["", "naive / ai-operator:"]
    ours = [row for row in rows if row.approach == "ai-operator"]
    theirs = [row for row in rows if row.approach == "naive"]
    for mine, base in zip(ours, theirs, strict=True):
        tokens = base.input_tokens + base.output_tokens, mine.input_tokens + mine.output_tokens
        lines.append(
            f"  {mine.label}: GitHub reads x{_ratio(base.github_reads, mine.github_reads)}, "
            f"model calls x{_ratio(base.model_calls, mine.model_calls)}, "
            f"tokens x{_ratio(*tokens)}, wall x{_ratio(base.wall_seconds, mine.wall_seconds)}, "
            f"peak memory x{_ratio(base.peak_mib, mine.peak_mib)}"
        )
    return "\n".join([*lines, "", render_side_by_side(options, rows)])


def render_side_by_side(options: Options, rows: list[Figures]) -> str:
    """The three contenders pass by pass, and which part of the gain comes from what.

    Wall time: naive / naive-parallel is what parallelism alone gains; naive-parallel /
    ai-operator is the design: in pass 1 (nothing remembered yet) the search, which reads 100 PRs
    per request and acts as decisions arrive; in later passes the search and the reuse of
    unchanged decisions, told apart by their counts (GitHub reads, model calls).
    """
    by = {(row.approach, row.label): row for row in rows}
    labels = [row.label for row in rows if row.approach == "ai-operator"]
    heads = ("naive, 1 at a time", f"naive, {options.parallelism} at a time", "ai-operator")
    lines = [
        "side by side: wall s / GitHub reads / model calls",
        f"{'pass':>22}  " + "  ".join(f"{head:>24}" for head in heads),
    ]
    for label in labels:
        cells = [by[name, label] for name in ("naive", "naive-parallel", "ai-operator")]
        lines.append(
            f"{label:>22}  "
            + "  ".join(
                f"{f'{f.wall_seconds:.2f} / {f.github_reads} / {f.model_calls}':>24}" for f in cells
            )
        )
    lines += ["", "where the gain comes from (wall time, naive / ai-operator):"]
    for label in labels:
        naive, parallel, ours = (by[n, label] for n in ("naive", "naive-parallel", "ai-operator"))
        design = "search" if label.startswith("1 ") else "search and reuse"
        lines.append(
            f"  {label}: x{_ratio(naive.wall_seconds, ours.wall_seconds)} = parallelism "
            f"x{_ratio(naive.wall_seconds, parallel.wall_seconds)} * {design} "
            f"x{_ratio(parallel.wall_seconds, ours.wall_seconds)} (GitHub reads "
            f"x{_ratio(parallel.github_reads, ours.github_reads)}, model calls "
            f"x{_ratio(parallel.model_calls, ours.model_calls)})"
        )
    return "\n".join(lines)


def _ratio(numerator: float, denominator: float) -> str:
    if not denominator:
        return "inf" if numerator else "n/a"
    return f"{numerator / denominator:.2f}"


def parse_args(argv: Sequence[str] | None) -> Options:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reconcile", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--prs", type=int, default=200, help="open pull requests (default 200)")
    parser.add_argument("--repos", type=int, default=4, help="repositories (default 4)")
    parser.add_argument(
        "--ai-latency-ms", type=float, default=50.0, help="model latency per call (default 50)"
    )
    parser.add_argument(
        "--changed", type=float, default=0.1,
        help="share of the open covered PRs given a new commit before pass 3 (default 0.1)",
    )  # fmt: skip
    parser.add_argument(
        "--world", choices=("mixed", "open"), default="mixed",
        help="mixed: 30%% covered, every situation; open: all covered, none closed by a pass",
    )  # fmt: skip
    parser.add_argument("--cap", type=int, default=1000, help="maxPullRequests (default 1000)")
    parser.add_argument("--passes", type=int, choices=(1, 2, 3), default=3, help="passes (3)")
    parser.add_argument(
        "--no-trace", dest="trace", action="store_false",
        help="skip the traced twin runs (no peak Python memory figure; half the time)",
    )  # fmt: skip
    parser.add_argument(
        "--parallelism", type=int, default=DEFAULT_PARALLELISM,
        help=f"ai-operator's decisions at once (default {DEFAULT_PARALLELISM}, run's)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if min(args.prs, args.repos, args.cap, args.parallelism) < 1 or args.ai_latency_ms < 0:
        parser.error("sizes must be positive and the latency not negative")
    if not 0 <= args.changed <= 1:
        parser.error("--changed is a share, between 0 and 1")
    return Options(args.prs, args.repos, args.ai_latency_ms, args.changed, args.world,
                   args.cap, args.parallelism, args.passes, args.trace)  # fmt: skip


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the benchmark and print its figures."""
    options = parse_args(argv)
    configure_logging(level="WARNING")
    print(render(options, run_benchmark(options)), file=out or sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
