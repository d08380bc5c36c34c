"""The report: the table, the JSON document, the metrics' counts, decision lines, history."""

from __future__ import annotations

import json
from dataclasses import replace

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.markers import make_marker
from ai_operator.jobs.reconcile.report import (
    HISTORY_LIMIT,
    append_history,
    as_json,
    as_table,
    counts,
    decision_fields,
    history_entry,
    summary_from_counts,
)
from ai_operator.jobs.reconcile.results import PassReport, PullRequestResult
from ai_operator.jobs.rules.model import Action, RunRecord


def report_with(title: str, guardrail: str | None = None) -> PassReport:
    row = PullRequestResult(
        rule="ns/rule",
        repository="acme/web",
        number=4,
        title=title,
        action=Action.ESCALATE,
        proposed=Action.MERGE,
        reason="looks fine",
        guardrail=guardrail,
        guardrail_reason="a draft",
        applied=True,
        operations=("comment",),
    )
    return PassReport(rule="ns/rule", results=[row])


def test_titles_are_not_read_as_markup():
    """A title like "[close] [bold]x[/bold]" shows verbatim in the table."""
    text = as_table(
        [report_with("[close] [bold]x[/bold]", guardrail="draft")], dry_run=False, width=200
    )
    assert "[close] [bold]x[/bold]" in text
    assert "[draft] a draft" in text


def test_the_json_document_has_one_row_per_pr():
    """--output json: rows with the documented keys, and each rule's pass."""
    document = json.loads(as_json([report_with("x")], dry_run=True))
    row = document["results"][0]
    assert {
        "rule",
        "repository",
        "number",
        "title",
        "headOid",
        "action",
        "proposedAction",
        "reason",
        "applied",
        "guardrail",
        "error",
        "dryRun",
        "mode",
    } <= set(row)
    assert row["mode"] == "enforce"
    assert document["rules"] == [
        {
            "rule": "ns/rule",
            "pullRequests": 1,
            "matched": 1,
            "decided": 1,
            "reused": 0,
            "deferred": 0,
            "writesDeferred": 0,
            "failed": 0,
            "error": None,
            "durationSeconds": 0.0,
            "mode": "enforce",
        }
    ]


def test_a_pass_says_how_many_matched_were_decided_reused_and_deferred():
    """The JSON rules entry and the table's rule line count what the cap left for later."""
    report = report_with("x")
    report.results.append(replace(report.results[0], number=8, reused=True))
    report.matched, report.deferred = 5, 3
    [rule] = json.loads(as_json([report], dry_run=False))["rules"]
    assert (rule["matched"], rule["decided"], rule["reused"], rule["deferred"]) == (5, 1, 1, 3)
    assert "5 matched: 1 decided, 1 reused, 3 deferred to a later pass" in as_table(
        [report], dry_run=False, width=200
    )


def metered_row(**overrides) -> PullRequestResult:
    """A merged row whose decision asked the model once."""
    values = {
        "rule": "ns/rule",
        "repository": "acme/web",
        "number": 4,
        "head_oid": "a1b2c3d4e5f6",
        "action": Action.MERGE,
        "proposed": Action.MERGE,
        "reason": "green",
        "applied": True,
        "operations": ("merge (squash)",),
        "usage": ModelUsage(calls=1, input_tokens=800, output_tokens=40, cached_tokens=500),
        "latency_seconds": 0.4321,
    }
    return PullRequestResult(**(values | overrides))


def test_counts_keep_dry_runs_apart_and_sum_what_this_run_spent():
    """Counts say whether the run was dry; model usage of reused decisions is not this run's."""
    reused = metered_row(number=5, reused=True, usage=ModelUsage())
    failed = metered_row(number=6, error="AI: HTTP 529", error_kind="ai")
    tally = counts(PassReport("ns/rule", [metered_row(), reused, failed]), dry_run=True).to_json()
    assert tally["dryRun"] is True
    assert tally["actions"] == {"merge": 2} and tally["failed"] == 1
    assert tally["errors"] == {"ai": 1}
    assert (tally["aiCalls"], tally["decisionsReused"]) == (2, 1)
    assert tally["aiTokens"] == {"input": 1600, "output": 80, "cached": 1000}


def test_the_exit_handlers_counts_become_the_rules_summary():
    """namespace/name splits into two labels; unknown keys from another version are dropped."""
    tally = PassCounts.read(
        counts(PassReport("ns/rule", [metered_row()])).to_json()
        | {"errors": {"ai": 2, "quantum": 1}, "githubRateLimitRemaining": 4321}
    )
    summary = summary_from_counts(
        "payments/dependabot", tally, duration_seconds=3.0, succeeded=True, finished_at=1.0
    )
    assert (summary.namespace, summary.rule) == ("payments", "dependabot")
    assert summary.errors == {"ai": 2}
    assert summary.ai_tokens == {"input": 800, "output": 40, "cached": 500}
    assert summary.github_rate_limit_remaining == 4321 and not summary.dry_run


def test_a_decision_line_has_every_fact_of_the_decision_and_the_comments_marker():
    """Rule, PR, head, proposed and final action, why, what was applied, what it cost."""
    fields = decision_fields(metered_row(guardrail="draft", guardrail_reason="a draft"))
    assert fields == {
        "rule": "ns/rule",
        "pr": "acme/web#4",
        "repository": "acme/web",
        "number": 4,
        "head": "a1b2c3d4e5f6",
        "proposed": "merge",
        "action": "merge",
        "guardrail": "draft",
        "guardrail_reason": "a draft",
        "fallback": False,
        "reason": "green",
        "applied": ["merge (squash)"],
        "deferred": None,
        "dry_run": False,
        "error": None,
        "model": "asked",
        "latency_seconds": 0.432,
        "model_calls": 1,
        "input_tokens": 800,
        "output_tokens": 40,
        "cached_tokens": 500,
        "marker": make_marker("ns/rule", "merge", "a1b2c3d4e5f6"),
    }
    assert decision_fields(metered_row(reused=True, usage=ModelUsage()))["model"] == "reused"


def test_a_history_entry_is_small_and_the_history_bounded():
    """An entry holds counts only; the newest entries are kept; a rewritten run replaces itself."""
    tally = counts(PassReport("ns/rule", [metered_row(title="x" * 10_000)]))
    entry = history_entry(tally, finished_at="2026-11-30T10:00:00Z", succeeded=True, workflow="w-1")
    assert entry.model_dump(exclude_none=True) == {
        "finishedAt": "2026-11-30T10:00:00Z",
        "succeeded": True,
        "dryRun": False,
        "pullRequests": 1,
        "actions": {"merge": 1},
        "failed": 0,
        "errors": 0,
        "guardrailBlocks": 0,
        "aiCalls": 1,
        "workflow": "w-1",
    }
    history: list[RunRecord] = []
    for n in range(HISTORY_LIMIT + 3):
        history = append_history(history, entry.model_copy(update={"workflow": f"w-{n}"}))
    assert [e.workflow for e in history] == [f"w-{n}" for n in range(3, HISTORY_LIMIT + 3)]
    again = append_history(history, history[-1].model_copy(update={"succeeded": False}))
    assert len(again) == HISTORY_LIMIT and again[-1].succeeded is False
    assert history_entry(PassCounts(), finished_at="t", succeeded=False).pullRequests == 0
