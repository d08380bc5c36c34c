"""Limits an operator can pull, in the compiled workflow: the merge and close caps, the pause.

Run pod by pod by the Argo DAG interpreter, whose Kubernetes API serves the run's Namespace (and
its annotations), as a cluster would to a pod allowed to ``get`` it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.compile import CompileOptions, compile_rule
from tests.argo_interpreter import MemoCache, PodRunner, WorkflowRun, run_cron_workflow
from tests.conftest import AI_TOKEN, GITHUB_TOKEN
from tests.e2e.test_pipeline import SECRETS, STAGING, assert_clean, example, pod_env
from tests.e2e.test_pipeline_act import UsualPods
from tests.factories import inlined
from tests.sandbox import FakeGitHub, FakeLLM, GitHubWorld

pytestmark = pytest.mark.e2e

MERGEABLE = 3
CLOSABLE = 2
UNPACED = "100000"
"""Writes an hour: the example runs every minute, whose default share of 400 an hour is 6 a
pass (three pull requests); here only the caps and the pause hold writes back."""


def populate(world: GitHubWorld) -> None:
    """Three green, mergeable PRs and two whose authors asked to close them."""
    world.add_repository("acme/web", labels=[*STAGING, "needs-human-approval"])
    world.add_repository("acme/api", labels=[*STAGING])
    for number in range(1, MERGEABLE + 1):
        world.add_pull_request("acme/web", number=number, title=f"Change {number}", labels=STAGING)
    for number in range(MERGEABLE + 1, MERGEABLE + CLOSABLE + 1):
        title = f"[abandoned] [close] Experiment {number}"
        world.add_pull_request("acme/web", number=number, title=title, labels=STAGING)


def compiled(**limits: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    document = example("staging-automerge").to_document()
    document["spec"]["limits"] = limits
    rule = PRReconciliationRule.model_validate(document)
    manifest = compile_rule(rule, "argo", CompileOptions())
    return inlined(manifest), manifest.config_map


def run(
    document: dict[str, Any],
    config_map: dict[str, Any] | None,
    env: dict[str, str],
    memo: MemoCache,
    pods: PodRunner | None = None,
) -> WorkflowRun:
    return run_cron_workflow(
        document, env=env, secrets=SECRETS, memo=memo, pods=pods, config_maps=[config_map]
    )


def rows(run: WorkflowRun) -> list[dict[str, Any]]:
    """Every act pod's result rows."""
    found = []
    for node in run.nodes:
        if node.template == "act" and node.outputs.get("results"):
            found += json.loads(node.outputs["results"])
    return found


def summary(run: WorkflowRun) -> dict[str, Any]:
    return json.loads(run.global_outputs["summary"])


def test_merge_and_close_caps_defer_the_rest_to_the_next_run() -> None:
    """``maxMergesPerPass: 1``, ``maxClosesPerPass: 1``: at most one merge and one close a run,
    the rest deferred (reported in the rows and the run's counts) and settled by the next runs.

    The rights are given before the decisions are known: in the first run both go to the first
    PR (a merge), so the closes wait; from the second run on, to the PRs that waited for them.
    """
    document, config_map = compiled(maxMergesPerPass=1, maxClosesPerPass=1)
    world, memo = GitHubWorld(), MemoCache()
    populate(world)
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        env = pod_env(github, llm, GITHUB_WRITES_PER_HOUR=UNPACED)
        first = run(document, config_map, env, memo)
        after_first, asked_first = list(github.mutations), len(llm.requests)
        later = [run(document, config_map, env, memo) for _ in range(2)]
        asked_later = len(llm.requests) - asked_first

    assert_clean(first)
    assert after_first == ["mergePullRequest"]
    deferred = sorted(row["deferred"] for row in rows(first) if row["deferred"])
    assert deferred == ["closes", "closes", "merges", "merges"]
    assert summary(first)["writesDeferred"] == {"closes": 2, "merges": 2}
    assert summary(first)["actions"] == {"merge": 1}  # a deferred merge is no merge
    # Only what waited and may write now is listed again (one merge right, one close right).
    assert [len(rows(r)) for r in later] == [2, 2]
    assert [summary(r)["actions"] for r in later] == [{"close": 1, "merge": 1}] * 2
    # Nothing about the PRs changed: their decide pods reused what the outcome index recorded.
    assert (asked_first, asked_later) == (MERGEABLE + CLOSABLE, 0)
    assert all(row["reused"] for r in later for row in rows(r))
    assert [(summary(r)["decided"], summary(r)["aiCalls"]) for r in later] == [(0, 0)] * 2
    states = [world.pull_request("acme/web", n).state for n in range(1, 6)]
    assert states == ["MERGED"] * MERGEABLE + ["CLOSED"] * CLOSABLE
    assert github.mutations.count("mergePullRequest") == MERGEABLE


class PauseBeforeAct(UsualPods):
    """The usual pods; the Namespace is annotated just before the first act pod starts."""

    def __init__(self, memo: MemoCache) -> None:
        super().__init__()
        self.memo = memo

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, str]:
        if "step" in argv and argv[list(argv).index("step") + 1] == "act":
            self.memo.namespace_annotations = {"aioperator.io/paused": "true"}
        return super().__call__(argv, env, cwd, timeout)


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("setting", id="chart-value-AI_OPERATOR_PAUSED"),
        pytest.param("annotation", id="namespace-annotation-before-the-run"),
        pytest.param("annotation-during-the-run", id="namespace-annotated-after-fetch"),
    ],
)
def test_a_paused_pipeline_writes_nothing(how: str) -> None:
    """Paused by the installation's value or the namespace's annotation, even one set after
    fetch listed the PRs: the act step reads it before any write and writes nothing."""
    document, config_map = compiled()
    world, memo = GitHubWorld(), MemoCache()
    populate(world)
    pods = PauseBeforeAct(memo) if how == "annotation-during-the-run" else None
    if how == "annotation":
        memo.namespace_annotations = {"aioperator.io/paused": "true"}
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        extra = {"AI_OPERATOR_PAUSED": "true"} if how == "setting" else {}
        env = pod_env(github, llm, GITHUB_WRITES_PER_HOUR=UNPACED)
        paused = run(document, config_map, env | extra, memo, pods)
        asked = len(llm.requests)
        memo.namespace_annotations = None  # lifted
        resumed = run(document, config_map, env, memo)
        mutations = list(github.mutations)

    assert_clean(paused)
    total = MERGEABLE + CLOSABLE
    counts = summary(paused)
    assert counts["writesDeferred"] == {"paused": total}
    if how == "annotation-during-the-run":  # decided, then held back by act
        assert {row["deferred"] for row in rows(paused)} == {"paused"} and asked == total
    else:  # fetch saw the pause: nothing decided, nothing asked
        assert rows(paused) == [] and asked == 0 and counts["deferred"] == total
    assert_clean(resumed)
    assert mutations.count("mergePullRequest") == MERGEABLE  # every write made once resumed
    assert mutations.count("closePullRequest") == CLOSABLE
