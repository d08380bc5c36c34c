"""The staging example with Argo CD: the real health of each PR's application decides, as the
example's users were told. `ai-operator run` and the compiled CronWorkflow, against the sandbox
GitHub, a model and a fake Argo CD API, each on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from ai_operator.jobs.rules.files import load_rules
from ai_operator.jobs.sandbox.argocd import FakeArgoCD
from ai_operator.jobs.sandbox.standin import standin_brain
from ai_operator.pipelines.compile import CompileOptions, compile_rule
from tests.argo_interpreter import MemoCache, run_cron_workflow
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, ROOT, cli_env, run_cli
from tests.factories import inlined
from tests.sandbox import FakeGitHub, FakeLLM, GitHubWorld, LLMRequest, pull_request_facts

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "staging-automerge.yaml"
ARGOCD_TOKEN = "argocd-e2e-token-0123456789abcdef"
STAGING = ("auto-merge", "staging")


def staging(world: GitHubWorld) -> None:
    """One green, mergeable PR in each repository: only the application's health differs."""
    world.add_repository("acme/web", labels=[*STAGING])
    world.add_repository("acme/api", labels=[*STAGING])
    world.add_pull_request("acme/web", number=1, title="Cache pages", labels=[*STAGING])
    world.add_pull_request("acme/web", number=2, title="Tune pool", labels=[*STAGING])
    world.add_pull_request("acme/api", number=1, title="Retry webhooks", labels=[*STAGING])


@pytest.fixture
def fakes() -> Iterator[tuple[GitHubWorld, FakeGitHub, FakeLLM, FakeArgoCD]]:
    world = GitHubWorld()
    staging(world)
    apps = {"web-staging": ("Healthy", "Synced"), "api-staging": ("Degraded", "Synced")}
    with (
        FakeGitHub(world, token=GITHUB_TOKEN) as github,
        FakeLLM(standin_brain, token=AI_TOKEN) as llm,
        FakeArgoCD(apps, token=ARGOCD_TOKEN) as argocd,
    ):
        yield world, github, llm, argocd
    assert github.invalid_documents == [] and github.unexpected_errors == []


def argocd_env(argocd_url: str) -> dict[str, str]:
    return {"ARGOCD_ENABLED": "true", "ARGOCD_URL": argocd_url, "ARGOCD_TOKEN": ARGOCD_TOKEN}


def health_seen(requests: list[LLMRequest]) -> dict[str, str]:
    """What the instruction told the model, per PR: the example's Argo CD line."""
    seen = {}
    for request in requests:
        facts = pull_request_facts(request.user) or {}
        line = next(x for x in request.system.splitlines() if "Argo CD health" in x)
        seen[f"{facts['repositoryFullName']}#{facts['pr']['number']}"] = line.strip()
    return seen


def test_the_staging_example_decides_by_the_applications_real_health(fakes) -> None:
    """Healthy: merged; Degraded: escalated. One request per application, however many PRs."""
    _world, github, llm, argocd = fakes
    env = cli_env(github, llm, **argocd_env(argocd.url))
    result = run_cli(["run", str(EXAMPLE), "--output", "json"], env)
    assert result.code == 0, result.stderr
    actions = {(r["repository"], r["number"]): r["action"] for r in result.json()["results"]}
    assert actions == {
        ("acme/api", 1): "escalate",
        ("acme/web", 1): "merge",
        ("acme/web", 2): "merge",
    }
    assert health_seen(llm.requests) == {
        "acme/api#1": "- Argo CD health of the staging application api-staging: Degraded",
        "acme/web#1": "- Argo CD health of the staging application web-staging: Healthy",
        "acme/web#2": "- Argo CD health of the staging application web-staging: Healthy",
    }
    assert sorted(argocd.requests) == ["api-staging", "web-staging"]
    assert ARGOCD_TOKEN not in result.stdout + result.stderr


def test_a_change_of_health_is_decided_again_and_no_change_is_reused(fakes) -> None:
    """Degraded and unchanged: reused, no model call; Degraded -> Healthy: asked again, merged."""
    _world, github, llm, argocd = fakes
    env = cli_env(github, llm, **argocd_env(argocd.url))
    assert run_cli(["run", str(EXAMPLE), "--output", "json"], env).code == 0
    llm.requests.clear()

    again = run_cli(["run", str(EXAMPLE), "--output", "json"], env)
    assert again.code == 0 and llm.requests == []
    assert [r["reused"] for r in again.json()["results"]] == [True]

    argocd.set("api-staging", "Healthy")
    healed = run_cli(["run", str(EXAMPLE), "--output", "json"], env)
    assert healed.code == 0, healed.stderr
    [row] = healed.json()["results"]
    assert (row["repository"], row["action"], row["reused"]) == ("acme/api", "merge", False)
    assert len(llm.requests) == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("setup", "kind"),
    [
        pytest.param("unreachable", "unreachable", id="argocd-unreachable"),
        pytest.param("wrong-token", "auth", id="token-refused"),
        pytest.param("missing", "missing", id="application-missing"),
    ],
)
def test_argo_cd_that_cannot_answer_leaves_health_unknown_and_the_pass_goes_on(
    fakes, setup: str, kind: str
) -> None:
    """Unknown for every PR, one warning per application (not per PR), exit 0."""
    _world, github, llm, argocd = fakes
    env = cli_env(github, llm, **argocd_env(argocd.url))
    if setup == "unreachable":
        env["ARGOCD_URL"] = f"http://127.0.0.1:{_closed_port()}"
    elif setup == "wrong-token":
        env["ARGOCD_TOKEN"] = "not-the-argocd-token-0123456789"
    else:
        argocd.applications.clear()
    result = run_cli(["run", str(EXAMPLE), "--output", "json"], env)
    assert result.code == 0, result.stderr
    assert set(health_seen(llm.requests).values()) == {
        "- Argo CD health of the staging application api-staging: Unknown",
        "- Argo CD health of the staging application web-staging: Unknown",
    }
    warnings = [
        json.loads(line)
        for line in result.stderr.splitlines()
        if "Argo CD application not read" in line
    ]
    assert sorted((w["application"], w["kind"]) for w in warnings) == [
        ("api-staging", kind),
        ("web-staging", kind),
    ]


def test_the_compiled_workflow_reads_argo_cd_once_in_fetch_and_decides_by_it(fakes) -> None:
    """Fetch reads each application (its token through the Secret); decide and act use what it
    read: the same decisions as `ai-operator run`, and no pod but fetch asks Argo CD."""
    _world, github, llm, argocd = fakes
    rule = load_rules([EXAMPLE])[0].rule
    manifest = compile_rule(rule, "argo", CompileOptions())
    env = cli_env(github, llm, ARGOCD_ENABLED="true", ARGOCD_URL=argocd.url)
    del env["GITHUB_TOKEN"], env["AI_TOKEN"]
    secrets = {
        ("ai-operator-secrets", "github-token"): GITHUB_TOKEN,
        ("ai-operator-secrets", "ai-token"): AI_TOKEN,
        ("ai-operator-secrets", "argocd-token"): ARGOCD_TOKEN,
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
    acted = {
        (row["repository"], row["number"]): row["action"]
        for node in run.nodes
        if node.template == "act" and node.phase == "Succeeded"
        for row in json.loads(node.outputs["results"])
    }
    assert acted == {
        ("acme/api", 1): "escalate",
        ("acme/web", 1): "merge",
        ("acme/web", 2): "merge",
    }
    assert sorted(argocd.requests) == ["api-staging", "web-staging"]
    assert "Degraded" in health_seen(llm.requests)["acme/api#1"]
