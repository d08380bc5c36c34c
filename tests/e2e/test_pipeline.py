"""The compiled CronWorkflow, run pod by pod as Argo runs it, against the fake GitHub and model.

Each example rule is compiled with ``compile_rule(rule, "argo", CompileOptions())`` and run by
:mod:`tests.argo_interpreter`: every step is a real ``ai-operator step ...`` subprocess that gets
its tokens only through the document's ``secretKeyRef``\\s. Worlds stay small: each pod costs
about two seconds of start-up.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ai_operator.jobs.rules.files import load_rules
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.compile import CompiledManifest, CompileOptions, compile_rule
from tests.argo_interpreter import MemoCache, WorkflowRun, run_cron_workflow
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, ROOT, CliResult, cli_env, run_cli
from tests.sandbox import (
    FakeCheck,
    FakeGitHub,
    FakeLLM,
    GitHubWorld,
    LLMRequest,
    pull_request_facts,
)
from tests.services import free_port, pushgateway

pytestmark = pytest.mark.e2e

Populate = Callable[[GitHubWorld], None]

SECRETS = {
    ("ai-operator-secrets", "github-token"): GITHUB_TOKEN,
    ("ai-operator-secrets", "ai-token"): AI_TOKEN,
}
STAGING = ("auto-merge", "staging")  # a tuple: the fake keeps and mutates the list it is given
PR_TAG_TITLE = "Render {{pr.number}} in the changelog"
GLOBAL_TAG_TITLE = "Show {{ workflow.name }} in the footer"


def pending_ci() -> dict[str, Any]:
    return {"rollup_state": "PENDING", "checks": [FakeCheck("ci", None, "IN_PROGRESS")]}


def failed_ci() -> dict[str, Any]:
    return {"rollup_state": "FAILURE", "checks": [FakeCheck("ci", conclusion="FAILURE")]}


def staging_world(world: GitHubWorld) -> None:
    """A PR to merge (its title holds a tag), one to escalate, one to close, one not covered."""
    world.add_repository("acme/web", labels=[*STAGING, "do-not-merge"])
    world.add_repository("acme/api", labels=[*STAGING])
    world.add_pull_request("acme/web", number=1, title=PR_TAG_TITLE, labels=[*STAGING])
    world.add_pull_request(
        "acme/web", number=3, title="Raise limits", labels=[*STAGING], **failed_ci()
    )
    world.add_pull_request("acme/web", number=4, title="Held", labels=[*STAGING, "do-not-merge"])
    world.add_pull_request("acme/api", number=1, title="[close] Old experiment", labels=[*STAGING])


def production_world(world: GitHubWorld) -> None:
    """A green production PR: never merged there, handed to a person with the rule's label."""
    world.add_repository("acme/web", labels=["production"])
    world.add_pull_request("acme/web", number=1, title="Raise replicas", labels=["production"])


def dependabot_world(world: GitHubWorld) -> None:
    """A green Dependabot bump, and a look-alike by a person that the rule does not cover."""
    world.add_repository("acme/web", labels=["dependencies"])
    bump = {"labels": ["dependencies"], "author": "dependabot[bot]"}
    world.add_pull_request(
        "acme/web", number=1, title="Bump lodash from 4.17.20 to 4.17.21", **bump
    )
    world.add_pull_request("acme/web", number=2, title="Bump x", labels=["dependencies"])


def argo_tag_world(world: GitHubWorld) -> None:
    """One green PR whose title names an Argo variable."""
    world.add_repository("acme/api", labels=[*STAGING])
    world.add_pull_request("acme/web", number=1, title=GLOBAL_TAG_TITLE, labels=[*STAGING])


def two_open_prs(world: GitHubWorld) -> None:
    """Two PRs that stay open after a pass: one waits for CI, one is escalated."""
    world.add_repository("acme/web", labels=[*STAGING])
    world.add_pull_request(
        "acme/web", number=2, title="Tune pool", labels=[*STAGING], **pending_ci()
    )
    world.add_pull_request(
        "acme/web", number=3, title="Raise limits", labels=[*STAGING], **failed_ci()
    )


# --- helpers -----------------------------------------------------------------------------------


def example(name: str) -> PRReconciliationRule:
    return load_rules([ROOT / "examples" / f"{name}.yaml"])[0].rule


def covering(rule: PRReconciliationRule, populate: Populate) -> PRReconciliationRule:
    """The rule, pointed at the world's repositories when it names none (validated anew)."""
    if rule.spec.repositories:
        return rule
    world = GitHubWorld()
    populate(world)
    document = rule.to_document()
    document["spec"]["repositories"] = sorted({pr.repository for pr in world.pull_requests})
    return PRReconciliationRule.model_validate(document)


def compiled(rule: PRReconciliationRule) -> CompiledManifest:
    return compile_rule(rule, "argo", CompileOptions())


def pod_env(
    github: FakeGitHub, llm: FakeLLM, provider: str = "anthropic", **extra: str
) -> dict[str, str]:
    """What the ConfigMap gives every pod: no token (tokens come from the Secret, per step)."""
    env = cli_env(github, llm, provider, **extra)
    del env["GITHUB_TOKEN"], env["AI_TOKEN"]
    return env


def run_pipeline(
    manifest: CompiledManifest, env: dict[str, str], memo: MemoCache | None = None
) -> WorkflowRun:
    return run_cron_workflow(
        manifest.document,
        env=env,
        secrets=SECRETS,
        memo=memo,
        config_maps=[manifest.config_map],
        workflow_templates=[manifest.workflow_template],
    )


@contextmanager
def fakes(populate: Populate) -> Iterator[tuple[GitHubWorld, FakeGitHub, FakeLLM]]:
    """A populated world behind its own fake GitHub and model, checked like the fixtures."""
    world = GitHubWorld()
    populate(world)
    with FakeGitHub(world, token=GITHUB_TOKEN) as github, FakeLLM(token=AI_TOKEN) as llm:
        yield world, github, llm
    assert github.invalid_documents == [] and github.unexpected_errors == []


def end_state(world: GitHubWorld) -> dict[str, tuple[object, ...]]:
    return {
        f"{pr.repository}#{pr.number}": (
            pr.state,
            sorted(pr.labels),
            pr.merge_method,
            len(pr.comments),
        )
        for pr in world.pull_requests
    }


def asked_about(requests: list[LLMRequest]) -> list[tuple[str, int]]:
    """The PRs the model was asked about, as (owner/name, number), sorted."""
    facts = [pull_request_facts(r.user) or {} for r in requests]
    return sorted(
        (f.get("repositoryFullName", ""), f.get("pr", {}).get("number", 0)) for f in facts
    )


def seen_titles(requests: list[LLMRequest]) -> list[str]:
    """The titles of the PRs the model was asked about, as it saw them, sorted."""
    facts = [pull_request_facts(r.user) or {} for r in requests]
    return sorted(str(f.get("pr", {}).get("title")) for f in facts)


def rows(results: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[object, ...]]:
    """Report rows by PR: the action, what was proposed and applied, and the title."""
    return {
        (r["repository"], r["number"]): (r["action"], r["proposedAction"], r["applied"], r["title"])
        for r in results
    }


def act_results(run: WorkflowRun) -> list[dict[str, Any]]:
    """Every act node's results (its output parameter ``results``), one act per PR's branch."""
    return [
        row
        for node in run.nodes
        if node.template == "act" and node.phase == "Succeeded"
        for row in json.loads(node.outputs["results"])
    ]


def fetched_counts(run: WorkflowRun) -> dict[str, Any]:
    """What fetch counted: matched, reused (a decision that still stands), to decide, deferred."""
    counts: dict[str, Any] = json.loads(run.node("fetch").outputs["counts"])
    return counts


def results_by_number(run: WorkflowRun) -> dict[int, dict[str, Any]]:
    """The act step's results by PR number."""
    return {row["number"]: row for row in act_results(run)}


def assert_clean(run: WorkflowRun) -> None:
    failed = [
        (n.name, n.phase, n.message, n.stderr[-500:])
        for n in run.nodes
        if n.phase in {"Failed", "Error"}
    ]
    assert run.phase == "Succeeded" and failed == [], (run.message, failed)


# --- the same decisions as `ai-operator run` ---------------------------------------------------


@pytest.mark.parametrize(
    ("rule_name", "populate", "provider"),
    [
        pytest.param("staging-automerge", staging_world, "anthropic", id="staging-anthropic"),
        pytest.param("staging-automerge", staging_world, "openai", id="staging-openai"),
        pytest.param("production-approval", production_world, "anthropic", id="production"),
        pytest.param("dependabot-automerge", dependabot_world, "openai", id="dependabot"),
    ],
)
def test_the_pipeline_decides_and_acts_like_ai_operator_run(
    rule_name: str, populate: Populate, provider: str, tmp_path: Path
) -> None:
    """Two identical worlds, one run by the DAG, one by `run`: the same prompts, rows and GitHub.

    The staging world's titles and the rule's instruction hold `{{...}}`: they pass through
    every step (no node fails on a tag) and reach the model as `run` shows them.
    """
    rule = covering(example(rule_name), populate)
    rule_file = tmp_path / "rule.yaml"
    rule_file.write_text(yaml.safe_dump(rule.to_document()))
    with (
        fakes(populate) as (by_pipeline, github, llm),
        fakes(populate) as (by_run, github_b, llm_b),
        ThreadPoolExecutor(1) as background,  # the two worlds are independent: overlap them
    ):
        local = background.submit(
            run_cli, ["run", str(rule_file), "--output", "json"], cli_env(github_b, llm_b, provider)
        )
        run = run_pipeline(compiled(rule), pod_env(github, llm, provider))
        result: CliResult = local.result()

    assert result.code == 0, result.stderr
    assert_clean(run)
    assert end_state(by_pipeline) == end_state(by_run)
    assert rows(act_results(run)) == rows(result.json()["results"])
    assert seen_titles(llm.requests) == seen_titles(llm_b.requests)
    assert sorted(r.system for r in llm.requests) == sorted(r.system for r in llm_b.requests)
    assert {r.provider for r in llm.requests} == {provider}
    assert any(pr.state != "OPEN" or pr.comments for pr in by_pipeline.pull_requests), "no action"


def test_a_title_naming_an_argo_variable_reaches_act_unchanged() -> None:
    """A title holding `{{ workflow.name }}` is acted on and reported with that very title."""
    with fakes(argo_tag_world) as (_, github, llm):
        run = run_pipeline(compiled(example("staging-automerge")), pod_env(github, llm))

    assert_clean(run)
    assert seen_titles(llm.requests) == [GLOBAL_TAG_TITLE]  # decide gets it unchanged
    assert results_by_number(run)[1]["title"] == GLOBAL_TAG_TITLE


# --- the outcome index and resubmission ---------------------------------------------------------


def test_later_runs_repeat_nothing_until_a_pr_changes() -> None:
    """Later runs and resubmissions leave GitHub as one pass did; a new commit is asked once.

    A scheduled run (or any `argo resubmit`: the rule's outcome index lives in the cluster, not
    in the run) decides no unchanged PR again; with its index deleted, a run decides every PR
    again but changes nothing more on GitHub.
    """
    document = compiled(example("staging-automerge"))
    cluster = MemoCache()  # the namespace's ConfigMaps, where act keeps the outcome index
    with fakes(two_open_prs) as (world, github, llm):
        env = pod_env(github, llm)
        assert_clean(run_pipeline(document, env, cluster))
        one_pass = (end_state(world), list(github.mutations), len(llm.requests))
        index = sorted(cluster.objects)
        assert index and all(n.startswith("ai-operator-memo-staging-automerge-") for n in index)
        assert cluster.config_maps == {}, "Argo memoizes nothing"

        again = run_pipeline(document, env, cluster)
        assert_clean(again)
        assert (end_state(world), github.mutations, len(llm.requests)) == one_pass
        assert again.pods_of("decide") == 1 and again.pods_of("act") == 1  # the no-op item
        assert fetched_counts(again) == {
            "matched": 2,
            "reused": 2,  # both decisions still stand: not listed
            "toDecide": 0,
            "deferred": 0,
        }

        lost = run_pipeline(document, env)  # the index deleted: every PR decided again
        assert_clean(lost)
        assert lost.pods_of("decide") == 3 and len(llm.requests) == one_pass[2] + 2
        assert (end_state(world), github.mutations) == one_pass[:2]

        asked = len(llm.requests)
        world.push_commit("acme/web", 2)
        after_push = run_pipeline(document, env, cluster)

    assert_clean(after_push)
    assert asked_about(llm.requests[asked:]) == [("acme/web", 2)]
    assert after_push.pods_of("decide") == 2  # the new commit and the no-op item
    assert len(world.pull_request("acme/web", 3).comments) == 1


def test_a_model_outage_fails_the_run_without_hanging_it() -> None:
    """When every decide pod fails, the tally still runs, nothing changes, the run ends and reports.

    The run itself succeeds, as Argo judges a DAG by its leaves (the tally handles the branches'
    failure); the failed nodes show in the UI and the pushed metrics count the run as
    unsuccessful. A failed branch keeps no record: the next run decides it again.
    """
    with fakes(two_open_prs) as (world, github, llm):
        secrets = {**SECRETS, ("ai-operator-secrets", "ai-token"): "sk-ant-wrong-token-000000"}
        manifest = compiled(example("staging-automerge"))
        run = run_cron_workflow(
            manifest.document,
            env=pod_env(github, llm),
            secrets=secrets,
            config_maps=[manifest.config_map],
            workflow_templates=[manifest.workflow_template],
        )

    assert run.phase == "Succeeded"
    assert [n.phase for n in run.nodes if n.template == "decide"].count("Failed") == 2
    assert run.node("tally").phase == "Succeeded" and act_results(run) == []
    assert run.node(f"{run.name}.onExit").exit_code == 0
    assert github.mutations == [] and all(pr.comments == [] for pr in world.pull_requests)


# --- an empty world and the exit handler ---------------------------------------------------------


def test_an_empty_world_decides_nothing_and_still_reports(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM
) -> None:
    """No PR: fetch lists only the no-op item, act gets no decision, the exit handler exits 0."""
    down = f"http://127.0.0.1:{free_port()}"
    run = run_pipeline(
        compiled(example("staging-automerge")), pod_env(github, llm, PUSHGATEWAY_URL=down)
    )

    assert_clean(run)
    assert [item.get("noop") for item in json.loads(run.node("fetch").outputs["prs"])] == [True]
    assert run.pods_of("decide") == 1 and act_results(run) == []
    report = run.node(f"{run.name}.onExit")
    assert report.phase == "Succeeded" and report.exit_code == 0
    assert "metrics push failed" in report.stderr  # nothing listens there: a warning, not a failure
    assert llm.requests == [] and github.mutations == []


@pytest.mark.services
def test_the_exit_handler_pushes_the_runs_metrics_once(
    github: FakeGitHub, llm: FakeLLM, world: GitHubWorld
) -> None:
    """The report step pushes once, with the act step's results; no other step pushes."""
    world.add_pull_request("acme/web", number=1, labels=[*STAGING])
    world.add_repository("acme/api", labels=[*STAGING])
    with pushgateway() as gateway:
        run = run_pipeline(
            compiled(example("staging-automerge")), pod_env(github, llm, PUSHGATEWAY_URL=gateway)
        )
        with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as answer:
            lines = answer.read().decode().splitlines()

    assert_clean(run)
    group = 'instance="",job="ai-operator",namespace="ai-operator-system",rule="staging-automerge"'
    assert f"ai_operator_prs_processed_total{{{group}}} 1" in lines
    assert f'ai_operator_actions_total{{action="merge",{group}}} 1' in lines
    pushes = [n.name for n in run.nodes if "metrics pushed" in n.stderr]
    assert pushes == [f"{run.name}.onExit"]


@pytest.mark.services
def test_the_pipeline_counts_model_calls_and_tokens_and_reused_decisions_cost_nothing() -> None:
    """decide hands its model usage to act; a second run's reused decisions are not asked."""
    with fakes(two_open_prs) as (_, github, llm), pushgateway() as gateway:
        document, memo = compiled(example("staging-automerge")), MemoCache()
        env = pod_env(github, llm, PUSHGATEWAY_URL=gateway)
        first = run_pipeline(document, env, memo)
        after_first = gateway_series(gateway)
        second = run_pipeline(document, env, memo)
        after_second = gateway_series(gateway)

    assert_clean(first)
    assert_clean(second)
    assert len(llm.requests) == 2, "the second run asked nothing: both decisions still stood"
    calls, reused = "ai_operator_ai_calls_total", "ai_operator_decisions_reused_total"
    assert (after_first[calls], after_first[reused]) == (2, 0)
    assert (after_second[calls], after_second[reused]) == (2, 2)
    assert after_first['ai_operator_ai_tokens_total{kind="input"}'] > 0
    assert (
        after_second['ai_operator_ai_tokens_total{kind="output"}']
        == (after_first['ai_operator_ai_tokens_total{kind="output"}'])
    )
    assert after_second["ai_operator_last_run_ai_calls"] == 0
    escalated = 'ai_operator_actions_total{action="escalate"}'
    assert after_first[escalated] == 1
    assert after_second[escalated] == 1  # reused and changed nothing: not counted again
    [line] = [n for n in decision_log_lines(first) if n["number"] == 3]
    assert (line["action"], line["model"], line["model_calls"]) == ("escalate", "asked", 1)
    assert decision_log_lines(second) == []  # reused: the outcome index holds both


def gateway_series(gateway: str) -> dict[str, float]:
    """The staging rule's series on the gateway, by name and own labels (as PromQL writes them)."""
    with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if labels.pop("rule", None) != "staging-automerge":
                continue
            own = {k: v for k, v in labels.items() if k not in {"job", "instance", "namespace"}}
            inner = ",".join(f'{k}="{v}"' for k, v in sorted(own.items()))
            found[sample.name + (f"{{{inner}}}" if inner else "")] = sample.value
    return found


def decision_log_lines(run: WorkflowRun) -> list[dict[str, Any]]:
    """The act step's decision lines (JSON logs on stderr)."""
    acts = [node for node in run.nodes if node.template == "act"]
    lines = [json.loads(x) for n in acts for x in n.stderr.splitlines() if x.startswith("{")]
    return [line for line in lines if line.get("logger") == "decision"]
