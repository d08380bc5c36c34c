"""The administrator's limits, checked again in every pod before it reads or writes.

The compiler carries the namespace's limits into each pod as ``AI_OPERATOR_LIMITS``. A rule that
exceeds them (changed under a running workflow, say) makes each step refuse with one line naming
the rule's field and the limit, before any request: the installation's AI token never reaches an
endpoint the limits do not allow (an "attacker" model server on loopback records every request),
and ``act`` never writes a decision its rule could not have made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ai_operator.jobs.config import ConfigError, Settings, resolve_ai
from ai_operator.jobs.policy.decision import Decision
from ai_operator.jobs.reconcile.wire import Decided, dump_for_argo
from ai_operator.jobs.rules.encoding import LIMITS_ENV, RULE_ENV, encode_limits, encode_rule
from ai_operator.jobs.rules.limits import AILimits, LimitsSpec
from ai_operator.jobs.rules.model import Action, PRReconciliationRule
from ai_operator.pipelines.compile import CompileOptions, compile_rule
from tests.argo_interpreter import run_cron_workflow
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, cli_env, run_cli
from tests.factories import make_rule
from tests.sandbox import FakeGitHub, FakeLLM, GitHubWorld

pytestmark = pytest.mark.e2e

STAGING = ["auto-merge", "staging"]
REF = json.dumps({"display": "acme/web#1", "key": "k", "shard": "0"})


@pytest.fixture
def attacker() -> Any:
    """A model server the rule's author runs: it must never see a request."""
    with FakeLLM(token="attacker-does-not-know-it") as server:
        yield server


def step_env(
    github: FakeGitHub, llm: FakeLLM, rule: PRReconciliationRule, limits: LimitsSpec | None = None
) -> dict[str, str]:
    env = cli_env(github, llm) | {RULE_ENV: encode_rule(rule)}
    return env | ({LIMITS_ENV: encode_limits(limits)} if limits else {})


def one_green_pr(world: GitHubWorld) -> None:
    world.add_repository("acme/web", labels=STAGING)
    world.add_pull_request("acme/web", number=1, labels=STAGING)


def test_decide_never_sends_the_token_to_an_endpoint_outside_the_limits(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, attacker: FakeLLM, tmp_path: Path
) -> None:
    """A rule naming its author's server: refused before any client exists; nothing is sent."""
    one_green_pr(world)
    rule = make_rule(ai={"endpoint": attacker.anthropic_url})
    for limits in (None, LimitsSpec(ai=AILimits(endpoints=["https://api.anthropic.com"]))):
        result = run_cli(
            ["step", "decide", "--pr", REF, "--output", str(tmp_path / "d.json")],
            step_env(github, llm, rule, limits),
        )
        assert result.code == 1
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: decide: ai-operator-system/staging-automerge: ")
        assert "spec.ai.endpoint" in line and "not an allowed model endpoint" in line
    assert attacker.requests == [] and llm.requests == [] and github.requests == []


def test_an_endpoint_the_administrator_allows_is_asked(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, attacker: FakeLLM, tmp_path: Path
) -> None:
    """The control: with the endpoint in the limits, the same step does send its request there."""
    one_green_pr(world)
    rule = make_rule(ai={"endpoint": attacker.anthropic_url})
    limits = LimitsSpec(ai=AILimits(endpoints=[attacker.anthropic_url]))
    result = run_cli(
        ["step", "decide", "--pr", REF, "--output", str(tmp_path / "d.json")],
        step_env(github, llm, rule, limits),
    )
    assert len(attacker.requests) == 1 and llm.requests == []
    assert result.code == 1  # the attacker does not know the token it was sent: refused
    assert AI_TOKEN not in result.stderr


@pytest.mark.parametrize(
    ("endpoint", "allow_http", "refused"),
    [
        pytest.param("http://10.0.0.7:8000/v1", False, "plain http", id="http-to-a-pod-ip"),
        pytest.param("http://models.svc:8000/v1", False, "plain http", id="http-to-a-service"),
        pytest.param("http://models.svc:8000/v1", True, None, id="http-allowed-explicitly"),
        pytest.param("https://models.svc/v1", False, None, id="https-listed"),
    ],
)
def test_plain_http_is_refused_unless_the_administrator_allows_it(
    endpoint: str, allow_http: bool, refused: str | None
) -> None:
    """Only loopback may be reached over plain http without ``allowInsecureHttp``."""
    ai = AILimits(endpoints=[endpoint], allowInsecureHttp=allow_http)
    settings = Settings.from_env({"AI_TOKEN": "t", LIMITS_ENV: encode_limits(LimitsSpec(ai=ai))})
    rule = make_rule(ai={"endpoint": endpoint})
    if refused is None:
        assert resolve_ai(rule.spec.ai, settings).base_url == endpoint
        return
    with pytest.raises(ConfigError, match=f"^spec.ai.endpoint: .*{refused}"):
        resolve_ai(rule.spec.ai, settings)


@pytest.mark.parametrize(
    ("rule", "limits", "field"),
    [
        pytest.param(
            make_rule(repositories=["team-b/payments"]),
            LimitsSpec(repositories=["acme/*"]),
            "spec.repositories[0]: team-b/payments is outside the repositories allowed",
            id="repository",
        ),
        pytest.param(
            make_rule(allowedActions=["merge", "close"]),
            LimitsSpec(allowedActions=[Action.MERGE, Action.ESCALATE]),
            "spec.allowedActions[1]: 'close' is not allowed in this namespace",
            id="action",
        ),
    ],
)
@pytest.mark.parametrize("step", ["fetch", "decide", "act"])
def test_every_step_refuses_a_rule_beyond_its_limits_before_any_request(
    github: FakeGitHub,
    llm: FakeLLM,
    tmp_path: Path,
    rule: PRReconciliationRule,
    limits: LimitsSpec,
    field: str,
    step: str,
) -> None:
    """fetch, decide and act each check the rule against the limits first: one line, exit 1."""
    args = {
        "fetch": ["--output", str(tmp_path / "prs.json")],
        "decide": ["--pr", REF, "--output", str(tmp_path / "d.json")],
        "act": ["--decisions", "[]", "--output", str(tmp_path / "r.json")],
    }[step]
    result = run_cli(["step", step, *args], step_env(github, llm, rule, limits))
    assert result.code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {step}: ") and field in line
    assert github.requests == [] and llm.requests == []


def test_run_takes_its_limits_from_a_file(github: FakeGitHub, llm: FakeLLM, tmp_path: Path) -> None:
    """``run --limits FILE`` (a PRReconciliationLimits object) refuses as the pods do."""
    rule_file = tmp_path / "rule.yaml"
    rule_file.write_text(json.dumps(make_rule(repositories=["team-b/payments"]).to_document()))
    limits_file = tmp_path / "limits.yaml"
    limits_file.write_text(
        "apiVersion: aioperator.io/v1alpha1\nkind: PRReconciliationLimits\n"
        "metadata: {name: default}\nspec:\n  repositories: ['acme/*']\n"
    )
    result = run_cli(["run", str(rule_file), "--limits", str(limits_file)], cli_env(github, llm))
    assert result.code == 1
    assert "spec.repositories[0]: team-b/payments is outside" in result.stderr
    assert github.requests == [] and llm.requests == []

    limits_file.write_text("spec: {repositories: 7}\n")
    result = run_cli(["run", str(rule_file), "--limits", str(limits_file)], cli_env(github, llm))
    assert result.code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --limits {limits_file} holds no valid limits: repositories: "
        "Input should be a valid list"
    ]


def forged(**fields: Any) -> str:
    """A decide output as another pod in the namespace could write it."""
    decision = {
        "rule": "ai-operator-system/staging-automerge",
        "repository": "acme/web",
        "number": 1,
        "title": "t",
        "url": "u",
        "head_oid": "a" * 40,
        "fingerprint": "fp",
        "action": "escalate",
        "reason": "r",
        "labels": ["needs-human-approval"],
    } | fields
    return dump_for_argo(Decided(decision=Decision.model_validate(decision)))


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        pytest.param(
            {"repository": "team-b/payments"},
            "team-b/payments is not among the rule's repositories",
            id="repository-outside-the-rule",
        ),
        pytest.param(
            {"labels": ["approved"]},
            "the labels approved are not the rule's escalation labels",
            id="label-outside-the-rule",
        ),
        pytest.param(
            {"action": "close", "labels": []},
            "the action 'close' is not allowed",
            id="action-outside-the-rule",
        ),
    ],
)
def test_act_refuses_a_decision_its_rule_could_not_make(
    world: GitHubWorld,
    github: FakeGitHub,
    llm: FakeLLM,
    tmp_path: Path,
    fields: dict[str, Any],
    refused: str,
) -> None:
    """A forged decision is that PR's error, counted, and nothing is read or written."""
    world.add_repository("team-b/payments", labels=STAGING)
    world.add_pull_request("team-b/payments", number=1, labels=STAGING)
    one_green_pr(world)
    rule = make_rule(
        allowedActions=["merge", "escalate"], escalation={"labels": ["needs-human-approval"]}
    )
    summary = tmp_path / "summary.json"
    result = run_cli(
        [
            "step", "act", "--decisions", forged(**fields), "--output", str(tmp_path / "r.json"),
            "--summary-output", str(summary),
        ],
        step_env(github, llm, rule),
    )  # fmt: skip
    assert result.code == 2  # that PR failed; the step itself ran
    [row] = json.loads((tmp_path / "r.json").read_text())
    assert row["error"].startswith("refused: ") and refused in row["error"]
    counts = json.loads(summary.read_text())
    assert counts["failed"] == 1 and counts["errors"] == {"guardrail": 1}
    assert github.requests == [] and github.mutations == []


def test_the_compiled_pipeline_carries_the_limits_and_refuses_before_reading(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, attacker: FakeLLM
) -> None:
    """Compiled with the namespace's limits, a rule naming another endpoint runs no decide pod."""
    one_green_pr(world)
    rule = make_rule(ai={"endpoint": attacker.anthropic_url})
    limits = LimitsSpec(repositories=["acme/*"])
    manifest = compile_rule(rule, "argo", CompileOptions(limits=limits))
    env = cli_env(github, llm)
    del env["GITHUB_TOKEN"], env["AI_TOKEN"]
    secrets = {
        ("ai-operator-secrets", "github-token"): GITHUB_TOKEN,
        ("ai-operator-secrets", "ai-token"): AI_TOKEN,
    }
    run = run_cron_workflow(
        manifest.document,
        env=env,
        secrets=secrets,
        config_maps=[manifest.config_map],
        workflow_templates=[manifest.workflow_template],
    )

    fetch = run.node("fetch")
    assert fetch.phase == "Failed" and "spec.ai.endpoint" in fetch.stderr
    assert run.pods_of("decide") == 0
    assert attacker.requests == [] and llm.requests == [] and github.requests == []


def test_run_refuses_a_remembered_decision_its_rule_could_not_make(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """A decision file edited to add a label outside the rule: `run` refuses it, adds nothing."""
    world.add_repository("acme/web", labels=[*STAGING, "approved-by-bot"])
    world.add_pull_request("acme/web", number=2, labels=STAGING, rollup_state="PENDING")
    rule_file = tmp_path / "rule.yaml"
    rule_file.write_text(json.dumps(make_rule().to_document()))
    env = cli_env(github, llm)
    assert run_cli(["run", str(rule_file)], env).code == 0  # acme/web#2 waits: remembered
    [memory] = Path(env["XDG_CACHE_HOME"]).rglob("*.json")
    document = json.loads(memory.read_text())
    for entry in document["entries"].values():
        entry["decision"] |= {"action": "escalate", "labels": ["approved-by-bot"]}
    memory.write_text(json.dumps(document))
    mutations = list(github.mutations)

    result = run_cli(["run", str(rule_file), "--output", "json"], env)

    assert result.code == 2
    [row] = result.json()["results"]
    assert row["reused"] and row["error"] == (
        "refused: the labels approved-by-bot are not the rule's escalation labels"
    )
    assert github.mutations == mutations
    assert "approved-by-bot" not in world.pull_request("acme/web", 2).labels
