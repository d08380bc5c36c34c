"""Write pacing end to end: an escalation batch against a GitHub that limits writes.

GitHub limits content-creating requests and answers 403 with ``retry-after`` beyond the limit.
The sandbox GitHub here allows a fixed number of writes per pass (the limit's window) and refuses
the rest, applying nothing. Over passes, every pull request gets its label and its comment
exactly once, what waited goes first, and the pull requests not reached are reported deferred:
through ``ai-operator run`` as a user runs it, and through the pipeline's steps, whose act pods
run in parallel on the shares fetch gave them.

The batch is small, its proportions those of a large one (300 PRs under a cap of 150, 120 writes
a pass, a window of 101, divided by ten): twice as many pull requests as a pass may decide
(``maxPullRequests``), more than GitHub's window lets a pass write, so that the batch takes six
passes.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from ai_operator.jobs.clients.ai import make_decision_client
from ai_operator.jobs.clients.decision_cache import DecisionCacheError, DecisionFile
from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.config import AIConfig, AIProvider
from ai_operator.jobs.policy.pacing import WriteBudget
from ai_operator.jobs.policy.reuse import Remembered
from ai_operator.jobs.reconcile import steps
from ai_operator.jobs.reconcile.gate import WriteGate
from ai_operator.jobs.reconcile.results import PullRequestResult
from ai_operator.jobs.rules.model import PRReconciliationRule
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, cli_env, run_cli
from tests.sandbox import FakeCheck, FakeGitHub, FakeLLM, GitHubWorld

pytestmark = pytest.mark.e2e

PRS = 30
CAP = 15
"""The rule's ``maxPullRequests``: a pass decides half the batch, the rest is deferred."""
PER_PASS = 12
"""The pass's write budget (``GITHUB_WRITES_PER_PASS``): six escalations of two writes."""
REPOSITORIES = ("acme/web", "acme/api", "acme/db")
COVERED = ["auto-merge", "staging"]
LABEL = "needs-human-approval"
GITHUB_WINDOW = 11
"""Writes the rate-limited GitHub allows in one pass's window (below the pass's budget of 12):
five escalations and the label of a sixth, whose comment is refused."""
RULE = f"""\
apiVersion: aioperator.io/v1alpha1
kind: PRReconciliationRule
metadata: {{name: escalations, namespace: team}}
spec:
  repositories: [{", ".join(REPOSITORIES)}]
  selector:
    labels: {{include: [auto-merge, staging]}}
  instruction: PR #{{{{pr.number}}}} (CI {{{{pr.ciStatus}}}}). Merge if green.
  maxPullRequests: {CAP}
  schedule: "0 * * * *"
"""


def populate(world: GitHubWorld) -> list[tuple[str, int]]:
    """PRS pull requests whose CI failed: each is escalated (a label and a comment)."""
    for repository in REPOSITORIES:
        world.add_repository(repository, labels=[*COVERED, LABEL])
    names = []
    for index in range(PRS):
        repository, number = REPOSITORIES[index % len(REPOSITORIES)], index // 3 + 1
        world.add_pull_request(
            repository,
            number=number,
            title=f"Change {index}",
            labels=COVERED,
            rollup_state="FAILURE",
            checks=[FakeCheck("ci", conclusion="FAILURE")],
        )
        names.append((repository, number))
    return names


def assert_each_written_once(
    world: GitHubWorld, github: FakeGitHub, names: list[tuple[str, int]]
) -> None:
    applied = Counter(github.mutations)
    assert (applied["addLabelsToLabelable"], applied["addComment"]) == (PRS, PRS)
    for repository, number in names:
        pr = world.pull_request(repository, number)
        assert pr.labels.count(LABEL) == 1, (repository, number)
        assert len(pr.comments) == 1, (repository, number)


def test_a_batch_finishes_over_passes_of_run_with_every_write_once(tmp_path: Path) -> None:
    """12 writes a pass, GitHub refusing after 11: each pass escalates what fits, defers the
    rest (rate limit), and the next pass starts with what waited."""
    rule_file = tmp_path / "rule.yaml"
    rule_file.write_text(RULE)
    world = GitHubWorld()
    names = populate(world)
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        passes = run_passes(rule_file, github, llm)
        refused = github.writes_refused

    assert_each_written_once(world, github, names)
    assert len(passes) == 6  # 60 writes, at most 11 a pass
    first = passes[0]["rules"][0]
    assert (first["matched"], first["decided"], first["deferred"]) == (PRS, CAP, PRS - CAP)
    reasons = Counter(row["deferred"] for row in passes[0]["results"] if row["deferred"])
    assert reasons == {"rate-limit": CAP - GITHUB_WINDOW // 2}  # one refusal held the rest
    assert refused < len(passes)  # at most one refused write a pass: none sent again at once
    waited = {row["url"] for row in passes[0]["results"] if row["deferred"]}
    written = {row["url"] for row in passes[1]["results"] if row["operations"]}
    assert written and written <= waited  # what waited goes first
    escalated = [row for row in passes[0]["results"] if row["operations"] and not row["deferred"]]
    assert all(row["action"] == "escalate" for row in escalated)


MODEL = "anthropic/claude-sonnet-5"


def client(url: str) -> GitHubClient:
    """A pod's GitHub client (each pod has its own)."""
    return GitHubClient(url, SecretStr(GITHUB_TOKEN), backoff_seconds=0, sleep=lambda _: None)


class Memory:
    """The outcome index as the pipeline's steps use it, kept in a directory (one per test)."""

    def __init__(self) -> None:
        self.file = DecisionFile(Path(tempfile.mkdtemp()), max_age_seconds=86400)

    def recall(self, rule: str) -> dict[str, Remembered]:
        return self.file.recall(rule)

    def keep(self, rule: str, entries: Mapping[str, Remembered]) -> None:
        self.file.keep(rule, entries)


@pytest.fixture
def fakes() -> Iterator[tuple[GitHubWorld, FakeGitHub, FakeLLM]]:
    world = GitHubWorld()
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        yield world, github, llm


def pipeline_run(
    rule: PRReconciliationRule,
    github_url: str,
    llm: FakeLLM,
    memory: Memory,
    budget: WriteBudget,
    run: str,
    recall: Callable[[str], Remembered | None] | None = None,
) -> tuple[steps.FetchedRun, list[tuple[steps.Decided, list[PullRequestResult]]]]:
    """One run of the pipeline's steps: fetch, then every branch's decide and act in parallel
    (eight at a time, like pods), each act on the share fetch gave its PR. A decide pod reads
    its PR's record with ``recall`` (default: from ``memory``, as from its index shard)."""
    github, model = client(github_url), MODEL
    if recall is None:
        recall = lambda name: memory.recall(rule.qualified_name).get(name)  # noqa: E731
    fetched = steps.fetch_run(
        rule,
        list(REPOSITORIES),
        github,
        memory,
        model=model,
        limit=rule.spec.maxPullRequests,
        max_age=86400,
        now=time.time(),
        budget=budget,
    )
    config = AIConfig(
        provider=AIProvider.ANTHROPIC,
        base_url=llm.anthropic_url,
        model="claude-sonnet-5",
        token=SecretStr(AI_TOKEN),
        temperature=None,
        max_tokens=512,
        timeout_seconds=5.0,
    )

    def branch(ref_json: str) -> tuple[steps.Decided, list[PullRequestResult]]:
        ref = steps.parse_ref(ref_json)  # as the pod reads {{item}}
        pod_github = client(github_url)
        ai = make_decision_client(config)
        seen = steps.decide_recalling(
            rule,
            ref,
            pod_github,
            ai,
            model=model,
            recall=lambda: recall(ref.display),
            now=time.time(),
            max_age=86400,
        )
        handed = steps.dump_for_argo(
            steps.Decided(
                decision=seen.decision,
                usage=ai.usage,
                run=run,
                settled=seen.settled,
                facts=seen.facts,
                share=ref.share,
                decided_at=seen.decided_at,
            )
        )
        return act_pod(rule, handed, pod_github, memory, run, model)

    items = [json.dumps(item) for item in json.loads(steps.dump_for_argo(fetched.refs))]
    with ThreadPoolExecutor(max_workers=8) as pool:
        done = list(pool.map(branch, [i for i in items if '"noop"' not in i]))
    return fetched, done


def act_pod(
    rule: PRReconciliationRule,
    handed: str,
    github: GitHubClient,
    memory: Memory,
    run: str,
    model: str,
) -> tuple[steps.Decided, list[PullRequestResult]]:
    """The act pod: its gate holds the share decide handed on; the record kept after."""
    decided = steps.parse_decided(handed)
    share = decided[0].share
    assert share is not None
    rows, key = steps.act_branch(
        rule, decided, github, dry_run=False, run=run, model=model, gate=WriteGate(share.budget())
    )
    steps.keep_branch_record(rule, decided, rows, key, github, memory, now=time.time())
    return decided[0], rows


def test_a_batch_finishes_over_pipeline_runs_and_a_rerun_writes_nothing_twice(
    fakes: tuple[GitHubWorld, FakeGitHub, FakeLLM],
) -> None:
    """Parallel act pods, each on its share of 12 writes: no run writes more than its budget;
    a rerun of a run's act pods (``argo resubmit``) writes nothing more; over runs every PR
    gets its label and comment once."""
    world, github, llm = fakes
    names = populate(world)
    rule = PRReconciliationRule.model_validate(yaml.safe_load(RULE))
    memory, budget = Memory(), WriteBudget(PER_PASS)
    runs = 0
    while runs < 20:
        runs += 1
        before = len(github.mutations)
        fetched, branches = pipeline_run(rule, github.url, llm, memory, budget, f"run-{runs}")
        written = len(github.mutations) - before
        assert written <= budget.writes
        if runs == 1:
            assert [b.share.writes for b, _ in branches if b.share].count(2) == PER_PASS // 2
            again = len(github.mutations)
            replay = client(github.url)
            for decided, _ in branches:  # the same act pods once more, on their own outputs
                act_pod(rule, steps.dump_for_argo(decided), replay, memory, "run-1b", MODEL)
            assert len(github.mutations) == again
            deferred = [rows[0] for _, rows in branches if rows[0].deferred]
            assert len(deferred) == CAP - PER_PASS // 2
            assert {r.deferred for r in deferred} == {"budget"}
        if fetched.counts.to_decide == 0:
            break
    assert_each_written_once(world, github, names)
    assert runs == 6  # 60 writes, 12 a run, and the last, quiet run
    assert len(llm.requests) == PRS  # a decision that waited is reused, not asked again


# --- a decision that waited for write budget is not bought again from the model ----------------


def run_passes(
    rule_file: Path,
    github: FakeGitHub,
    llm: FakeLLM,
    between: Callable[[int, dict[str, Any]], None] = lambda _n, _p: None,
) -> list[dict[str, Any]]:
    """``ai-operator run`` pass after pass until nothing waits; ``between`` runs after each."""
    env = cli_env(
        github, llm, GITHUB_WRITES_PER_PASS=str(PER_PASS), GITHUB_WRITES_PER_HOUR="100000"
    )
    passes: list[dict[str, Any]] = []
    for number in range(1, 26):
        github.restore_writes(GITHUB_WINDOW)  # the limit's window passed between passes
        result = run_cli(["run", str(rule_file), "--output", "json"], env, timeout=120)
        assert result.code == 0, result.stderr
        passes.append(result.json())
        rules = passes[-1]["rules"][0]
        if rules["writesDeferred"] == 0 and rules["deferred"] == 0:
            break
        between(number, passes[-1])
    return passes


def test_run_asks_the_model_once_per_pull_request_however_many_passes_its_writes_wait(
    tmp_path: Path,
) -> None:
    """Six passes of writes, thirty model calls: a decision that waited is acted on again, and
    reused (no model call) while its pull request is unchanged; every write still happens once."""
    rule_file = tmp_path / "rule.yaml"
    rule_file.write_text(RULE)
    world = GitHubWorld()
    names = populate(world)
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        passes = run_passes(rule_file, github, llm)
        asked = len(llm.requests)

    assert_each_written_once(world, github, names)
    assert len(passes) == 6
    assert asked == PRS  # before: every pass asked again about every PR whose writes waited
    later = [row for p in passes[1:] for row in p["results"] if row["operations"]]
    waited_before = {row["url"] for p in passes[:-1] for row in p["results"] if row["deferred"]}
    assert later and all(row["reused"] for row in later if row["url"] in waited_before)


def test_a_person_still_wins_over_a_reused_decision_that_waited(tmp_path: Path) -> None:
    """Between passes a person removes the label the operator wrote on a PR whose comment
    waited, and closes a PR whose writes all waited: the label is not added again, the closed
    PR gets nothing, and neither PR is asked about again."""
    rule_file = tmp_path / "rule.yaml"
    rule_file.write_text(RULE)
    world = GitHubWorld()
    names = populate(world)
    chosen: dict[str, tuple[str, int]] = {}

    def person(number: int, report: dict[str, Any]) -> None:
        if number != 1:
            return
        waited = [row for row in report["results"] if row["deferred"]]
        half = next(row for row in waited if row["operations"])  # its label, not its comment
        none = next(row for row in waited if not row["operations"])
        chosen["unlabeled"] = (half["repository"], half["number"])
        chosen["closed"] = (none["repository"], none["number"])
        world.remove_label(half["repository"], half["number"], LABEL, actor="octocat")
        world.close(none["repository"], none["number"], actor="octocat")

    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        run_passes(rule_file, github, llm, person)
        asked = len(llm.requests)
        applied = Counter(github.mutations)

    assert asked == PRS
    unlabeled = world.pull_request(*chosen["unlabeled"])
    assert LABEL not in unlabeled.labels and len(unlabeled.comments) == 1
    closed = world.pull_request(*chosen["closed"])
    assert LABEL not in closed.labels and closed.comments == []
    assert (applied["addLabelsToLabelable"], applied["addComment"]) == (PRS - 1, PRS - 1)
    for name in names:
        if name not in chosen.values():
            pr = world.pull_request(*name)
            assert (pr.labels.count(LABEL), len(pr.comments)) == (1, 1), name


def test_the_next_pipeline_run_writes_what_waited_without_asking_the_model_again(
    fakes: tuple[GitHubWorld, FakeGitHub, FakeLLM],
) -> None:
    """Run 1 decides 15 and defers the writes of 9; run 2 lists the 6 of them its 12 writes fit
    first, marked, and their decide pods reuse the record (no model call): they are written;
    the other 3 wait in the index, still recorded at their first decision time; the model is
    asked only about PRs never decided (9, the rest of the run's 15)."""
    world, github, llm = fakes
    populate(world)
    rule = PRReconciliationRule.model_validate(yaml.safe_load(RULE))
    memory, budget = Memory(), WriteBudget(PER_PASS)
    _, first = pipeline_run(rule, github.url, llm, memory, budget, "run-1")
    waited = {d.decision.display for d, rows in first if rows[0].deferred}
    decided_at = {name: memory.recall(rule.qualified_name)[name].decided_at for name in waited}
    asked_before = len(llm.requests)

    fetched, second = pipeline_run(rule, github.url, llm, memory, budget, "run-2")

    assert len(waited) == CAP - PER_PASS // 2
    marked = [ref.display for ref in fetched.refs if ref.waited]
    assert set(marked) < waited and len(marked) == PER_PASS // 2
    assert [ref.display for ref in fetched.refs[: len(marked)]] == marked  # first in the run
    assert fetched.counts.to_decide == CAP and fetched.counts.deferred == PRS - CAP - len(marked)
    reused = {d.decision.display: (d, rows[0]) for d, rows in second if d.decided_at is not None}
    assert set(reused) == set(marked)
    assert all(d.usage.calls == 0 and row.reused for d, row in reused.values())
    assert all(row.operations and not row.deferred for _, row in reused.values())
    assert len(llm.requests) - asked_before == CAP - len(marked)  # only PRs never decided
    records = memory.recall(rule.qualified_name)
    for name in waited:
        assert records[name].decided_at == decided_at[name]
        assert records[name].deferred is (name not in marked)
        assert records[name].applied == (reused[name][1].operations if name in marked else ())


def test_a_decide_pod_asks_the_model_when_the_facts_changed_or_the_record_cannot_be_read(
    fakes: tuple[GitHubWorld, FakeGitHub, FakeLLM],
) -> None:
    """Memory only saves work: a PR whose head moved since its writes waited is decided again,
    and so is one whose record the decide pod cannot read; the others reuse theirs."""
    world, github, llm = fakes
    populate(world)
    rule = PRReconciliationRule.model_validate(yaml.safe_load(RULE))
    memory, budget = Memory(), WriteBudget(PER_PASS)
    _, first = pipeline_run(rule, github.url, llm, memory, budget, "run-1")
    moved, *waited = sorted(d.decision.display for d, rows in first if rows[0].deferred)
    unreadable = set(waited[::2])
    repository, number = moved.split("#")
    world.push_commit(repository, int(number))

    def recall(name: str) -> Remembered | None:
        if name in unreadable:
            raise DecisionCacheError("ConfigMap ai-operator-memo-escalations-3: HTTP 403")
        return memory.recall(rule.qualified_name).get(name)

    fetched, second = pipeline_run(rule, github.url, llm, memory, budget, "run-2", recall)
    calls = {d.decision.display: d.usage.calls for d, _ in second}
    marked = {ref.display for ref in fetched.refs if ref.waited}
    assert moved not in marked and calls[moved] == 1  # its key changed: fetch asks again
    assert marked & unreadable and marked - unreadable
    assert all(calls[name] == (1 if name in unreadable else 0) for name in marked)
