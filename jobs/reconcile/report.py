"""How a pass is shown: a table for people, one JSON document for tools, a metrics summary.

Also the fields of each decision's log line (:func:`decision_fields`) and the entry of a rule's
status history (:func:`history_entry`, :func:`append_history`).

Pure formatting: it builds strings and summaries, and never writes or pushes anything itself.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.clients.metrics import (
    ACTIONS,
    ARGOCD_ERROR_KINDS,
    ERROR_TYPES,
    SHADOW_OUTCOMES,
    TOKEN_KINDS,
    PassSummary,
)
from ai_operator.jobs.policy.counts import PassCounts
from ai_operator.jobs.policy.markers import make_marker
from ai_operator.jobs.policy.pacing import deferred_counts, known_deferrals
from ai_operator.jobs.reconcile.results import PassReport, PullRequestResult
from ai_operator.jobs.rules.model import RunRecord


def as_json(reports: Sequence[PassReport], *, dry_run: bool) -> str:
    """One JSON document: every PR's row, and each rule's pass."""
    document: dict[str, Any] = {
        "dryRun": dry_run,
        "results": [row.to_json() for report in reports for row in report.results],
        "rules": [
            {
                "rule": report.rule,
                "pullRequests": len(report.results),
                **_pass_counts(report),
                "failed": len(report.failed),
                "error": report.error,
                "durationSeconds": round(report.duration_seconds, 3),
                **_shadow_json(report),
            }
            for report in reports
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _shadow_json(report: PassReport) -> dict[str, Any]:
    """A shadow pass's mode, what it settled and recorded, and the rule's score."""
    if report.shadow is None:
        return {"mode": "enforce"}
    return {
        "mode": "shadow",
        "shadow": {
            **report.shadow.score.to_json(),
            "settledNow": report.shadow.settled_counts(),
            "recordedNow": dict(report.shadow_recorded),
            "unread": report.shadow.unread,
        },
    }


def shadow_line(report: PassReport) -> str | None:
    """The table's line about a shadow pass: nothing was written, and how far it agrees."""
    if report.shadow is None:
        return None
    found = report.shadow.score
    agreement = found.agreement
    share = f"{agreement:.0%}" if agreement is not None else "n/a"
    per_action = ", ".join(
        f"{action} {mine.agreed}/{mine.settled}"
        for action, mine in sorted(found.actions.items())
        if mine.settled
    )
    return (
        f"{report.rule}: shadow mode, nothing was written: {found.decisions} decisions recorded, "
        f"{found.settled} settled, {found.agreed} agreed ({share})"
        + (f": {per_action}" if per_action else "")
    )


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
        shadow = shadow_line(report)
        if shadow is not None:
            console.print(Text(shadow))
    return buffer.getvalue()


def _pr_cell(row: PullRequestResult) -> str:
    title = row.title if len(row.title) <= 50 else row.title[:49] + "…"
    return f"{row.repository}#{row.number} {title}".strip()


def _action_cell(row: PullRequestResult) -> str:
    if row.proposed and row.proposed is not row.action:
        return f"{row.reported_action} (AI: {row.proposed.value})"
    return row.reported_action + (" (fallback)" if row.fallback else "")


def _applied_cell(row: PullRequestResult) -> str:
    if row.error:
        return "failed"
    if row.shadow:
        return "shadow"
    if row.dry_run:
        return "dry run"
    if row.deferred:
        done = f"{', '.join(row.operations)}; " if row.operations else ""
        return f"{done}deferred ({row.deferred})"
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
    counts = Counter(row.reported_action for row in report.results)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing"
    failed = f", {len(report.failed)} failed" if report.failed else ""
    waiting = report.writes_deferred
    failed += f", {waiting} with writes deferred to a later pass" if waiting else ""
    tally = _pass_counts(report)
    if report.paused:
        failed += ", writes paused"
    seen = (
        f"; {tally['matched']} matched: {tally['decided']} decided, {tally['reused']} reused, "
        f"{tally['deferred']} deferred to a later pass"
    )
    return (
        f"{report.rule}: {len(report.results)} pull requests: {summary}{failed}{seen} "
        f"({report.duration_seconds:.1f}s)"
    )


def _pass_counts(report: PassReport) -> dict[str, int]:
    """How many PRs matched, were decided now, reused an earlier decision, or wait for a pass."""
    matched = report.matched
    if matched is None:
        matched = len(report.results) + report.deferred
    return {
        "matched": matched,
        "decided": report.decided,
        "reused": report.reused,
        "deferred": report.deferred,
        "writesDeferred": report.writes_deferred,
    }


def summarize(
    report: PassReport,
    *,
    dry_run: bool,
    github_requests: int,
    finished_at: float,
    github_rate_limit_remaining: int | None = None,
    interval_seconds: float | None = None,
) -> PassSummary:
    """The metrics of one pass of ``ai-operator run``."""
    tally = counts(report, dry_run=dry_run).model_copy(
        update={
            "github_requests": github_requests,
            "github_rate_limit_remaining": github_rate_limit_remaining,
        }
    )
    return summary_from_counts(
        report.rule,
        tally,
        duration_seconds=report.duration_seconds,
        succeeded=report.ok,
        finished_at=finished_at,
        interval_seconds=interval_seconds,
    )


def counts(report: PassReport, *, dry_run: bool = False) -> PassCounts:
    """A pass's numbers, with no PR text: what the act step hands the exit handler.

    ``actions`` are the final actions of the rows without error; with ``dry_run`` they are what
    would have been done, and the metrics keep them apart. A reused decision that changed nothing
    was counted by the run that made it, and is not counted again. Model calls and tokens are those
    spent in this run (a decision reused from an earlier run's memo cost nothing now).
    """
    rows = report.results
    errors = Counter(_error_type(row) for row in rows if row.error)
    if report.error:
        errors["github"] += 1
    usage = sum((row.usage for row in rows), ModelUsage())
    shadow = report.shadow
    return PassCounts(
        prs_processed=len(rows),
        dry_run=dry_run,
        actions=dict(Counter(row.reported_action for row in rows if _settled_now(row))),
        failed=len(report.failed),
        errors=dict(errors),
        guardrail_blocks=dict(Counter(row.guardrail for row in rows if row.guardrail)),
        fallbacks=sum(1 for row in rows if row.fallback),
        ai_calls=usage.calls,
        ai_tokens=usage.tokens(),
        decisions_reused=sum(1 for row in rows if row.reused),
        writes_deferred=_waited(report),
        shadow_decided=dict(report.shadow_recorded) if shadow else {},
        shadow_settled=shadow.settled_counts() if shadow else {},
        shadow_agreed=shadow.agreed_counts() if shadow else {},
        shadow_score=shadow.score if shadow else None,
        argocd_errors=dict(report.argocd_errors),
    )


def _waited(report: PassReport) -> dict[str, int]:
    """Rows whose writes wait, by reason; a paused pass's deferred PRs wait for the pause."""
    waited = deferred_counts(row.deferred for row in report.results)
    if report.paused and report.deferred:
        waited["paused"] = waited.get("paused", 0) + report.deferred
    return waited


def _settled_now(row: PullRequestResult) -> bool:
    """Whether this pass settled the row's action: decided now, or reused and did something.

    A row whose writes were deferred settled nothing yet: a deferred merge is no merge.
    """
    if row.error or row.deferred:
        return False
    return not row.reused or bool(row.operations)


def summary_from_counts(
    rule: str,
    tally: PassCounts,
    *,
    duration_seconds: float,
    succeeded: bool,
    finished_at: float,
    interval_seconds: float | None = None,
) -> PassSummary:
    """The metrics of a pass from :func:`counts` (as the exit handler receives them).

    ``rule`` is ``namespace/name``. Keys outside the fixed label sets (an error type or token
    kind this version does not know) are dropped rather than failing the report.
    """
    namespace, _, name = rule.rpartition("/")
    return PassSummary(
        namespace=namespace or "default",
        rule=name,
        prs_processed=tally.prs_processed,
        actions=_known(tally.actions, ACTIONS),
        errors=_known(tally.errors, ERROR_TYPES),
        guardrail_blocks=dict(tally.guardrail_blocks),
        fallbacks=tally.fallbacks,
        ai_calls=tally.ai_calls,
        ai_tokens=_known(tally.ai_tokens, TOKEN_KINDS),
        github_requests=tally.github_requests,
        duration_seconds=duration_seconds,
        succeeded=succeeded,
        finished_at=finished_at,
        dry_run=tally.dry_run,
        failed_prs=tally.failed,
        decisions_reused=tally.decisions_reused,
        github_rate_limit_remaining=tally.github_rate_limit_remaining,
        interval_seconds=interval_seconds,
        writes_deferred=known_deferrals(tally.writes_deferred),
        shadow_decided=_known(tally.shadow_decided, ACTIONS),
        shadow_settled=_known(tally.shadow_settled, SHADOW_OUTCOMES),
        shadow_agreed=_known(tally.shadow_agreed, ACTIONS),
        argocd_errors=_known(tally.argocd_errors, ARGOCD_ERROR_KINDS),
    )


def decision_fields(row: PullRequestResult) -> dict[str, Any]:
    """One decision as the fields of its log line: what was decided, why, what it cost.

    ``marker`` is the very key the PR comment carries (rule, action, head): grep it in the logs
    and on GitHub to find the same decision in both.
    """
    return {
        "rule": row.rule,
        "pr": f"{row.repository}#{row.number}",
        "repository": row.repository,
        "number": row.number,
        "head": row.head_oid,
        "proposed": row.proposed.value if row.proposed else None,
        "action": row.reported_action,
        "guardrail": row.guardrail,
        "guardrail_reason": row.guardrail_reason,
        "fallback": row.fallback,
        "reason": row.reason,
        "applied": list(row.operations),
        "deferred": row.deferred,
        "dry_run": row.dry_run,
        "error": row.error,
        "model": "reused" if row.reused else ("asked" if row.usage.calls else "not asked"),
        "latency_seconds": round(row.latency_seconds, 3),
        "model_calls": row.usage.calls,
        "input_tokens": row.usage.input_tokens,
        "output_tokens": row.usage.output_tokens,
        "cached_tokens": row.usage.cached_tokens,
        "marker": make_marker(row.rule, row.reported_action, row.head_oid),
    }


HISTORY_LIMIT = 10
"""How many runs a rule's status keeps."""


def history_entry(
    tally: PassCounts, *, finished_at: str, succeeded: bool, workflow: str | None = None
) -> RunRecord:
    """One run of a rule as a short, bounded entry of the rule's status history.

    ``tally`` is the run's counts (the tally's ``summary`` output, read with
    :meth:`~jobs.policy.counts.PassCounts.read`); ``finished_at`` is an RFC 3339 time. The entry
    holds counts only, never PR text, so its size does not grow with the pull requests.
    """
    actions = _known(tally.actions, ACTIONS)
    return RunRecord(
        finishedAt=finished_at,
        succeeded=succeeded,
        workflow=workflow or None,
        dryRun=tally.dry_run,
        pullRequests=tally.prs_processed,
        actions={action: n for action, n in sorted(actions.items()) if n},
        failed=tally.failed,
        errors=sum(tally.errors.values()),
        guardrailBlocks=sum(tally.guardrail_blocks.values()),
        aiCalls=tally.ai_calls,
    )


def append_history(
    history: Sequence[RunRecord], entry: RunRecord, limit: int = HISTORY_LIMIT
) -> list[RunRecord]:
    """``history`` with ``entry`` appended, keeping the newest ``limit`` entries (oldest first).

    An entry of the same workflow replaces the earlier one, so writing a run twice is harmless.
    """
    same = entry.workflow
    kept = [item for item in history if not same or item.workflow != same]
    return [*kept, entry][-max(1, limit) :]


def _known(value: Mapping[str, int], allowed: tuple[str, ...]) -> dict[str, int]:
    """Counts by kind, keeping the ``allowed`` kinds (this version's fixed label sets)."""
    return {k: n for k, n in value.items() if k in allowed}


def _error_type(row: PullRequestResult) -> str:
    """The metrics' error type of a failed row: its kind when it is one, else ``github``."""
    return row.error_kind if row.error_kind in ERROR_TYPES else "github"
