"""The benchmarks still run, and their figures keep their meaning."""

from __future__ import annotations

import io

import pytest

from benchmarks.fakes import covered_count
from benchmarks.reconcile import main

pytestmark = pytest.mark.usefixtures("restore_logging")


def figures(text: str, section: str, label: str) -> list[float]:
    """The numbers of the row starting with ``label`` in the table after the line ``section``."""
    lines = text.splitlines()
    start = lines.index(section)
    row = next(line for line in lines[start:] if line.strip().startswith(label))
    return [float(cell) for cell in row.strip()[len(label) :].split()]


def test_a_tiny_run_prints_figures_that_hold() -> None:
    """Both contenders are measured; ai-operator asks nothing of an unchanged PR, naive asks all."""
    out = io.StringIO()
    argv = ["--prs", "12", "--repos", "2", "--ai-latency-ms", "0", "--world", "open"]
    argv += ["--changed", "0.5"]

    assert main(argv, out) == 0

    text = out.getvalue()
    covered = covered_count(12, "open")
    reads, mutations, calls, reused = figures(text, "ai-operator", "1 first")[:4]
    assert calls == covered and reads > 0 and mutations > 0 and reused == 0
    assert figures(text, "ai-operator", "2 nothing changed")[1:4] == [0, 0, covered]
    assert figures(text, "ai-operator", "3 after 6 changed")[2:4] == [6, covered - 6]
    assert figures(text, "naive", "2 nothing changed")[2] == covered
    assert figures(text, "naive", "3 after 6 changed")[2] == covered
