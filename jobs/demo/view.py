"""How the demo is shown: tables for people, or one JSON document for tools.

When the stand-in model answers, every section says so. Pure formatting: builds strings from a
:class:`~jobs.demo.run.DemoResult`, writes and pushes nothing.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ai_operator.jobs.clients.metrics import PassSummary, pass_metric_families
from ai_operator.jobs.demo.run import DemoResult, PassRun, PullRequestAfter
from ai_operator.jobs.reconcile.results import PullRequestResult
from ai_operator.jobs.sandbox.samples import SAMPLES
from ai_operator.jobs.sandbox.standin import NOTICE

HEADINGS = {
    "dry run": "1. Dry run: decide and report, change nothing",
    "for real": "2. For real",
    "again": "3. Again: the same pass once more reuses what did not change, and changes nothing",
}
_MARKUP = re.compile(r"\n\n<sub>.*", re.DOTALL)  # a comment's footer and hidden marker


def as_text(result: DemoResult, width: int | None = None) -> str:
    """The demo as tables and short sections (``width``: the terminal's by default)."""
    console, buffer = _console(
        width or min(max(shutil.get_terminal_size((120, 24)).columns, 100), 160)
    )
    _intro(console, result)
    for run in result.passes:
        _pass_section(console, result, run)
        if run.name == "for real":
            _after_section(console, result)
            _metrics_section(console, run)
    _verdict(console, result)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def as_json(result: DemoResult) -> str:
    """One JSON document: the model, the rules, each pass, the pull requests afterwards."""
    document = {
        "model": {"standIn": result.stand_in, "description": result.model}
        | ({"notice": NOTICE} if result.stand_in else {}),
        "mode": "pipeline" if result.pipeline else "run",
        "rules": [
            {"rule": r.rule.qualified_name, "file": r.source, "repositories": list(r.repositories)}
            for r in result.rules
        ],
        "passes": [_pass_json(run) for run in result.passes],
        "pullRequests": [_after_json(pr) for pr in result.after],
        "unchangedByTheLastPass": not result.passes[-1].mutations,
        "problems": list(result.problems),
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def exposition(summary: PassSummary) -> str:
    """The pass's metrics as Prometheus text, without the grouping key the Pushgateway adds."""
    lines = []
    for family in pass_metric_families(summary):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            name = f"{sample.name}{{{labels}}}" if labels else sample.name
            lines.append(f"{name} {_number(sample.value)}")
    return "\n".join(lines) + "\n"


# --- sections ---------------------------------------------------------------------------------


def _intro(console: Console, result: DemoResult) -> None:
    console.print(Text("ai-operator demo: a sandbox GitHub on 127.0.0.1, no token, no cluster"))
    console.print(Text(f"Model: {result.model}"))
    mode = "the pipeline's steps (fetch, decide each PR, act)" if result.pipeline else "`run`"
    console.print(Text(f"Each pass runs every rule as {mode}:"))
    for item in result.rules:
        note = f" ({item.note})" if item.note else ""
        where = f"{_short(item.rule.qualified_name)} ({item.source})"
        console.print(Text(f"  {where} on {', '.join(item.repositories)}{note}"))
    _heading(console, "The sample pull requests", stand_in=False)
    table = _table(None, ("PR", "Title", "Labels", "Shows"))
    for sample in SAMPLES:
        labels = ", ".join(sample.facts.get("labels", []))
        cells = (f"{sample.repository}#{sample.number}", sample.title, labels, sample.shows)
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)


def _pass_section(console: Console, result: DemoResult, run: PassRun) -> None:
    _heading(console, HEADINGS.get(run.name, run.name), result.stand_in)
    for report in run.reports:
        table = _table(
            f"{_short(report.rule)}: {_count(len(report.results), 'pull request')}",
            ("PR", "Model said", "Guardrail: why", "Final", "Done", "Reason"),
        )
        for row in report.results:
            table.add_row(*(Text(cell) for cell in _row_cells(row)))
        console.print(table)
        if report.error:
            console.print(Text(f"{report.rule}: pass failed: {report.error}"))
    console.print(Text(f"Model calls in this pass: {_model_use(run)}"))
    console.print(Text(f"GitHub mutations in this pass: {_mutations(run)}"))
    for push in run.pushes:
        if not push.pushed:
            console.print(Text(f"metrics push failed: {push.error}"))
    if run.pushes and all(push.pushed for push in run.pushes):
        console.print(Text("metrics pushed to the Pushgateway"))


def _after_section(console: Console, result: DemoResult) -> None:
    _heading(console, "The pull requests after the real pass", stand_in=False)
    table = _table(None, ("PR", "State", "Labels added", "Comments added", "Decided"))
    for pr in result.after:
        state = pr.state + (" (its author pushed a commit)" if pr.head_moved else "")
        cells = (
            f"{pr.repository}#{pr.number}",
            state,
            ", ".join(pr.labels_added) or "-",
            str(len(pr.comments)) if pr.comments else "-",
            "; ".join(pr.actions) or "not covered by any rule",
        )
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    comments = [(pr, body) for pr in result.after for body in pr.comments]
    if comments:
        _heading(console, "The comments the operator posted", result.stand_in)
        for pr, body in comments:
            console.print(Text(f"{pr.repository}#{pr.number}: {_comment_text(body)}"))


def _metrics_section(console: Console, run: PassRun) -> None:
    _heading(console, "The metrics of the real pass, as it pushes them", stand_in=False)
    console.print(
        Text(
            "Non-zero series, timestamps left out (--output json has them all; "
            "--pushgateway URL pushes them), one group per rule:"
        )
    )
    by_rule = [_series(exposition(summary)) for summary in run.summaries]
    names = [_short(summary.qualified_name) for summary in run.summaries]
    table = _table(None, ("Series", *names))
    for name in dict.fromkeys(key for series in by_rule for key in series):
        values = [series.get(name, "0") for series in by_rule]
        if "timestamp" not in name and any(value != "0" for value in values):
            table.add_row(*(Text(cell) for cell in (name, *values)))
    console.print(table)


def _verdict(console: Console, result: DemoResult) -> None:
    console.print()
    last = result.passes[-1]
    if not last.mutations:
        console.print(Text("The last pass changed nothing: GitHub is as the real pass left it."))
    for problem in result.problems:
        console.print(Text(f"problem: {problem}"))
    if result.stand_in:
        console.print(Text(f"Every answer above came from the {NOTICE}."))


# --- cells ------------------------------------------------------------------------------------


def _row_cells(row: PullRequestResult) -> tuple[str, ...]:
    pr = f"{row.repository}#{row.number}"
    if row.error:
        return (pr, "-", "-", "-", "failed", f"error: {row.error}")
    model = row.proposed.value if row.proposed else "(no usable answer)"
    if row.reused:
        model += " (reused)"
    guardrail = f"{row.guardrail}: {row.guardrail_reason}" if row.guardrail else "-"
    return (pr, model, guardrail, row.reported_action, _done(row), row.reason)


def _done(row: PullRequestResult) -> str:
    if row.dry_run:
        return "nothing (dry run)"
    if row.deferred:
        done = f"{', '.join(row.operations)}; " if row.operations else ""
        return f"{done}deferred to the next pass ({row.deferred})"
    return ", ".join(row.operations) if row.operations else "nothing to do"


def _short(rule: str) -> str:
    return rule.partition("/")[2] or rule


def _model_use(run: PassRun) -> str:
    if not run.reused:
        return str(run.model_calls)
    return f"{run.model_calls} ({_count(run.reused, 'decision')} reused from the real pass)"


def _mutations(run: PassRun) -> str:
    counts = run.mutation_counts
    if not counts:
        return "none"
    return f"{len(run.mutations)} (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"


def _comment_text(body: str) -> str:
    text = " ".join(_MARKUP.sub("", body).split())
    return text if len(text) <= 160 else text[:159] + "…"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _series(text: str) -> dict[str, str]:
    """``{series: value}`` of Prometheus text lines."""
    pairs = (line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#")
    return {name: value for name, _, value in pairs}


def _heading(console: Console, title: str, stand_in: bool) -> None:
    console.print()
    console.print(Text(f"{title}  [{NOTICE}]" if stand_in else title))


def _table(title: str | None, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _console(width: int) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=width, no_color=True, highlight=False), buffer


# --- JSON -------------------------------------------------------------------------------------


def _pass_json(run: PassRun) -> dict[str, Any]:
    return {
        "name": run.name,
        "dryRun": run.dry_run,
        "results": [row.to_json() for report in run.reports for row in report.results],
        "errors": [report.error for report in run.reports if report.error],
        "modelCalls": run.model_calls,
        "decisionsReused": run.reused,
        "mutations": run.mutation_counts,
        "metrics": {s.qualified_name: exposition(s) for s in run.summaries},
        "pushes": [{"pushed": p.pushed, "error": p.error} for p in run.pushes],
    }


def _after_json(pr: PullRequestAfter) -> dict[str, Any]:
    return {
        "repository": pr.repository,
        "number": pr.number,
        "title": pr.title,
        "shows": pr.shows,
        "state": pr.state,
        "labelsAdded": list(pr.labels_added),
        "comments": list(pr.comments),
        "headMoved": pr.head_moved,
        "decided": list(pr.actions),
    }
