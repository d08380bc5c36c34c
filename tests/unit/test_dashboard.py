"""The Grafana dashboard the chart ships: generated, never hand-edited, and about our metrics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ai_operator.jobs.clients.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts" / "ai-operator" / "dashboards" / "ai-operator.json"


def panels() -> list[dict[str, Any]]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [panel for panel in document["panels"] if panel["type"] != "row"]


def test_the_dashboard_file_is_what_the_generator_builds() -> None:
    """scripts/generate-dashboard --check: the committed JSON has not drifted from its code."""
    result = subprocess.run(
        [sys.executable, "scripts/generate-dashboard", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_dashboard_shows_what_operators_ask_about() -> None:
    """Actions per rule, guardrail blocks, errors, model calls and tokens, duration, last success."""
    titles = {panel["title"] for panel in panels()}
    assert {
        "Actions per hour",
        "Guardrail blocks per hour",
        "Errors per hour",
        "Model calls per hour",
        "Model tokens per hour",
        "Run duration",
        "Time since last success",
    } <= titles


def test_every_query_uses_declared_metrics_and_the_chosen_rules() -> None:
    """No panel watches a metric the runs do not push; each is filtered by namespace and rule."""
    declared = {spec.name for spec in METRICS}
    for panel in panels():
        for target in panel["targets"]:
            used = set(re.findall(r"\bai_operator_\w+", target["expr"]))
            assert used and used <= declared, (panel["title"], used - declared)
            assert 'namespace=~"$namespace", rule=~"$rule"' in target["expr"], panel["title"]
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_the_dashboard_shows_shadow_agreement() -> None:
    """Agreed over settled per rule and per decided action, and what settled the decisions."""
    by_title = {panel["title"]: panel for panel in panels()}
    agreement = by_title["Shadow agreement"]
    assert agreement["fieldConfig"]["defaults"]["unit"] == "percentunit"
    expr = agreement["targets"][0]["expr"]
    assert "ai_operator_shadow_agreed_total" in expr
    assert "ai_operator_shadow_settled_total" in expr
    assert "Shadow agreement by decided action" in by_title
    assert "Shadow decisions settled per day" in by_title
