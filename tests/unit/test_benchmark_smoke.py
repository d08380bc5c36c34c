"""The reconciliation benchmark still runs, and its figures keep their meaning."""

from __future__ import annotations

import io

import pytest

from benchmarks.fakes import covered_count
from benchmarks.reconcile import main

pytestmark = pytest.mark.usefixtures("restore_logging")


def figures(text: str, label: str) -> list[float]:
    """The numbers of the table row that starts with ``label``."""
    row = next(line for line in text.splitlines() if line.startswith(label))
    return [float(cell) for cell in row[len(label) :].split()]


def test_a_tiny_run_prints_figures_that_hold() -> None:
    """Every approach is measured; second passes change nothing; the memo cache skips the AI."""
    out = io.StringIO()
    argv = ["--prs", "12", "--repos", "2", "--ai-latency-ms", "0", "--pushed", "1"]

    assert main(argv, out) == 0

    text = out.getvalue()
    covered = covered_count(12)
    requests, ai_calls, _wall, _peak, mutations = figures(text, "ai-operator, pass 1")
    assert ai_calls == covered and requests > 0 and mutations > 0
    assert figures(text, "naive, pass 1")[1] == covered
    assert figures(text, "ai-operator, pass 2")[-1] == 0
    assert figures(text, "naive, pass 2")[-1] == 0
    assert figures(text, "1 first")[0] == covered
    assert figures(text, "2 nothing changed")[0] == 0
    assert figures(text, "3 after a push to 1 PRs")[0] == 1
