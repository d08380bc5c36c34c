"""The wire between the pipeline's steps: what a step writes, the next one reads, through Argo.

Each hand-over goes through what Argo does to it on the way (tests/argo_interpreter.py formats
as Argo v4 does): ``withParam`` items re-marshalled one by one, a fan-out's outputs aggregated
into one JSON list, and every argument within Linux's 128 KiB for one argument.
"""

from __future__ import annotations

import json

import pytest

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.decision import decide
from ai_operator.jobs.policy.verdict import Verdict
from ai_operator.jobs.reconcile import wire
from ai_operator.jobs.reconcile.report import counts, history_entry
from ai_operator.jobs.reconcile.results import PassReport, PullRequestResult
from ai_operator.jobs.reconcile.steps import branch_outcome, noop_ref, parse_counts, tally
from ai_operator.jobs.reconcile.wire import (
    BranchOutcome,
    Decided,
    FetchCounts,
    PullRequestRef,
    dump_for_argo,
)
from ai_operator.jobs.rules.model import Action
from ai_operator.pipelines import argo
from tests.argo_interpreter import MAX_ARG_STRLEN, _aggregated_list, parse_items
from tests.factories import make_pr, make_rule

RULE = make_rule(repositories=["acme/web"])
RUN = "staging-automerge-1796079884"


def test_fetchs_references_reach_decide_one_item_each():
    """fetch's list, split by Argo into ``{{item}}``s, reads back as the same references."""
    refs = [PullRequestRef(display=f"acme/web#{n}", key=f"d-{n:064x}") for n in range(1, 4)]
    written = dump_for_argo([*refs, noop_ref(RULE)])
    read = [PullRequestRef.read(item.text()) for item in parse_items(written)]
    assert read == [*refs, noop_ref(RULE)]
    assert [ref.noop for ref in read] == [False, False, False, True]


def test_a_pr_whose_writes_waited_is_marked_by_one_flag_never_by_its_decision():
    """fetch marks it ``waited``; the decision stays in the index (its decide pod reads it), so
    200 such references, with their shares, stay far below Argo's limit for one argument."""
    share = wire.WriteShare(writes=2)
    refs = [
        PullRequestRef(display=f"acme/web#{n}", key=f"d-{n:064x}", share=share, waited=True)
        for n in range(1, 201)
    ]
    written = dump_for_argo([*refs, noop_ref(RULE)])
    assert len(written.encode()) < MAX_ARG_STRLEN / 4, len(written.encode())
    read = [PullRequestRef.read(item.text()) for item in parse_items(written)]
    assert read == [*refs, noop_ref(RULE)] and all(ref.waited for ref in read[:-1])
    assert '"waited"' not in dump_for_argo(PullRequestRef(display="acme/web#1", key="d-1"))


def test_a_reused_decision_reaches_act_with_its_decision_time():
    """``decidedAt`` only for a decision decide reused: act records it again at that time."""
    decision = decide(RULE, make_pr(), Verdict(action=Action.ESCALATE, reason="red"), "fp")
    fresh = dump_for_argo(Decided(decision=decision, run=RUN, facts="d-facts"))
    assert "decidedAt" not in fresh
    [read] = Decided.read(dump_for_argo(Decided(decision=decision, run=RUN, decided_at=1.5e9)))
    assert read.decided_at == 1.5e9 and read.usage.calls == 0


def test_decides_output_reaches_act_exactly_with_pr_text_that_looks_like_argo_tags():
    """``{{`` in a title or reason never shows in the output (Argo would substitute it)."""
    pr = make_pr(title="Use {{workflow.name}} and {{pr.number}}")
    decision = decide(RULE, pr, Verdict(action=Action.MERGE, reason="CI {{runs}} green"), "fp")
    decided = Decided(
        decision=decision,
        usage=ModelUsage(calls=1, input_tokens=900, output_tokens=40, cached_tokens=600),
        latency_seconds=1.23456,
        run=RUN,
        settled=False,
        facts="d-facts",
    )
    written = dump_for_argo(decided)
    assert "{{" not in written
    [read] = Decided.read(written)
    assert read.decision == decision and read.decision.title == pr.title
    assert (read.usage, read.run, read.facts, read.latency_seconds) == (
        decided.usage,
        RUN,
        "d-facts",
        1.235,
    )
    assert Decided.read(wire.NOOP_OUTPUT) == []


def a_branch(number: int) -> BranchOutcome:
    decision = decide(RULE, make_pr(number=number, title="{{x}} " + "t" * 300),
                      Verdict(action=Action.ESCALATE, reason="r" * 500), "fp")  # fmt: skip
    row = PullRequestResult.of(decision, dry_run=False).metered(
        ModelUsage(calls=1, input_tokens=1200, output_tokens=80, cached_tokens=900),
        2.5,
        reused=False,
    )
    mine = counts(PassReport(RULE.qualified_name, [row])).model_copy(update={"github_requests": 4})
    return branch_outcome([row], mine, RUN, f"d-{number:064x}")


def test_two_hundred_branches_outcomes_reach_the_tally_within_argos_argument_limit():
    """Argo aggregates every branch's outcome into one argument: it must stay under 128 KiB."""
    outcomes = [a_branch(n) for n in range(1, 201)]
    noop = dump_for_argo(branch_outcome([], PassCounts(), RUN))
    aggregate = _aggregated_list([dump_for_argo(o) for o in outcomes] + [noop])
    assert len(aggregate.encode()) < MAX_ARG_STRLEN / 2, len(aggregate.encode())
    assert "ttt" not in aggregate and "rrr" not in aggregate
    assert BranchOutcome.read_all(aggregate) == outcomes

    fetched = dump_for_argo(FetchCounts(matched=230, reused=20, to_decide=200, deferred=10))
    summary = tally(aggregate, fetched, RUN)
    assert (summary.prs_processed, summary.decided, summary.reused) == (220, 200, 20)
    assert (summary.matched, summary.deferred, summary.branches_failed) == (230, 10, 0)
    assert summary.actions == {"escalate": 200} and summary.ai_calls == 200
    assert summary.ai_tokens == {"input": 240_000, "output": 16_000, "cached": 180_000}
    assert summary.github_requests == 800


def test_the_tallys_summary_reaches_report_and_the_rules_status():
    """The summary keeps the camelCase names the dashboards and status read."""
    summary = tally(_aggregated_list([dump_for_argo(a_branch(1))]), "{}", RUN)
    written = dump_for_argo(summary)
    assert {"prsProcessed", "aiCalls", "aiTokens", "decisionsReused", "branchesFailed"} <= set(
        json.loads(written)
    )
    assert parse_counts(written) == summary
    entry = history_entry(parse_counts(written), finished_at="t", succeeded=True)
    assert (entry.pullRequests, entry.actions, entry.aiCalls) == (1, {"escalate": 1}, 1)


@pytest.mark.parametrize(
    ("a", "b", "total"),
    [
        pytest.param(
            PassCounts(prs_processed=1, actions={"merge": 1}, ai_tokens={"input": 5}),
            PassCounts(prs_processed=2, actions={"merge": 1, "wait": 1}, ai_tokens={"input": 1}),
            PassCounts(prs_processed=3, actions={"merge": 2, "wait": 1}, ai_tokens={"input": 6}),
            id="field-by-field",
        ),
        pytest.param(
            PassCounts(dry_run=True, github_rate_limit_remaining=400),
            PassCounts(github_rate_limit_remaining=90),
            PassCounts(dry_run=True, github_rate_limit_remaining=90),
            id="a-dry-run-either-way-and-the-lower-rate-limit",
        ),
        pytest.param(
            PassCounts(errors={"ai": 1}),
            PassCounts(),
            PassCounts(errors={"ai": 1}),
            id="zero-adds-nothing",
        ),
    ],
)
def test_counts_add_up(a, b, total):
    """``+`` adds every count, and counts by kind per kind."""
    assert a + b == total


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        pytest.param("{{workflow.outputs.parameters.summary}}", PassCounts(), id="unresolved-tag"),
        pytest.param('{"prsProcessed": -3, "aiCalls": "x"}', PassCounts(), id="no-counts"),
        pytest.param('{"failed": 2, "quantum": 1}', PassCounts(failed=2), id="unknown-key"),
        pytest.param('{"actions": {"merge": true}}', PassCounts(actions={"merge": 0}), id="flag"),
    ],
)
def test_counts_from_another_version_or_no_step_read_as_what_they_can(text, counts):
    """A count that is no count is 0; an unknown key is ignored; never an error."""
    assert PassCounts.read(text) == counts


def test_the_compiler_names_the_wire_as_the_steps_do():
    """Parameter names and files in the workflow are the wire module's."""
    assert argo.OUTCOME == wire.OUTCOME and argo.SUMMARY_PATH == wire.SUMMARY_PATH
    assert f"{{{{inputs.parameters.{wire.PR_INPUT}}}}}" in argo.DECIDE_COMMAND
    assert f"{{{{inputs.parameters.{wire.DECISION}}}}}" in argo.ACT_COMMAND
    assert wire.PRS_PATH in argo.FETCH_COMMAND and wire.COUNTS_PATH in argo.FETCH_COMMAND
