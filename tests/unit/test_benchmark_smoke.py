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


def test_three_contenders_side_by_side() -> None:
    """The naive design one at a time, the same at ai-operator's parallelism, and ai-operator.

    The parallel naive pass does the very same work as the naive one (same reads, same calls);
    only ai-operator's design changes the counts; the gain is split into its parts per pass.
    """
    out = io.StringIO()
    argv = ["--prs", "12", "--repos", "2", "--ai-latency-ms", "20", "--world", "open"]
    argv += ["--changed", "0.5", "--no-trace", "--parallelism", "4"]

    assert main(argv, out) == 0

    text = out.getvalue()
    for label in ("1 first", "2 nothing changed", "3 after 6 changed"):
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
