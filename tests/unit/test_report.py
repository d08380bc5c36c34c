"""The report: people's table and the JSON document show PR text as it is."""

from __future__ import annotations

import json

from jobs.reconcile.report import as_json, as_table
from jobs.reconcile.results import PassReport, PullRequestResult
from jobs.rules.model import Action


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
    } <= set(row)
    assert document["rules"] == [
        {"rule": "ns/rule", "pullRequests": 1, "failed": 0, "error": None, "durationSeconds": 0.0}
    ]
