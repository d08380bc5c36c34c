"""The compiled CronWorkflow of an installation that acts as a GitHub App: every pod reads the
App's key through its secretKeyRef (no GitHub token anywhere) and acts as the App's bot."""

from __future__ import annotations

import json

import pytest

from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.compile import compile_rule
from ai_operator.pipelines.controller.config import compile_options
from tests.argo_interpreter import MemoCache, run_cron_workflow
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, cli_env
from tests.factories import inlined
from tests.github_app import FakeGitHubApp, rsa_key
from tests.sandbox import FakeCheck, FakeLLM, GitHubWorld

pytestmark = pytest.mark.e2e

KEY = rsa_key()
BOT = "ai-operator-app[bot]"
STAGING = ["auto-merge", "staging"]
RULE = {
    "apiVersion": "aioperator.io/v1alpha1",
    "kind": "PRReconciliationRule",
    "metadata": {"name": "staging-automerge", "namespace": "ai-operator-system"},
    "spec": {
        "repositories": ["acme/web"],
        "selector": {"labels": {"include": STAGING}},
        "instruction": "PR #{{pr.number}}: {{pr.title}}. CI {{pr.ciStatus}}. Merge when green.",
    },
}


def test_the_compiled_workflow_acts_as_the_github_app() -> None:
    """Green merged, red escalated by the App's bot; GitHub never saw a personal token."""
    world = GitHubWorld(viewer_login=BOT)
    world.add_repository("acme/web", labels=STAGING)
    world.add_pull_request("acme/web", number=1, title="Green", labels=STAGING)
    world.add_pull_request(
        "acme/web",
        number=2,
        title="Red",
        labels=STAGING,
        rollup_state="FAILURE",
        checks=[FakeCheck("ci", conclusion="FAILURE")],
    )
    rule = PRReconciliationRule.model_validate(RULE)
    manifest = compile_rule(rule, "argo", compile_options({"githubApp": True}))
    assert "GITHUB_TOKEN" not in json.dumps(manifest.documents)
    assert KEY.private_pem.splitlines()[1] not in json.dumps(manifest.documents)
    # A token the fake would accept, were it sent: it is not, since no pod has it.
    with (
        FakeGitHubApp(world, token=GITHUB_TOKEN, public_pem=KEY.public_pem) as github,
        FakeLLM(token=AI_TOKEN) as llm,
    ):
        env = cli_env(github, llm, GITHUB_APP_ID=github.app_id, GITHUB_ORGANIZATION="acme")
        del env["GITHUB_TOKEN"], env["AI_TOKEN"]
        secrets = {
            ("ai-operator-secrets", "github-app-private-key"): KEY.private_pem,
            ("ai-operator-secrets", "ai-token"): AI_TOKEN,
        }
        run = run_cron_workflow(
            inlined(manifest),
            env=env,
            secrets=secrets,
            memo=MemoCache(),
            config_maps=[manifest.config_map],
        )
    failed = [(n.name, n.message, n.stderr[-300:]) for n in run.nodes if n.phase == "Failed"]
    assert run.phase == "Succeeded" and failed == []
    green, red = world.pull_request("acme/web", 1), world.pull_request("acme/web", 2)
    assert green.state == "MERGED"
    assert [c.author for c in red.comments] == [BOT]
    assert github.record.issued and github.record.refused_jwts == []
    for node in run.nodes:
        assert all(token not in node.stderr + node.message for token in github.record.issued)
