"""`ai-operator run` remembers its decisions: no model call for an unchanged PR, none starved.

Each test's runs share one environment, hence one cache directory, as two runs on one machine do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli
from tests.e2e.test_run import COVERED, RULE, populate
from tests.sandbox import FakeCheck, GitHubWorld

pytestmark = pytest.mark.e2e

OPEN_AFTER_A_PASS = 4  # populate's PRs left open by a pass: waiting, escalated twice, a draft


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    path = tmp_path / "rule.yaml"
    path.write_text(RULE)
    return path


def pass_counts(result) -> dict[str, int]:
    [rule] = result.json()["rules"]
    return {name: rule[name] for name in ("matched", "decided", "reused", "deferred")}


def test_a_second_pass_over_unchanged_prs_asks_the_model_nothing(world, github, llm, rule_file):
    """Pass 2 reuses every decision (0 model calls) and changes nothing more on GitHub."""
    populate(world)
    env = cli_env(github, llm)
    first = run_cli(["run", str(rule_file), "--output", "json"], env)
    asked, mutations = len(llm.requests), list(github.mutations)

    second = run_cli(["run", str(rule_file), "--output", "json"], env)

    assert (first.code, second.code) == (0, 0), second.stderr
    assert len(llm.requests) == asked and github.mutations == mutations
    assert pass_counts(second) == {
        "matched": OPEN_AFTER_A_PASS,
        "decided": 0,
        "reused": OPEN_AFTER_A_PASS,
        "deferred": 0,
    }
    assert all(row["reused"] for row in second.json()["results"])
    assert "0 decided, 4 reused, 0 deferred" in run_cli(["run", str(rule_file)], env).stdout


def test_a_changed_pr_is_asked_about_again_and_only_it(world, github, llm, rule_file):
    """A new commit on one PR: that PR alone goes to the model; --no-cache asks about all."""
    populate(world)
    env = cli_env(github, llm)
    run_cli(["run", str(rule_file)], env)
    world.push_commit("acme/web", 2)
    asked = len(llm.requests)

    changed = run_cli(["run", str(rule_file), "--output", "json"], env)
    again = run_cli(["run", str(rule_file), "--output", "json", "--no-cache"], env)

    assert changed.code == 0 and again.code == 0
    assert pass_counts(changed)["decided"] == 1 and pass_counts(changed)["reused"] == 3
    assert len(llm.requests) == asked + 1 + OPEN_AFTER_A_PASS


def test_a_reused_decision_is_applied_only_on_fresh_facts(world, github, llm, rule_file):
    """A merge decided in a dry run is reused without the model, after the selector and the
    guardrails pass on the facts of the pass that applies it."""
    world.add_repository("acme/web", labels=[*COVERED, "do-not-merge"])
    world.add_repository("acme/api", labels=COVERED)
    world.add_pull_request("acme/web", number=1, title="Green", labels=COVERED)
    world.add_pull_request("acme/web", number=2, title="Green too", labels=COVERED)
    env = cli_env(github, llm)
    dry = run_cli(["run", str(rule_file), "--dry-run", "--output", "json"], env)
    assert [row["action"] for row in dry.json()["results"]] == ["merge", "merge"]
    world.add_label("acme/web", 2, "do-not-merge", actor="ana")  # no longer covered
    asked = len(llm.requests)

    real = run_cli(["run", str(rule_file), "--output", "json"], env)

    assert real.code == 0, real.stderr
    assert len(llm.requests) == asked  # the merge of #1 was reused
    assert [(r["number"], r["action"], r["reused"]) for r in real.json()["results"]] == [
        (1, "merge", True)
    ]
    assert world.pull_request("acme/web", 1).state == "MERGED"
    assert world.pull_request("acme/web", 2).state == "OPEN"


def test_150_matching_prs_with_a_cap_of_100_are_all_decided_within_two_passes(
    world: GitHubWorld, github, llm, tmp_path: Path
):
    """The cap bounds one pass's model calls: pass 1 decides 100 and defers 50, pass 2 reuses
    those 100 and decides the other 50, the least recently decided first."""
    world.add_repository("acme/web", labels=COVERED)
    running = {"rollup_state": "PENDING", "checks": [FakeCheck("ci", None, "IN_PROGRESS")]}
    for number in range(1, 151):  # CI still running: every decision is to wait, so all stay open
        world.add_pull_request("acme/web", number=number, labels=COVERED, **running)
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE.replace("[acme/web, acme/api]", "[acme/web]") + "  maxPullRequests: 100\n")
    env = cli_env(github, llm)

    first = run_cli(["run", str(rule), "--output", "json"], env)
    second = run_cli(["run", str(rule), "--output", "json"], env)

    assert (first.code, second.code) == (0, 0), second.stderr
    assert pass_counts(first) == {"matched": 150, "decided": 100, "reused": 0, "deferred": 50}
    assert pass_counts(second) == {"matched": 150, "decided": 50, "reused": 100, "deferred": 0}
    decided = [r["number"] for result in (first, second) for r in result.json()["results"]
               if not r["reused"]]  # fmt: skip
    assert sorted(decided) == list(range(1, 151)) and len(llm.requests) == 150
