"""How a pass is shown: a table for people, one JSON document for tools, a metrics summary.

Pure formatting: it builds strings and summaries, and never writes or pushes anything itself.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobs.clients.metrics import PassSummary
from jobs.reconcile.results import PassReport, PullRequestResult


def as_json(reports: Sequence[PassReport], *, dry_run: bool) -> str:
    """One JSON document: every PR's row, and each rule's pass."""
    document: dict[str, Any] = {
        "dryRun": dry_run,
        "results": [row.to_json() for report in reports for row in report.results],
        "rules": [
            {
                "rule": report.rule,
                "pullRequests": len(report.results),
                "failed": len(report.failed),
                "error": report.error,
                "durationSeconds": round(report.duration_seconds, 3),
            }
            for report in reports
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def as_table(reports: Sequence[PassReport], *, dry_run: bool, width: int = 140) -> str:
    """A table of every PR's outcome, then one line per rule."""
    table = Table(title="ai-operator" + (" (dry run: nothing was changed)" if dry_run else ""))
    for column in ("Rule", "Pull request", "Action", "Applied", "Why"):
        table.add_column(column, overflow="fold")
    for report in reports:
        for row in report.results:
            # Text cells: a PR title such as "[close] x" must not be read as rich markup.
            cells = (row.rule, _pr_cell(row), _action_cell(row), _applied_cell(row), _why(row))
            table.add_row(*(Text(cell) for cell in cells))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, highlight=False)
    console.print(table)
    for report in reports:
        console.print(Text(_rule_line(report)))
    return buffer.getvalue()


def _pr_cell(row: PullRequestResult) -> str:
    title = row.title if len(row.title) <= 50 else row.title[:49] + "…"
    return f"{row.repository}#{row.number} {title}".strip()


def _action_cell(row: PullRequestResult) -> str:
    if row.proposed and row.proposed is not row.action:
        return f"{row.action.value} (AI: {row.proposed.value})"
    return row.action.value + (" (fallback)" if row.fallback else "")


def _applied_cell(row: PullRequestResult) -> str:
    if row.error:
        return "failed"
    if row.dry_run:
        return "dry run"
    return ", ".join(row.operations) if row.operations else "nothing to do"


def _why(row: PullRequestResult) -> str:
    if row.error:
        return f"error: {row.error}"
    if row.guardrail:
        return f"[{row.guardrail}] {row.guardrail_reason or ''}; AI: {row.reason}"
    return row.reason


def _rule_line(report: PassReport) -> str:
    if report.error:
        return f"{report.rule}: pass failed: {report.error}"
    counts = Counter(row.action.value for row in report.results)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing"
    failed = f", {len(report.failed)} failed" if report.failed else ""
    return (
        f"{report.rule}: {len(report.results)} pull requests: {summary}{failed} "
        f"({report.duration_seconds:.1f}s)"
    )


def summarize(
    report: PassReport,
    *,
    ai_calls: int,
    github_requests: int,
    finished_at: float,
) -> PassSummary:
    """The metrics of one pass."""
    tally = counts(report)
    tally.update(aiCalls=ai_calls, githubRequests=github_requests)
    return summary_from_counts(
        report.rule,
        tally,
        duration_seconds=report.duration_seconds,
        succeeded=report.ok,
        finished_at=finished_at,
    )


def counts(report: PassReport) -> dict[str, Any]:
    """A pass's numbers as JSON, with no PR text: what the act step hands the exit handler."""
    rows = report.results
    errors = Counter(_error_type(row) for row in rows if row.error)
    if report.error:
        errors["github"] += 1
    return {
        "prsProcessed": len(rows),
        "actions": dict(Counter(row.action.value for row in rows if not row.error)),
        "errors": dict(errors),
        "guardrailBlocks": dict(Counter(row.guardrail for row in rows if row.guardrail)),
        "fallbacks": sum(1 for row in rows if row.fallback),
        "aiCalls": 0,
        "githubRequests": 0,
    }


def summary_from_counts(
    rule: str,
    tally: dict[str, Any],
    *,
    duration_seconds: float,
    succeeded: bool,
    finished_at: float,
) -> PassSummary:
    """The metrics of a pass from :func:`counts` (as the exit handler receives them)."""
    return PassSummary(
        rule=rule,
        prs_processed=int(tally.get("prsProcessed", 0)),
        actions=dict(tally.get("actions", {})),
        errors=dict(tally.get("errors", {})),
        guardrail_blocks=dict(tally.get("guardrailBlocks", {})),
        fallbacks=int(tally.get("fallbacks", 0)),
        ai_calls=int(tally.get("aiCalls", 0)),
        github_requests=int(tally.get("githubRequests", 0)),
        duration_seconds=duration_seconds,
        succeeded=succeeded,
        finished_at=finished_at,
    )


def _error_type(row: PullRequestResult) -> str:
    return "ai" if row.error_kind in {"ai", "template"} else "github"
