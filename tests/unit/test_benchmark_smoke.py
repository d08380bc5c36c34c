"""The reconciliation benchmark still runs, and its figures keep their meaning."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from benchmarks.reconcile import main, run_benchmark


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Leave the root logger and structlog as the test found them (main configures logging)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def test_main_prints_the_table():
    """A tiny run prints every approach and the memo cache's executions."""
    out = io.StringIO()
    assert main(["--prs", "12", "--repos", "2", "--ai-latency-ms", "0", "--pushed", "1"], out) == 0
    text = out.getvalue()
    for row in ("ai-operator, pass 1", "naive, pass 2", "1 first", "2 nothing changed"):
        assert row in text
