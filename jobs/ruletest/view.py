"""How a rule's test run is shown: a table for people, JSON for tools, JUnit XML for CI.

Pure formatting: builds strings from a :class:`~jobs.ruletest.run.RuleTestRun`, writes nothing.
"""

from __future__ import annotations

import io
import json
from typing import Any
from xml.etree import ElementTree

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ai_operator.jobs.ruletest.run import CaseResult, RuleTestRun


def as_table(run: RuleTestRun, width: int = 120) -> str:
    """One row per case, then one line per failure and a summary."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("Case", "Model said", "Final", "Expected", "Result"):
        table.add_column(column, overflow="fold")
    for result in run.results:
        table.add_row(*(Text(cell) for cell in _cells(result)))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, highlight=False)
    console.print(Text(f"{run.rule}: {run.cases_file}"))
    console.print(Text(f"model: {run.model}"))
    console.print(table)
    for result in run.failed:
        console.print(Text(f"FAIL {result.name}: {result.problem}"))
    console.print(Text(summary(run)))
    if run.recorded:
        console.print(Text(f"answers recorded in {run.recorded}"))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def summary(run: RuleTestRun) -> str:
    """``N cases: P passed, F failed``."""
    failed = len(run.failed)
    return f"{len(run.results)} cases: {len(run.results) - failed} passed, {failed} failed"


def as_json(run: RuleTestRun) -> str:
    """One JSON document: the rule, who answered, and every case."""
    document = {
        "rule": run.rule,
        "cases": run.cases_file,
        "model": run.model,
        "passed": len(run.results) - len(run.failed),
        "failed": len(run.failed),
        "results": [_case_json(result) for result in run.results],
        "recorded": run.recorded,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def as_junit(run: RuleTestRun) -> str:
    """JUnit XML: one test suite (the rule), one test case per case."""
    suite = ElementTree.Element(
        "testsuite",
        name=run.rule,
        tests=str(len(run.results)),
        failures=str(len(run.failed)),
        errors="0",
    )
    ElementTree.SubElement(suite, "properties").append(
        ElementTree.Element("property", name="model", value=run.model)
    )
    for result in run.results:
        case = ElementTree.SubElement(suite, "testcase", classname=run.rule, name=result.name)
        if result.problem is not None:
            failure = ElementTree.SubElement(case, "failure", message=result.problem)
            failure.text = _details(result)
    ElementTree.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(
        suite, encoding="unicode"
    )


def _cells(result: CaseResult) -> tuple[str, ...]:
    proposed = result.proposed.value if result.proposed else "-"
    if result.fallback:
        proposed = "(no usable answer)"
    final = result.final.value if result.final else "-"
    if result.guardrail:
        final = f"{final} [{result.guardrail}]"
    expected = " or ".join(action.value for action in result.expected)
    return (result.name, proposed, final, expected, "pass" if result.passed else "FAIL")


def _details(result: CaseResult) -> str:
    lines = [
        f"expected: {' or '.join(a.value for a in result.expected)}",
        f"model said: {result.proposed.value if result.proposed else '-'}",
        f"final: {result.final.value if result.final else '-'}",
        f"reason: {result.reason}",
    ]
    if result.guardrail:
        lines.append(f"guardrail: {result.guardrail}: {result.guardrail_reason}")
    return "\n".join(lines)


def _case_json(result: CaseResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "expected": [action.value for action in result.expected],
        "proposedAction": result.proposed.value if result.proposed else None,
        "action": result.final.value if result.final else None,
        "guardrail": result.guardrail,
        "guardrailReason": result.guardrail_reason,
        "fallback": result.fallback,
        "reason": result.reason,
        "passed": result.passed,
        "problem": result.problem,
    }
