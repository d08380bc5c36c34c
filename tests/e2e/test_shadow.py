"""Shadow mode end to end: `ai-operator run` over three passes while people act on the sandbox.

The rule decides with the stand-in model and the real guardrails and writes nothing (the sandbox
counts every mutation); people merge, close, label, comment and push between the passes
(the sandbox's world, which records GitHub's timeline); each pass settles the earlier decisions
from the timeline. The agreement is read from ``run --output json``, from the table, and from
the counters the runs pushed to a real Pushgateway.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.jobs.clients.metrics import read_group
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.compile import CompileOptions, compile_rule
from tests.argo_interpreter import MemoCache, run_cron_workflow
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, ROOT, CliResult, cli_env, run_cli
from tests.e2e.test_pipeline_act import SECRETS
from tests.factories import inlined
from tests.sandbox import FakeCheck, FakeGitHub, FakeLLM, GitHubWorld
from tests.services import prometheus, pushgateway, wait_for_series

pytestmark = [pytest.mark.e2e, pytest.mark.services]

RULE = """\
apiVersion: aioperator.io/v1alpha1
kind: PRReconciliationRule
metadata: {name: shadow-automerge, namespace: team-web}
spec:
  mode: Shadow
  repositories: [acme/web]
  selector: {labels: {include: [auto-merge]}}
  instruction: "PR #{{pr.number}} with CI {{pr.ciStatus}}: merge when green, close abandoned."
"""
COVERED = ["auto-merge"]
FAILED = {"rollup_state": "FAILURE", "checks": [FakeCheck("ci", conclusion="FAILURE")]}
PENDING = {"rollup_state": "PENDING", "checks": [FakeCheck("ci", None, "IN_PROGRESS")]}
GROUP = {"namespace": "team-web", "rule": "shadow-automerge"}
DASHBOARD = ROOT / "charts" / "ai-operator" / "dashboards" / "ai-operator.json"
SCRAPED_WITHIN = 30.0


def a_second_later() -> None:
    """People act in a later second than the pass decided: GitHub's times are whole seconds, and
    an event in the decision's own second is not told apart from one just before it."""
    time.sleep(1.05 - time.time() % 1)


SETTLED_AFTER_PEOPLE_ACTED = {
    "merge:merged": 1,
    "close:closed": 1,
    "escalate:stepped_in": 1,
    "wait:changed": 1,
    "merge:closed": 1,
    "close:merged": 1,
}
"""What the second pass settles of the first one's six decisions (decided:happened)."""


def people_act_after_the_first_pass(world: GitHubWorld) -> None:
    """In a later second: #1 merged and #2 closed as decided, a review asked on #3 (escalated),
    a new commit on #4 (waited), #5 closed and #6 merged against what was decided."""
    a_second_later()
    world.merge("acme/web", 1, actor="alice")
    world.close("acme/web", 2, actor="alice")
    world.add_label("acme/web", 3, "needs-review", actor="bob")
    world.push_commit("acme/web", 4, actor="carol")
    world.close("acme/web", 5, actor="alice")
    world.merge("acme/web", 6, actor="bob")


def populate(world: GitHubWorld) -> None:
    """Six PRs, one decision each in the first pass: merge, close, escalate, wait, merge, close."""
    world.add_repository("acme/web", labels=COVERED)
    add = world.add_pull_request
    add("acme/web", number=1, title="Green", labels=COVERED)
    add("acme/web", number=2, title="[close] Old experiment", labels=COVERED)
    add("acme/web", number=3, title="Broken", labels=COVERED, **FAILED)
    add("acme/web", number=4, title="Still building", labels=COVERED, **PENDING)
    add("acme/web", number=5, title="Green too", labels=COVERED)
    add("acme/web", number=6, title="[close] Not abandoned after all", labels=COVERED)


def shadow_run(rule: Path, env: dict[str, str], *more: str) -> CliResult:
    result = run_cli(["run", str(rule), *more], env)
    assert result.code == 0, result.stderr
    return result


def score(result: CliResult) -> dict[str, Any]:
    [rule] = result.json()["rules"]
    assert rule["mode"] == "shadow"
    return rule["shadow"]


def per_action(found: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {
        action: (mine["decisions"], mine["settled"], mine["agreed"])
        for action, mine in found["actions"].items()
    }


def test_a_shadow_rule_writes_nothing_and_scores_what_people_did(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """Three passes, 0 mutations; 8 decisions, all settled, 4 agreed: one of each action.

    Pass 1 decides the six PRs. People then merge #1 (merge agrees), close #2 (close agrees),
    label #3 (escalate agrees), push to #4 (wait agrees), close #5 (merge does not) and merge #6
    (close does not). Pass 2 settles those and decides #3 and #4 again (their facts changed).
    People then merge #3 (the new escalation does not agree) and comment on #4 (the new wait
    does not). Pass 3 settles those; #4 is unchanged for a decision, reused, and nothing new.
    """
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE)
    populate(world)
    env = cli_env(github, llm)

    first = shadow_run(rule, env, "--output", "json")
    rows = first.rows()
    assert {n: rows[n]["action"] for n in rows} == {
        1: "merge",
        2: "close",
        3: "escalate",
        4: "wait",
        5: "merge",
        6: "close",
    }
    assert {row["mode"] for row in rows.values()} == {"shadow"}
    assert not any(row["applied"] or row["operations"] for row in rows.values())
    assert score(first)["decisions"] == 6 and score(first)["settled"] == 0

    people_act_after_the_first_pass(world)

    second = shadow_run(rule, env, "--output", "json")
    assert sorted(second.rows()) == [3, 4]
    found = score(second)
    assert found["settledNow"] == SETTLED_AFTER_PEOPLE_ACTED
    assert (found["decisions"], found["settled"], found["agreed"]) == (8, 6, 4)

    a_second_later()
    world.merge("acme/web", 3, actor="alice")
    world.comment("acme/web", 4, "bob", "I will take this one.")

    third = shadow_run(rule, env, "--output", "json")
    found = score(third)

    assert {n: row["reused"] for n, row in third.rows().items()} == {4: True}  # nothing new
    assert (found["decisions"], found["settled"], found["agreed"]) == (8, 8, 4)
    assert found["agreement"] == 0.5
    assert per_action(found) == {
        "merge": (2, 2, 1),
        "close": (2, 2, 1),
        "escalate": (2, 2, 1),
        "wait": (2, 2, 1),
    }
    assert found["actions"]["wait"]["happened"] == {"changed": 1, "stepped_in": 1}
    assert github.mutations == []
    assert world.pull_request("acme/web", 4).labels == COVERED  # nothing written, ever


def test_the_counters_pushed_carry_decided_and_outcome(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """ai_operator_shadow_* in the rule's group: decisions, settled by outcome, agreed; a third
    pass that changes nothing adds nothing to them, and its table says the same."""
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE)
    populate(world)
    # Prometheus starts with the Pushgateway: it scrapes a new target a few seconds after it
    # starts, while the passes run. The panel has no series until a decision is settled.
    with pushgateway() as gateway, prometheus(f"{gateway}/metrics") as prom:
        env = cli_env(github, llm, PUSHGATEWAY_URL=gateway)
        shadow_run(rule, env)
        a_second_later()
        world.merge("acme/web", 1, actor="alice")
        world.close("acme/web", 5, actor="alice")
        world.push_commit("acme/web", 4, actor="carol")
        shadow_run(rule, env)
        third = shadow_run(rule, env)
        group = read_group(gateway, "ai-operator", GROUP, timeout=5)
        [series] = wait_for_series(prom, dashboard_expr("Shadow agreement"), SCRAPED_WITHIN)

    def sample(name: str, **labels: str) -> float:
        return group.get((name, tuple(sorted(labels.items()))), 0.0)

    decided = "ai_operator_shadow_decisions_total"
    assert {a: sample(decided, decided=a) for a in ("merge", "close", "escalate", "wait")} == {
        "merge": 2,
        "close": 2,
        "escalate": 1,
        "wait": 2,  # #4 again at its new head
    }
    settled = "ai_operator_shadow_settled_total"
    assert sample(settled, decided="merge", outcome="merged") == 1
    assert sample(settled, decided="merge", outcome="closed") == 1
    assert sample(settled, decided="wait", outcome="changed") == 1
    assert sum(v for (name, _), v in group.items() if name == settled) == 3
    assert sample("ai_operator_shadow_agreed_total", decided="merge") == 1
    assert sample("ai_operator_shadow_agreed_total", decided="wait") == 1
    assert sample("ai_operator_actions_total", action="merge") == 0  # nothing was done
    assert github.mutations == []
    table = "shadow mode, nothing was written: 7 decisions recorded, 3 settled, 2 agreed (67%)"
    assert table in third.stdout
    # The dashboard's panel, queried through a real Prometheus: 2 agreed of 3 settled.
    assert series["metric"] == GROUP
    assert float(series["value"][1]) == pytest.approx(2 / 3)


def dashboard_expr(title: str) -> str:
    """The query of the chart's dashboard panel ``title``, for every namespace and rule."""
    document = json.loads(DASHBOARD.read_text())
    [panel] = [p for p in document["panels"] if p.get("title") == title]
    expr = str(panel["targets"][0]["expr"])
    return expr.replace("$namespace", ".*").replace("$rule", ".*")


# --- the compiled workflow, run pod by pod --------------------------------------------------


def run_shadow_pipeline(
    rule_text: str, github: FakeGitHub, llm: FakeLLM, memo: MemoCache, gateway: str
):
    """The shadow rule's CronWorkflow, run once, the namespace's ConfigMaps kept in ``memo``."""
    rule = rule_from_text(rule_text)
    manifest = compile_rule(rule, "argo", CompileOptions())
    env = cli_env(github, llm, PUSHGATEWAY_URL=gateway)
    del env["GITHUB_TOKEN"], env["AI_TOKEN"]  # the pods get them from the Secret
    return run_cron_workflow(
        inlined(manifest),
        env=env,
        secrets=SECRETS,
        memo=memo,
        config_maps=[manifest.config_map],
    )


def rule_from_text(text: str) -> PRReconciliationRule:
    return PRReconciliationRule.model_validate(yaml.safe_load(text))


def test_the_compiled_workflow_writes_nothing_and_reports_the_score() -> None:
    """Three runs of the compiled workflow, people acting between them: 0 mutations, and the run's
    summary (what the controller writes as status.shadow) carries the same score as ``run``."""
    world = GitHubWorld()
    populate(world)
    with (
        FakeGitHub(world, token=GITHUB_TOKEN) as github,
        FakeLLM(token=AI_TOKEN) as llm,
        pushgateway() as gateway,
    ):
        memo = MemoCache()
        first = run_shadow_pipeline(RULE, github, llm, memo, gateway)
        people_act_after_the_first_pass(world)
        second = run_shadow_pipeline(RULE, github, llm, memo, gateway)
        a_second_later()
        world.merge("acme/web", 3, actor="alice")
        world.comment("acme/web", 4, "bob", "I will take this one.")
        third = run_shadow_pipeline(RULE, github, llm, memo, gateway)
        mutations = list(github.mutations)
        group = read_group(gateway, "ai-operator", GROUP, timeout=5)

    assert first.phase == second.phase == third.phase == "Succeeded"
    assert mutations == []
    summaries = [json.loads(run.global_outputs["summary"]) for run in (first, second, third)]
    assert summaries[0]["shadowDecided"] == {"merge": 2, "close": 2, "escalate": 1, "wait": 1}
    assert summaries[0]["shadowScore"]["decisions"] == 6
    assert summaries[1]["shadowSettled"] == SETTLED_AFTER_PEOPLE_ACTED
    found = summaries[2]["shadowScore"]
    assert (found["decisions"], found["settled"], found["agreed"]) == (8, 8, 4)
    assert per_action(found) == {
        "merge": (2, 2, 1),
        "close": (2, 2, 1),
        "escalate": (2, 2, 1),
        "wait": (2, 2, 1),
    }
    rows = [
        row
        for run in (first, second, third)
        for node in run.nodes
        if node.template == "act" and "results" in node.outputs
        for row in json.loads(node.outputs["results"])
    ]
    assert rows and {row["mode"] for row in rows} == {"shadow"}
    # The exit handler pushed the same counts: 8 decisions, 8 settled, 4 agreed.
    totals = {
        name: sum(v for (n, _), v in group.items() if n == name)
        for name in (
            "ai_operator_shadow_decisions_total",
            "ai_operator_shadow_settled_total",
            "ai_operator_shadow_agreed_total",
        )
    }
    assert list(totals.values()) == [8, 8, 4]
