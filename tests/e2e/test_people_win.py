"""People win, and a remembered decision stays true: `ai-operator run` and the compiled pipeline.

What a person did on GitHub (reopened, removed a label, deleted a comment, added the rule's own
label) is read from the pull request's timeline, by the token's own login, not from this rule's
comment markers; and a remembered decision ignores only labels the operator's token added.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ai_operator.jobs.clients.decision_cache import cache_directory
from ai_operator.jobs.clients.rule_lock import RuleLock, lock_directory
from tests.argo_interpreter import MemoCache
from tests.conftest import cli_env, run_cli
from tests.e2e.test_pipeline_act import run_staging, staging
from tests.e2e.test_run import COVERED, RULE
from tests.sandbox import FakeCheck, GitHubWorld

pytestmark = pytest.mark.e2e

LABEL = "needs-human-approval"
FAILED = {"rollup_state": "FAILURE", "checks": [FakeCheck("ci", conclusion="FAILURE")]}
PENDING = {"rollup_state": "PENDING", "checks": [FakeCheck("ci", None, "IN_PROGRESS")]}


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    path = tmp_path / "rule.yaml"
    path.write_text(RULE)
    return path


def one_pr(world: GitHubWorld, **facts) -> None:
    world.add_repository("acme/web", labels=[*COVERED, "do-not-merge"])
    world.add_repository("acme/api", labels=COVERED)
    world.add_pull_request("acme/web", number=1, labels=COVERED, **facts)


def rows(result) -> list[dict]:
    assert result.code == 0, result.stderr
    return result.json()["results"]


# --- 1 and 11: the key ignores only the operator's own labels ---------------------------------


def test_a_person_adding_the_escalation_label_is_a_change_of_facts(world, github, llm, rule_file):
    """Decided merge (dry run); a person adds the rule's escalation label: decided again."""
    one_pr(world, title="Green")
    env = cli_env(github, llm)
    [dry] = rows(run_cli(["run", str(rule_file), "--dry-run", "--output", "json"], env))
    assert dry["action"] == "merge"
    world.add_label("acme/web", 1, LABEL, actor="alice")
    asked = len(llm.requests)

    [row] = rows(run_cli(["run", str(rule_file), "--output", "json"], env))

    assert row["reused"] is False and len(llm.requests) == asked + 1


def test_the_operators_own_label_in_another_case_is_no_change(world, github, llm, rule_file):
    """The repository spells the label Needs-Human-Approval: escalated once, then reused."""
    one_pr(world, title="Broken", **FAILED)
    world.add_repository("acme/web", labels=["Needs-Human-Approval"])
    env = cli_env(github, llm)
    [first] = rows(run_cli(["run", str(rule_file), "--output", "json"], env))
    asked, mutations = len(llm.requests), list(github.mutations)

    [second] = rows(run_cli(["run", str(rule_file), "--output", "json"], env))

    pr = world.pull_request("acme/web", 1)
    assert first["action"] == "escalate" and second["reused"] is True
    assert len(llm.requests) == asked and github.mutations == mutations
    assert [name for name in pr.labels if name.lower() == LABEL] == ["Needs-Human-Approval"]
    assert sorted(world.labels("acme/web"), key=str.lower).count("Needs-Human-Approval") == 1


# --- 2, 3, 4, 5: people win, read from the timeline -------------------------------------------


def test_a_reopened_pr_whose_close_comment_was_deleted_is_not_closed_again(
    world, github, llm, rule_file
):
    """Closed with a comment; a person deletes the comment and reopens: not closed again."""
    one_pr(world, title="[close] Old experiment")
    env = cli_env(github, llm)
    assert run_cli(["run", str(rule_file)], env).code == 0
    assert world.pull_request("acme/web", 1).state == "CLOSED"
    world.delete_comment("acme/web", 1, -1, actor="alice")
    world.reopen("acme/web", 1, actor="alice")

    [row] = rows(run_cli(["run", str(rule_file), "--output", "json", "--no-cache"], env))

    pr = world.pull_request("acme/web", 1)
    assert pr.state == "OPEN" and row["guardrail"] == "reopened-by-person"
    assert pr.comments == []  # the deleted comment is not replaced either


def test_a_label_removed_after_a_comment_failed_to_post_is_not_added_back(
    world, github, llm, rule_file
):
    """Escalated, but the comment never posted; a person removes the label: not added back."""
    one_pr(world, title="Broken", **FAILED)
    github.fail_mutation("addComment", count=10)
    env = cli_env(github, llm)
    run_cli(["run", str(rule_file)], env)
    assert LABEL in world.pull_request("acme/web", 1).labels
    github.fail_mutation("addComment", count=0)
    world.remove_label("acme/web", 1, LABEL, actor="alice")

    run_cli(["run", str(rule_file), "--no-cache"], env)

    assert LABEL not in world.pull_request("acme/web", 1).labels


def test_a_deleted_comment_is_not_reposted_at_the_same_head(world, github, llm, rule_file):
    """Escalated with a comment; a person deletes the comment: the next passes leave it deleted."""
    one_pr(world, title="Broken", **FAILED)
    env = cli_env(github, llm)
    run_cli(["run", str(rule_file)], env)
    world.delete_comment("acme/web", 1, -1, actor="alice")

    run_cli(["run", str(rule_file)], env)
    run_cli(["run", str(rule_file), "--no-cache"], env)

    assert world.pull_request("acme/web", 1).comments == []


def test_a_close_undone_again_and_again_is_never_redone(world, github, llm, rule_file):
    """Closed; reopened, closed again and reopened by people: the close is not redone."""
    one_pr(world, title="[close] Old experiment")
    env = cli_env(github, llm)
    run_cli(["run", str(rule_file)], env)
    world.reopen("acme/web", 1, actor="alice")
    world.close("acme/web", 1, actor="bob")
    world.reopen("acme/web", 1, actor="bob")

    [row] = rows(run_cli(["run", str(rule_file), "--output", "json", "--no-cache"], env))

    assert world.pull_request("acme/web", 1).state == "OPEN"
    assert (row["action"], row["guardrail"]) == ("escalate", "reopened-by-person")


def test_a_removed_label_is_undone_whoever_added_it_last(world, github, llm, rule_file):
    """The operator added it; a person removed it, another added it and removed it again."""
    one_pr(world, title="Broken", **FAILED)
    env = cli_env(github, llm)
    run_cli(["run", str(rule_file)], env)
    world.remove_label("acme/web", 1, LABEL, actor="alice")
    world.add_label("acme/web", 1, LABEL, actor="bob")
    world.remove_label("acme/web", 1, LABEL, actor="bob")

    run_cli(["run", str(rule_file), "--no-cache"], env)

    assert LABEL not in world.pull_request("acme/web", 1).labels


def test_a_new_commit_is_decided_anew(world, github, llm, rule_file):
    """People win at the head they undid: after a new commit the operator may close again."""
    one_pr(world, title="[close] Old experiment")
    env = cli_env(github, llm)
    run_cli(["run", str(rule_file)], env)
    world.reopen("acme/web", 1, actor="alice")
    world.push_commit("acme/web", 1)

    run_cli(["run", str(rule_file)], env)

    assert world.pull_request("acme/web", 1).state == "CLOSED"


# --- the same, through the compiled workflow ---------------------------------------------------


def test_the_pipeline_decides_again_when_a_person_adds_the_escalation_label() -> None:
    """Run 1 waits for CI; a person adds needs-human-approval: run 2 decides the PR again."""
    with staging(**PENDING) as (world, github, llm):
        run_staging(github, llm)
        world.add_label("acme/web", 1, LABEL, actor="alice")
        second = run_staging(github, llm)

    assert second.pods_of("decide") == 2  # the PR and the no-op item


def test_the_pipeline_does_not_close_again_what_people_reopened_twice() -> None:
    """Closed by run 1; the comment deleted, reopened, closed and reopened by people."""
    with staging(title="[close] Old experiment") as (world, github, llm):
        run_staging(github, llm)
        world.delete_comment("acme/web", 1, -1, actor="alice")
        world.reopen("acme/web", 1, actor="alice")
        world.close("acme/web", 1, actor="bob")
        world.reopen("acme/web", 1, actor="bob")
        second = run_staging(github, llm)

    pr = world.pull_request("acme/web", 1)
    assert second.phase == "Succeeded" and pr.state == "OPEN" and pr.comments == []


def test_the_pipeline_does_not_add_back_a_label_people_removed() -> None:
    """Escalated by run 1; removed, added and removed again by people: not added back."""
    with staging(**FAILED) as (world, github, llm):
        run_staging(github, llm)
        world.remove_label("acme/web", 1, LABEL, actor="alice")
        world.add_label("acme/web", 1, LABEL, actor="bob")
        world.remove_label("acme/web", 1, LABEL, actor="bob")
        second = run_staging(github, llm)

    assert second.phase == "Succeeded"
    assert LABEL not in world.pull_request("acme/web", 1).labels


# --- 9: one pass per rule at a time ----------------------------------------------------------


def test_two_concurrent_runs_of_one_rule_comment_and_close_once(world, github, llm, rule_file):
    """Two terminals run the same rule at once: the second waits for the first, then finds
    nothing left to do. One comment, one close."""
    one_pr(world, title="[close] Old experiment")
    llm.delay_next(1.5)
    llm.delay_next(1.5)
    env = cli_env(github, llm)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_cli(["run", str(rule_file)], env), range(2)))

    pr = world.pull_request("acme/web", 1)
    assert [r.code for r in results] == [0, 0], [r.stderr for r in results]
    assert pr.state == "CLOSED" and len(pr.comments) == 1
    assert github.mutations.count("closePullRequest") == 1


def test_a_run_that_cannot_get_the_rules_lock_says_so(world, github, llm, rule_file):
    """The lock is held elsewhere: the pass stops with a one-line message and changes nothing."""
    one_pr(world, title="[close] Old experiment")
    env = cli_env(github, llm, RUN_LOCK_WAIT_SECONDS="0")
    lock = RuleLock(lock_directory(cache_directory(env["XDG_CACHE_HOME"], None)), wait_seconds=0)
    with lock.held("ai-operator-system/staging-automerge"):
        result = run_cli(["run", str(rule_file)], env)

    assert result.code == 2 and github.mutations == []
    assert "another pass of ai-operator-system/staging-automerge is running" in result.stdout


# --- 6: people win across rules sharing the token --------------------------------------------


def test_a_second_rule_does_not_redo_what_a_person_undid_of_the_first(world, github, llm, tmp_path):
    """Rule A closes; a person reopens; rule B (same token, same PRs) does not close it again."""
    one_pr(world, title="[close] Old experiment")
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(RULE)
    second.write_text(RULE.replace("name: staging-automerge", "name: staging-cleanup"))
    env = cli_env(github, llm)
    assert run_cli(["run", str(first)], env).code == 0
    world.reopen("acme/web", 1, actor="alice")

    [row] = rows(run_cli(["run", str(second), "--output", "json"], env))

    assert world.pull_request("acme/web", 1).state == "OPEN"
    assert (row["rule"], row["guardrail"]) == (
        "ai-operator-system/staging-cleanup",
        "reopened-by-person",
    )


def test_two_rules_acting_on_one_pr_in_one_pass_do_not_fight(world, github, llm, tmp_path):
    """Both rules would close the PR in one `run`: the first close stands (one close, one
    comment); the second rule's pass finds the PR closed, no longer covered, and leaves it."""
    one_pr(world, title="[close] Old experiment")
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(RULE)
    second.write_text(RULE.replace("name: staging-automerge", "name: staging-cleanup"))
    env = cli_env(github, llm)

    found = rows(run_cli(["run", str(first), str(second), "--output", "json"], env))

    pr = world.pull_request("acme/web", 1)
    assert pr.state == "CLOSED" and len(pr.comments) == 1
    assert github.mutations.count("closePullRequest") == 1
    by_rule = {row["rule"].rpartition("/")[2]: row for row in found}
    assert by_rule["staging-automerge"]["operations"] == ["comment", "close"]
    assert "staging-cleanup" not in by_rule


def test_the_pipeline_knows_its_own_label_in_another_case() -> None:
    """The repository spells it Needs-Human-Approval: run 2 decides nothing and asks nothing."""
    from tests.e2e.test_remembered import run_staging_memo

    with staging(**FAILED) as (world, github, llm):
        world.add_repository("acme/web", labels=["Needs-Human-Approval"])
        memo = MemoCache()
        run_staging_memo(github, llm, memo)
        asked, mutations = len(llm.requests), list(github.mutations)
        second = run_staging_memo(github, llm, memo)

    assert second.phase == "Succeeded" and second.pods_of("decide") <= 1  # the no-op item at most
    assert len(llm.requests) == asked and github.mutations == mutations
    assert world.pull_request("acme/web", 1).labels.count("Needs-Human-Approval") == 1


# --- the outcome record names what GitHub made ------------------------------------------------


def test_runs_outcome_record_keeps_githubs_ids_of_what_it_applied(world, github, llm, rule_file):
    """Closed with a comment: the record holds the comment's id, and the row reports it too."""
    one_pr(world, title="[close] Old experiment")
    env = cli_env(github, llm)

    [row] = rows(run_cli(["run", str(rule_file), "--output", "json"], env))

    pr = world.pull_request("acme/web", 1)
    comment_id = f"IC_{pr.id[3:]}_0"
    assert pr.state == "CLOSED" and row["githubIds"] == {"comment": [comment_id]}
    [record] = [
        entry
        for path in Path(env["XDG_CACHE_HOME"]).glob("ai-operator/decisions/*.json")
        for entry in json.loads(path.read_text())["entries"].values()
    ]
    assert (record["applied"], record["githubIds"]) == (
        ["comment", "close"],
        {"comment": [comment_id]},
    )
