"""A remembered decision stays true: fallbacks are never remembered, the memo is keyed on the
facts its steps saw, and pull requests beyond the cap take turns without any memory.

`ai-operator run` and the compiled workflow (run pod by pod by the Argo interpreter).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.argo_interpreter import MemoCache, run_cron_workflow
from tests.conftest import cli_env, run_cli
from tests.e2e.test_people_win import one_pr, rows
from tests.e2e.test_pipeline_act import (
    SECRETS,
    STAGING,
    PersonBeforeAct,
    UsualPods,
    run_staging,
    staging,
)
from tests.e2e.test_run import RULE

pytestmark = pytest.mark.e2e

FORBIDDEN = {"action": "dance", "reason": "no such action", "comment": None, "labels": []}


@pytest.fixture
def waiting_rule(tmp_path: Path) -> Path:
    path = tmp_path / "rule.yaml"
    path.write_text(RULE + "  fallbackAction: wait\n")
    return path


# --- 8: fallbacks are not remembered --------------------------------------------------------


def test_run_asks_again_after_a_fallback(world, github, llm, waiting_rule):
    """An unusable answer falls back to wait; the next pass asks again (and merges)."""
    one_pr(world, title="Green")
    llm.answer_next(FORBIDDEN)
    env = cli_env(github, llm)
    [first] = rows(run_cli(["run", str(waiting_rule), "--output", "json"], env))

    [second] = rows(run_cli(["run", str(waiting_rule), "--output", "json"], env))

    assert (first["action"], first["fallback"]) == ("wait", True)
    assert (second["action"], second["reused"]) == ("merge", False)
    assert world.pull_request("acme/web", 1).state == "MERGED"


def test_the_pipeline_decides_again_after_a_fallback() -> None:
    """Run 1 falls back (escalate); run 2 decides the PR again: a fallback is never recorded."""
    with staging(title="Green") as (world, github, llm):
        llm.answer_next(FORBIDDEN)
        memo = MemoCache()
        first = run_staging_memo(github, llm, memo)
        asked = len(llm.requests)
        second = run_staging_memo(github, llm, memo)

    assert first.phase == second.phase == "Succeeded"
    assert len(llm.requests) == asked + 1
    assert world.pull_request("acme/web", 1).state == "MERGED"


# --- 7: the outcome index is keyed on the facts the steps saw ------------------------------


def test_a_pr_whose_facts_flapped_before_act_is_decided_again() -> None:
    """Mergeability goes UNKNOWN just before act (so act waits) and back afterwards: the next
    run decides again and merges, instead of reusing the wait for the index's lifetime."""
    with staging(title="Green") as (world, github, llm):
        pr = world.pull_request("acme/web", 1)
        flap = PersonBeforeAct(lambda: setattr(pr, "mergeable", "UNKNOWN"))
        memo = MemoCache()
        first = run_staging_memo(github, llm, memo, flap)
        assert pr.state == "OPEN"
        pr.mergeable = "MERGEABLE"
        second = run_staging_memo(github, llm, memo)

    assert first.phase == second.phase == "Succeeded"
    assert pr.state == "MERGED"


def run_staging_memo(github, llm, memo: MemoCache, pods=None):
    """The staging example's workflow, with the namespace's ConfigMaps kept between runs."""
    from ai_operator.jobs.rules.files import load_rules
    from ai_operator.pipelines.compile import CompileOptions, compile_rule
    from tests.conftest import ROOT

    rule = load_rules([ROOT / "examples" / "staging-automerge.yaml"])[0].rule
    manifest = compile_rule(rule, "argo", CompileOptions())
    env = cli_env(github, llm)
    del env["GITHUB_TOKEN"], env["AI_TOKEN"]
    return run_cron_workflow(
        manifest.document,
        env=env,
        secrets=SECRETS,
        pods=pods,
        memo=memo,
        config_maps=[manifest.config_map],
        workflow_templates=[manifest.workflow_template],
    )


# --- 13: a required check not reported yet is a reason to wait --------------------------------


@pytest.mark.parametrize(
    ("hours_ago", "action", "guardrail"),
    [
        pytest.param(0, "wait", "required-checks-not-reported", id="fresh-head-waits"),
        pytest.param(2, "escalate", "merge-blocked", id="after-the-grace-escalates"),
    ],
)
def test_run_waits_for_a_required_check_not_reported_yet(
    world, github, llm, waiting_rule, hours_ago, action, guardrail
):
    """GitHub says BLOCKED though every reported check passed: wait an hour from the head."""
    committed = datetime.now(UTC) - timedelta(hours=hours_ago)
    one_pr(world, title="Green", merge_state_status="BLOCKED", committed_at=committed)

    [row] = rows(run_cli(["run", str(waiting_rule), "--output", "json"], cli_env(github, llm)))

    assert (row["proposedAction"], row["action"], row["guardrail"]) == ("merge", action, guardrail)


def test_the_pipeline_waits_for_a_required_check_not_reported_yet() -> None:
    """The same in the compiled workflow: no label, no comment, the PR stays open."""
    with staging(title="Green", merge_state_status="BLOCKED") as (world, github, llm):
        run = run_staging(github, llm)

    pr = world.pull_request("acme/web", 1)
    assert run.phase == "Succeeded" and pr.state == "OPEN"
    assert pr.labels == ["auto-merge", "staging"] and pr.comments == []


# --- 9: one run acts at a time per rule in the cluster -----------------------------------------


def held_lease(holder: str, renewed: datetime) -> dict:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "staging-automerge-act", "resourceVersion": "7"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 120,
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def test_a_run_does_not_act_while_another_run_holds_the_rules_lease() -> None:
    """A scheduled run is acting (it holds the Lease): a resubmitted run's act changes nothing."""
    with staging(title="[close] Old experiment") as (world, github, llm):
        memo = MemoCache()
        memo.leases["staging-automerge-act"] = held_lease("scheduled-run", datetime.now(UTC))
        run = run_staging_memo(github, llm, memo)

    assert world.pull_request("acme/web", 1).state == "OPEN" and github.mutations == []
    acts = [n for n in run.nodes if n.template == "act" and "acme/web#1" in n.name]
    assert acts and all(n.phase != "Succeeded" for n in acts)
    assert all(n.exit_code == 75 and n.attempts > 1 for n in acts)  # it waited, retried by Argo
    assert memo.leases["staging-automerge-act"]["spec"]["holderIdentity"] == "scheduled-run"


def test_an_expired_lease_is_taken_over() -> None:
    """The holder died two minutes ago: this run takes the Lease and acts."""
    with staging(title="[close] Old experiment") as (world, github, llm):
        memo = MemoCache()
        old = datetime.now(UTC) - timedelta(minutes=5)
        memo.leases["staging-automerge-act"] = held_lease("dead-run", old)
        run = run_staging_memo(github, llm, memo)

    assert run.phase == "Succeeded" and world.pull_request("acme/web", 1).state == "CLOSED"
    assert memo.leases["staging-automerge-act"]["spec"]["holderIdentity"] == ""  # report freed it


class AfterAct(UsualPods):
    """The usual pods; ``then(exit code)`` runs as each PR's act pod ends."""

    def __init__(self, then: Callable[[int], None]) -> None:
        super().__init__()
        self.then = then

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, str]:
        code, stderr = super().__call__(argv, env, cwd, timeout)
        is_act = "step" in argv and argv[list(argv).index("step") + 1] == "act"
        if is_act and any("acme/web" in arg for arg in argv):  # not the no-op item's act
            self.then(code)
        return code, stderr


def test_the_run_holds_the_lease_until_its_last_act_and_report_frees_it() -> None:
    """Two PRs, two act pods: neither frees the Lease (its sibling may still be acting); the
    run holds it after every act, and the report step (the exit handler) releases it."""
    with staging(title="[close] Old experiment") as (world, github, llm):
        world.add_pull_request("acme/web", number=2, labels=[*STAGING], title="[close] Stale")
        memo = MemoCache()
        holders: list[str] = []
        watch = AfterAct(lambda _: holders.append(lease_holder(memo)))
        run = run_staging_memo(github, llm, memo, watch)

    assert run.phase == "Succeeded"
    assert [world.pull_request("acme/web", n).state for n in (1, 2)] == ["CLOSED", "CLOSED"]
    assert holders == [run.name, run.name]
    assert lease_holder(memo) == ""


def test_a_waiting_run_acts_once_the_other_run_released_the_lease() -> None:
    """A scheduled run holds the Lease: this run's act exits 75; the scheduled run's report frees
    the Lease; Argo's retry of the act takes it and closes the PR, once."""
    with staging(title="[close] Old experiment") as (world, github, llm):
        memo = MemoCache()
        memo.leases["staging-automerge-act"] = held_lease("scheduled-run", datetime.now(UTC))
        codes: list[int] = []

        def scheduled_run_ends(code: int) -> None:
            codes.append(code)
            with memo.lock:
                memo.leases["staging-automerge-act"]["spec"]["holderIdentity"] = ""

        run = run_staging_memo(github, llm, memo, AfterAct(scheduled_run_ends))

    assert run.phase == "Succeeded" and codes == [75, 0]
    assert world.pull_request("acme/web", 1).state == "CLOSED"
    assert [m for m in github.mutations if m == "closePullRequest"] == ["closePullRequest"]
    assert lease_holder(memo) == ""


def lease_holder(memo: MemoCache) -> str:
    with memo.lock:
        return str(memo.leases["staging-automerge-act"]["spec"]["holderIdentity"])
