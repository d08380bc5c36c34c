"""The pipeline's memory: fetch reads the rule's outcome index, each branch keeps its record
and hands on a small outcome, the tally adds them up. Against the fake GitHub.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from pydantic import SecretStr

from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.clients.kube import APIRequestError
from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.decision import decide
from ai_operator.jobs.policy.reuse import Remembered
from ai_operator.jobs.policy.verdict import InvalidVerdict, Verdict
from ai_operator.jobs.reconcile.results import PullRequestResult
from ai_operator.jobs.reconcile.steps import (
    Decided,
    act_branch,
    branch_outcome,
    branch_record,
    fetch_run,
    parse_decided,
    tally,
)
from ai_operator.jobs.reconcile.wire import dump_for_argo
from ai_operator.jobs.rules.model import Action
from tests.conftest import GITHUB_TOKEN
from tests.factories import make_pr, make_rule
from tests.sandbox import FakeGitHub, GitHubWorld

RULE = make_rule(repositories=["acme/web"])
MODEL = "anthropic/claude-sonnet-5"
STAGING = ["auto-merge", "staging"]
DAY = 86400.0


class Memory:
    """A memory that holds what it is given (the outcome index, as fetch and act see it)."""

    def __init__(self, entries: Mapping[str, Remembered] | None = None, broken: bool = False):
        self.entries = dict(entries or {})
        self.broken = broken

    def recall(self, rule: str) -> dict[str, Remembered]:
        if self.broken:
            raise APIRequestError("GET ConfigMap x answered HTTP 403")
        return dict(self.entries)

    def keep(self, rule: str, entries: Mapping[str, Remembered]) -> None:
        self.entries |= entries


@pytest.fixture
def client(world: GitHubWorld, github: FakeGitHub) -> GitHubClient:
    world.add_repository("acme/web", labels=STAGING)
    for number in range(1, 6):
        world.add_pull_request("acme/web", number=number, labels=STAGING)
    return GitHubClient(github.url, SecretStr(GITHUB_TOKEN), mutation_interval_seconds=0)


def fetched(client: GitHubClient, memory: Memory | None, limit: int = 10, now: float = 1e9):
    return fetch_run(
        RULE, ["acme/web"], client, memory, model=MODEL, limit=limit, max_age=DAY, now=now
    )


def test_fetch_lists_small_references_then_the_noop_item(client):
    """Each reference names its PR and the key of the facts fetch read; no PR text."""
    run = fetched(client, Memory())
    assert [ref.display for ref in run.refs[:-1]] == [f"acme/web#{n}" for n in range(1, 6)]
    assert all(set(item) == {"display", "key"} for item in json.loads(dump_for_argo(run.refs[:-1])))
    assert json.loads(dump_for_argo(run.refs[-1]))["noop"] is True
    assert run.counts.wire() == {
        "matched": 5,
        "reused": 0,
        "toDecide": 5,
        "deferred": 0,
    }


def remembered(key: str, at: float, number: int, action: Action = Action.WAIT) -> Remembered:
    decision = decide(RULE, make_pr(number=number), Verdict(action=action, reason="r"), "fp")
    return Remembered(key, at, decision, head=decision.head_oid)


def test_fetch_leaves_out_what_still_stands_and_caps_the_rest(client):
    """Unchanged PRs in the index are reused; of the others, the least recently decided first."""
    keys = {ref.display: ref.key for ref in fetched(client, Memory()).refs[:-1]}
    now = 1e9
    memory = Memory(
        {
            "acme/web#1": remembered(keys["acme/web#1"], now - 60, 1, Action.ESCALATE),
            "acme/web#2": remembered(keys["acme/web#2"], now - 60, 2),
            "acme/web#3": remembered("d-older-facts", now - 30, 3),
            "acme/web#4": remembered("d-older-facts", now - 90, 4),
        }
    )
    run = fetched(client, memory, limit=2, now=now)
    assert [ref.display for ref in run.refs[:-1]] == ["acme/web#5", "acme/web#4"]
    assert run.counts.wire() == {
        "matched": 5,
        "reused": 2,
        "toDecide": 2,
        "deferred": 1,
    }
    assert [d.display for d in run.reused] == ["acme/web#1", "acme/web#2"]


def test_a_memo_that_cannot_be_read_leaves_every_pr_to_decide(client):
    """No index (no API, or no permission): nothing is reused, every PR is decided in turn."""
    run = fetched(client, Memory(broken=True), limit=3)
    assert run.memory_error == "GET ConfigMap x answered HTTP 403"
    assert (run.counts.to_decide, run.counts.deferred) == (3, 2)


def test_without_the_memo_the_prs_beyond_the_cap_still_take_turns(client):
    """An unreadable memo: each scheduled run starts further on, not at the same first N."""
    listed: set[str] = set()
    for minute in range(2):
        run = fetched(client, Memory(broken=True), limit=3, now=1e9 + 60 * minute)
        listed |= {ref.display for ref in run.refs[:-1]}
    assert listed == {f"acme/web#{n}" for n in range(1, 6)}


def test_a_branch_keeps_a_record_only_of_what_it_decided_and_acted_on_the_same_facts():
    """The record carries the decision, the operations GitHub confirmed with their ids and the
    token's login; a fallback, facts that changed between decide and act, or a failed act keep
    nothing, so the next run decides the PR again."""
    decision = decide(RULE, make_pr(), Verdict(action=Action.ESCALATE, reason="r"), "fp")
    row = PullRequestResult.of(decision, dry_run=False)
    applied = PullRequestResult(**{**row.__dict__, "operations": ("addComment",),
                                   "github_ids": {"addComment": ("IC_1",)}})  # fmt: skip
    [(name, record)] = branch_record(
        [Decided(decision=decision)], [applied], "d-facts", actor="ai-operator-bot", now=1e9
    ).items()
    assert name == "acme/web#7"
    assert (record.key, record.decided_at, record.decision) == ("d-facts", 1e9, decision)
    assert record.applied == ("addComment",) and record.github_ids == {"addComment": ("IC_1",)}
    assert (record.actor, record.head) == ("ai-operator-bot", decision.head_oid)

    fallback = decide(RULE, make_pr(), InvalidVerdict(problem="the answer was not JSON"), "fp")
    nothing = {
        "facts changed": ([Decided(decision=decision)], [applied], None),
        "fallback": (
            [Decided(decision=fallback)],
            [PullRequestResult.of(fallback, dry_run=False)],
            "d-f",
        ),
        "act failed": (
            [Decided(decision=decision)],
            [applied.failed("HTTP 502", "github")],
            "d-facts",
        ),
    }
    for why, (decided, rows, key) in nothing.items():
        assert branch_record(decided, rows, key, actor="bot", now=1e9) == {}, why


def a_row(**overrides) -> PullRequestResult:
    decision = decide(RULE, make_pr(title="Use {{x}} " + "t" * 200), Verdict(action=Action.ESCALATE,
                      reason="r" * 500, comment="c" * 2000), "fp")  # fmt: skip
    return PullRequestResult.of(decision, dry_run=False)


def test_a_branch_outcome_is_small_and_holds_no_pr_text():
    """Counts, the PR's name and the run: about 150 bytes whatever the PR's text."""
    counts = {"prsProcessed": 1, "actions": {"escalate": 1}, "errors": {}, "aiCalls": 1,
              "aiTokens": {"input": 900, "output": 40, "cached": 700}, "dryRun": False,
              "fallbacks": 0, "githubRequests": 3}  # fmt: skip
    outcome = branch_outcome([a_row()], PassCounts.read(counts), "staging-automerge-1796079884")
    text = dump_for_argo(outcome)
    outcome = json.loads(text)
    assert "{{" not in text and "ttt" not in text and "rrr" not in text and len(text) < 200
    assert outcome["pr"] == "acme/web#7" and "errors" not in outcome


def test_the_tally_adds_up_branches_and_what_fetch_reused():
    """Outcomes of this run count as decided; those an earlier run made (a node a resubmission
    copied) and the PRs fetch left out count as reused, with no model call and no action again."""
    mine = {"pr": "acme/web#1", "run": "wf-2", "prsProcessed": 1, "actions": {"merge": 1},
            "aiCalls": 1, "aiTokens": {"input": 100, "output": 10, "cached": 80}}  # fmt: skip
    replayed = {"pr": "acme/web#2", "run": "wf-1", "prsProcessed": 1,
                "actions": {"escalate": 1}, "aiCalls": 1, "aiTokens": {"input": 100}}  # fmt: skip
    noop = {"run": "wf-2"}
    fetch_counts = {"matched": 9, "reused": 5, "toDecide": 3, "deferred": 1}
    for aggregate in (
        [mine, replayed, noop],
        [json.dumps(mine), json.dumps(replayed), "-"],  # Argo's list of strings
    ):
        summary = tally(json.dumps(aggregate), json.dumps(fetch_counts), "wf-2").to_json()
        assert {k: summary[k] for k in ("matched", "decided", "reused", "deferred")} == {
            "matched": 9,
            "decided": 1,
            "reused": 6,
            "deferred": 1,
        }
        assert summary["actions"] == {"merge": 1}  # only what this run settled
        assert summary["prsProcessed"] == 7 and summary["aiCalls"] == 1
        assert summary["aiTokens"] == {"input": 100, "output": 10, "cached": 80}


def test_the_tally_of_a_run_whose_branches_never_ended_is_zero():
    """Argo's unresolved tag instead of outcomes: no counts, not a failure."""
    summary = tally("{{tasks.settle.outputs.parameters.outcome}}", "{}", "wf").to_json()
    assert (summary["prsProcessed"], summary["decided"], summary["matched"]) == (0, 0, 0)


def test_a_branchs_decision_travels_as_json_argo_cannot_read_as_tags():
    """decide's output: the decision, its cost, its run, whether act has anything to do."""
    decision = decide(RULE, make_pr(title="Use {{workflow.name}}"),
                      Verdict(action=Action.WAIT, reason="CI {{runs}}"), "fp")  # fmt: skip
    text = dump_for_argo(Decided(decision=decision, run="wf-1", settled=True))
    assert "{{" not in text
    [back] = parse_decided(text)
    assert (back.decision, back.run, back.settled) == (decision, "wf-1", True)


def test_decisions_of_a_settled_branch_need_no_fresh_read(world, github):
    """act spares its read when decide's facts left nothing to do; GitHub sees no request."""
    decision = decide(RULE, make_pr(), Verdict(action=Action.WAIT, reason="later"), "fp")
    client = GitHubClient(github.url, SecretStr(GITHUB_TOKEN), mutation_interval_seconds=0)
    rows, _ = act_branch(
        RULE, [Decided(decision=decision, settled=True)], client, dry_run=False, run="w", model=""
    )
    assert [row.action for row in rows] == [Action.WAIT] and github.requests == []


def test_a_branch_that_reused_a_decision_that_waited_counts_as_reused_with_what_it_wrote():
    """Its decide pod asked no model: reused, not decided, not failed; its writes count."""
    recalled = {"pr": "acme/web#3", "run": "wf-2", "prsProcessed": 1, "decisionsReused": 1,
                "actions": {"escalate": 1}}  # fmt: skip
    asked = {"pr": "acme/web#4", "run": "wf-2", "prsProcessed": 1, "aiCalls": 1,
             "actions": {"escalate": 1}}  # fmt: skip
    fetch_counts = {"matched": 4, "reused": 2, "toDecide": 2}
    summary = tally(json.dumps([recalled, asked]), json.dumps(fetch_counts), "wf-2").to_json()
    assert {k: summary[k] for k in ("decided", "reused", "branchesFailed", "aiCalls")} == {
        "decided": 1,
        "reused": 3,
        "branchesFailed": 0,
        "aiCalls": 1,
    }
    assert summary["actions"] == {"escalate": 2} and summary["prsProcessed"] == 4
