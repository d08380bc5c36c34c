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


PRS = 6
"""A tiny world (every PR covered): what a run costs is its contenders' processes, not its size."""


def test_a_tiny_run_prints_figures_that_hold() -> None:
    """The three contenders are measured, each twice (the traced twin run agrees on every count).

    ai-operator asks nothing of an unchanged PR, naive asks all. The naive design at
    ai-operator's parallelism does the very same work as the naive one (same reads, same calls):
    only ai-operator's design changes the counts; the gain is split into its parts per pass.
    """
    out = io.StringIO()
    argv = ["--prs", str(PRS), "--repos", "2", "--ai-latency-ms", "0", "--world", "open"]
    argv += ["--changed", "0.5", "--parallelism", "4"]

    assert main(argv, out) == 0

    text = out.getvalue()
    covered = covered_count(PRS, "open")
    changed = covered // 2
    reads, mutations, calls, reused = figures(text, "ai-operator", "1 first")[:4]
    assert calls == covered and reads > 0 and mutations > 0 and reused == 0
    assert figures(text, "ai-operator", "2 nothing changed")[1:4] == [0, 0, covered]
    assert figures(text, "ai-operator", f"3 after {changed} changed")[2:4] == [
        changed,
        covered - changed,
    ]
    assert figures(text, "naive", "2 nothing changed")[2] == covered
    assert figures(text, "naive", f"3 after {changed} changed")[2] == covered

    for label in ("1 first", "2 nothing changed", f"3 after {changed} changed"):
        naive = figures(text, "naive", label)
        parallel = figures(text, "naive-parallel", label)
        assert parallel[:7] == naive[:7]  # reads .. cached tokens: the same work
    lines = text.splitlines()
    start = lines.index("side by side: wall s / GitHub reads / model calls")
    assert "naive, 1 at a time" in lines[start + 1] and "naive, 4 at a time" in lines[start + 1]
    gains = lines[lines.index("where the gain comes from (wall time, naive / ai-operator):") + 1 :]
    assert gains[0].startswith("  1 first: x") and "= parallelism x" in gains[0]
    assert "* search x" in gains[0]
    assert "* search and reuse x" in gains[1]
