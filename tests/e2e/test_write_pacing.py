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
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from ai_operator.jobs.clients.ai import make_decision_client
from ai_operator.jobs.clients.decision_cache import DecisionFile
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
        env = cli_env(
            github, llm, GITHUB_WRITES_PER_PASS=str(PER_PASS), GITHUB_WRITES_PER_HOUR="100000"
        )
        passes: list[dict[str, Any]] = []
        for _ in range(25):
            github.restore_writes(GITHUB_WINDOW)  # the limit's window passed between passes
            result = run_cli(["run", str(rule_file), "--output", "json"], env, timeout=120)
            assert result.code == 0, result.stderr
            passes.append(result.json())
            rules = passes[-1]["rules"][0]
            if rules["writesDeferred"] == 0 and rules["deferred"] == 0:
                break
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
) -> tuple[steps.FetchedRun, list[tuple[steps.Decided, list[PullRequestResult]]]]:
    """One run of the pipeline's steps: fetch, then every branch's decide and act in parallel
    (eight at a time, like pods), each act on the share fetch gave its PR."""
    github, model = client(github_url), MODEL
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
        decision, settled, facts = steps.decide_seeing(rule, ref, pod_github, ai, model=model)
        handed = steps.dump_for_argo(
            steps.Decided(decision=decision, run=run, settled=settled, facts=facts, share=ref.share)
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
