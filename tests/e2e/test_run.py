"""`ai-operator run`, as a user runs it, against servers speaking GitHub's and the models' protocols."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import AI_TOKEN, GITHUB_TOKEN, cli_env, run_cli
from tests.sandbox import FakeCheck, FakeComment, GitHubWorld

pytestmark = pytest.mark.e2e

RULE = """\
apiVersion: aioperator.io/v1alpha1
kind: PRReconciliationRule
metadata: {name: staging-automerge, namespace: ai-operator-system}
spec:
  repositories: [acme/web, acme/api]
  selector:
    labels: {include: [auto-merge, staging], exclude: [do-not-merge]}
    baseBranch: main
  instruction: |
    PR #{{pr.number}}: {{pr.title}} by {{pr.author}}. CI {{pr.ciStatus}}, mergeable {{pr.mergeable}},
    reviews {{pr.reviews}}, Argo CD {{argocd.health}}. Merge when green, wait while CI runs.
  mergeMethod: SQUASH
"""
COVERED = ["auto-merge", "staging"]


def populate(world: GitHubWorld) -> None:
    """Numbers 1-8 in acme/web, one PR in acme/api, each a situation the rule must handle."""
    world.add_repository("acme/web", labels=["auto-merge", "staging", "do-not-merge"])
    world.add_repository("acme/api", labels=["auto-merge", "staging"])
    add = world.add_pull_request
    add("acme/web", number=1, title="Roll back cache", labels=COVERED)
    add(
        "acme/web",
        number=2,
        title="Tune pool",
        labels=COVERED,
        rollup_state="PENDING",
        checks=[FakeCheck("ci", conclusion=None, status="IN_PROGRESS")],
    )
    add(
        "acme/web",
        number=3,
        title="Raise limits",
        labels=COVERED,
        rollup_state="FAILURE",
        checks=[FakeCheck("ci", conclusion="FAILURE")],
    )
    add("acme/web", number=4, title="[close] Obsolete experiment", labels=COVERED)
    add("acme/web", number=5, title="Half done", labels=COVERED, is_draft=True)
    add("acme/web", number=6, title="Held", labels=[*COVERED, "do-not-merge"])
    add("acme/web", number=7, title="Not staging", labels=["auto-merge"])
    add("acme/web", number=8, title="Other base", labels=COVERED, base_ref="release")
    add(
        "acme/api",
        number=1,
        title="Conflicting",
        labels=COVERED,
        mergeable="CONFLICTING",
        merge_state_status="DIRTY",
    )


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    path = tmp_path / "rule.yaml"
    path.write_text(RULE)
    return path


def web(world: GitHubWorld, number: int):
    return world.pull_request("acme/web", number)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_pass_merges_closes_escalates_and_waits(world, github, llm, rule_file, provider):
    """Each covered PR gets the action its facts call for; uncovered PRs are untouched."""
    populate(world)
    result = run_cli(["run", str(rule_file), "--output", "json"], cli_env(github, llm, provider))

    assert result.code == 0, result.stderr
    rows = {(r["repository"], r["number"]): r for r in result.json()["results"]}
    assert {key: row["action"] for key, row in rows.items()} == {
        ("acme/web", 1): "merge",
        ("acme/web", 2): "wait",
        ("acme/web", 3): "escalate",
        ("acme/web", 4): "close",
        ("acme/web", 5): "escalate",
        ("acme/api", 1): "escalate",
    }
    assert rows[("acme/web", 5)]["proposedAction"] == "merge"
    assert rows[("acme/web", 5)]["guardrail"] == "draft"
    assert web(world, 1).state == "MERGED" and web(world, 1).merge_method == "SQUASH"
    assert web(world, 4).state == "CLOSED" and len(web(world, 4).comments) == 1
    for number in (3, 5):
        assert "needs-human-approval" in web(world, number).labels
        assert len(web(world, number).comments) == 1
    assert web(world, 2).comments == [] and web(world, 2).state == "OPEN"
    for untouched in (6, 7, 8):
        assert web(world, untouched).state == "OPEN" and web(world, untouched).comments == []
    assert {r.provider for r in llm.requests} == {provider}
    assert len(llm.requests) == 6


def test_a_second_pass_changes_nothing(world, github, llm, rule_file):
    """Running twice leaves GitHub as one pass did: no second comment, no second label."""
    populate(world)
    env = cli_env(github, llm)
    assert run_cli(["run", str(rule_file)], env).code == 0
    after_first = list(github.mutations)

    second = run_cli(["run", str(rule_file), "--output", "json"], env)

    assert second.code == 0, second.stderr
    assert github.mutations == after_first
    assert len(web(world, 3).comments) == 1


def test_dry_run_sends_no_mutation(world, github, llm, rule_file):
    """--dry-run decides and reports but changes nothing."""
    populate(world)
    result = run_cli(["run", str(rule_file), "--dry-run", "--output", "json"], cli_env(github, llm))

    assert result.code == 0, result.stderr
    assert github.mutations == []
    assert all(row["dryRun"] and not row["applied"] for row in result.json()["results"])
    assert result.json()["dryRun"] is True


def test_a_model_that_always_says_merge_cannot_break_the_guardrails(world, github, llm, rule_file):
    """Whatever the AI answers, only PRs that are safe to merge are merged."""
    populate(world)
    llm.brain = lambda request: {
        "action": "merge",
        "reason": "ship it",
        "comment": None,
        "labels": [],
    }

    result = run_cli(["run", str(rule_file), "--output", "json"], cli_env(github, llm))

    merged = [pr.number for pr in world.pull_requests if pr.state == "MERGED"]
    assert result.code == 0 and merged == [1, 4]  # the only open, green, mergeable ones
    assert result.rows()[2]["action"] == "wait"  # checks still running


def test_invalid_answers_become_the_fallback(world, github, llm, rule_file):
    """Text instead of JSON, or a forbidden action, leads to the fallback (escalate), never a guess."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    world.add_pull_request("acme/web", number=2, labels=COVERED)
    answers = iter(
        ["I would merge this.", {"action": "deploy", "reason": "x", "comment": None, "labels": []}]
    )
    llm.brain = lambda request: next(answers)

    result = run_cli(
        ["run", str(rule_file), "--output", "json", "--parallelism", "1"], cli_env(github, llm)
    )

    assert result.code == 0, result.stderr
    for row in result.json()["results"]:
        assert row["action"] == "escalate" and row["fallback"] is True
    assert all(pr.state == "OPEN" for pr in world.pull_requests)


def test_one_failing_pr_does_not_stop_the_others(world, github, llm, rule_file):
    """A PR whose decision fails is reported; the others are handled; the exit code is 2."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    world.add_pull_request("acme/web", number=2, labels=COVERED)
    llm.fail_next(3, status=500)  # the SDK's 1 try + 2 retries, all for the first PR

    result = run_cli(
        ["run", str(rule_file), "--output", "json", "--parallelism", "1"], cli_env(github, llm)
    )

    assert result.code == 2
    rows = result.rows()
    assert rows[1]["error"] and rows[1]["applied"] is False
    assert rows[2]["action"] == "merge" and rows[2]["applied"] is True
    assert web(world, 1).state == "OPEN" and web(world, 2).state == "MERGED"


def test_github_outage_during_search_is_reported(world, github, llm, rule_file):
    """A search that keeps failing is a failed pass (exit 2), not a traceback."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    github.fail_next(50, status=502)

    env = cli_env(github, llm, GITHUB_MAX_RETRIES="2", GITHUB_RETRY_BACKOFF_SECONDS="0.05")
    result = run_cli(["run", str(rule_file), "--output", "json"], env)

    assert result.code == 2
    assert "searching pull requests failed" in result.json()["rules"][0]["error"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("missing", ["GITHUB_TOKEN", "AI_TOKEN"])
def test_a_missing_token_is_a_one_line_error(github, llm, rule_file, missing):
    """No token: exit 1 with one line naming the variable."""
    env = cli_env(github, llm)
    del env[missing]
    result = run_cli(["run", str(rule_file)], env)
    assert result.code == 1
    assert missing in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_tokens_never_appear_in_output_or_logs(world, github, llm, rule_file):
    """Neither token shows up in stdout, stderr (DEBUG logs included) or a PR comment."""
    populate(world)
    result = run_cli(
        ["run", str(rule_file), "--output", "json"], cli_env(github, llm, LOG_LEVEL="DEBUG")
    )
    everything = (
        result.stdout
        + result.stderr
        + json.dumps([c.body for pr in world.pull_requests for c in pr.comments])
    )
    assert GITHUB_TOKEN not in everything and AI_TOKEN not in everything


def test_one_log_line_per_decision(world, github, llm, rule_file):
    """The JSON logs carry one 'decision' event per PR, naming the PR and the action."""
    populate(world)
    result = run_cli(["run", str(rule_file)], cli_env(github, llm))
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    decisions = [e for e in events if e.get("event") == "decision"]
    assert sorted(e["pr"] for e in decisions) == sorted(
        ["acme/web#1", "acme/web#2", "acme/web#3", "acme/web#4", "acme/web#5", "acme/api#1"]
    )


def test_a_marker_pasted_by_someone_else_does_not_silence_the_escalation(
    world, github, llm, rule_file
):
    """Only this tool's own comments count as already posted; a copied marker does not."""
    pr = world.add_pull_request(
        "acme/web",
        number=3,
        labels=COVERED,
        rollup_state="FAILURE",
        checks=[FakeCheck("ci", conclusion="FAILURE")],
    )
    marker = (
        f"<!-- ai-operator:rule=ai-operator-system/staging-automerge action=escalate "
        f"head={pr.head_oid} -->"
    )
    pr.comments.append(FakeComment("mallory", f"nothing to see {marker}"))

    result = run_cli(["run", str(rule_file)], cli_env(github, llm))

    assert result.code == 0, result.stderr
    assert [c.author for c in web(world, 3).comments] == ["mallory", world.viewer_login]


@pytest.mark.parametrize("command", ["run", "compile", "demo"])
def test_a_rule_validate_rejects_is_refused_before_anything_runs(
    world, github, llm, tmp_path, command
):
    """A template naming an unknown variable is a one-line error (exit 1), as in ``validate``."""
    populate(world)
    path = tmp_path / "typo.yaml"
    path.write_text(RULE.replace("{{pr.title}}", "{{pr.titel}}"))
    args = ["demo", "--rule", str(path)] if command == "demo" else [command, str(path)]
    result = run_cli(args, cli_env(github, llm))
    assert result.code == 1, result.stdout
    assert "spec.instruction" in result.stderr and "pr.title" in result.stderr
    assert "Traceback" not in result.stderr
    assert github.mutations == []
